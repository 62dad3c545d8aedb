"""JupyterHub groups and admin rights from the identity's groups.

OAuthenticator (17+) already does the work when ``manage_groups`` is True: after
``update_auth_model`` it calls :meth:`get_user_groups`, puts the result in the
auth model's ``groups`` (which JupyterHub syncs into its database at every login
and refresh) and sets ``admin`` from ``admin_groups``. :class:`GroupSyncMixin`
only supplies the groups: those of ``auth_state["identity"]``, under the
POSIX-safe names the lab's ``/etc/group`` uses, so a JupyterHub group, a role
naming it and a group-scoped lab mount all speak of the same name.

The user-private group (named after the user) is not synced: every user has one,
and a JupyterHub group per user grants nothing a user scope cannot.

``known_groups`` (:class:`~lsst_spawner.auth.traits.IdentityTraits`) closes the set
of groups: groups outside it are dropped from the identity (the primary group never is), which lets
``check-config`` flag a lab mount or an ``admin_groups`` entry that names a group
no user can have.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from ..identity import AUTH_STATE_KEY, GROUP_NAME_PATTERN, Group
from .names import UnsafeNameError, posix_group_name

__all__ = ["GroupSyncMixin", "group_name_problem", "jupyterhub_groups", "keep_known_groups"]


def group_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a synced group, or None when it can."""
    if isinstance(name, str) and GROUP_NAME_PATTERN.fullmatch(name):
        return None
    hint = ""
    with contextlib.suppress(UnsafeNameError):
        hint = f" (the provider's {name!r} is synced as {posix_group_name(name)!r})"
    return (
        f"{name!r} is not a POSIX group name; groups are synced under their POSIX-safe "
        f"names: 1 to 32 characters [a-z0-9_-], starting with a letter or '_'{hint}"
    )


def jupyterhub_groups(identity: Mapping[str, Any]) -> set[str]:
    """The JupyterHub group names of a stored identity: its groups but the user-private one."""
    username = identity.get("username")
    return {
        str(group["name"])
        for group in identity.get("groups") or []
        if isinstance(group, Mapping) and group.get("name") != username
    }


def keep_known_groups(
    groups: Iterable[Group],
    known: Collection[str],
    primary_gid: int,
    username: str,
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> list[Group]:
    """Drop (and log) groups outside ``known``; the primary group always stays."""
    kept = []
    for group in groups:
        if group.gid == primary_gid or group.name in known:
            kept.append(group)
        else:
            log.info("Dropping group %r of %r: not among known_groups", group.name, username)
    return kept


class GroupSyncMixin:
    """Supplies OAuthenticator's ``get_user_groups`` from the identity.

    Its trait (``known_groups``) and the checks of group names are
    :class:`~lsst_spawner.auth.traits.IdentityTraits`'.
    """

    def _requires_manage_groups(self, change: Any = None) -> None:
        """Replaces OAuthenticator's observer of the same name, which is not registered.

        Upstream raises as soon as ``admin_groups`` is set before ``manage_groups``,
        so the outcome depended on the order ``check-config`` sets values in.
        :func:`lsst_spawner.auth.traits.to_settings` reports the same rule, order-free,
        with the trait named.
        """

    def config_time_groups(self) -> frozenset[str] | None:
        """The groups known at configuration time (``known_groups``), or None if open."""
        known = getattr(self, "known_groups", None)
        return frozenset(known) if known else None

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        """The user's JupyterHub groups: the identity's groups under their POSIX-safe names.

        Called by OAuthenticator after ``update_auth_model`` when ``manage_groups``
        is True, at login and at every refresh. A site that sets
        ``auth_state_groups_key`` gets OAuthenticator's own lookup instead.
        """
        if getattr(self, "auth_state_groups_key", None):
            groups: set[str] = await super().get_user_groups(auth_state)  # type: ignore[misc]
            return groups
        return jupyterhub_groups(auth_state.get(AUTH_STATE_KEY) or {})
