"""Group sync and admin-by-group through a real JupyterHub, with the fake GitHub and CILogon.

For each provider, one hub with ``manage_groups``, ``admin_groups`` and a role
granting a scope to a group (as ``docs/identity.md`` shows): a browser logs
in through the OAuth flow, the user becomes admin and a member of the synced
groups, and a token of theirs carries the group role's scope. After the user
leaves the admin group at the provider, the refresh before the next spawn
revokes admin, removes the group membership and with it the role's scope.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lsst_spawner.testing.hub import HubProcess, free_port
from lsst_spawner.testing.oauth.cilogon import CILogonUser, FakeCILogon
from lsst_spawner.testing.oauth.github import FakeGitHub, GitHubOrg, GitHubUser

pytestmark = pytest.mark.integration

#: The role of the docs' example: instructors may read the students' user models.
ROLE = {
    "name": "student-readers",
    "scopes": ["read:users!group=students"],
    "groups": ["instructors"],
}
ADMINS = ("Hub-Admins", 51000)
INSTRUCTORS = ("Instructors", 51500)
STUDENTS = ("students", 52000)


def _common_config(cls: str, port: int, records: Path) -> str:
    return f"""
c.JupyterHub.authenticator_class = "lsst_spawner.auth.{cls}"
c.Authenticator.manage_groups = True
c.{cls.split(".")[1]}.admin_groups = {{"hub-admins"}}
c.{cls.split(".")[1]}.oauth_callback_url = "http://127.0.0.1:{port}/hub/oauth_callback"
c.JupyterHub.load_roles.append({json.dumps(ROLE)})
c.JupyterHub.load_roles[0]["scopes"] += ["read:groups", "read:roles"]
c.JupyterHub.spawner_class = "lsst_spawner.testing.hub.recording_spawner.RecordingSpawner"
c.RecordingSpawner.record_file = {str(records)!r}
c.Spawner.start_timeout = 10
c.Spawner.http_timeout = 10
"""


class GroupHub(HubProcess):
    """A hub and the function that sets the user's groups at its fake provider."""

    set_groups: Callable[[list[tuple[str, int]]], None]


def _github_hub(tmp: Path) -> Iterator[GroupHub]:
    github = FakeGitHub()
    user = github.add_user(GitHubUser("vera", 41370, orgs=[]))
    with github:
        port = free_port()
        config = _common_config("github.LSSTGitHubOAuthenticator", port, tmp / "records")
        config += "c.Authenticator.allow_all = True\n" + "".join(
            f"c.LSSTGitHubOAuthenticator.{k} = {v!r}\n"
            for k, v in github.authenticator_config().items()
        )
        with GroupHub(tmp, config, port=port) as hub:

            def set_groups(groups: list[tuple[str, int]]) -> None:
                user.orgs[:] = [GitHubOrg(name, gid) for name, gid in groups]

            hub.set_groups = set_groups
            yield hub


def _cilogon_hub(tmp: Path) -> Iterator[GroupHub]:
    cilogon = FakeCILogon()
    user = cilogon.add_user(
        CILogonUser("http://cilogon.org/u/1", {"username": "vera", "uidNumber": 41370})
    )
    user.claims["gidNumber"] = 41370
    with cilogon:
        port = free_port()
        config = _common_config("cilogon.LSSTCILogonOAuthenticator", port, tmp / "records")
        config += "".join(
            f"c.LSSTCILogonOAuthenticator.{k} = {v!r}\n"
            for k, v in cilogon.authenticator_config().items()
        )
        with GroupHub(tmp, config, port=port) as hub:

            def set_groups(groups: list[tuple[str, int]]) -> None:
                user.claims["isMemberOf"] = [{"name": name, "id": gid} for name, gid in groups]

            hub.set_groups = set_groups
            yield hub


@pytest.fixture(scope="module", params=["github", "cilogon"])
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp(f"hub-{request.param}")
    make = _github_hub if request.param == "github" else _cilogon_hub
    yield from make(tmp)


async def _api(hub: HubProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    return await asyncio.to_thread(hub.request, method, path, body)


async def _user_scopes(hub: HubProcess, name: str) -> list[str]:
    """The scopes of a fresh token of ``name`` (tokens inherit their owner's permissions)."""
    status, token = await _api(hub, "POST", f"/users/{name}/tokens", {"note": "scopes"})
    assert status == 201, token
    request = aiohttp.ClientSession(headers={"Authorization": f"token {token['token']}"})
    async with request as session, session.get(f"{hub.url}/hub/api/user") as response:
        assert response.status == 200
        model = await response.json()
    return list(model["scopes"])


async def _wait(hub: HubProcess, name: str, ready: bool) -> None:
    for _ in range(100):
        _, model = await _api(hub, "GET", f"/users/{name}")
        server = model.get("servers", {}).get("")
        if bool(server and server.get("ready")) == ready:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"server of {name} never became ready={ready}:\n{hub.log_tail()}")


async def _spawn(hub: HubProcess, browser: aiohttp.ClientSession) -> None:
    """Start the user's server from the browser: the hub refreshes the login first."""
    async with browser.get(f"{hub.url}/hub/spawn") as response:
        assert response.status == 200
    await _wait(hub, "vera", ready=True)
    status, _ = await _api(hub, "DELETE", "/users/vera/server")
    assert status in (202, 204)
    await _wait(hub, "vera", ready=False)


async def test_admin_group_login_then_removal_at_provider(hub: GroupHub) -> None:
    hub.set_groups([ADMINS, INSTRUCTORS, STUDENTS])
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        async with browser.get(f"{hub.url}/hub/oauth_login?next=/hub/home") as response:
            assert response.status == 200, await response.text()
            assert str(response.url).endswith("/hub/home")

        status, model = await _api(hub, "GET", "/users/vera")
        assert status == 200
        assert model["admin"] is True
        assert sorted(model["groups"]) == ["hub-admins", "instructors", "students"]
        status, group = await _api(hub, "GET", "/groups/instructors")
        assert status == 200
        assert group["users"] == ["vera"]
        assert group["roles"] == ["student-readers"]
        assert "admin:users" in await _user_scopes(hub, "vera")

        # Removed from the admin group at the provider: the refresh before the spawn applies it.
        hub.set_groups([INSTRUCTORS, STUDENTS])
        await _spawn(hub, browser)
        _, model = await _api(hub, "GET", "/users/vera")
        assert model["admin"] is False
        assert sorted(model["groups"]) == ["instructors", "students"]
        _, group = await _api(hub, "GET", "/groups/hub-admins")
        assert group["users"] == []
        scopes = await _user_scopes(hub, "vera")
        assert "admin:users" not in scopes
        # The group's role still grants its scope...
        assert "read:users!group=students" in scopes

        # ...until the user leaves that group too.
        hub.set_groups([STUDENTS])
        await _spawn(hub, browser)
        _, model = await _api(hub, "GET", "/users/vera")
        assert model["groups"] == ["students"]
        assert "read:users!group=students" not in await _user_scopes(hub, "vera")
        log = hub.log_tail(1_000_000)
        assert "Removing user vera from group(s): {'hub-admins'}" in log
        assert "Removing user vera from group(s): {'instructors'}" in log
