"""CILogon authenticator providing the lsst_spawner identity contract.

Mapping (see ``docs/identity.md``):

- uid from the claim :attr:`~LSSTCILogonOAuthenticator.uid_claim` (default
  ``uidNumber``), gid from :attr:`~LSSTCILogonOAuthenticator.gid_claim`
  (default ``gidNumber``), as integers or strings of digits;
- groups from :attr:`~LSSTCILogonOAuthenticator.groups_claim` (default
  ``isMemberOf``): a list of ``{"name": ..., "id": ...}`` objects (a bare string
  is a group without id). Groups without an id are dropped, or given a
  synthetic gid (:mod:`lsst_spawner.auth.gids`), per
  :attr:`~LSSTCILogonOAuthenticator.groups_without_gid`;
- name and email from the ``name`` and ``email`` claims.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from oauthenticator.cilogon import CILogonOAuthenticator

from ..identity import MAX_ID
from .base import LSSTIdentityMixin, RawGroup
from .gids import synthetic_gid
from .names import UnsafeNameError, posix_group_name
from .traits import CILogonSettings, CILogonTraits

__all__ = ["LSSTCILogonOAuthenticator", "parse_id_claim"]

_DIGITS = re.compile(r"[0-9]{1,10}")


def parse_id_claim(value: object) -> int | None:
    """Return a numeric id claim as an int: an int, or a string of 1-10 ASCII digits.

    Anything else (missing, negative, a bool, ``"12a"``, ``"١٢"``) is ``None``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= MAX_ID else None
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        number = int(value)
        return number if number <= MAX_ID else None
    return None


class LSSTCILogonOAuthenticator(LSSTIdentityMixin, CILogonTraits, CILogonOAuthenticator):
    """CILogon login that provisions a UID, GID, groups, name and email from claims."""

    @property
    def cilogon_settings(self) -> CILogonSettings:
        """The checked settings, with CILogon's own (see :attr:`auth_settings`)."""
        settings = self.auth_settings
        assert isinstance(settings, CILogonSettings)
        return settings

    def _raw_groups(
        self, username: str, user_info: dict[str, Any], settings: CILogonSettings
    ) -> list[RawGroup]:
        raw = user_info.get(settings.groups_claim) or []
        if not isinstance(raw, list):
            self.log.warning("Ignoring claim %s of %r: not a list", settings.groups_claim, username)
            return []
        groups: list[RawGroup] = []
        for entry in raw:
            name: object
            gid_value: object
            if isinstance(entry, str):
                name, gid_value = entry, None  # a bare name: a group without id
            elif isinstance(entry, dict):
                name, gid_value = entry.get("name"), entry.get("id")
            else:
                self.log.warning(
                    "Ignoring %s entry of %r: %r", settings.groups_claim, username, entry
                )
                continue
            gid = parse_id_claim(gid_value)
            if gid is None:
                if gid_value is not None:
                    self.log.warning(
                        "Dropping group %r of %r: invalid id %r", name, username, gid_value
                    )
                    continue
                if settings.groups_without_gid == "drop" or not isinstance(name, str) or not name:
                    self.log.info("Dropping group %r of %r: it has no id", name, username)
                    continue
                gid = synthetic_gid(name, *settings.synthetic_gids)
            groups.append((name, gid, settings.groups_claim))
        return groups

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        """Read uid, gid and groups from the claims, apply the group rules, store the identity."""
        settings = self.cilogon_settings
        auth_model = await super().update_auth_model(auth_model)
        user_info = auth_model["auth_state"][self.user_auth_state_key]
        username = auth_model["name"]
        self.log.debug(
            "CILogon user %s: claims %s",
            username,
            sorted(str(key) for key in user_info),
        )
        self._check_denied(username, user_info, settings)
        raw_groups = self._raw_groups(username, user_info, settings)
        raw_uid = user_info.get(settings.uid_claim)
        uid = parse_id_claim(raw_uid) if raw_uid is not None else None
        if raw_uid is not None and uid is None:
            self.reject_login(
                username, f"claim {settings.uid_claim} holds an invalid uid {raw_uid!r}"
            )
        raw_gid = user_info.get(settings.gid_claim)
        gid = parse_id_claim(raw_gid) if raw_gid is not None else None
        if raw_gid is not None and gid is None:
            self.reject_login(
                username, f"claim {settings.gid_claim} holds an invalid gid {raw_gid!r}"
            )
        identity = self.build_identity(
            username=username,
            uid=uid,
            gid=gid,
            primary_group_name=None,
            groups=raw_groups,
            name=user_info.get("name"),
            email=user_info.get("email"),
        )
        return self.store_identity(auth_model, identity)

    def _claim_group_names(self, user_info: dict[str, Any], groups_claim: str) -> set[str]:
        """Every group name in the claim, with or without id, as given and as mapped."""
        raw = user_info.get(groups_claim)
        names: set[str] = set()
        for entry in raw if isinstance(raw, list) else []:
            name = entry.get("name") if isinstance(entry, dict) else entry
            if isinstance(name, str) and name:
                names.add(name)
                with contextlib.suppress(UnsafeNameError):
                    names.add(posix_group_name(name))
        return names

    def _check_denied(
        self, username: str, user_info: dict[str, Any], settings: CILogonSettings
    ) -> None:
        if not settings.denied_idp_groups:
            return
        names = self._claim_group_names(user_info, settings.groups_claim)
        hits = sorted(names & settings.denied_idp_groups)
        if hits:
            self.reject_login(username, f"members of the group {hits[0]!r} may not use this hub")

    async def check_allowed(self, username: str, auth_model: dict[str, Any]) -> bool:
        """Allow members of :attr:`allowed_idp_groups`, in addition to the upstream rules."""
        if await super().check_allowed(username, auth_model):
            return True
        settings = self.cilogon_settings
        if settings.allowed_idp_groups and auth_model:
            user_info = auth_model["auth_state"][self.user_auth_state_key]
            names = self._claim_group_names(user_info, settings.groups_claim)
            if names & settings.allowed_idp_groups:
                return True
            self.log.warning("User %r is in none of allowed_idp_groups", username)
        return False
