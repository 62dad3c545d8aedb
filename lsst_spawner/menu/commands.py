"""``lsst-spawner menu export`` and ``menu import FILE``: revisions as YAML, for GitOps and backups.

Import runs the same validation as a save in the editor and writes a new
revision on top of the current one; a file equal to the current menu writes
nothing. Export of an empty database prints the menu seeded from the
traitlets configuration, which is what the hub would use.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from traitlets.config import Config

from ..config import ConfigError

if TYPE_CHECKING:  # the database stack is imported only when a subcommand runs
    from .storage import MenuStore

__all__ = ["add_menu_store_arguments", "run_menu_store_command"]


def add_menu_store_arguments(menu: argparse.ArgumentParser) -> None:
    """The ``export`` and ``import`` subcommands of ``lsst-spawner menu``."""
    commands = menu.add_subparsers(dest="menu_command", metavar="SUBCOMMAND")
    export = commands.add_parser(
        "export",
        help="print a menu revision as YAML (the current one by default)",
        description="Print a revision of the lab menu database as YAML, for GitOps and backups.",
    )
    export.add_argument("--revision", type=int, metavar="N", help="revision to export")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
    importing = commands.add_parser(
        "import",
        help="validate a YAML menu and save it as a new revision",
        description=(
            "Validate FILE as a save from the editor does and write it as a new revision on top "
            "of the current one. Exits 1 with every problem by field when it is invalid."
        ),
    )
    importing.add_argument("file", metavar="FILE", help="a menu exported by `menu export`")
    importing.add_argument("--author", help="recorded author (default: cli:<login name>)")
    importing.add_argument("--comment", default="", help="recorded comment")
    importing.add_argument(
        "--base",
        type=int,
        metavar="N",
        help="refuse the import unless revision N is still the current one",
    )
    for sub in (export, importing):
        sub.add_argument("--db-url", help="menu database URL (default: LabMenu.db_url)")


def _export(store: MenuStore, config: Config, args: argparse.Namespace) -> int:
    from .seed import seed_menu_from_settings

    if args.revision is not None:
        revision = store.get(args.revision)
        document, header = revision.document, _header(revision)
    elif (current := store.current()) is not None:
        document, header = current.document, _header(current)
    else:
        from ..checks import spawner_settings

        document = seed_menu_from_settings(spawner_settings(config))
        header = "# the database is empty: the menu seeded from the traitlets configuration\n"
    text = header + yaml.safe_dump(document.to_json_data(), sort_keys=False)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _header(revision: Any) -> str:
    comment = f": {revision.comment}" if revision.comment else ""
    return (
        f"# lab menu revision {revision.number} by {revision.author} at "
        f"{revision.created.isoformat(timespec='seconds')}{comment}\n"
    )


def _import(store: MenuStore, config: Config, args: argparse.Namespace) -> int:
    from .model import MenuDocument
    from .storage import MenuConflictError
    from .validate import MenuInvalidError

    try:
        data = yaml.safe_load(Path(args.file).read_text())
    except OSError as error:
        raise ConfigError(f"cannot read {args.file}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{args.file} is not YAML: {error}") from None
    current = store.current()
    base = current.number if current else None
    if args.base is not None and args.base != base:
        raise ConfigError(f"--base {args.base} is not the current revision ({base}); nothing saved")
    if current is not None and isinstance(data, dict):
        try:
            if MenuDocument.model_validate(data) == current.document:
                print(f"unchanged: {args.file} is revision {current.number}; nothing saved")
                return 0
        except ValueError:
            pass  # reported by the save's validation below
    author = args.author or f"cli:{getpass.getuser()}"
    try:
        document = asyncio.run(_check_save(data, store, config, (base or 0) + 1))
        revision = store.save(document, base=base, author=author, comment=args.comment)
    except MenuInvalidError as invalid:
        for problem in invalid.problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        print(f"{len(invalid.problems)} problem(s); nothing saved", file=sys.stderr)
        return 1
    except MenuConflictError as conflict:
        raise ConfigError(str(conflict)) from None
    print(f"saved revision {revision.number} by {revision.author}")
    return 0


async def _check_save(data: Any, store: MenuStore, config: Config, revision: int) -> Any:
    """The editor's save checks: the registry's check that every offered image exists and
    the spawn form's render, as the editor runs them."""
    from ..checks import spawner_settings
    from .form_check import SpawnForms
    from .image_check import check_save, save_checker

    settings = spawner_settings(config)
    source, where = save_checker(settings)
    forms = SpawnForms(settings, dict(store.node_groups))
    try:
        return await check_save(
            data, store.node_groups, source, where, forms=forms, revision=revision
        )
    finally:
        forms.close()
        close = getattr(source, "aclose", None)
        if close is not None:
            await close()


def run_menu_store_command(config: Config, args: argparse.Namespace) -> int:
    """Run ``menu export`` or ``menu import``; returns the exit code."""
    from .storage import MenuStoreError
    from .traits import lab_menu_from_config

    settings = lab_menu_from_config(config, db_url=args.db_url)
    store = settings.open_store()
    try:
        if args.menu_command == "export":
            return _export(store, config, args)
        return _import(store, config, args)
    except MenuStoreError as error:
        raise ConfigError(str(error)) from None
    finally:
        store.close()
