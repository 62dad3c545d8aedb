"""``lsst-spawner menu-editor``: run the editor as the JupyterHub service the hub starts.

JupyterHub passes the service's URL, prefix and API token in the environment
(``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_SERVICE_PREFIX``,
``JUPYTERHUB_API_TOKEN``). The menu database is opened (and migrated) from
``LabMenu`` in the same config file as the hub's, and seeded from the
traitlets menu when empty.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from typing import Any
from urllib.parse import urlparse

from traitlets.config import Config

from ..config import ConfigError

__all__ = ["run_menu_editor"]


def _image_repository(settings: Any) -> str | None:
    if getattr(settings, "image_source", None) == "static":
        base: str = settings.static_image_base
        return base
    host, repository = (
        getattr(settings, "registry_host", ""),
        getattr(settings, "registry_repository", ""),
    )
    return f"{host}/{repository}" if host and repository else None


def _lab_namespace(config: Config) -> str:
    """The labs' namespace: the spawner's, else the pod's own (in a cluster), else default."""
    for section in ("LSSTSpawner", "KubeSpawner"):
        if config._has_section(section) and config[section].get("namespace"):
            return str(config[section]["namespace"])
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    if os.path.exists(path):
        with open(path, encoding="utf-8") as file:
            return file.read().strip()
    return "default"


async def _serve(config: Config) -> None:
    from jupyterhub.services.auth import HubOAuth

    from ..checks import spawner_settings
    from ..menu.form_check import SpawnForms
    from ..menu.image_check import save_checker
    from ..menu.image_sizes import ImageSizes, UnknownImageSizes
    from ..menu.seed import seed_menu_from_settings
    from ..menu.traits import lab_menu_from_config
    from .app import EditorContext, make_editor_app

    url = os.environ.get("JUPYTERHUB_SERVICE_URL")
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if not url or not prefix:
        raise ConfigError(
            "menu-editor runs as a JupyterHub service: JUPYTERHUB_SERVICE_URL and "
            "JUPYTERHUB_SERVICE_PREFIX are not set (add it to c.JupyterHub.services)"
        )
    menu_settings = lab_menu_from_config(config)
    store = menu_settings.open_store()
    settings: Any = spawner_settings(config)
    store.seed(seed_menu_from_settings(settings))
    # Offered images are checked against the registry (not a static source's list), and
    # their sizes read from it (images_checked_in_registry).
    source, _ = save_checker(settings)
    node_groups = menu_settings.parsed_node_groups()[0]
    sizes: ImageSizes | UnknownImageSizes = (
        ImageSizes(source, menu_settings.image_platform)
        if source is not None
        else UnknownImageSizes('the image source is a static list (image_source "static")')
    )
    forms = SpawnForms(settings, node_groups)
    context = EditorContext(
        store=store,
        prefix=prefix,
        node_groups=node_groups,
        image_repository=source.image_base if source is not None else _image_repository(settings),
        image_source=source,
        preview=forms,
        image_sizes=sizes,
        lab_namespace=_lab_namespace(config),
    )
    hub_auth = HubOAuth(cache_max_age=60)
    app = make_editor_app(context, hub_auth, secrets.token_bytes(32))
    address = urlparse(url)
    app.listen(address.port or 80, address.hostname or "127.0.0.1")
    try:
        await asyncio.Event().wait()
    finally:
        store.close()
        forms.close()
        await sizes.close()
        close = getattr(source, "aclose", None)
        if close is not None:
            await close()


def run_menu_editor(config: Config) -> int:
    """Serve until stopped (the hub stops its managed services with SIGTERM)."""
    import logging

    # Access and error lines go to the hub's log, where a managed service's output goes.
    logging.basicConfig(
        level=logging.INFO, format="[%(levelname)1.1s %(asctime)s menu-editor] %(message)s"
    )
    asyncio.run(_serve(config))
    return 0
