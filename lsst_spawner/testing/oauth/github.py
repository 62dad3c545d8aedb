"""A fake GitHub Enterprise server for tests and demos.

Point ``LSSTGitHubOAuthenticator.github_url`` at :attr:`FakeGitHub.url`; the
API is then served under ``/api/v3`` as on GitHub Enterprise Server::

    github = FakeGitHub()
    github.add_user(GitHubUser("rra", 4137, orgs=[GitHubOrg("lsst-sqre", 3010)]))
    with github:
        c.LSSTGitHubOAuthenticator.github_url = github.url
        ...

``/login/oauth/authorize`` approves at once, as the user named by
:attr:`FakeGitHub.login_as` (by default the first user added), and redirects
back with a code. The token endpoint checks the client credentials, the code,
the redirect URI and PKCE (S256), and answers like GitHub (scopes joined by
commas). API endpoints: ``/user``, ``/user/orgs``, ``/user/teams``,
``/user/emails``, ``/orgs/{org}/members/{user}`` and
``/orgs/{org}/teams/{team}/members/{user}``; lists are paginated with
``per_page`` (default 30, at most 100), ``page`` and a ``Link`` header.
Set :attr:`FakeGitHub.outage` to answer every API request with 503.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tornado import web

from .base import AuthorizeHandler, FakeOAuthServer, Grant, OAuthHandler

__all__ = ["FakeGitHub", "GitHubEmail", "GitHubOrg", "GitHubTeam", "GitHubUser"]


@dataclass
class GitHubOrg:
    login: str
    id: int


@dataclass
class GitHubTeam:
    org: GitHubOrg
    slug: str
    id: int
    name: str | None = None


@dataclass
class GitHubEmail:
    email: str
    primary: bool = False
    verified: bool = True


@dataclass
class GitHubUser:
    """A GitHub account; ``email`` is the public profile email (``None`` hides it)."""

    login: str
    id: int
    name: str | None = None
    email: str | None = None
    emails: list[GitHubEmail] = field(default_factory=list)
    orgs: list[GitHubOrg] = field(default_factory=list)
    teams: list[GitHubTeam] = field(default_factory=list)


class _Handler(OAuthHandler["FakeGitHub"]):
    pass


class _AuthorizeHandler(AuthorizeHandler):
    unknown_client = ({"error": "unknown client_id"}, 404)
    no_user = ({"error": "no user is logged in to the fake GitHub"}, 403)


class _TokenHandler(_Handler):
    def post(self) -> None:
        fake = self.fake
        if not self.client_authenticated():
            self.send_json(
                {"error": "incorrect_client_credentials", "error_description": "bad client"}
            )
            return
        grant = fake._pop_code(self.get_argument("code", ""))
        if grant is None:
            self.send_json(
                {
                    "error": "bad_verification_code",
                    "error_description": "The code is incorrect or expired.",
                }
            )
            return
        redirect_uri = self.get_argument("redirect_uri", None)
        if grant.redirect_uri and redirect_uri and redirect_uri != grant.redirect_uri:
            self.send_json(
                {"error": "redirect_uri_mismatch", "error_description": "redirect_uri mismatch"}
            )
            return
        if not self.pkce_verified(grant):
            self.send_json(
                {"error": "invalid_grant", "error_description": "PKCE verification failed"}
            )
            return
        token = "gho_" + secrets.token_hex(18)
        with fake._lock:
            fake._tokens[token] = grant
            fake.issued_tokens.append(token)
        self.send_json(
            {"access_token": token, "token_type": "bearer", "scope": ",".join(grant.scopes)}
        )


class _ApiHandler(_Handler):
    """Base of the API handlers: outage simulation, token check, pagination."""

    def prepare(self) -> None:
        super().prepare()
        if self.fake.outage:
            self.send_json({"message": "Service Unavailable"}, 503)
            return
        grant = self.token_grant(("token", "bearer"))
        if grant is None:
            self.send_json({"message": "Bad credentials"}, 401)
            return
        self.grant = grant
        self.user = self.fake.users[grant.subject]

    def paginate(self, items: list[Any]) -> None:
        try:
            per_page = min(max(int(self.get_argument("per_page", "30")), 1), 100)
            page = max(int(self.get_argument("page", "1")), 1)
        except ValueError:
            self.send_json({"message": "Invalid pagination"}, 400)
            return
        last = max((len(items) + per_page - 1) // per_page, 1)
        base = f"{self.request.protocol}://{self.request.host}{self.request.path}"

        def link(number: int, rel: str) -> str:
            return f'<{base}?{urlencode({"per_page": per_page, "page": number})}>; rel="{rel}"'

        links = []
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        if links:
            self.set_header("Link", ", ".join(links))
        self.send_json(items[(page - 1) * per_page : page * per_page])


def _org_json(org: GitHubOrg) -> dict[str, Any]:
    return {"login": org.login, "id": org.id, "description": None}


class _UserHandler(_ApiHandler):
    def get(self) -> None:
        user = self.user
        self.send_json(
            {
                "login": user.login,
                "id": user.id,
                "type": "User",
                "name": user.name,
                "email": user.email,
            }
        )


class _UserOrgsHandler(_ApiHandler):
    def get(self) -> None:
        self.paginate([_org_json(org) for org in self.user.orgs])


class _UserTeamsHandler(_ApiHandler):
    def get(self) -> None:
        teams = [
            {"id": t.id, "slug": t.slug, "name": t.name or t.slug, "organization": _org_json(t.org)}
            for t in self.user.teams
        ]
        self.paginate(teams)


class _UserEmailsHandler(_ApiHandler):
    def get(self) -> None:
        if not {"user", "user:email"} & set(self.grant.scopes):
            self.send_json({"message": "Not Found"}, 404)
            return
        emails = [
            {"email": e.email, "primary": e.primary, "verified": e.verified, "visibility": None}
            for e in self.user.emails
        ]
        self.paginate(emails)


class _OrgMemberHandler(_ApiHandler):
    def get(self, org: str, login: str) -> None:
        member = self.fake.users.get(login.lower())
        if member and any(o.login.lower() == org.lower() for o in member.orgs):
            self.set_status(204)
            self.finish()
        else:
            self.send_json({"message": "Not Found"}, 404)


class _TeamMemberHandler(_ApiHandler):
    def get(self, org: str, team: str, login: str) -> None:
        member = self.fake.users.get(login.lower())
        if member and any(
            t.org.login.lower() == org.lower() and t.slug.lower() == team.lower()
            for t in member.teams
        ):
            self.set_status(204)
            self.finish()
        else:
            self.send_json({"message": "Not Found"}, 404)


class FakeGitHub(FakeOAuthServer[GitHubUser]):
    """GitHub Enterprise on 127.0.0.1: OAuth web flow and the user API. Users are plain data."""

    def __init__(
        self,
        users: list[GitHubUser] | None = None,
        *,
        client_id: str = "fake-github-client-id",
        client_secret: str = "fake-github-client-secret",  # noqa: S107 - a fake
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        # ``outage`` answers every API request (not the OAuth pages) with 503.
        super().__init__(
            users, client_id=client_id, client_secret=client_secret, host=host, port=port
        )

    def _user_key(self, user: GitHubUser) -> str:
        return user.login.lower()

    def issue_code(
        self,
        login: str,
        scope: str = "",
        *,
        redirect_uri: str | None = None,
        code_challenge: str | None = None,
    ) -> str:
        """Return an authorization code for ``login``, as the authorize page would."""
        scopes = [s for s in scope.replace(",", " ").split() if s]
        return self._new_code(Grant(login.lower(), scopes, redirect_uri, code_challenge))

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v3"

    def authenticator_config(self) -> dict[str, Any]:
        """Trait values pointing a GitHubOAuthenticator at this server."""
        return {
            "github_url": self.url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }

    def make_app(self) -> web.Application:
        user = r"([^/]+)"
        return web.Application(
            [
                (r"/login/oauth/authorize", _AuthorizeHandler),
                (r"/login/oauth/access_token", _TokenHandler),
                (r"/api/v3/user", _UserHandler),
                (r"/api/v3/user/orgs", _UserOrgsHandler),
                (r"/api/v3/user/teams", _UserTeamsHandler),
                (r"/api/v3/user/emails", _UserEmailsHandler),
                (rf"/api/v3/orgs/{user}/members/{user}", _OrgMemberHandler),
                (rf"/api/v3/orgs/{user}/teams/{user}/members/{user}", _TeamMemberHandler),
            ],
            fake=self,
        )
