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

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from tornado import web

from .base import AuthorizeHandler, FakeOAuthServer, Grant, OAuthHandler, b64url

__all__ = ["FAKE_IDP", "CILogonUser", "FakeCILogon"]

#: The ``idp`` claim of fake users unless they set their own.
FAKE_IDP = "https://idp.example.org/idp/shibboleth"


@dataclass
class CILogonUser:
    """A CILogon user: its ``sub`` and the claims the userinfo endpoint returns."""

    sub: str
    claims: dict[str, Any] = field(default_factory=dict)


class _Handler(OAuthHandler["FakeCILogon"]):
    def prepare(self) -> None:
        super().prepare()
        if self.fake.outage:
            self.send_json({"error": "temporarily_unavailable"}, 503)


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


class _AuthorizeHandler(_Handler, AuthorizeHandler):
    unknown_client = ({"error": "unauthorized_client"}, 400)
    no_user = ({"error": "access_denied", "error_description": "no user logged in"}, 403)


class _TokenHandler(_Handler):
    def post(self) -> None:
        fake = self.fake
        if not self.client_authenticated():
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
        if grant_type == "authorization_code" and not self.pkce_verified(grant):
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
                "id_token": fake.id_token(grant.subject),
                "token_type": "Bearer",
                "expires_in": 900,
            }
        )


class _UserinfoHandler(_Handler):
    def get(self) -> None:
        grant = self.token_grant()
        if grant is None:
            self.send_json({"error": "invalid_token"}, 401)
            return
        self.send_json(self.fake.userinfo(grant.subject))

    post = get


class FakeCILogon(FakeOAuthServer[CILogonUser]):
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
        # ``outage`` answers every request with 503; ``issued_tokens`` lists access and
        # refresh tokens.
        self._refresh: dict[str, Grant] = {}
        super().__init__(
            users, client_id=client_id, client_secret=client_secret, host=host, port=port
        )

    def _user_key(self, user: CILogonUser) -> str:
        return user.sub

    def userinfo(self, sub: str) -> dict[str, Any]:
        claims = {"sub": sub, "idp": FAKE_IDP, "iss": self.url, "aud": self.client_id}
        claims.update(self.users[sub].claims)
        return claims

    def id_token(self, sub: str) -> str:
        """An HS256 id token (keyed with the client secret) carrying the user's claims."""
        now = int(time.time())
        payload = {**self.userinfo(sub), "iat": now, "exp": now + 900}
        header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64url(json.dumps(payload).encode())
        signature = hmac.new(
            self.client_secret.encode(), f"{header}.{body}".encode(), hashlib.sha256
        )
        return f"{header}.{body}.{b64url(signature.digest())}"

    def issue_code(
        self,
        sub: str,
        scope: str = "",
        *,
        redirect_uri: str | None = None,
        code_challenge: str | None = None,
    ) -> str:
        """Return an authorization code for user ``sub``, as the authorize page would."""
        return self._new_code(Grant(sub, scope.split(), redirect_uri, code_challenge))

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
