"""``lsst-spawner manifests``: Kubernetes objects a site applies next to the hub, as YAML.

Today: the labs' NetworkPolicy, for sites that do not use Zero to JupyterHub's own
(``singleuser.networkPolicy``). Its lab selector, namespace and port come from the
configuration (``KubeSpawner.common_labels``, ``component_label``, ``namespace``, ``port``);
what the labs may reach is given as named intents on the command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kubespawner import KubeSpawner
from traitlets.config import Config

from .checks import spawner_settings
from .config import ConfigError
from .lab.names import LAB_PART_OF
from .netpol import EgressIntents, build_lab_network_policy

__all__ = ["add_manifests_arguments", "lab_network_policy_from_config", "print_manifests"]

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _labels(values: list[str] | None, default: Mapping[str, str], option: str) -> dict[str, str]:
    if not values:
        return dict(default)
    labels = {}
    for value in values:
        key, sep, label = value.partition("=")
        if not sep or not key:
            raise ConfigError(f"{option} takes KEY=VALUE, not {value!r}")
        labels[key] = label
    return labels


def _service(value: str) -> tuple[str, dict[str, str], int]:
    """``NAMESPACE/KEY=VALUE[,KEY=VALUE]:PORT`` → (namespace, labels, port)."""
    target, sep, port = value.rpartition(":")
    namespace, slash, selector = target.partition("/")
    if not (sep and slash and namespace and selector and port.isdigit()):
        raise ConfigError(f"--allow-service takes NAMESPACE/KEY=VALUE[,...]:PORT, not {value!r}")
    number = int(port)
    if not 1 <= number <= 65535:
        raise ConfigError(f"--allow-service port must be 1-65535, not {number}")
    return namespace, _labels(selector.split(","), {}, "--allow-service"), number


def _kubespawner_value(config: Config, name: str) -> Any:
    """A KubeSpawner trait as the spawner sees it: the most specific section, or the default."""
    for section in ("LSSTSpawner", "KubeSpawner", "Spawner"):
        if config._has_section(section) and name in config[section]:
            return config[section][name]
    return KubeSpawner.class_traits()[name].default()


def _hub_namespace() -> str:
    """KubeSpawner's namespace default: the hub's own when it runs in a pod, else ``default``."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def add_manifests_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``lsst-spawner manifests``."""
    parser.add_argument(
        "--hub-label",
        action="append",
        metavar="KEY=VALUE",
        help="a label of the hub pod (repeatable; default component=hub)",
    )
    parser.add_argument(
        "--proxy-label",
        action="append",
        metavar="KEY=VALUE",
        help="a label of the proxy pod (repeatable; default component=proxy)",
    )
    parser.add_argument(
        "--hub-namespace", help="the hub's and proxy's namespace, if not the labs' one"
    )
    parser.add_argument("--hub-api-port", type=int, default=8081, help="the hub API port (8081)")
    parser.add_argument("--no-dns", action="store_true", help="labs may not reach DNS")
    parser.add_argument("--no-hub-api", action="store_true", help="labs may not reach the hub API")
    parser.add_argument(
        "--no-internet", action="store_true", help="labs may not reach public addresses"
    )
    parser.add_argument(
        "--allow-service",
        action="append",
        default=[],
        metavar="NS/KEY=VALUE:PORT",
        help="an in-cluster service labs may reach, by its pods' labels (repeatable)",
    )
    parser.add_argument(
        "--operator",
        action="store_true",
        help="also operator mode's CRDs, the operator's Deployment and RBAC, the hub's Role",
    )
    parser.add_argument("--operator-image", help="the operator's image (with lsst-spawner)")


def lab_network_policy_from_config(config: Config, args: argparse.Namespace) -> dict[str, Any]:
    """The labs' NetworkPolicy for the configured spawner and the command-line intents."""
    spawner_settings(config)  # refuses a configuration with problems, as render-pod does
    namespace = str(_kubespawner_value(config, "namespace") or _hub_namespace())
    # Labels every lab pod keeps for its life. Not all of common_labels: z2jh's carry the
    # chart version, which an upgrade changes, and would leave older labs unselected (open).
    lab_labels = {
        "component": str(_kubespawner_value(config, "component_label")),
        "app.kubernetes.io/part-of": LAB_PART_OF,
    }
    return build_lab_network_policy(
        name="lsst-spawner-labs",
        namespace=namespace,
        lab_labels=lab_labels,
        # KubeSpawner's pods listen on 8888 unless Spawner.port says otherwise.
        lab_port=int(_kubespawner_value(config, "port") or 8888),
        hub_labels=_labels(args.hub_label, {"component": "hub"}, "--hub-label"),
        proxy_labels=_labels(args.proxy_label, {"component": "proxy"}, "--proxy-label"),
        hub_api_port=args.hub_api_port,
        hub_namespace=args.hub_namespace,
        egress=EgressIntents(
            dns=not args.no_dns,
            hub_api=not args.no_hub_api,
            internet=not args.no_internet,
            services=tuple(_service(s) for s in args.allow_service),
        ),
    )


def print_manifests(config: Config, args: argparse.Namespace) -> int:
    """Print the manifests as one YAML stream."""
    documents = [lab_network_policy_from_config(config, args)]
    if args.operator:
        from .crd import build_crds
        from .operator.manifests import DEFAULT_OPERATOR_IMAGE, kopf_peering_crd, operator_manifests

        namespace = documents[0]["metadata"]["namespace"]
        documents += [
            *build_crds(),
            kopf_peering_crd(),
            *operator_manifests(
                namespace=namespace,
                hub_namespace=args.hub_namespace or namespace,
                image=args.operator_image or DEFAULT_OPERATOR_IMAGE,
            ),
        ]
    print(yaml.safe_dump_all(documents, sort_keys=False), end="")
    return 0
