"""Group sync and admin-by-group through JupyterHub (in process), with the fake GitHub and CILogon.

For each provider, one hub (``lsst_hub`` with the provider's authenticator) with
``manage_groups``, ``admin_groups`` and a role granting a scope to a group (as
``docs/identity.md`` shows): a browser logs in through the OAuth flow, the user
becomes admin and a member of the synced groups, and a token of theirs carries
the group role's scope. After the user leaves the admin group at the provider,
the refresh before the next spawn revokes admin, removes the group membership
and with it the role's scope.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from lsst_spawner.auth.cilogon import LSSTCILogonOAuthenticator
from lsst_spawner.auth.github import LSSTGitHubOAuthenticator
from lsst_spawner.testing.hub.fixtures import SERVICE, InProcessHub
from lsst_spawner.testing.oauth.cilogon import CILogonUser, FakeCILogon
from lsst_spawner.testing.oauth.github import FakeGitHub, GitHubOrg, GitHubUser

pytestmark = pytest.mark.integration

#: The role of the docs' example: instructors may read the students' user models.
ROLE = {
    "name": "student-readers",
    "scopes": ["read:users!group=students"],
    "groups": ["instructors"],
}
#: What the test reads over the REST API beyond the kit's admin token.
READER = {"name": "group-reader", "scopes": ["read:groups", "read:roles"], "services": [SERVICE]}
ADMINS = ("Hub-Admins", 51000)
INSTRUCTORS = ("Instructors", 51500)
STUDENTS = ("students", 52000)


def _config(cls: type, records: Path, provider: dict[str, Any]) -> dict[str, Any]:
    return {
        "JupyterHub": {
            "load_roles": [ROLE, READER],
            "spawner_class": "lsst_spawner.testing.hub.recording_spawner.RecordingSpawner",
        },
        "Authenticator": {"manage_groups": True},
        cls.__name__: {
            "admin_groups": {"hub-admins"},
            "oauth_callback_url": "http://127.0.0.1/set-below",
            **provider,
        },
        "RecordingSpawner": {"record_file": str(records)},
        "Spawner": {"start_timeout": 10, "http_timeout": 10},
    }


class GroupHub:
    """The in-process hub and the function that sets the user's groups at its fake provider."""

    def __init__(self, hub: InProcessHub, set_groups: Callable[[list[tuple[str, int]]], None]):
        self.hub = hub
        self.url = hub.url
        self.set_groups = set_groups


async def _start(lsst_hub: Any, cls: type, config: dict[str, Any]) -> InProcessHub:
    hub: InProcessHub = await lsst_hub(config=config, authenticator=cls)
    # The hub's own server is the public address here; its port is known once started.
    hub.app.authenticator.oauth_callback_url = f"{hub.url}/oauth_callback"
    return hub


@pytest.fixture(params=["github", "cilogon"])
async def hub(
    request: pytest.FixtureRequest, lsst_hub: Any, tmp_path: Path
) -> AsyncIterator[GroupHub]:
    records = tmp_path / "records"
    if request.param == "github":
        github = FakeGitHub()
        gh_user = github.add_user(GitHubUser("vera", 41370, orgs=[]))
        with github:
            provider = {"allow_all": True, **github.authenticator_config()}
            config = _config(LSSTGitHubOAuthenticator, records, provider)

            def set_orgs(groups: list[tuple[str, int]]) -> None:
                gh_user.orgs[:] = [GitHubOrg(name, gid) for name, gid in groups]

            yield GroupHub(await _start(lsst_hub, LSSTGitHubOAuthenticator, config), set_orgs)
        return
    cilogon = FakeCILogon()
    cl_user = cilogon.add_user(
        CILogonUser("http://cilogon.org/u/1", {"username": "vera", "uidNumber": 41370})
    )
    cl_user.claims["gidNumber"] = 41370
    with cilogon:
        config = _config(LSSTCILogonOAuthenticator, records, cilogon.authenticator_config())

        def set_claims(groups: list[tuple[str, int]]) -> None:
            cl_user.claims["isMemberOf"] = [{"name": name, "id": gid} for name, gid in groups]

        yield GroupHub(await _start(lsst_hub, LSSTCILogonOAuthenticator, config), set_claims)


async def _user_scopes(hub: GroupHub, name: str) -> list[str]:
    """The scopes of a fresh token of ``name`` (tokens inherit their owner's permissions)."""
    status, token = await hub.hub.request("POST", f"/users/{name}/tokens", {"note": "scopes"})
    assert status == 201, token
    request = aiohttp.ClientSession(headers={"Authorization": f"token {token['token']}"})
    async with request as session, session.get(f"{hub.url}/api/user") as response:
        assert response.status == 200
        model = await response.json()
    return list(model["scopes"])


async def _spawn(hub: GroupHub, browser: aiohttp.ClientSession) -> None:
    """Start the user's server from the browser: the hub refreshes the login first."""
    async with browser.get(f"{hub.url}/spawn", allow_redirects=False) as response:
        assert response.status == 302, await response.text()
    await hub.hub.wait_ready("vera")
    await hub.hub.stop("vera")


async def test_admin_group_login_then_removal_at_provider(
    hub: GroupHub, caplog: pytest.LogCaptureFixture
) -> None:
    api = hub.hub.request
    hub.set_groups([ADMINS, INSTRUCTORS, STUDENTS])
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        async with browser.get(f"{hub.url}/oauth_login?next=/hub/home") as response:
            assert response.status == 200, await response.text()
            assert str(response.url).endswith("/hub/home")

        status, model = await api("GET", "/users/vera")
        assert status == 200
        assert model["admin"] is True
        assert sorted(model["groups"]) == ["hub-admins", "instructors", "students"]
        status, group = await api("GET", "/groups/instructors")
        assert status == 200
        assert group["users"] == ["vera"]
        assert group["roles"] == ["student-readers"]
        assert "admin:users" in await _user_scopes(hub, "vera")

        # Removed from the admin group at the provider: the refresh before the spawn applies it.
        hub.set_groups([INSTRUCTORS, STUDENTS])
        await _spawn(hub, browser)
        _, model = await api("GET", "/users/vera")
        assert model["admin"] is False
        assert sorted(model["groups"]) == ["instructors", "students"]
        _, group = await api("GET", "/groups/hub-admins")
        assert group["users"] == []
        scopes = await _user_scopes(hub, "vera")
        assert "admin:users" not in scopes
        # The group's role still grants its scope...
        assert "read:users!group=students" in scopes

        # ...until the user leaves that group too.
        hub.set_groups([STUDENTS])
        await _spawn(hub, browser)
        _, model = await api("GET", "/users/vera")
        assert model["groups"] == ["students"]
        assert "read:users!group=students" not in await _user_scopes(hub, "vera")
    assert "Removing user vera from group(s): {'hub-admins'}" in caplog.text
    assert "Removing user vera from group(s): {'instructors'}" in caplog.text
