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
from traitlets import Enum, Int, Set, Unicode

from ..config import ConfigProblem
from ..identity import MAX_ID
from .base import LSSTIdentityMixin, RawGroup
from .gids import DEFAULT_SYNTHETIC_GID_MAX, DEFAULT_SYNTHETIC_GID_MIN, synthetic_gid
from .names import UnsafeNameError, posix_group_name

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


class LSSTCILogonOAuthenticator(LSSTIdentityMixin, CILogonOAuthenticator):
    """CILogon login that provisions a UID, GID, groups, name and email from claims."""

    uid_claim = Unicode(
        "uidNumber", config=True, help="Userinfo claim holding the user's numeric uid."
    )

    gid_claim = Unicode(
        "gidNumber", config=True, help="Userinfo claim holding the user's primary numeric gid."
    )

    groups_claim = Unicode(
        "isMemberOf",
        config=True,
        help="Userinfo claim listing the user's groups as objects with 'name' and 'id'.",
    )

    groups_without_gid = Enum(
        ["drop", "synthetic"],
        default_value="drop",
        config=True,
        help=(
            "What to do with a group that has no id: 'drop' it (logged), or give it a "
            "synthetic gid "
            "hashed from its name into synthetic_gid_min..synthetic_gid_max."
        ),
    )

    synthetic_gid_min = Int(
        DEFAULT_SYNTHETIC_GID_MIN,
        config=True,
        help="First gid of the synthetic gid range. Keep the range clear of real gids.",
    )

    synthetic_gid_max = Int(
        DEFAULT_SYNTHETIC_GID_MAX,
        config=True,
        help="Last gid (inclusive) of the synthetic gid range.",
    )

    allowed_idp_groups = Set(
        Unicode(),
        config=True,
        help=(
            "Allow members of these groups, matched against the provider's group name or its "
            "POSIX-mapped name. Adds to the other allow rules."
        ),
    ).tag(allow_config=True)

    denied_idp_groups = Set(
        Unicode(),
        config=True,
        help=(
            "Refuse members of these groups (provider name or POSIX-mapped name), with a message "
            "naming the group. Checked at login and every refresh; wins over any allow rule."
        ),
    )

    def config_problems(self) -> list[ConfigProblem]:
        problems = super().config_problems()
        low, high = self.synthetic_gid_min, self.synthetic_gid_max
        if not 1 <= low <= high <= MAX_ID:
            problems.append(
                ConfigProblem(
                    self.trait_where("synthetic_gid_min"),
                    f"the synthetic gid range {low}..{high} must be increasing "
                    f"and within 1..{MAX_ID}",
                )
            )
        elif low < self.min_gid:
            problems.append(
                ConfigProblem(
                    self.trait_where("synthetic_gid_min"),
                    f"{low} is below min_gid ({self.min_gid})",
                )
            )
        for trait in ("uid_claim", "gid_claim", "groups_claim"):
            if not getattr(self, trait):
                problems.append(ConfigProblem(self.trait_where(trait), "must name a claim"))
        overlap = self.allowed_idp_groups & self.denied_idp_groups
        if overlap:
            problems.append(
                ConfigProblem(
                    self.trait_where("denied_idp_groups"),
                    f"also allowed by allowed_idp_groups: {sorted(overlap)}",
                )
            )
        return problems

    def _raw_groups(self, username: str, user_info: dict[str, Any]) -> list[RawGroup]:
        raw = user_info.get(self.groups_claim) or []
        if not isinstance(raw, list):
            self.log.warning("Ignoring claim %s of %r: not a list", self.groups_claim, username)
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
                self.log.warning("Ignoring %s entry of %r: %r", self.groups_claim, username, entry)
                continue
            gid = parse_id_claim(gid_value)
            if gid is None:
                if gid_value is not None:
                    self.log.warning(
                        "Dropping group %r of %r: invalid id %r", name, username, gid_value
                    )
                    continue
                if self.groups_without_gid == "drop" or not isinstance(name, str) or not name:
                    self.log.info("Dropping group %r of %r: it has no id", name, username)
                    continue
                gid = synthetic_gid(name, self.synthetic_gid_min, self.synthetic_gid_max)
            groups.append((name, gid, self.groups_claim))
        return groups

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        """Read uid, gid and groups from the claims, apply the group rules, store the identity."""
        auth_model = await super().update_auth_model(auth_model)
        user_info = auth_model["auth_state"][self.user_auth_state_key]
        username = auth_model["name"]
        self.log.debug(
            "CILogon user %s: claims %s",
            username,
            sorted(str(key) for key in user_info),
        )
        self._check_denied(username, user_info)
        raw_groups = self._raw_groups(username, user_info)
        raw_uid = user_info.get(self.uid_claim)
        uid = parse_id_claim(raw_uid) if raw_uid is not None else None
        if raw_uid is not None and uid is None:
            self.reject_login(username, f"claim {self.uid_claim} holds an invalid uid {raw_uid!r}")
        raw_gid = user_info.get(self.gid_claim)
        gid = parse_id_claim(raw_gid) if raw_gid is not None else None
        if raw_gid is not None and gid is None:
            self.reject_login(username, f"claim {self.gid_claim} holds an invalid gid {raw_gid!r}")
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

    def _claim_group_names(self, user_info: dict[str, Any]) -> set[str]:
        """Every group name in the claim, with or without id, as given and as mapped."""
        raw = user_info.get(self.groups_claim)
        names: set[str] = set()
        for entry in raw if isinstance(raw, list) else []:
            name = entry.get("name") if isinstance(entry, dict) else entry
            if isinstance(name, str) and name:
                names.add(name)
                with contextlib.suppress(UnsafeNameError):
                    names.add(posix_group_name(name))
        return names

    def _check_denied(self, username: str, user_info: dict[str, Any]) -> None:
        if not self.denied_idp_groups:
            return
        hits = sorted(self._claim_group_names(user_info) & self.denied_idp_groups)
        if hits:
            self.reject_login(username, f"members of the group {hits[0]!r} may not use this hub")

    async def check_allowed(self, username: str, auth_model: dict[str, Any]) -> bool:
        """Allow members of :attr:`allowed_idp_groups`, in addition to the upstream rules."""
        if await super().check_allowed(username, auth_model):
            return True
        if self.allowed_idp_groups and auth_model:
            user_info = auth_model["auth_state"][self.user_auth_state_key]
            if self._claim_group_names(user_info) & self.allowed_idp_groups:
                return True
            self.log.warning("User %r is in none of allowed_idp_groups", username)
        return False
