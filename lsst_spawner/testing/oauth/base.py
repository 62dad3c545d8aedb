"""What the fake OAuth providers share: grants, codes, tokens and request bookkeeping.

:class:`FakeOAuthServer` holds the users, the client credentials, the
authorization codes and access tokens issued, every request received and the
outage flag; :class:`OAuthHandler` is the base of the fakes' request handlers
and :class:`AuthorizeHandler` the auto-approving authorize page. Each provider
keeps its own token endpoint and API, and its own error answers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import urlencode

from tornado import web

from ..loopback import ThreadedServer

__all__ = ["AuthorizeHandler", "FakeOAuthServer", "Grant", "OAuthHandler", "b64url", "s256"]

UserT = TypeVar("UserT")
FakeT = TypeVar("FakeT", bound="FakeOAuthServer[Any]")


@dataclass
class Grant:
    """What a code or token stands for: the user (by its key in ``users``) and the request."""

    subject: str
    scopes: list[str]
    redirect_uri: str | None = None
    code_challenge: str | None = None


def b64url(data: bytes) -> str:
    """Unpadded base64url, as PKCE and JWTs use it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge of ``verifier``."""
    return b64url(hashlib.sha256(verifier.encode()).digest())


class FakeOAuthServer(ThreadedServer, Generic[UserT]):
    """Users, client credentials, codes, tokens, recorded requests and the outage flag."""

    def __init__(
        self,
        users: list[UserT] | None,
        *,
        client_id: str,
        client_secret: str,
        host: str,
        port: int,
    ) -> None:
        super().__init__(host, port)
        self.client_id = client_id
        self.client_secret = client_secret
        self.users: dict[str, UserT] = {}
        self.login_as: str | None = None
        #: When True requests are answered with 503 (an outage).
        self.outage = False
        #: Every token issued, in order.
        self.issued_tokens: list[str] = []
        #: (method, path) of every request received.
        self.requests: list[tuple[str, str]] = []
        self._codes: dict[str, Grant] = {}
        self._tokens: dict[str, Grant] = {}
        self._lock = threading.Lock()
        for user in users or []:
            self.add_user(user)

    def _user_key(self, user: UserT) -> str:
        """The key of ``user`` in :attr:`users` (and in :attr:`login_as`)."""
        raise NotImplementedError

    def add_user(self, user: UserT) -> UserT:
        """Add (or replace) a user; the first user added is the one who logs in."""
        key = self._user_key(user)
        self.users[key] = user
        if self.login_as is None:
            self.login_as = key
        return user

    def _new_code(self, grant: Grant) -> str:
        code = secrets.token_hex(10)
        with self._lock:
            self._codes[code] = grant
        return code

    def _pop_code(self, code: str) -> Grant | None:
        with self._lock:
            return self._codes.pop(code, None)

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued so far (refresh tokens, if any, stay valid)."""
        with self._lock:
            self._tokens.clear()

    def issue_code(
        self,
        subject: str,
        scope: str = "",
        *,
        redirect_uri: str | None = None,
        code_challenge: str | None = None,
    ) -> str:
        raise NotImplementedError


class OAuthHandler(web.RequestHandler, Generic[FakeT]):
    """Records every request; JSON answers; client credentials, PKCE and bearer tokens."""

    @property
    def fake(self) -> FakeT:
        return self.application.settings["fake"]  # type: ignore[no-any-return]

    def prepare(self) -> None:
        self.fake.requests.append((self.request.method or "", self.request.path))

    def send_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data))

    def check_xsrf_cookie(self) -> None:
        pass

    def client_authenticated(self) -> bool:
        """Whether the client credentials (form fields or HTTP Basic) are the fake's."""
        client_id = self.get_argument("client_id", None)
        client_secret = self.get_argument("client_secret", None)
        auth = self.request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
        return client_id == self.fake.client_id and client_secret == self.fake.client_secret

    def pkce_verified(self, grant: Grant) -> bool:
        """Whether ``code_verifier`` answers the grant's S256 challenge (if it has one)."""
        if grant.code_challenge is None:
            return True
        return s256(self.get_argument("code_verifier", "")) == grant.code_challenge

    def approve_as(self, login: str) -> None:
        """Approve this authorize request as ``login``: redirect back with a code (and state)."""
        redirect_uri = self.get_argument("redirect_uri")
        code = self.fake.issue_code(
            login,
            self.get_argument("scope", ""),
            redirect_uri=redirect_uri,
            code_challenge=self.get_argument("code_challenge", None),
        )
        query = {"code": code}
        state = self.get_argument("state", None)
        if state is not None:
            query["state"] = state
        separator = "&" if "?" in redirect_uri else "?"
        self.redirect(redirect_uri + separator + urlencode(query))

    def token_grant(self, schemes: tuple[str, ...] = ("bearer",)) -> Grant | None:
        """The grant of the request's access token, if it is valid and its user still exists."""
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        grant = self.fake._tokens.get(token) if scheme.lower() in schemes else None
        if grant is None or grant.subject not in self.fake.users:
            return None
        return grant


class AuthorizeHandler(OAuthHandler["FakeOAuthServer[Any]"]):
    """Approve at once as :attr:`FakeOAuthServer.login_as`; redirect back with a code."""

    #: (body, status) when ``client_id`` is not the fake's.
    unknown_client: ClassVar[tuple[dict[str, str], int]]
    #: (body, status) when nobody is logged in to the fake.
    no_user: ClassVar[tuple[dict[str, str], int]]

    def get(self) -> None:
        fake = self.fake
        if self.get_argument("client_id", "") != fake.client_id:
            self.send_json(*self.unknown_client)
            return
        login = fake.login_as
        if login is None or login not in fake.users:
            self.send_json(*self.no_user)
            return
        self.approve_as(login)
