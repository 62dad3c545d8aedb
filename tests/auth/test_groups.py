"""JupyterHub group sync and admin-by-group, in both authenticators, through the OAuth flow.

Each test logs in through the real OAuthenticator flow (code exchange, user
info, ``update_auth_model``, ``check_allowed``) against the fake GitHub or the
fake CILogon; the hub side is tested in ``test_hub_login.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.auth.cilogon import LSSTCILogonOAuthenticator
from lsst_spawner.auth.github import LSSTGitHubOAuthenticator
from lsst_spawner.auth.groups import group_name_problem, jupyterhub_groups
from lsst_spawner.cli import main
from lsst_spawner.config import ConfigError
from lsst_spawner.identity import Identity
from lsst_spawner.testing.oauth.cilogon import CILogonUser, FakeCILogon
from lsst_spawner.testing.oauth.fixtures import StubUser, oauth_login
from lsst_spawner.testing.oauth.github import FakeGitHub, GitHubOrg, GitHubUser

SUB = "http://cilogon.org/serverA/users/77"


@dataclass
class Provider:
    """One authenticator with its fake, and how to set the user's groups there."""

    auth: Any
    fake: FakeGitHub | FakeCILogon
    set_groups: Callable[[list[tuple[str, int]]], None]


def _github(fake: FakeGitHub, traits: dict[str, Any]) -> Provider:
    user = fake.add_user(GitHubUser("vera", 41370, orgs=[]))

    def set_groups(groups: list[tuple[str, int]]) -> None:
        user.orgs[:] = [GitHubOrg(name, gid) for name, gid in groups]

    auth = LSSTGitHubOAuthenticator(
        **fake.authenticator_config(),
        oauth_callback_url="http://127.0.0.1:1/hub/oauth_callback",
        enable_auth_state=True,
        allow_all=True,
        **traits,
    )
    return Provider(auth, fake, set_groups)


def _cilogon(fake: FakeCILogon, traits: dict[str, Any]) -> Provider:
    user = fake.add_user(
        CILogonUser(SUB, {"username": "vera", "uidNumber": 41370, "gidNumber": 41370})
    )

    def set_groups(groups: list[tuple[str, int]]) -> None:
        user.claims["isMemberOf"] = [{"name": name, "id": gid} for name, gid in groups]

    auth = LSSTCILogonOAuthenticator(
        **fake.authenticator_config(),
        oauth_callback_url="http://127.0.0.1:1/hub/oauth_callback",
        enable_auth_state=True,
        **traits,
    )
    return Provider(auth, fake, set_groups)


@pytest.fixture(params=["github", "cilogon"])
def provider(
    request: pytest.FixtureRequest, fake_github: FakeGitHub, fake_cilogon: FakeCILogon
) -> Callable[..., Provider]:
    def make(**traits: Any) -> Provider:
        if request.param == "github":
            return _github(fake_github, traits)
        return _cilogon(fake_cilogon, traits)

    return make


async def test_groups_synced_under_posix_names(provider: Callable[..., Provider]) -> None:
    p = provider(manage_groups=True)
    p.set_groups([("Instructors", 5001), ("Data Science!", 5002)])
    model = await oauth_login(p.auth, p.fake)
    assert model is not None
    names = {g.name for g in Identity.from_auth_state(model["auth_state"]).groups}
    # The JupyterHub groups are the identity's (POSIX-safe) names, less the user-private group.
    assert "vera" in names
    assert set(model["groups"]) == names - {"vera"}
    assert "instructors" in model["groups"]
    assert [g for g in model["groups"] if g.startswith("data-science-")]
    assert model["admin"] is None  # no admin_groups: admin status left alone


async def test_without_manage_groups_no_groups_key(provider: Callable[..., Provider]) -> None:
    p = provider()
    p.set_groups([("instructors", 5001)])
    model = await oauth_login(p.auth, p.fake)
    assert model is not None
    assert "groups" not in model


async def test_admin_from_admin_groups_and_revoked_on_refresh(
    provider: Callable[..., Provider],
) -> None:
    p = provider(manage_groups=True, admin_groups={"hub-admins"})
    p.set_groups([("Hub-Admins", 5100), ("students", 5200)])
    model = await oauth_login(p.auth, p.fake)
    assert model is not None
    assert model["admin"] is True
    assert sorted(model["groups"]) == ["hub-admins", "students"]

    p.set_groups([("students", 5200)])
    refreshed = await p.auth.refresh_user(StubUser("vera", model["auth_state"]))
    assert refreshed["admin"] is False
    assert refreshed["groups"] == ["students"]


async def test_admin_users_stay_admin_without_the_group(provider: Callable[..., Provider]) -> None:
    p = provider(manage_groups=True, admin_groups={"hub-admins"}, admin_users={"vera"})
    p.set_groups([("students", 5200)])
    model = await oauth_login(p.auth, p.fake)
    assert model is not None
    assert model["admin"] is True


async def test_allowed_groups_admit_by_posix_name(
    fake_cilogon: FakeCILogon, fake_github: FakeGitHub
) -> None:
    # Without allow_all, OAuthenticator's allowed_groups admits members by synced name.
    github = LSSTGitHubOAuthenticator(
        **fake_github.authenticator_config(),
        oauth_callback_url="http://127.0.0.1:1/hub/oauth_callback",
        enable_auth_state=True,
        manage_groups=True,
        allowed_groups={"lsst-staff"},
    )
    fake_github.add_user(GitHubUser("vera", 41370, orgs=[GitHubOrg("LSST-Staff", 5300)]))
    fake_github.add_user(GitHubUser("eve", 41371, orgs=[GitHubOrg("other", 5301)]))
    assert await oauth_login(github, fake_github, "vera") is not None
    assert await oauth_login(github, fake_github, "eve") is None


async def test_known_groups_drop_others_and_keep_primary(
    provider: Callable[..., Provider], caplog: pytest.LogCaptureFixture
) -> None:
    p = provider(manage_groups=True, known_groups={"instructors", "students"})
    p.set_groups([("instructors", 5001), ("unrelated", 5002)])
    with caplog.at_level(logging.INFO):
        model = await oauth_login(p.auth, p.fake)
    assert model is not None
    identity = Identity.from_auth_state(model["auth_state"])
    assert [g.name for g in identity.groups] == ["vera", "instructors"]
    assert identity.gid == 41370
    assert model["groups"] == ["instructors"]
    assert "Dropping group 'unrelated' of 'vera': not among known_groups" in caplog.text


async def test_outage_keeps_groups_unchanged(provider: Callable[..., Provider]) -> None:
    p = provider(manage_groups=True, admin_groups={"hub-admins"}, refresh_grace_period=300)
    p.set_groups([("hub-admins", 5100)])
    model = await oauth_login(p.auth, p.fake)
    assert model is not None
    p.fake.outage = True
    # True: JupyterHub keeps the user's groups and admin flag as they are.
    assert await p.auth.refresh_user(StubUser("vera", model["auth_state"])) is True


async def test_auth_state_groups_key_defers_to_oauthenticator(fake_github: FakeGitHub) -> None:
    auth = LSSTGitHubOAuthenticator(
        **fake_github.authenticator_config(),
        oauth_callback_url="http://127.0.0.1:1/hub/oauth_callback",
        enable_auth_state=True,
        allow_all=True,
        manage_groups=True,
        auth_state_groups_key=lambda state: ["from-hook"],
    )
    fake_github.add_user(GitHubUser("vera", 41370, orgs=[GitHubOrg("instructors", 5001)]))
    model = await oauth_login(auth, fake_github)
    assert model["groups"] == ["from-hook"]


def test_jupyterhub_groups_of_an_identity() -> None:
    identity = {
        "username": "rra",
        "groups": [{"name": "rra", "gid": 4137}, {"name": "g_users", "gid": 3000}],
    }
    assert jupyterhub_groups(identity) == {"g_users"}
    assert jupyterhub_groups({"username": "rra"}) == set()


@pytest.mark.parametrize("cls", [LSSTGitHubOAuthenticator, LSSTCILogonOAuthenticator])
def test_config_problems_name_the_trait(cls: type) -> None:
    auth = cls(
        manage_groups=True,
        enable_auth_state=True,
        admin_groups={"Hub Admins", "hub-admins", "ghost"},
        allowed_groups={"bad\nname"},
        known_groups={"hub-admins", "Students"},
    )
    problems = {str(p) for p in auth.config_problems()}
    name = cls.__name__
    assert (
        f"{name}.admin_groups: 'Hub Admins' is not a POSIX group name; groups are synced "
        "under their POSIX-safe names: 1 to 32 characters [a-z0-9_-], starting with a letter "
        "or '_' (the provider's 'Hub Admins' is synced as 'hub-admins-"
    ) in "\n".join(problems)
    assert f"{name}.admin_groups: 'ghost' is not among known_groups: no user can be in it" in (
        problems
    )
    assert any(p.startswith(f"{name}.allowed_groups: 'bad\\nname' is not") for p in problems)
    assert any(p.startswith(f"{name}.known_groups: 'Students' is not") for p in problems)
    assert not any("'hub-admins'" in p.split(":")[1] for p in problems if "admin_groups" in p)


def test_group_name_problem() -> None:
    assert group_name_problem("instructors") is None
    assert group_name_problem("_18f") is None
    assert group_name_problem("x" * 33) is not None
    assert group_name_problem(None) is not None


@pytest.mark.parametrize("cls", [LSSTGitHubOAuthenticator, LSSTCILogonOAuthenticator])
def test_group_traits_without_manage_groups_are_a_problem(cls: type) -> None:
    # Upstream raised at assignment, so the result depended on the order of the config.
    auth = cls(enable_auth_state=True, admin_groups={"hub-admins"}, allowed_groups={"x"})
    problems = sorted(str(p) for p in auth.config_problems())
    assert problems == [
        f"{cls.__name__}.admin_groups: needs manage_groups = True (c.Authenticator.manage_groups)",
        f"{cls.__name__}.allowed_groups: needs manage_groups = True "
        "(c.Authenticator.manage_groups)",
    ]
    with pytest.raises(ConfigError, match="admin_groups: needs manage_groups"):
        auth.check_allow_config()


@pytest.mark.parametrize("manage_first", [True, False])
def test_check_config_is_order_free(
    manage_first: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        'c.JupyterHub.authenticator_class = "lsst-github"',
        'c.LSSTGitHubOAuthenticator.client_id = "id"',
        'c.LSSTGitHubOAuthenticator.client_secret = "secret"',
        "c.Authenticator.enable_auth_state = True",
    ]
    group_lines = [
        "c.LSSTGitHubOAuthenticator.manage_groups = True",
        'c.LSSTGitHubOAuthenticator.admin_groups = {"hub-admins"}',
    ]
    path = tmp_path / "config.py"
    path.write_text("\n".join(lines + (group_lines if manage_first else group_lines[::-1])))
    assert main(["check-config", "-f", str(path)]) == 0, capsys.readouterr().out


def test_shadowed_upstream_observer_still_exists() -> None:
    """The one private OAuthenticator name GroupSyncMixin overrides (contract with upstream)."""
    from oauthenticator.oauth2 import OAuthenticator
    from traitlets.traitlets import ObserveHandler

    assert isinstance(OAuthenticator.__dict__["_requires_manage_groups"], ObserveHandler)
    assert not isinstance(
        LSSTGitHubOAuthenticator._requires_manage_groups, ObserveHandler
    )  # ours is a plain method, so upstream's is not registered
