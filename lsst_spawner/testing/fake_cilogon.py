"""A fake CILogon (OIDC) server for tests and demos.

``CILogonOAuthenticator`` talks to three endpoints: ``authorize_url``,
``token_url`` and ``userdata_url`` (userinfo); it does not read OIDC discovery
or verify the id token. Configure them from :attr:`FakeCILogon.authorize_url`,
:attr:`FakeCILogon.token_url` and :attr:`FakeCILogon.userinfo_url` (or call
:meth:`FakeCILogon.authenticator_config`). A discovery document is served too,
for clients that want one.

Users are raw claim dicts, so tests can hand the authenticator anything a
real provider might send::

    cilogon = FakeCILogon()
    cilogon.add_user(CILogonUser("http://cilogon.org/serverA/users/1", {
        "username": "rra", "uidNumber": "4137", "gidNumber": 4137,
        "isMemberOf": [{"name": "g_users", "id": 3000}],
    }))

Every userinfo answer carries the ``idp`` claim (default
:data:`FAKE_IDP`), which ``CILogonOAuthenticator`` requires. The token endpoint
supports ``authorization_code`` (with PKCE S256) and ``refresh_token`` grants.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tornado import web

from ._threaded_server import ThreadedServer

__all__ = ["FAKE_IDP", "CILogonUser", "FakeCILogon"]

#: The ``idp`` claim of fake users unless they set their own.
FAKE_IDP = "https://idp.example.org/idp/shibboleth"


@dataclass
class CILogonUser:
    """A CILogon user: its ``sub`` and the claims the userinfo endpoint returns."""

    sub: str
    claims: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Grant:
    sub: str
    scopes: list[str]
    redirect_uri: str | None = None
    code_challenge: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class _Handler(web.RequestHandler):
    @property
    def fake(self) -> FakeCILogon:
        return self.application.settings["fake"]  # type: ignore[no-any-return]

    def prepare(self) -> None:
        self.fake.requests.append((self.request.method or "", self.request.path))
        if self.fake.outage:
            self.send_json({"error": "temporarily_unavailable"}, 503)

    def send_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data))

    def check_xsrf_cookie(self) -> None:
        pass


class _DiscoveryHandler(_Handler):
    def get(self) -> None:
        fake = self.fake
        self.send_json(
            {
                "issuer": fake.url,
                "authorization_endpoint": fake.authorize_url,
                "token_endpoint": fake.token_url,
                "userinfo_endpoint": fake.userinfo_url,
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["HS256"],
            }
        )


class _AuthorizeHandler(_Handler):
    def get(self) -> None:
        fake = self.fake
        if self.get_argument("client_id", "") != fake.client_id:
            self.send_json({"error": "unauthorized_client"}, 400)
            return
        if fake.login_as is None or fake.login_as not in fake.users:
            self.send_json(
                {"error": "access_denied", "error_description": "no user logged in"}, 403
            )
            return
        redirect_uri = self.get_argument("redirect_uri")
        code = fake.issue_code(
            fake.login_as,
            self.get_argument("scope", ""),
            redirect_uri=redirect_uri,
            code_challenge=self.get_argument("code_challenge", None),
        )
        query = {"code": code}
        state = self.get_argument("state", None)
        if state is not None:
            query["state"] = state
        self.redirect(redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(query))


class _TokenHandler(_Handler):
    def post(self) -> None:
        fake = self.fake
        client_id = self.get_argument("client_id", None)
        client_secret = self.get_argument("client_secret", None)
        auth = self.request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
        if client_id != fake.client_id or client_secret != fake.client_secret:
            self.send_json({"error": "invalid_client"}, 401)
            return
        grant_type = self.get_argument("grant_type", "")
        with fake._lock:
            if grant_type == "authorization_code":
                grant = fake._codes.pop(self.get_argument("code", ""), None)
            elif grant_type == "refresh_token":
                grant = fake._refresh.get(self.get_argument("refresh_token", ""))
            else:
                grant = None
        if grant is None:
            self.send_json({"error": "invalid_grant"}, 400)
            return
        if grant_type == "authorization_code" and grant.code_challenge is not None:
            verifier = self.get_argument("code_verifier", "")
            if _b64(hashlib.sha256(verifier.encode()).digest()) != grant.code_challenge:
                self.send_json({"error": "invalid_grant", "error_description": "PKCE failed"}, 400)
                return
        access_token = "NB2HI4DT" + secrets.token_hex(18)
        refresh_token = "rt_" + secrets.token_hex(18)
        with fake._lock:
            fake._tokens[access_token] = grant
            fake._refresh[refresh_token] = grant
            fake.issued_tokens += [access_token, refresh_token]
        self.send_json(
            {
                "access_token": access_token,
                "refresh_token": refresh_token,
                "id_token": fake.id_token(grant.sub),
                "token_type": "Bearer",
                "expires_in": 900,
            }
        )


class _UserinfoHandler(_Handler):
    def get(self) -> None:
        auth = self.request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        grant = self.fake._tokens.get(token) if scheme.lower() == "bearer" else None
        if grant is None or grant.sub not in self.fake.users:
            self.send_json({"error": "invalid_token"}, 401)
            return
        self.send_json(self.fake.userinfo(grant.sub))

    post = get


class FakeCILogon(ThreadedServer):
    """CILogon on 127.0.0.1: authorize (auto-approve), token, userinfo. Users are raw claims."""

    def __init__(
        self,
        users: list[CILogonUser] | None = None,
        *,
        client_id: str = "cilogon:/client_id/fake",
        client_secret: str = "fake-cilogon-client-secret",  # noqa: S107 - a fake
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.client_id = client_id
        self.client_secret = client_secret
        self.users: dict[str, CILogonUser] = {}
        self.login_as: str | None = None
        #: When True every request is answered with 503 (an outage).
        self.outage = False
        #: Every access and refresh token issued, in order.
        self.issued_tokens: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self._codes: dict[str, _Grant] = {}
        self._tokens: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        for user in users or []:
            self.add_user(user)

    def add_user(self, user: CILogonUser) -> CILogonUser:
        """Add (or replace) a user; the first user added is the one who logs in."""
        self.users[user.sub] = user
        if self.login_as is None:
            self.login_as = user.sub
        return user

    def userinfo(self, sub: str) -> dict[str, Any]:
        claims = {"sub": sub, "idp": FAKE_IDP, "iss": self.url, "aud": self.client_id}
        claims.update(self.users[sub].claims)
        return claims

    def id_token(self, sub: str) -> str:
        """An HS256 id token (keyed with the client secret) carrying the user's claims."""
        now = int(time.time())
        payload = {**self.userinfo(sub), "iat": now, "exp": now + 900}
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(payload).encode())
        signature = hmac.new(
            self.client_secret.encode(), f"{header}.{body}".encode(), hashlib.sha256
        )
        return f"{header}.{body}.{_b64(signature.digest())}"

    def issue_code(
        self,
        sub: str,
        scope: str = "",
        *,
        redirect_uri: str | None = None,
        code_challenge: str | None = None,
    ) -> str:
        """Return an authorization code for user ``sub``, as the authorize page would."""
        code = secrets.token_hex(10)
        with self._lock:
            self._codes[code] = _Grant(sub, scope.split(), redirect_uri, code_challenge)
        return code

    def revoke_tokens(self) -> None:
        """Invalidate every access token (refresh tokens stay valid)."""
        with self._lock:
            self._tokens.clear()

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth2/token"

    @property
    def userinfo_url(self) -> str:
        return f"{self.url}/oauth2/userinfo"

    def authenticator_config(self) -> dict[str, Any]:
        """Trait values pointing a CILogonOAuthenticator at this server."""
        return {
            "authorize_url": self.authorize_url,
            "token_url": self.token_url,
            "userdata_url": self.userinfo_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "idps": {
                FAKE_IDP: {"username_derivation": {"username_claim": "username"}, "allow_all": True}
            },
        }

    def make_app(self) -> web.Application:
        return web.Application(
            [
                (r"/\.well-known/openid-configuration", _DiscoveryHandler),
                (r"/authorize", _AuthorizeHandler),
                (r"/oauth2/token", _TokenHandler),
                (r"/oauth2/userinfo", _UserinfoHandler),
            ],
            fake=self,
        )
