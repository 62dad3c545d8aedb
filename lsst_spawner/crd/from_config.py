"""``lsst-spawner template-from-config``: a hub configuration as a LabTemplate.

The settings come from the same offline settings object ``check-config`` reads;
the pod template is KubeSpawner's pod, built by a real (offline) LSSTSpawner for
the stand-in user and server of :mod:`lsst_spawner.crd.template`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from traitlets.config import Config

from ..checks import resolve_class, spawner_settings
from ..config import ConfigError
from ..offline import OfflineHub, OfflineServer, OfflineUser
from .template import SENTINEL_SERVER, SENTINEL_USER, template_from_settings

__all__ = [
    "add_template_arguments",
    "base_pod_for",
    "offline_spawner",
    "print_template",
    "template_from_config",
    "template_lab_menu",
]

#: Stands in for the API token while KubeSpawner's pod is built; never written out.
_PLACEHOLDER_TOKEN = "template-placeholder-api-token"  # noqa: S105 - not a secret


@contextmanager
def offline_spawner(
    config: Config, username: str, servername: str = "", auth_state: Any = None
) -> Iterator[Any]:
    """A real LSSTSpawner (the configured class) for one server, that contacts nothing."""
    from ..commands import _offline_kubernetes_client

    hub = config.JupyterHub if config._has_section("JupyterHub") else Config()
    cls = resolve_class(hub.get("spawner_class") or "lsst", "spawner_class")
    if cls is None or not hasattr(cls, "base_pod_manifest"):
        raise ConfigError(f"JupyterHub.spawner_class is {cls!r}, not LSSTSpawner")
    if servername:
        # JupyterHub reads the server name from its database row; this stands in for it.
        cls = type(cls.__name__, (cls,), {"name": property(lambda self: servername)})
    from kubespawner import clients

    user = OfflineUser(username, auth_state)
    cached = set(clients._client_cache)
    try:
        with tempfile.TemporaryDirectory() as tmp, _offline_kubernetes_client(tmp):
            spawner = cls(config=config, user=user, hub=OfflineHub())
            spawner.server = OfflineServer(user)
            spawner.api_token = _PLACEHOLDER_TOKEN
            yield spawner
    finally:
        # KubeSpawner shares API clients per event loop: the offline one must not be
        # handed to spawners made later in the same loop (an in-process caller's).
        for key in set(clients._client_cache) - cached:
            clients._client_cache.pop(key, None)


async def base_pod_for(config: Config, username: str, servername: str) -> dict[str, Any]:
    """KubeSpawner's pod (before the lab builders) for one server, built offline."""
    with offline_spawner(config, username, servername) as spawner:
        pod: dict[str, Any] = await spawner.base_pod_manifest()
    return pod


def template_from_config(
    config: Config, *, name: str = "lab", namespace: str | None = None
) -> dict[str, Any]:
    """The LabTemplate of a hub configuration (refused with its problems when faulty)."""
    settings = spawner_settings(config)
    pod = asyncio.run(base_pod_for(config, SENTINEL_USER, SENTINEL_SERVER))
    template = template_from_settings(settings, pod, name=name, namespace=namespace)
    lab_menu = template_lab_menu(config)
    if lab_menu is not None:
        template["spec"]["labMenu"] = lab_menu
    return template


def template_lab_menu(config: Config) -> dict[str, Any] | None:
    """The template's ``spec.labMenu`` when ``LabMenu.enabled``: the node groups and the check
    interval, never ``LabMenu.db_url`` (it may hold a password: the operator reads it from a
    Secret); ``None`` when the site has no lab menu."""
    from ..menu.traits import lab_menu_from_config

    menu = lab_menu_from_config(config)
    if not menu.enabled:
        return None
    return {
        "nodeGroups": [dict(group) for group in menu.node_groups],
        "revisionCheckInterval": float(menu.revision_check_interval),
    }


def add_template_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="lab", help="the LabTemplate's name (default: lab)")
    parser.add_argument("--namespace", default=None, help="the LabTemplate's namespace")


def print_template(config: Config, args: argparse.Namespace) -> int:
    import yaml

    template = template_from_config(config, name=args.name, namespace=args.namespace)
    sys.stdout.write(yaml.safe_dump(template, sort_keys=False))
    return 0
