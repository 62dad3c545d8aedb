"""The work behind ``lsst-spawner menu`` and ``render-pod``, kept apart from argument parsing."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from traitlets.config import Config

from .checks import spawner_settings
from .config import ConfigError
from .offline import OfflineHub, OfflineServer, OfflineUser

__all__ = ["build_menu_once", "format_menu_text", "print_menu", "render_pod"]


async def build_menu_once(settings: Any) -> Any:
    """The menu the settings' image source gives now (one refresh, no background task)."""
    from .images.cache import MenuCache

    source = settings.make_image_source()
    try:
        cache = MenuCache(source, settings.image_menu_policy(), settings.image_cache_settings())
        return await cache.refresh()
    finally:
        close = getattr(source, "aclose", None)
        if close is not None:
            await close()


def format_menu_text(records: list[dict[str, Any]]) -> str:
    """A fixed-width table of menu records, one line per image."""
    header = ("CHOICE", "TAG", "KIND", "NAME", "DIGEST")
    rows = [
        (
            str(r["choice"]) + ("*" if r["recommended"] else ""),
            str(r["tag"]),
            str(r["kind"]),
            str(r["display_name"]),
            str(r["digest"] or "-"),
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row))
        for row in [header, *rows]
    ]
    lines.append(f"{len(rows)} image(s); * marks the recommended image")
    return "\n".join(line.rstrip() for line in lines)


def print_menu(config: Config, output_format: str) -> int:
    """Build the menu from the configured source, once, and print it."""
    from .images.cache import redact
    from .images.menu import menu_records

    settings = spawner_settings(config)
    try:
        menu = asyncio.run(build_menu_once(settings))
    except ConfigError:
        raise
    except Exception as error:
        raise ConfigError(f"the image source did not answer: {redact(str(error))}") from None
    records = menu_records(menu)
    if output_format == "json":
        print(json.dumps({"image_base": menu.image_base, "images": records}, indent=2))
    else:
        print(format_menu_text(records))
    return 0


#: Stands in for the hub API token in rendered Secrets.
RENDERED_API_TOKEN = "rendered-placeholder-api-token"  # noqa: S105 - not a secret


def _read_json(path: str | None, what: str) -> Any:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except OSError as error:
        raise ConfigError(f"cannot read {what} {path!r}: {error.strerror}") from None
    except ValueError as error:
        raise ConfigError(f"{what} {path!r} is not valid JSON: {error}") from None


async def _render(config: Config, user: OfflineUser, options: dict[str, Any]) -> list[Any]:
    import tempfile

    from tornado.web import HTTPError

    from .checks import resolve_class

    hub = config.JupyterHub if config._has_section("JupyterHub") else Config()
    cls = resolve_class(hub.get("spawner_class") or "lsst", "spawner_class")
    assert cls is not None
    with tempfile.TemporaryDirectory() as tmp, _offline_kubernetes_client(tmp):
        spawner = cls(config=config, user=user, hub=OfflineHub())
        spawner.server = OfflineServer(user)
        spawner.api_token = RENDERED_API_TOKEN
        spawner.user_options = options
        spawner.lab_options_fresh = True
        try:
            objects: list[Any] = await spawner.render_lab_objects()
        except HTTPError as error:
            raise ConfigError(f"rejected: {error.log_message}") from None
    return objects


@contextmanager
def _offline_kubernetes_client(directory: str) -> Iterator[None]:
    """Let KubeSpawner's constructor load a kubeconfig that points at nothing, then undo it.

    The constructor loads a kubeconfig and builds (idle) API clients; this one
    names a loopback port nothing listens on, and no request is ever made. The
    process-wide client configuration and KubeSpawner's cached loader are
    restored afterwards, so in-process callers (tests) are unaffected.
    """
    from kubernetes_asyncio.client import Configuration
    from kubernetes_asyncio.config import kube_config
    from kubespawner import clients

    path = os.path.join(directory, "kubeconfig")
    with open(path, "w", encoding="utf-8") as file:
        json.dump(_OFFLINE_KUBECONFIG, file)
    saved_location = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
    saved_default = Configuration.get_default_copy()
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = path
    clients.load_config.cache_clear()
    try:
        yield
    finally:
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = saved_location
        Configuration.set_default(saved_default)
        clients.load_config.cache_clear()


_OFFLINE_KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "offline", "cluster": {"server": "http://127.0.0.1:9"}}],
    "users": [{"name": "offline", "user": {}}],
    "contexts": [{"name": "offline", "context": {"cluster": "offline", "user": "offline"}}],
    "current-context": "offline",
}


def render_pod(config: Config, args: argparse.Namespace) -> int:
    """Print every object the spawner would create for the user, without contacting Kubernetes."""
    import sys

    import yaml

    spawner_settings(config)  # refuse a faulty configuration first, with its own message
    auth_state = _read_json(args.auth_state, "auth state file")
    if auth_state is None:
        from .auth.example import example_identity

        auth_state = {"identity": example_identity(args.user).to_dict()}
        print(
            f"lsst-spawner: no --auth-state given; using an example identity for {args.user}",
            file=sys.stderr,
        )
    options = _read_json(args.options, "options file") or {}
    if not isinstance(options, dict):
        raise ConfigError("the options file must hold a JSON object (user_options)")
    user = OfflineUser(args.user, auth_state)
    objects = asyncio.run(_render(config, user, options))
    if args.format == "json":
        print(json.dumps(objects, indent=2, sort_keys=True))
    else:
        print(yaml.safe_dump_all(objects, sort_keys=True), end="")
    return 0
