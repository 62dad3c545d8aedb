"""The lab's init containers: a list, each with an image, a command, mounts and a privilege.

The default list has one entry, ``init-home``, the container that creates the
user's home directory (as root, with only the ``CHOWN``, ``DAC_OVERRIDE`` and
``FOWNER`` capabilities). :func:`init_container_problems` is the one rule on
privileges: check-config applies it to ``LSSTSpawner.lab_init_containers`` and
every spawn applies it again (:func:`build_init_containers`), so a privileged
container runs only where ``LSSTSpawner.lab_init_allow_privileged`` allows it.

Privilege levels:

- ``user``: the user's uid and gid, no capabilities, no privilege escalation;
- ``root``: uid 0 with only the listed ``capabilities`` added (default the
  three above), no privilege escalation;
- ``privileged``: a privileged container; so is a ``root`` one adding a
  capability in :data:`PRIVILEGED_CAPABILITIES`. Both need the site trait.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._version import __version__
from ..identity import Identity
from .errors import LabSpecError
from .security import build_container_security_context
from .volumes import SiteMount

__all__ = [
    "DEFAULT_INIT_IMAGE",
    "HOME_CAPABILITIES",
    "INIT_CONTAINER_NAME",
    "PRIVILEGED_CAPABILITIES",
    "PRIVILEGES",
    "InitContainer",
    "InitSettings",
    "build_init_containers",
    "init_container_problems",
    "resolve_init_image",
]

#: Name of the home-directory init container, the default list's first entry.
INIT_CONTAINER_NAME = "init-home"

#: Default init image; ``{version}`` becomes the installed lsst_spawner version,
#: so upgrading the hub upgrades the init container with it.
DEFAULT_INIT_IMAGE = "ghcr.io/lsst-sqre/lsst-spawner-init:{version}"

#: What the home-directory container needs: create the home and give it to the user.
HOME_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER")
PRIVILEGES = ("user", "root", "privileged")
#: Capabilities that make a container as good as privileged (host, kernel, other processes).
PRIVILEGED_CAPABILITIES = frozenset(
    {
        "ALL",
        "SYS_ADMIN",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_PTRACE",
        "SYS_BOOT",
        "SYS_TIME",
        "NET_ADMIN",
        "DAC_READ_SEARCH",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "BPF",
        "PERFMON",
    }
)
_CAPABILITY = re.compile(r"[A-Z][A-Z_]*")


@dataclass(frozen=True)
class InitContainer:
    """One init container of the lab."""

    name: str = INIT_CONTAINER_NAME
    image: str = DEFAULT_INIT_IMAGE
    command: tuple[str, ...] = ()
    mounts: tuple[SiteMount, ...] = ()
    privilege: str = "root"
    capabilities: tuple[str, ...] = HOME_CAPABILITIES


@dataclass(frozen=True)
class InitSettings:
    """The init containers, in order, when enabled."""

    enabled: bool = False
    containers: tuple[InitContainer, ...] = field(default_factory=lambda: (InitContainer(),))
    #: ``LSSTSpawner.lab_init_allow_privileged``.
    allow_privileged: bool = False


def resolve_init_image(image: str, version: str = __version__) -> str:
    """Return ``image`` with ``{version}`` replaced by the installed lsst_spawner version."""
    return image.replace("{version}", version)


def init_container_problems(
    container: InitContainer, *, allow_privileged: bool, where: str
) -> list[tuple[str, str]]:
    """``(where, message)`` for each way ``container`` breaks the privilege rules."""
    problems: list[tuple[str, str]] = []
    if container.privilege not in PRIVILEGES:
        problems.append(
            (f"{where}.privilege", f"{container.privilege!r} is not one of {', '.join(PRIVILEGES)}")
        )
        return problems
    for cap in container.capabilities:
        if not _CAPABILITY.fullmatch(cap) or cap.startswith("CAP_"):
            problems.append(
                (f"{where}.capabilities", f"{cap!r} is not a capability name such as 'CHOWN'")
            )
    if container.capabilities and container.privilege != "root":
        problems.append(
            (
                f"{where}.capabilities",
                f"only a 'root' container adds capabilities; this one is {container.privilege!r}",
            )
        )
    strong = sorted(set(container.capabilities) & PRIVILEGED_CAPABILITIES)
    if not allow_privileged and (container.privilege == "privileged" or strong):
        what = "a privileged container" if not strong else f"capabilities {strong}"
        problems.append(
            (
                f"{where}.privilege" if not strong else f"{where}.capabilities",
                f"{what} needs LSSTSpawner.lab_init_allow_privileged = True",
            )
        )
    return problems


def _security_context(container: InitContainer, identity: Identity) -> dict[str, Any]:
    if container.privilege == "user":  # as the lab itself, its root filesystem writable
        return build_container_security_context(identity, read_only_root=False)
    if container.privilege == "privileged":
        return {"runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": False, "privileged": True}
    return {
        "runAsUser": 0,
        "runAsGroup": 0,
        "runAsNonRoot": False,
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": list(container.capabilities)},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def build_init_containers(
    settings: InitSettings,
    identity: Identity,
    *,
    home: str,
    mounts: Sequence[Sequence[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Return the init containers, in order (none when disabled).

    ``mounts[i]`` are the volume mounts of the ``i``-th container, already
    chosen for the user's groups. Each container learns what to do from env:
    ``HOME_DIRECTORY``, ``EXTERNAL_UID`` and ``EXTERNAL_GID``. Raises
    :class:`LabSpecError` if one breaks the privilege rules.
    """
    if not settings.enabled:
        return []
    result = []
    for index, container in enumerate(settings.containers):
        where = f"LSSTSpawner.lab_init_containers[{index}]"
        problems = init_container_problems(
            container, allow_privileged=settings.allow_privileged, where=where
        )
        if problems:
            raise LabSpecError("; ".join(f"{w}: {m}" for w, m in problems))
        body: dict[str, Any] = {
            "name": container.name,
            "image": resolve_init_image(container.image),
            "env": [
                {"name": "HOME_DIRECTORY", "value": home},
                {"name": "EXTERNAL_UID", "value": str(identity.uid)},
                {"name": "EXTERNAL_GID", "value": str(identity.gid)},
            ],
            "securityContext": _security_context(container, identity),
            "volumeMounts": list(mounts[index]),
            "resources": {
                "limits": {"cpu": "500m", "memory": str(256 * 2**20)},
                "requests": {"cpu": "100m", "memory": str(64 * 2**20)},
            },
        }
        if container.command:
            body["command"] = list(container.command)
        result.append(body)
    return result
