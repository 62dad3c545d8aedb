"""Behaviour shared by the lsst_spawner authenticators: identity building, rejection, refresh.

:class:`LSSTIdentityMixin` sits in front of an OAuthenticator class::

    class LSSTGitHubOAuthenticator(LSSTIdentityMixin, GitHubOAuthenticator): ...

The provider class collects raw facts (uid, gid, groups, name, email) in its
``update_auth_model`` and hands them to :meth:`LSSTIdentityMixin.store_identity`,
which maps group names, applies the :class:`~lsst_spawner.identity.IdentityPolicy`
and stores ``auth_state["identity"]``, or rejects the login with a 403 whose
message the hub shows on its error page.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, NoReturn

from tornado import web
from tornado.httpclient import HTTPClientError

from ..config import ConfigError, problems_as_lines
from ..identity import (
    AUTH_STATE_KEY,
    MAX_ID,
    USERNAME_PATTERN,
    Identity,
    IdentityError,
    IdentityPolicy,
    clean_display_name,
    is_valid_email,
)
from .groups import GroupSyncMixin, keep_known_groups
from .names import GroupCandidate, UnsafeNameError, posix_group_name, resolve_groups
from .traits import IdentitySettings, IdentityTraits, to_settings

__all__ = ["CHECKED_AT_KEY", "IdentityRejected", "LSSTIdentityMixin", "RawGroup"]

#: Key in ``auth_state`` of the time (Unix seconds) the identity was last built from the provider.
CHECKED_AT_KEY = "identity_checked_at"


class IdentityRejected(web.HTTPError):
    """A login refused by an identity rule; the hub shows the message on its error page."""

    def __init__(self, message: str) -> None:
        # "%s" keeps a '%' in a provider's name from being read as a format.
        super().__init__(403, "%s", message)
        self.message = message


RawGroup = tuple[object, object, str]
"""A group as the provider gave it: (name, gid or None, source label)."""


class LSSTIdentityMixin(GroupSyncMixin, IdentityTraits):
    """Identity logic common to the lsst_spawner authenticators (traits: :mod:`.traits`)."""

    # --- configuration -------------------------------------------------------

    @property
    def auth_settings(self) -> IdentitySettings:
        """The checked settings (:func:`~lsst_spawner.auth.traits.to_settings`); a
        :class:`~lsst_spawner.config.ConfigError` listing the problems if there are any."""
        settings, problems = to_settings(self)
        if settings is None:
            raise ConfigError("; ".join(problems_as_lines(problems)))
        return settings

    def check_allow_config(self) -> None:
        """Called by JupyterHub at start-up: fail on any configuration problem."""
        super().check_allow_config()  # type: ignore[misc]
        self.raise_for_config_problems()

    @property
    def identity_policy(self) -> IdentityPolicy:
        return self.auth_settings.policy

    # --- rejection -----------------------------------------------------------

    def reject_login(self, username: object, message: str) -> NoReturn:
        """Log and raise the 403 that the hub turns into its error page."""
        self.log.warning("Refusing login of %r: %s", username, message)
        raise IdentityRejected(message)

    # --- building the identity ------------------------------------------------

    def map_groups(self, username: str, raw_groups: Iterable[RawGroup]) -> list[GroupCandidate]:
        """Map provider groups to candidates; refuse or drop unsafe names and low gids."""
        settings = self.auth_settings
        min_gid, allowed = settings.policy.min_gid, settings.policy.allowed_gids
        candidates = []
        for raw_name, gid, source in raw_groups:
            try:
                name = posix_group_name(raw_name)
            except UnsafeNameError as error:
                if settings.unsafe_group_names == "reject":
                    self.reject_login(username, f"{source} {error}")
                self.log.warning("Dropping %s group of %r: %s", source, username, error)
                continue
            if isinstance(gid, bool) or not isinstance(gid, int) or not 0 <= gid <= MAX_ID:
                self.log.warning(
                    "Dropping %s group %r of %r: invalid gid %r", source, raw_name, username, gid
                )
                continue
            if gid < min_gid and gid not in allowed:
                self.log.warning(
                    "Dropping %s group %r of %r: gid %d is below min_gid %d",
                    source,
                    raw_name,
                    username,
                    gid,
                    min_gid,
                )
                continue
            candidates.append(
                GroupCandidate(raw_name=str(raw_name), name=name, gid=gid, source=source)
            )
        return candidates

    def build_identity(
        self,
        *,
        username: str,
        uid: object,
        gid: int | None,
        primary_group_name: str | None,
        groups: Iterable[RawGroup],
        name: str | None = None,
        email: str | None = None,
        git_token: str | None = None,
    ) -> Identity:
        """Apply the identity rules and return the identity, or reject the login.

        ``primary_group_name`` names the primary group when no group in
        ``groups`` has the primary gid; ``None`` means the user's name
        (a user-private group).
        """
        if not USERNAME_PATTERN.fullmatch(username):
            # Usernames are never rewritten: two provider accounts must not become one.
            self.reject_login(
                username,
                f"username {username!r} is not allowed: use 1 to 64 lowercase letters, digits, "
                "'_', '.' or '-', not starting with '.' or '-'",
            )
        if uid is None:
            self.reject_login(
                username, "the identity provider gave no uid (numeric user id) for this account"
            )
        if isinstance(uid, bool) or not isinstance(uid, int):
            self.reject_login(username, f"the identity provider gave an invalid uid {uid!r}")
        settings = self.auth_settings
        policy = settings.policy
        if uid < policy.min_uid:
            self.reject_login(
                username, f"uid {uid} is below the minimum uid {policy.min_uid} allowed on this hub"
            )
        try:
            primary_gid = policy.primary_gid(uid, gid)
        except IdentityError as error:
            self.reject_login(username, str(error))
        if gid is None:
            self.log.info(
                "No gid for %r; using a user-private group with gid = uid %d", username, uid
            )
        if primary_gid < policy.min_gid:
            self.reject_login(
                username,
                f"gid {primary_gid} is below the minimum gid {policy.min_gid} allowed on this hub",
            )
        candidates = self.map_groups(username, groups)
        if not any(c.gid == primary_gid for c in candidates):
            raw_primary = primary_group_name or username
            try:
                mapped = posix_group_name(raw_primary)
            except UnsafeNameError as error:
                self.reject_login(username, f"primary group: {error}")
            candidates.append(
                GroupCandidate(raw_primary, mapped, primary_gid, "primary", primary=True)
            )
        else:
            candidates = [
                GroupCandidate(c.raw_name, c.name, c.gid, c.source, primary=c.gid == primary_gid)
                for c in candidates
            ]
        resolved = resolve_groups(candidates, self.log)
        if settings.known_groups:
            resolved = keep_known_groups(
                resolved, settings.known_groups, primary_gid, username, self.log
            )
        if email is not None and not is_valid_email(email):
            shown = email[:80] if isinstance(email, str) else email
            self.log.warning("Ignoring invalid email address %r of %r", shown, username)
            email = None
        name = clean_display_name(name)
        try:
            identity = Identity(
                username=username,
                uid=uid,
                gid=primary_gid,
                groups=tuple(resolved),
                name=name or None,
                email=email or None,
                git_token=git_token,
            )
            policy.check(identity)
        except IdentityError as error:
            self.reject_login(username, str(error))
        return identity

    def store_identity(self, auth_model: dict[str, Any], identity: Identity) -> dict[str, Any]:
        """Store ``identity`` in the auth model's ``auth_state`` and return the model."""
        auth_state = auth_model["auth_state"]
        auth_state[AUTH_STATE_KEY] = identity.to_dict()
        auth_state[CHECKED_AT_KEY] = time.time()
        self.log.info(
            "Identity of %s: uid %d, gid %d, groups %s",
            identity.username,
            identity.uid,
            identity.gid,
            ", ".join(f"{g.name}({g.gid})" for g in identity.groups),
        )
        return auth_model

    # --- refresh -----------------------------------------------------------------

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> Any:
        """Rebuild the identity from the provider, keeping the last one during an outage.

        A rejection (the user joined a denied group, lost their gid...) returns
        ``False``, so the user must log in again and sees why. A provider that
        cannot be reached (connection error, timeout, 5xx) keeps the stored
        identity for up to :attr:`refresh_grace_period` after it was last built.
        """
        try:
            return await super().refresh_user(user, handler, **kwargs)  # type: ignore[misc]
        except IdentityRejected as error:
            self.log.warning("Refresh of %s refused, login required: %s", user.name, error.message)
            return False
        except (TimeoutError, HTTPClientError, OSError) as error:
            if isinstance(error, HTTPClientError) and error.code < 500:
                raise
            return await self._within_grace(user, error)

    async def _within_grace(self, user: Any, error: Exception) -> bool:
        auth_state = await user.get_auth_state() or {}
        checked_at = auth_state.get(CHECKED_AT_KEY)
        has_identity = auth_state.get(AUTH_STATE_KEY) is not None
        reason = f"{type(error).__name__}: {error}"
        grace = self.auth_settings.refresh_grace_period
        if has_identity and isinstance(checked_at, int | float):
            age = time.time() - checked_at
            if age <= grace:
                self.log.warning(
                    "Identity provider unreachable while refreshing %s (%s); keeping the identity "
                    "from %.0fs ago (grace period %.0fs)",
                    user.name,
                    reason,
                    age,
                    grace,
                )
                return True
            self.log.error(
                "Identity provider unreachable while refreshing %s (%s) and the identity "
                "is %.0fs old, "
                "past the grace period of %.0fs; login required",
                user.name,
                reason,
                age,
                grace,
            )
        else:
            self.log.error(
                "Identity provider unreachable while refreshing %s (%s) and no identity "
                "is stored; login required",
                user.name,
                reason,
            )
        return False
