"""GitHub authenticator providing the lsst_spawner identity contract.

Mapping (see ``docs/identity.md``):

- uid: the GitHub numeric user id;
- groups: the user's organizations (org login, gid = org id) and, with
  :attr:`~LSSTGitHubOAuthenticator.teams_as_groups`, teams (``{org}-{team}``,
  gid = team id), all made POSIX-safe by :mod:`lsst_spawner.auth.names`;
- primary group: user-private (the user's name, gid = uid) unless
  :attr:`~LSSTGitHubOAuthenticator.primary_gid` is set;
- name and email from the profile; when the profile hides the email, the
  primary *verified* address from ``/user/emails``;
- git token: the OAuth access token, only with
  :attr:`~LSSTGitHubOAuthenticator.provision_git_token`.
"""

from __future__ import annotations

from typing import Any

from oauthenticator.github import GitHubOAuthenticator
from traitlets import default

from .base import LSSTIdentityMixin, RawGroup
from .traits import GITHUB_BASE_SCOPES, GITHUB_GIT_SCOPE, GitHubSettings, GitHubTraits

__all__ = ["LSSTGitHubOAuthenticator"]


def granted_scopes(auth_state: dict[str, Any]) -> set[str]:
    """Scopes granted to the token. GitHub separates them with commas, OAuth with spaces."""
    raw = auth_state.get("scope") or []
    if isinstance(raw, str):
        raw = [raw]
    return {
        part.strip()
        for entry in raw
        for part in str(entry).replace(",", " ").split()
        if part.strip()
    }


class LSSTGitHubOAuthenticator(LSSTIdentityMixin, GitHubTraits, GitHubOAuthenticator):
    """GitHub login that provisions a UID, GID, groups, name, email and git token."""

    @default("scope")
    def _scope_default(self) -> list[str]:
        base = list(GITHUB_BASE_SCOPES)
        return [*base, GITHUB_GIT_SCOPE] if self.provision_git_token else base

    @property
    def github_settings(self) -> GitHubSettings:
        """The checked settings, with GitHub's own (see :attr:`auth_settings`)."""
        settings = self.auth_settings
        assert isinstance(settings, GitHubSettings)
        return settings

    # --- hooks ---------------------------------------------------------------------

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        """Collect organizations, teams and a verified email, then store the identity.

        Does not call ``GitHubOAuthenticator.update_auth_model``: it stores the
        primary email even when unverified. Its other effect,
        ``populate_teams_in_auth_state``, is reproduced here.
        """
        settings = self.github_settings
        auth_state = auth_model["auth_state"]
        user_info = auth_state[self.user_auth_state_key]
        username = auth_model["name"]
        token = auth_state["token_response"]["access_token"]
        token_type = auth_state["token_response"].get("token_type") or "bearer"
        scopes = granted_scopes(auth_state)

        orgs = await self._paginated_fetch(
            f"{self.github_api}/user/orgs?per_page=100", token, token_type
        )
        want_teams = (
            settings.teams_as_groups
            or self.populate_teams_in_auth_state
            or any(":" in entry for entry in settings.denied_organizations)
        )
        teams = (
            await self._paginated_fetch(
                f"{self.github_api}/user/teams?per_page=100", token, token_type
            )
            if want_teams
            else []
        )
        self.log.debug(
            "GitHub user %s (id %r): %d organizations, %d teams, scopes %s",
            username,
            user_info.get("id"),
            len(orgs),
            len(teams),
            sorted(scopes),
        )
        if self.populate_teams_in_auth_state:
            auth_state["teams"] = teams
        self._check_denied(username, orgs, teams, settings.denied_organizations)

        email = user_info.get("email") or None
        if not email and ({"user", "user:email"} & scopes):
            email = await self._verified_primary_email(token, token_type)
            user_info["email"] = email

        git_token = None
        if settings.provision_git_token:
            if not ({GITHUB_GIT_SCOPE, "repo"} & scopes):
                self.log.warning(
                    "provision_git_token is on but %s's token was not granted %r; "
                    "the git token may be read-only",
                    username,
                    GITHUB_GIT_SCOPE,
                )
            git_token = token

        groups: list[RawGroup] = [(org.get("login"), org.get("id"), "organization") for org in orgs]
        if settings.teams_as_groups:
            for team in teams:
                org_login = (team.get("organization") or {}).get("login")
                groups.append((f"{org_login}-{team.get('slug')}", team.get("id"), "team"))

        uid = user_info.get("id")
        # The default primary group is user-private: gid = uid.
        private_gid = uid if isinstance(uid, int) and not isinstance(uid, bool) else None
        identity = self.build_identity(
            username=username,
            uid=uid,
            gid=settings.primary_gid if settings.primary_gid is not None else private_gid,
            primary_group_name=(
                settings.primary_group_name if settings.primary_gid is not None else None
            ),
            groups=groups,
            name=user_info.get("name"),
            email=email,
            git_token=git_token,
        )
        return self.store_identity(auth_model, identity)

    def _check_denied(
        self,
        username: str,
        orgs: list[dict[str, Any]],
        teams: list[dict[str, Any]],
        denied_organizations: frozenset[str],
    ) -> None:
        if not denied_organizations:
            return
        denied = {entry.lower() for entry in denied_organizations}
        for org in orgs:
            login = str(org.get("login", ""))
            if login.lower() in denied:
                self.reject_login(
                    username, f"members of the GitHub organization {login!r} may not use this hub"
                )
        for team in teams:
            org_login = str((team.get("organization") or {}).get("login", ""))
            slug = str(team.get("slug", ""))
            if f"{org_login}:{slug}".lower() in denied:
                self.reject_login(
                    username,
                    f"members of the GitHub team {org_login!r}:{slug!r} may not use this hub",
                )

    async def _verified_primary_email(self, token: str, token_type: str) -> str | None:
        emails = await self.httpfetch(
            f"{self.github_api}/user/emails",
            "fetching user emails",
            method="GET",
            headers=self.build_userdata_request_headers(token, token_type),
            validate_cert=self.validate_server_cert,
        )
        for entry in emails or []:
            if isinstance(entry, dict) and entry.get("primary") and entry.get("verified"):
                address = entry.get("email")
                return address if isinstance(address, str) else None
        return None
