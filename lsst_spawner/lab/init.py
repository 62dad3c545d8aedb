"""The optional init container that prepares the user's home directory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._version import __version__
from ..identity import Identity

__all__ = [
    "DEFAULT_INIT_IMAGE",
    "INIT_CONTAINER_NAME",
    "InitSettings",
    "build_init_container",
    "resolve_init_image",
]

#: Name of the init container (KubeSpawner.init_containers may not use it).
INIT_CONTAINER_NAME = "init-home"

#: Default init image; ``{version}`` becomes the installed lsst_spawner version,
#: so upgrading the hub upgrades the init container with it.
DEFAULT_INIT_IMAGE = "ghcr.io/lsst-sqre/lsst-spawner-init:{version}"


@dataclass(frozen=True)
class InitSettings:
    """The init container, if enabled."""

    enabled: bool = False
    image: str = DEFAULT_INIT_IMAGE
    command: tuple[str, ...] = ()
    #: Capabilities the init container keeps (it runs as root to create and chown the home).
    capabilities: tuple[str, ...] = ("CHOWN", "DAC_OVERRIDE", "FOWNER")


def resolve_init_image(image: str, version: str = __version__) -> str:
    """Return ``image`` with ``{version}`` replaced by the installed lsst_spawner version."""
    return image.replace("{version}", version)


def build_init_container(
    settings: InitSettings,
    identity: Identity,
    *,
    home: str,
    mounts: Sequence[dict[str, Any]],
) -> dict[str, Any] | None:
    """Return the home-directory init container, or None when it is disabled.

    It runs as root with only ``settings.capabilities`` (enough to create the
    home directory and give it to the user) and learns what to do from env:
    ``HOME_DIRECTORY``, ``EXTERNAL_UID`` and ``EXTERNAL_GID``.
    """
    if not settings.enabled:
        return None
    container: dict[str, Any] = {
        "name": INIT_CONTAINER_NAME,
        "image": resolve_init_image(settings.image),
        "env": [
            {"name": "HOME_DIRECTORY", "value": home},
            {"name": "EXTERNAL_UID", "value": str(identity.uid)},
            {"name": "EXTERNAL_GID", "value": str(identity.gid)},
        ],
        "securityContext": {
            "runAsUser": 0,
            "runAsGroup": 0,
            "runAsNonRoot": False,
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": list(settings.capabilities)},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": list(mounts),
        "resources": {
            "limits": {"cpu": "500m", "memory": str(256 * 2**20)},
            "requests": {"cpu": "100m", "memory": str(64 * 2**20)},
        },
    }
    if settings.command:
        container["command"] = list(settings.command)
    return container
