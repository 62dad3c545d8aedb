"""Pytest fixtures and helpers for logging in through the fake identity providers.

``fake_github`` and ``fake_cilogon`` start a fresh fake server per test (no
users; add them with ``add_user``). :func:`oauth_login` runs an
authenticator's whole login (code exchange, user info, identity, allow rules)
against a fake without a hub; :class:`StubUser` stands in for a hub user in
``refresh_user`` calls.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from .cilogon import FakeCILogon
from .github import FakeGitHub

__all__ = ["StubUser", "fake_cilogon", "fake_github", "oauth_login"]


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A running :class:`~lsst_spawner.testing.oauth.github.FakeGitHub` with no users."""
    server = FakeGitHub()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_cilogon() -> Iterator[FakeCILogon]:
    """A running :class:`~lsst_spawner.testing.oauth.cilogon.FakeCILogon` with no users."""
    server = FakeCILogon()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class _CallbackStub:
    """The parts of OAuthenticator's callback handler that ``authenticate`` reads."""

    def __init__(self, code: str, state_cookie: str) -> None:
        self._code = code
        self._state_cookie = state_cookie

    def get_argument(self, name: str, default: Any = None) -> Any:
        return self._code if name == "code" else default

    def get_state_cookie(self) -> str:
        return self._state_cookie


async def oauth_login(
    authenticator: Any, fake: FakeGitHub | FakeCILogon, who: str | None = None
) -> Any:
    """Log ``who`` (default ``fake.login_as``) in through ``authenticator``; return the auth model.

    Returns what ``Authenticator.get_authenticated_user`` returns (``None`` when
    the user is not allowed) and lets rejections (403 ``HTTPError``) raise.
    The authenticator needs ``oauth_callback_url`` set.
    """
    from oauthenticator.oauth2 import _serialize_state

    who = who or fake.login_as
    if who is None:
        raise ValueError("no user to log in")
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    code = fake.issue_code(
        who,
        " ".join(authenticator.scope),
        redirect_uri=authenticator.oauth_callback_url,
        code_challenge=challenge if authenticator.enable_pkce else None,
    )
    state = _serialize_state({"state_id": secrets.token_hex(8), "code_verifier": verifier})
    return await authenticator.get_authenticated_user(_CallbackStub(code, state), None)


class StubUser:
    """A hub user as ``refresh_user`` sees it: a name and an auth state."""

    def __init__(self, name: str, auth_state: dict[str, Any] | None) -> None:
        self.name = name
        self.auth_state = auth_state

    async def get_auth_state(self) -> dict[str, Any] | None:
        return self.auth_state
