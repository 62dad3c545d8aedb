"""Helpers for sites testing their own configuration with the lsst_spawner test kit.

Load the site's ``jupyterhub_config.py`` the way JupyterHub does, then build a
real :class:`~lsst_spawner.LSSTSpawner` for a test user, pointed at the
``kube_api`` fixture's namespace; see ``docs/testing.md``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from traitlets.config import Config

from ...identity import Identity
from ...offline import OfflineHub, OfflineServer, OfflineUser
from ..oauth.identity import identity_for

__all__ = ["load_site_config", "make_site_spawner"]


def load_site_config(path: str | os.PathLike[str]) -> Config:
    """Load a JupyterHub config file as JupyterHub does (its snippets included)."""
    from ...cli import load_hub_config

    return load_hub_config(Path(path))


def make_site_spawner(
    config: Config,
    username: str,
    *,
    identity: Identity | None = None,
    options: dict[str, Any] | None = None,
    namespace: str | None = None,
    api_token: str = "site-test-api-token",  # noqa: S107 - a test value
) -> Any:
    """A real spawner of the configured class for ``username``, as the hub would build it.

    ``identity`` defaults to a made-up one (:func:`identity_for`); ``namespace``,
    when given, replaces the configured one (use the ``kube_api`` fixture's).
    The options count as a fresh request, so bad ones are rejected.
    """
    from kubespawner import clients

    from ...checks import resolve_class

    config = Config(config)
    if namespace is not None:
        config.LSSTSpawner.namespace = namespace
    hub = config.JupyterHub if config._has_section("JupyterHub") else Config()
    cls = resolve_class(hub.get("spawner_class") or "lsst", "spawner_class")
    identity = identity or identity_for(username)
    user = OfflineUser(username, {"identity": identity.to_dict()})
    clients.load_config.cache_clear()  # a new kubeconfig per test (kube_api fixture)
    spawner = cls(config=config, user=user, hub=OfflineHub())  # type: ignore[misc]
    spawner.server = OfflineServer(user)
    spawner.api_token = api_token
    spawner.user_options = dict(options or {})
    spawner.lab_options_fresh = True
    return spawner
