"""The full OAuth login through a real JupyterHub process and the fake GitHub.

One hub serves every test in this module (start-up takes a few seconds):
login, callback, encrypted auth_state, identity seen by a spawner, group
changes picked up at the next spawn, a denied organization refused on the
hub's error page, and no token in any log line at debug level.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from lsst_spawner.testing.fake_github import FakeGitHub, GitHubEmail, GitHubOrg, GitHubUser

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
JUPYTERHUB = Path(sys.executable).parent / "jupyterhub"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Hub:
    url: str
    token: str
    log: Path
    db: Path
    records: Path
    github: FakeGitHub

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
    github.start()
    port, hub_port, api_port = _free_port(), _free_port(), _free_port()
    token = secrets.token_hex(16)
    records = tmp / "identities.jsonl"
    url = f"http://127.0.0.1:{port}"
    (tmp / "jupyterhub_config.py").write_text(
        f"""
c = get_config()  # noqa
c.JupyterHub.bind_url = {url!r}
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.pid_file = {str(tmp / "proxy.pid")!r}
c.JupyterHub.db_url = "sqlite:///{tmp / "jupyterhub.sqlite"}"
c.JupyterHub.cookie_secret_file = {str(tmp / "cookie_secret")!r}
c.JupyterHub.log_level = "DEBUG"
c.JupyterHub.authenticator_class = "lsst_spawner.auth.github.LSSTGitHubOAuthenticator"
c.Authenticator.enable_auth_state = True
c.Authenticator.allow_all = True
c.LSSTGitHubOAuthenticator.github_url = {github.url!r}
c.LSSTGitHubOAuthenticator.client_id = {github.client_id!r}
c.LSSTGitHubOAuthenticator.client_secret = {github.client_secret!r}
c.LSSTGitHubOAuthenticator.oauth_callback_url = "{url}/hub/oauth_callback"
c.LSSTGitHubOAuthenticator.provision_git_token = True
c.LSSTGitHubOAuthenticator.denied_organizations = {{"evil-corp"}}
c.JupyterHub.spawner_class = "lsst_spawner.testing.recording_spawner.RecordingSpawner"
c.RecordingSpawner.record_file = {str(records)!r}
c.Spawner.start_timeout = 10
c.Spawner.http_timeout = 10
c.JupyterHub.services = [{{"name": "tester", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{
    "name": "tester",
    "scopes": ["admin:users", "admin:auth_state", "admin:servers"],
    "services": ["tester"],
}}]
"""
    )
    log = tmp / "hub.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
        "PATH": f"{JUPYTERHUB.parent}:{os.environ.get('PATH', '')}",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(JUPYTERHUB), "-f", str(tmp / "jupyterhub_config.py")],
            cwd=tmp,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"jupyterhub exited with {process.returncode}:\n{log.read_text()[-3000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    pass
                import urllib.request

                with urllib.request.urlopen(f"{url}/hub/api", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyterhub did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Hub(url, token, log, tmp / "jupyterhub.sqlite", records, github)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        github.stop()


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _api(hub: Hub, method: str, path: str) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, f"{hub.url}/hub/api{path}", headers={"Authorization": f"token {hub.token}"}
        ) as response,
    ):
        body = await response.text()
        return response.status, (json.loads(body) if body else None)


async def _wait_ready(hub: Hub, name: str) -> None:
    for _ in range(100):
        _, model = await _api(hub, "GET", f"/users/{name}")
        assert isinstance(model, dict)
        server = model.get("servers", {}).get("")
        if server and server.get("ready"):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"server of {name} never became ready:\n{hub.log.read_text()[-3000:]}")


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
        with sqlite3.connect(hub.db) as db:
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
        assert "Refusing login of 'mallory'" in hub.log.read_text()
    finally:
        hub.github.login_as = "rubin-user"


def test_no_token_in_hub_log(hub: Hub) -> None:
    # Runs after the logins and spawns above (module order), at debug level.
    text = hub.log.read_text()
    assert "[D " in text  # debug lines were written
    assert "Identity of rubin-user" in text
    assert hub.github.issued_tokens
    for token in hub.github.issued_tokens:
        assert token not in text
