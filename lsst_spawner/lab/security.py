"""The lab's security context and identity environment, from the user's identity."""

from __future__ import annotations

from logging import Logger
from typing import Any, Protocol

from ..identity import Identity
from .errors import LabSpecError

__all__ = [
    "MAX_GROUPS_LIMIT",
    "build_container_security_context",
    "build_identity_env",
    "build_pod_security_context",
    "check_lab_identity",
    "drop_system_groups",
]

#: Upper bound for ``LSSTSpawner.lab_max_groups``. Linux refuses to exec a
#: program whose single environment string exceeds 128 KiB, and each
#: ``EXTERNAL_GROUPS`` entry is at most 44 characters (32-character name,
#: ``:``, 10-digit gid, ``,``): 2,048 groups stay under 90 KiB.
MAX_GROUPS_LIMIT = 2048


def check_lab_identity(
    identity: Identity, *, minimum_uid: int, max_groups: int, minimum_gid: int | None = None
) -> None:
    """Reject identities that must not run a lab, naming the field and the rule.

    uid below ``minimum_uid`` and primary gid below ``minimum_gid`` (default:
    ``minimum_uid``; 0 is root, and the floors are never below 1), a
    supplementary group gid 0 (the root group), or more than ``max_groups``
    groups.
    """
    if identity.uid < minimum_uid:
        raise LabSpecError(
            f"uid {identity.uid} is below LSSTSpawner.lab_minimum_uid ({minimum_uid}); "
            "labs never run as root or as a system account"
        )
    gid_floor, gid_trait = (
        (minimum_uid, "lab_minimum_uid")
        if minimum_gid is None
        else (minimum_gid, "lab_minimum_gid")
    )
    if identity.gid < gid_floor:
        raise LabSpecError(
            f"gid {identity.gid} is below LSSTSpawner.{gid_trait} ({gid_floor}); "
            "labs never run with root's or a system account's primary group"
        )
    for index, group in enumerate(identity.groups):
        if group.gid == 0:
            raise LabSpecError(
                f"groups[{index}] {group.name!r} has gid 0 (the root group), which a lab must "
                "never hold"
            )
    if len(identity.groups) > max_groups:
        raise LabSpecError(
            f"the user is in {len(identity.groups)} groups, more than LSSTSpawner.lab_max_groups "
            f"({max_groups}); raise the limit (at most {MAX_GROUPS_LIMIT}) or reduce the groups"
        )


class _GroupFloor(Protocol):
    @property
    def minimum_gid(self) -> int: ...
    @property
    def allowed_system_gids(self) -> frozenset[int]: ...


def drop_system_groups(identity: Identity, settings: _GroupFloor, log: Logger) -> Identity:
    """``identity`` without supplementary groups below ``settings.minimum_gid``, logged.

    Gids in ``settings.allowed_system_gids`` are kept: system groups (``tty``,
    ``disk``, ``docker``, ...) would give the lab's user their rights on any
    volume or device that shares the gid.
    """
    # gid 0 is kept here so that check_lab_identity refuses it: root's group is never
    # a system group to drop quietly, it is a broken or hostile identity.
    kept, dropped = identity.without_groups_below(
        settings.minimum_gid, settings.allowed_system_gids | {0}
    )
    if dropped:
        log.warning(
            "Dropping group(s) %s of %s from the lab: gid below LSSTSpawner.lab_minimum_gid (%d) "
            "and not in LSSTSpawner.lab_allowed_system_gids",
            ", ".join(f"{g.name} ({g.gid})" for g in dropped),
            identity.username,
            settings.minimum_gid,
        )
    return kept


def build_pod_security_context(identity: Identity, fs_group: int | None) -> dict[str, Any]:
    """Return the pod ``securityContext``: the user's ids, groups, non-root, seccomp."""
    context: dict[str, Any] = {
        "runAsUser": identity.uid,
        "runAsGroup": identity.gid,
        "runAsNonRoot": True,
        "supplementalGroups": identity.supplemental_gids,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if fs_group is not None:
        context["fsGroup"] = fs_group
    return context


def build_container_security_context(
    identity: Identity, *, read_only_root: bool = True
) -> dict[str, Any]:
    """Return the lab container's ``securityContext``: no privilege, no capabilities.

    With ``read_only_root`` its root filesystem is read-only (the lab writes to its
    volumes: the home, the writable paths' emptyDirs, the runtime directory).
    """
    context: dict[str, Any] = {
        "runAsUser": identity.uid,
        "runAsGroup": identity.gid,
        "runAsNonRoot": True,
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if read_only_root:
        context["readOnlyRootFilesystem"] = True
    return context


def build_identity_env(identity: Identity) -> dict[str, str]:
    """Return the identity environment variables of the lab.

    ``EXTERNAL_GROUPS`` is ``name:gid,name:gid,...``; group names cannot contain
    ``:`` or ``,`` (the identity contract rejects them), so the list parses back
    unambiguously. Git author and committer fall back to the username and to no
    email when the identity has none.
    """
    name = _one_line(identity.name) or identity.username
    env = {
        "EXTERNAL_UID": str(identity.uid),
        "EXTERNAL_GID": str(identity.gid),
        "EXTERNAL_GROUPS": ",".join(f"{g.name}:{g.gid}" for g in identity.groups),
        "GIT_AUTHOR_NAME": name,
        "GIT_COMMITTER_NAME": name,
    }
    if identity.email:
        env["GIT_AUTHOR_EMAIL"] = identity.email
        env["GIT_COMMITTER_EMAIL"] = identity.email
    return env


def _one_line(value: str | None) -> str:
    # A display name is free text; keep it printable on one line for git.
    if not value:
        return ""
    return " ".join("".join(c if c.isprintable() else " " for c in value).split())[:256]
