"""``lsst-spawner prepull-status``: which of the menu's radio images each lab node has.

Builds the menu once from the configured image source, lists the nodes with the
kubeconfig's identity (the hub's: it needs the ClusterRole rule
:data:`~lsst_spawner.rbac.PREPULL_NODES_RULE`), and prints the image x node
table of :func:`~lsst_spawner.images.prepull.presence_table`. ``doctor`` prints
the same table. Writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Mapping
from typing import Any

from ..config import ConfigError
from ..images.prepull import build_prepull_state, prepull_targets, presence_table
from ..rbac import PREPULL_NODES_RULE
from .retries import api_message, request_json

__all__ = ["add_prepull_status_parser", "prepull_report", "prepull_status"]

#: How long listing the nodes may take.
REQUEST_TIMEOUT = 10.0


def add_prepull_status_parser(commands: Any, add_config_option: Any) -> None:
    """Add the ``prepull-status`` subcommand to ``lsst-spawner``'s parser."""
    status = commands.add_parser(
        "prepull-status",
        help="print which lab nodes have the menu's radio images (image x node table)",
        description=(
            "Build the image menu, list the nodes labs may run on (node_selector and "
            "tolerations) and print, for each image the prepuller pulls, the nodes that "
            "have it. Needs list on nodes (a ClusterRole). Exits 1 when it cannot tell."
        ),
    )
    add_config_option(status)
    status.add_argument(
        "--kubeconfig",
        metavar="FILE",
        default=None,
        help="kubeconfig of the hub's identity (default: $KUBECONFIG or ~/.kube/config)",
    )


def _spawner_section(config: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    has = getattr(config, "_has_section", None)
    for name in ("KubeSpawner", "LSSTSpawner"):  # LSSTSpawner's settings win, as in traitlets
        if has is None or has(name):
            section = config.get(name) or {}
            if isinstance(section, Mapping):
                merged.update(section)
    return merged


async def _list_nodes(kubeconfig: str | None) -> list[dict[str, Any]]:
    from kubernetes_asyncio import client
    from kubernetes_asyncio.client.exceptions import ApiException
    from kubernetes_asyncio.config import load_kube_config

    configuration = client.Configuration()
    await load_kube_config(
        config_file=kubeconfig, client_configuration=configuration, persist_config=False
    )
    async with client.ApiClient(configuration) as api:
        try:
            reply = await asyncio.wait_for(
                request_json(client.CoreV1Api(api).list_node), REQUEST_TIMEOUT
            )
        except ApiException as error:
            if error.status == 403:
                raise PermissionError(api_message(error)) from None
            raise
        items: list[dict[str, Any]] = reply.get("items") or []
        return items


async def prepull_report(config: Any, kubeconfig: str | None) -> tuple[str | None, list[str]]:
    """The image x node table (or ``None``) and the problems that kept it from being complete."""
    from kubernetes_asyncio.client.exceptions import ApiException
    from kubernetes_asyncio.config import ConfigException

    from ..checks import spawner_settings
    from ..commands import build_menu_once

    spawner = _spawner_section(config)
    try:
        nodes = await _list_nodes(kubeconfig)
    except PermissionError as error:
        return None, [
            f"prepull: {error}; bind the hub's service account to a ClusterRole with "
            f"{json.dumps(PREPULL_NODES_RULE)}"
        ]
    except (ApiException, ConfigException, OSError, TimeoutError) as error:
        return None, [f"prepull: cannot list nodes: {error}"]
    state = build_prepull_state(
        nodes, dict(spawner.get("node_selector") or {}), list(spawner.get("tolerations") or [])
    )
    try:
        menu = await build_menu_once(spawner_settings(config))
    except ConfigError as error:
        return None, [f"prepull: no menu: {error}"]
    except Exception as error:  # the image source's failure is the finding
        return None, [f"prepull: the image source did not answer: {error}"]
    return presence_table(prepull_targets(menu), state), []


def prepull_status(config: Any, args: argparse.Namespace) -> int:
    """Run ``prepull-status``; returns the exit code."""
    table, problems = asyncio.run(prepull_report(config, args.kubeconfig))
    if table is not None:
        print(table)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0
