"""The full OAuth login through a real JupyterHub process and the fake GitHub.

One hub serves every test in this module (start-up takes a few seconds):
login, callback, encrypted auth_state, identity seen by a spawner, group
changes picked up at the next spawn, a denied organization refused on the
hub's error page, and no token in any log line at debug level.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lsst_spawner.testing.fake_github import FakeGitHub, GitHubEmail, GitHubOrg, GitHubUser
from lsst_spawner.testing.hub import HubProcess, free_port

pytestmark = pytest.mark.integration


class Hub(HubProcess):
    """The module's hub, with the fake GitHub it logs in through and RecordingSpawner's file."""

    def __init__(
        self, workdir: Path, config: str, *, github: FakeGitHub, records: Path, **kwargs: Any
    ) -> None:
        super().__init__(workdir, config, **kwargs)
        self.github = github
        self.records = records

    def recorded(self) -> list[dict[str, object]]:
        if not self.records.exists():
            return []
        return [json.loads(line) for line in self.records.read_text().splitlines()]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("hub")
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
        port = free_port()
        records = tmp / "identities.jsonl"
        config = f"""
c.JupyterHub.authenticator_class = "lsst_spawner.auth.github.LSSTGitHubOAuthenticator"
c.Authenticator.allow_all = True
c.LSSTGitHubOAuthenticator.github_url = {github.url!r}
c.LSSTGitHubOAuthenticator.client_id = {github.client_id!r}
c.LSSTGitHubOAuthenticator.client_secret = {github.client_secret!r}
c.LSSTGitHubOAuthenticator.oauth_callback_url = "http://127.0.0.1:{port}/hub/oauth_callback"
c.LSSTGitHubOAuthenticator.provision_git_token = True
c.LSSTGitHubOAuthenticator.denied_organizations = {{"evil-corp"}}
c.JupyterHub.spawner_class = "lsst_spawner.testing.recording_spawner.RecordingSpawner"
c.RecordingSpawner.record_file = {str(records)!r}
c.Spawner.start_timeout = 10
c.Spawner.http_timeout = 10
"""
        with Hub(tmp, config, github=github, records=records, port=port, log_level="DEBUG") as hub:
            yield hub


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _api(hub: Hub, method: str, path: str) -> tuple[int, Any]:
    """``hub.request`` in a thread, so as not to block the test's event loop."""
    return await asyncio.to_thread(hub.request, method, path)


async def _wait_ready(hub: Hub, name: str) -> None:
    for _ in range(100):
        _, model = await _api(hub, "GET", f"/users/{name}")
        assert isinstance(model, dict)
        server = model.get("servers", {}).get("")
        if server and server.get("ready"):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"server of {name} never became ready:\n{hub.log_path.read_text()[-3000:]}")


async def test_login_spawn_and_refresh(hub: Hub) -> None:
    hub.github.login_as = "rubin-user"
    async with _session() as browser:
        async with browser.get(f"{hub.url}/hub/oauth_login?next=/hub/home") as response:
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
        with sqlite3.connect(hub.db_path) as db:
            rows = db.execute(
                "SELECT encrypted_auth_state FROM users WHERE name = 'rubin-user'"
            ).fetchall()
        blob = rows[0][0]
        assert blob
        assert identity["git_token"].encode() not in blob
        assert b"lsst-sqre" not in blob

        # The spawner sees the identity.
        async with browser.get(f"{hub.url}/hub/spawn") as response:
            assert response.status == 200
        await _wait_ready(hub, "rubin-user")
        first = hub.recorded()[-1]
        assert first["username"] == "rubin-user"
        assert {"name": "lsst-sqre", "gid": 30100} in first["groups"]
        assert first["git_token"] == "<set>"

        # A group change at the provider is picked up at the next spawn (refresh_pre_spawn).
        status, _ = await _api(hub, "DELETE", "/users/rubin-user/server")
        assert status in (202, 204)
        for _ in range(50):
            _, model = await _api(hub, "GET", "/users/rubin-user")
            if isinstance(model, dict) and not model.get("servers"):
                break
            await asyncio.sleep(0.1)
        hub.github.users["rubin-user"].orgs.append(GitHubOrg("LSST-DM", 30300))
        async with browser.get(f"{hub.url}/hub/spawn") as response:
            assert response.status == 200
        await _wait_ready(hub, "rubin-user")
        second = hub.recorded()[-1]
        assert {"name": "lsst-dm", "gid": 30300} in second["groups"]


async def test_denied_organization_is_refused_on_the_error_page(hub: Hub) -> None:
    hub.github.login_as = "mallory"
    try:
        async with (
            _session() as browser,
            browser.get(f"{hub.url}/hub/oauth_login?next=/hub/home") as response,
        ):
            body = await response.text()
        assert response.status == 403
        assert "members of the GitHub organization &#39;Evil-Corp&#39; may not use this hub" in body
        status, _ = await _api(hub, "GET", "/users/mallory")
        assert status == 404
        assert "Refusing login of 'mallory'" in hub.log_path.read_text()
    finally:
        hub.github.login_as = "rubin-user"


def test_no_token_in_hub_log(hub: Hub) -> None:
    # Runs after the logins and spawns above (module order), at debug level.
    text = hub.log_path.read_text()
    assert "[D " in text  # debug lines were written
    assert "Identity of rubin-user" in text
    assert hub.github.issued_tokens
    for token in hub.github.issued_tokens:
        assert token not in text
