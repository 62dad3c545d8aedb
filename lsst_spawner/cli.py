"""``lsst-spawner``: the operators' command line (check-config, menu, render-pod, rbac, ...).

Every command works against a JupyterHub config file loaded the way JupyterHub
loads it; only ``doctor`` and ``prepull-status`` contact Kubernetes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from traitlets.config import Config
from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

from ._version import __version__
from .checks import check_config_with_warnings
from .config import ConfigError, problems_as_lines, syntax_error_line, validation_on_load
from .images.prune_command import add_prune_parser, prune_images
from .kube.prepull_command import add_prepull_status_parser, prepull_status

__all__ = ["build_parser", "load_hub_config", "main"]

DEFAULT_CONFIG_FILE = "jupyterhub_config.py"


class CommandError(Exception):
    """A command cannot do what was asked; the message is printed and the exit code is 1."""


def load_hub_config(path: str | Path) -> Config:
    """Load a JupyterHub config file as JupyterHub does (``c``, ``get_config``, ``load_subconfig``).

    Hub-start validation in :func:`lsst_spawner.config.load_config_dir` is
    turned off while loading, so that ``check-config`` can report every
    problem itself.
    """
    file = Path(path).expanduser().resolve()
    loader = PyFileConfigLoader(file.name, path=str(file.parent))
    with validation_on_load(False):
        try:
            return loader.load_config()
        except ConfigFileNotFound:
            raise CommandError(f"config file {str(path)!r} not found") from None
        except SystemExit as stop:  # a snippet stopped start-up with a one-line message
            raise CommandError(str(stop.code)) from None
        except SyntaxError as error:  # one line, not a traceback
            raise CommandError(syntax_error_line(error)) from None
        except ConfigError as error:
            raise CommandError(f"{path}: {error}") from None


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f",
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help=f"JupyterHub config file to load (default: {DEFAULT_CONFIG_FILE})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lsst-spawner`` (also used by the docs' CLI reference)."""
    parser = argparse.ArgumentParser(
        prog="lsst-spawner",
        description="Check and preview an lsst_spawner JupyterHub configuration, offline.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_config_option(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser(
        "check-config",
        help="validate the lsst_spawner configuration and list every problem",
        description=(
            "Load the config file and check every lsst_spawner setting of the configured "
            "spawner and authenticator. Prints each problem with the trait's name and exits 1 "
            "if there is any; prints a one-line summary and exits 0 otherwise."
        ),
    )
    _add_config_option(check)

    menu = commands.add_parser(
        "menu",
        help="print the image menu users would see now",
        description="Build the image menu from the configured image source and print it.",
    )
    _add_config_option(menu)
    menu.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    from .menu.commands import add_menu_store_arguments

    add_menu_store_arguments(menu)

    render = commands.add_parser(
        "render-pod",
        help="print every Kubernetes object the spawner would create for a user",
        description=(
            "Print the Kubernetes objects LSSTSpawner would create for USER with the given "
            "identity and options, without contacting Kubernetes. Exits 1 with the reason "
            "when the options or the identity are rejected."
        ),
    )
    _add_config_option(render)
    render.add_argument("--user", required=True, metavar="NAME", help="JupyterHub user name")
    render.add_argument(
        "--auth-state",
        metavar="FILE.json",
        help="the user's auth_state as JSON (with the 'identity' object)",
    )
    render.add_argument(
        "--options", metavar="FILE.json", help="user_options as JSON (default: the form defaults)"
    )
    render.add_argument("--format", choices=("yaml", "json"), default="yaml", help="output format")

    rbac = commands.add_parser(
        "rbac",
        help="print the minimal Kubernetes Role the hub needs for this configuration",
        description=(
            "Print, as YAML, the Role with the least the hub's service account needs for the "
            "configured features (pods, the lab's Secret, events, PVCs, services). Zero to "
            "JupyterHub's hub Role grants all of it."
        ),
    )
    _add_config_option(rbac)

    doctor = commands.add_parser(
        "doctor",
        help="check the configuration against the live cluster and registry",
        description=(
            "Check the configuration, every Kubernetes permission the hub needs (by "
            "SelfSubjectAccessReview, as the kubeconfig's user), that the lab namespace exists, "
            "that the registry answers with the configured credentials and that the recommended "
            "image resolves to a digest. Prints every problem and exits 1 if there is any. The "
            "only command that contacts Kubernetes; it writes nothing."
        ),
    )
    _add_config_option(doctor)
    doctor.add_argument(
        "--kubeconfig",
        metavar="FILE",
        default=None,
        help="kubeconfig of the hub's identity (default: $KUBECONFIG or ~/.kube/config)",
    )

    editor = commands.add_parser(
        "menu-editor",
        help="run the lab menu editor, as a JupyterHub service (c.JupyterHub.services)",
        description=(
            "Serve the lab menu editor under the service prefix JupyterHub passes in the "
            "environment; the menu database comes from LabMenu in the config file."
        ),
    )
    _add_config_option(editor)

    manifests = commands.add_parser(
        "manifests",
        help="print Kubernetes objects to apply next to the hub (NetworkPolicy; --operator)",
        description=(
            "Print, as YAML, the labs' NetworkPolicy for sites not using Zero to JupyterHub's: "
            "ingress from the hub and the proxy only, on the lab's port; egress by intent."
        ),
    )
    _add_config_option(manifests)
    from .manifests import add_manifests_arguments

    add_manifests_arguments(manifests)
    add_prune_parser(commands, _add_config_option)
    add_prepull_status_parser(commands, _add_config_option)
    _add_operator_parsers(commands)
    return parser


def _add_operator_parsers(commands: Any) -> None:
    """``crds``, ``template-from-config`` and ``operator`` (operator mode, docs/operator.md)."""
    commands.add_parser(
        "crds",
        help="print the LabServer and LabTemplate CustomResourceDefinitions (YAML)",
        description="Print the CRDs of operator mode, generated from lsst_spawner.crd's models.",
    )
    template = commands.add_parser(
        "template-from-config",
        help="print the LabTemplate equivalent to the configuration's lab settings",
        description=(
            "Turn the configured LSSTSpawner traits (lab, image menu, Kubernetes) and "
            "KubeSpawner's pod into a LabTemplate for operator mode, as YAML."
        ),
    )
    _add_config_option(template)
    from .crd.from_config import add_template_arguments

    add_template_arguments(template)
    operator = commands.add_parser(
        "operator",
        help="run the operator of operator mode (kopf), reconciling LabServers",
        description="Run the kopf operator that builds, polices and audits LabServers.",
    )
    from .operator.run import add_operator_arguments

    add_operator_arguments(operator)


def _check_config(config: Config, config_file: str) -> int:
    problems, warnings, checked = check_config_with_warnings(config)
    for warning in problems_as_lines(warnings):
        print(f"warning: {warning}", file=sys.stderr)
    if problems:
        for line in problems_as_lines(problems):
            print(line)
        print(f"{len(problems)} problem(s) in {config_file}", file=sys.stderr)
        return 1
    classes = ", ".join(checked) if checked else "no lsst_spawner class is configured"
    noted = f"; {len(warnings)} warning(s) above" if warnings else ""
    print(f"OK: {config_file}: no problems ({classes}){noted}")
    return 0


def _menu(config: Config, output_format: str) -> int:
    from .commands import print_menu

    return print_menu(config, output_format)


def _render_pod(config: Config, args: argparse.Namespace) -> int:
    from .commands import render_pod

    return render_pod(config, args)


def _rbac(config: Config) -> int:
    import yaml

    from .operator.manifests import hub_role_for_mode
    from .rbac import Z2JH_HUB_ROLE_RULES, hub_cluster_role_for_config, missing_rules

    role = hub_role_for_mode(config)
    beyond = missing_rules(role["rules"], Z2JH_HUB_ROLE_RULES)
    print(f"# The minimal {role['kind']} for this configuration (lsst-spawner rbac).")
    print(
        "# "
        + (
            "Zero to JupyterHub's hub Role grants all of it."
            if not beyond
            else "Beyond Zero to JupyterHub's hub Role: " + json.dumps(beyond)
        )
    )
    print(yaml.safe_dump(role, sort_keys=False), end="")
    cluster_role = hub_cluster_role_for_config(config)
    if cluster_role is not None:
        print("---")
        print(
            "# Also needed (image_prepull_enabled lists nodes, which are cluster-scoped): this "
            "ClusterRole, bound to the hub's service account by a ClusterRoleBinding."
        )
        print(yaml.safe_dump(cluster_role, sort_keys=False), end="")
    return 0


def _doctor(config: Config, kubeconfig: str | None) -> int:
    import asyncio

    from .doctor import run_doctor

    report = asyncio.run(run_doctor(config, kubeconfig))
    for line in report.passed:
        print(f"ok: {line}")
    for line in report.problems:
        print(f"PROBLEM: {line}")
    for note in report.notes:
        print(note)
    if report.problems:
        print(f"{len(report.problems)} problem(s)", file=sys.stderr)
        return 1
    print("OK: no problems")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lsst-spawner``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    config_file = getattr(args, "config", DEFAULT_CONFIG_FILE)
    try:
        if args.command == "crds":  # neither reads a hub configuration
            from .crd import print_crds

            return print_crds()
        if args.command == "operator":
            from .operator.run import run_operator

            return run_operator(args)
        config = load_hub_config(config_file)
        if args.command == "check-config":
            return _check_config(config, config_file)
        if args.command == "menu" and getattr(args, "menu_command", None):
            from .menu.commands import run_menu_store_command

            return run_menu_store_command(config, args)
        if args.command == "menu":
            return _menu(config, args.format)
        if args.command == "rbac":
            return _rbac(config)
        if args.command == "doctor":
            return _doctor(config, args.kubeconfig)
        if args.command == "prune-images":
            return prune_images(config, args)
        if args.command == "prepull-status":
            return prepull_status(config, args)
        if args.command == "menu-editor":
            from .editor.service import run_menu_editor

            return run_menu_editor(config)
        if args.command == "template-from-config":
            from .crd.from_config import print_template

            return print_template(config, args)
        if args.command == "manifests":
            from .manifests import print_manifests

            return print_manifests(config, args)
        return _render_pod(config, args)
    except (CommandError, ConfigError) as error:
        print(f"lsst-spawner: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
