"""The full OAuth login through JupyterHub (in process, ``lsst_hub``) and the fake GitHub.

Login, callback, encrypted auth_state, identity seen by a spawner, group
changes picked up at the next spawn, a denied organization refused on the
hub's error page, and no token in any log line at debug level. The hub runs in
the test's process (no proxy): the browser talks to the hub's own server.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lsst_spawner.auth.github import LSSTGitHubOAuthenticator
from lsst_spawner.testing.hub.fixtures import InProcessHub
from lsst_spawner.testing.oauth.github import FakeGitHub, GitHubEmail, GitHubOrg, GitHubUser


class Hub:
    """The test's hub, with the fake GitHub it logs in through and RecordingSpawner's file."""

    def __init__(self, hub: InProcessHub, github: FakeGitHub, records: Path) -> None:
        self.hub = hub
        self.url = hub.url
        self.github = github
        self.records = records

    async def request(self, method: str, path: str) -> tuple[int, Any]:
        return await self.hub.request(method, path)

    def recorded(self) -> list[dict[str, object]]:
        if not self.records.exists():
            return []
        return [json.loads(line) for line in self.records.read_text().splitlines()]


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    github = FakeGitHub()
    github.add_user(
        GitHubUser(
            "Rubin-User",
            41370,
            name="Vera Rubin",
            emails=[GitHubEmail("vera@example.org", primary=True)],
            orgs=[GitHubOrg("lsst-sqre", 30100)],
        )
    )
    github.add_user(GitHubUser("mallory", 41371, orgs=[GitHubOrg("Evil-Corp", 30200)]))
    with github:
        yield github


@pytest.fixture
async def hub(lsst_hub: Any, github: FakeGitHub, tmp_path: Path) -> Hub:
    records = tmp_path / "identities.jsonl"
    config = {
        "Authenticator": {"allow_all": True},
        "LSSTGitHubOAuthenticator": {
            "github_url": github.url,
            "client_id": github.client_id,
            "client_secret": github.client_secret,
            "oauth_callback_url": "http://127.0.0.1/set-below",
            "provision_git_token": True,
            "denied_organizations": {"evil-corp"},
        },
        "JupyterHub": {
            "spawner_class": "lsst_spawner.testing.hub.recording_spawner.RecordingSpawner"
        },
        "RecordingSpawner": {"record_file": str(records)},
        "Spawner": {"start_timeout": 10, "http_timeout": 10},
    }
    in_process = await lsst_hub(config=config, authenticator=LSSTGitHubOAuthenticator)
    # The hub's own server is the public address here; its port is known once started.
    in_process.app.authenticator.oauth_callback_url = f"{in_process.url}/oauth_callback"
    return Hub(in_process, github, records)


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _api(hub: Hub, method: str, path: str) -> tuple[int, Any]:
    return await hub.request(method, path)


async def _wait_ready(hub: Hub, name: str) -> None:
    await hub.hub.wait_ready(name)


def _no_token_in(text: str, hub: Hub) -> None:
    assert "DEBUG" in text  # debug lines were written
    assert hub.github.issued_tokens
    for token in hub.github.issued_tokens:
        assert token not in text


async def test_login_spawn_and_refresh(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    hub.github.login_as = "rubin-user"
    async with _session() as browser:
        async with browser.get(f"{hub.url}/oauth_login?next=/hub/home") as response:
            assert response.status == 200, await response.text()
            assert str(response.url).endswith("/hub/home")

        # auth_state saved, with the identity, readable with admin:auth_state.
        status, model = await _api(hub, "GET", "/users/rubin-user")
        assert status == 200
        assert isinstance(model, dict)
        identity = model["auth_state"]["identity"]
        assert identity["uid"] == 41370
        assert identity["gid"] == 41370
        assert identity["groups"] == [
            {"name": "rubin-user", "gid": 41370},
            {"name": "lsst-sqre", "gid": 30100},
        ]
        assert identity["email"] == "vera@example.org"
        assert identity["git_token"] in hub.github.issued_tokens

        # Stored encrypted: neither the token nor a group name is in the database in clear.
        with sqlite3.connect(hub.hub.app.db_url.removeprefix("sqlite:///")) as db:
            rows = db.execute(
                "SELECT encrypted_auth_state FROM users WHERE name = 'rubin-user'"
            ).fetchall()
        blob = rows[0][0]
        assert blob
        assert identity["git_token"].encode() not in blob
        assert b"lsst-sqre" not in blob

        # The spawner sees the identity.
        async with browser.get(f"{hub.url}/spawn", allow_redirects=False) as response:
            assert response.status == 302
        await _wait_ready(hub, "rubin-user")
        first = hub.recorded()[-1]
        assert first["username"] == "rubin-user"
        assert {"name": "lsst-sqre", "gid": 30100} in first["groups"]
        assert first["git_token"] == "<set>"

        # A group change at the provider is picked up at the next spawn (refresh_pre_spawn).
        await hub.hub.stop("rubin-user")
        hub.github.users["rubin-user"].orgs.append(GitHubOrg("LSST-DM", 30300))
        async with browser.get(f"{hub.url}/spawn", allow_redirects=False) as response:
            assert response.status == 302
        await _wait_ready(hub, "rubin-user")
        second = hub.recorded()[-1]
        assert {"name": "lsst-dm", "gid": 30300} in second["groups"]
    assert "Identity of rubin-user" in caplog.text
    _no_token_in(caplog.text, hub)


async def test_denied_organization_is_refused_on_the_error_page(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    hub.github.login_as = "mallory"
    try:
        async with (
            _session() as browser,
            browser.get(f"{hub.url}/oauth_login?next=/hub/home") as response,
        ):
            body = await response.text()
        assert response.status == 403
        assert "members of the GitHub organization &#39;Evil-Corp&#39; may not use this hub" in body
        status, _ = await _api(hub, "GET", "/users/mallory")
        assert status == 404
        assert "Refusing login of 'mallory'" in caplog.text
        _no_token_in(caplog.text, hub)
    finally:
        hub.github.login_as = "rubin-user"
