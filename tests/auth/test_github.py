"""LSSTGitHubOAuthenticator against the fake GitHub: mappings, rejections, refresh, tokens."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from tornado import web

from lsst_spawner.auth.base import CHECKED_AT_KEY
from lsst_spawner.auth.github import LSSTGitHubOAuthenticator
from lsst_spawner.auth.names import name_digest
from lsst_spawner.identity import Identity
from lsst_spawner.testing.oauth.fixtures import StubUser, oauth_login
from lsst_spawner.testing.oauth.github import (
    FakeGitHub,
    GitHubEmail,
    GitHubOrg,
    GitHubTeam,
    GitHubUser,
)

SQRE = GitHubOrg("lsst-sqre", 30100)
DM = GitHubOrg("LSST-DM", 30200)


def make_auth(fake: FakeGitHub, **traits: Any) -> LSSTGitHubOAuthenticator:
    config: dict[str, Any] = {
        **fake.authenticator_config(),
        "oauth_callback_url": "http://127.0.0.1:1/hub/oauth_callback",
        "enable_auth_state": True,
        "allow_all": True,
    }
    config.update(traits)
    return LSSTGitHubOAuthenticator(**config)


def add(fake: FakeGitHub, **fields: Any) -> GitHubUser:
    defaults: dict[str, Any] = {"login": "vera", "id": 41370, "name": "Vera Rubin", "orgs": [SQRE]}
    defaults.update(fields)
    return fake.add_user(GitHubUser(**defaults))


async def login_identity(auth: LSSTGitHubOAuthenticator, fake: FakeGitHub) -> Identity:
    model = await oauth_login(auth, fake)
    assert model is not None
    return Identity.from_auth_state(model["auth_state"])


async def rejection(auth: LSSTGitHubOAuthenticator, fake: FakeGitHub) -> str:
    with pytest.raises(web.HTTPError) as info:
        await oauth_login(auth, fake)
    assert info.value.status_code == 403
    message = info.value.get_message()
    assert message
    return message


# --- mapping -----------------------------------------------------------------


async def test_default_mapping(fake_github: FakeGitHub) -> None:
    add(fake_github, login="Vera", email="vera@example.org", orgs=[SQRE, DM])
    identity = await login_identity(make_auth(fake_github), fake_github)
    assert identity.username == "vera"
    assert identity.uid == 41370
    assert identity.gid == 41370
    assert [(g.name, g.gid) for g in identity.groups] == [
        ("vera", 41370),
        ("lsst-sqre", 30100),
        ("lsst-dm", 30200),
    ]
    assert identity.name == "Vera Rubin"
    assert identity.email == "vera@example.org"
    assert identity.git_token is None


async def test_fixed_site_gid(fake_github: FakeGitHub) -> None:
    add(fake_github)
    auth = make_auth(fake_github, primary_gid=2000, primary_group_name="rubin")
    identity = await login_identity(auth, fake_github)
    assert identity.gid == 2000
    assert identity.groups[0].name == "rubin"
    assert identity.groups[0].gid == 2000
    assert "vera" not in [g.name for g in identity.groups]


async def test_teams_only_with_trait(fake_github: FakeGitHub) -> None:
    add(fake_github, teams=[GitHubTeam(SQRE, "square", 70001), GitHubTeam(DM, "Arch", 70002)])
    without = await login_identity(make_auth(fake_github), fake_github)
    assert not any("square" in g.name for g in without.groups)
    assert ("GET", "/api/v3/user/teams") not in fake_github.requests
    identity = await login_identity(make_auth(fake_github, teams_as_groups=True), fake_github)
    names = {g.name: g.gid for g in identity.groups}
    assert names["lsst-sqre-square"] == 70001
    assert names["lsst-dm-arch"] == 70002


async def test_team_gid_colliding_with_org_is_dropped(
    fake_github: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    add(fake_github, teams=[GitHubTeam(SQRE, "square", SQRE.id)])
    with caplog.at_level(logging.WARNING):
        identity = await login_identity(make_auth(fake_github, teams_as_groups=True), fake_github)
    assert [g.name for g in identity.groups] == ["vera", "lsst-sqre"]
    assert "Dropping team group 'lsst-sqre-square': gid 30100 is already used" in caplog.text


async def test_hidden_email_uses_primary_verified(fake_github: FakeGitHub) -> None:
    add(
        fake_github,
        email=None,
        emails=[
            GitHubEmail("old@example.org", primary=False, verified=True),
            GitHubEmail("vera@example.org", primary=True, verified=True),
        ],
    )
    identity = await login_identity(make_auth(fake_github), fake_github)
    assert identity.email == "vera@example.org"


async def test_unverified_primary_email_is_not_used(fake_github: FakeGitHub) -> None:
    add(
        fake_github,
        email=None,
        emails=[GitHubEmail("spoof@example.org", primary=True, verified=False)],
    )
    identity = await login_identity(make_auth(fake_github), fake_github)
    assert identity.email is None


async def test_scopes(fake_github: FakeGitHub) -> None:
    assert make_auth(fake_github).scope == ["read:org", "user:email"]
    assert make_auth(fake_github, provision_git_token=True).scope == [
        "read:org",
        "user:email",
        "public_repo",
    ]


async def test_git_token_only_when_provisioned(fake_github: FakeGitHub) -> None:
    add(fake_github)
    identity = await login_identity(make_auth(fake_github, provision_git_token=True), fake_github)
    assert identity.git_token == fake_github.issued_tokens[-1]
    assert "git_token" not in repr(identity)


async def test_more_than_100_orgs_are_paginated(fake_github: FakeGitHub) -> None:
    orgs = [GitHubOrg(f"org-{i:03d}", 100000 + i) for i in range(250)]
    add(fake_github, orgs=orgs)
    identity = await login_identity(make_auth(fake_github), fake_github)
    gids = {g.gid for g in identity.groups}
    assert {org.id for org in orgs} <= gids
    assert len(identity.groups) == 251
    assert fake_github.requests.count(("GET", "/api/v3/user/orgs")) == 3


# --- hostile names -------------------------------------------------------------


async def test_hostile_org_names_are_mapped(fake_github: FakeGitHub) -> None:
    hostile = [
        GitHubOrg("a:b", 30301),
        GitHubOrg("x" * 200, 30302),
        GitHubOrg("Équipe-Ünïcode", 30303),
        GitHubOrg("日本語", 30304),
    ]
    add(fake_github, orgs=hostile)
    identity = await login_identity(make_auth(fake_github), fake_github)
    names = {g.gid: g.name for g in identity.groups}
    assert names[30301] == "a-b-" + name_digest("a:b")
    assert names[30302] == "x" * 23 + "-" + name_digest("x" * 200)
    assert names[30303] == "equipe-unicode-" + name_digest("Équipe-Ünïcode")
    assert names[30304] == "_-" + name_digest("日本語")
    for group in identity.groups:
        assert ":" not in group.name
        assert len(group.name) <= 32
        assert group.name.isascii()


async def test_org_name_with_newline_rejects_login(
    fake_github: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    add(fake_github, orgs=[SQRE, GitHubOrg("evil\nroot:x:0:0::/root:/bin/sh", 30400)])
    with caplog.at_level(logging.WARNING):
        message = await rejection(make_auth(fake_github), fake_github)
    assert "organization group name 'evil\\nroot:x:0:0::/root:/bin/sh' contains control" in message
    assert "Refusing login of 'vera'" in caplog.text


async def test_org_name_with_newline_dropped_when_configured(fake_github: FakeGitHub) -> None:
    add(fake_github, orgs=[SQRE, GitHubOrg("evil\nroot:x:0:0::/root:/bin/sh", 30400)])
    identity = await login_identity(make_auth(fake_github, unsafe_group_names="drop"), fake_github)
    assert [g.gid for g in identity.groups] == [41370, 30100]


# --- rejections ------------------------------------------------------------------


async def test_denied_organization(fake_github: FakeGitHub) -> None:
    add(fake_github, orgs=[SQRE, GitHubOrg("Evil-Corp", 30500)])
    message = await rejection(
        make_auth(fake_github, denied_organizations={"evil-corp"}), fake_github
    )
    assert message == "members of the GitHub organization 'Evil-Corp' may not use this hub"


async def test_denied_team(fake_github: FakeGitHub) -> None:
    add(fake_github, teams=[GitHubTeam(SQRE, "interns", 70003)])
    auth = make_auth(fake_github, denied_organizations={"lsst-sqre:interns"})
    message = await rejection(auth, fake_github)
    assert "GitHub team 'lsst-sqre':'interns'" in message


async def test_denied_wins_over_allowed(fake_github: FakeGitHub) -> None:
    add(fake_github, orgs=[SQRE, GitHubOrg("evil-corp", 30500)])
    auth = make_auth(
        fake_github,
        allow_all=False,
        allowed_organizations={"lsst-sqre"},
        denied_organizations={"evil-corp"},
    )
    await rejection(auth, fake_github)


async def test_allowed_organizations_keeps_upstream_meaning(fake_github: FakeGitHub) -> None:
    add(fake_github, orgs=[SQRE])
    add(fake_github, login="eve", id=41380, orgs=[DM])
    auth = make_auth(fake_github, allow_all=False, allowed_organizations={"lsst-sqre"})
    assert await oauth_login(auth, fake_github, "vera") is not None
    assert await oauth_login(auth, fake_github, "eve") is None


async def test_uid_below_minimum(fake_github: FakeGitHub) -> None:
    add(fake_github, id=999)
    message = await rejection(make_auth(fake_github), fake_github)
    assert message == "uid 999 is below the minimum uid 1000 allowed on this hub"
    add(fake_github, id=999)
    assert await oauth_login(make_auth(fake_github, min_uid=500, min_gid=500), fake_github)


async def test_uid_zero(fake_github: FakeGitHub) -> None:
    add(fake_github, id=0)
    assert "uid 0 is below" in await rejection(
        make_auth(fake_github, min_uid=1, min_gid=1), fake_github
    )


async def test_low_org_gid_dropped(
    fake_github: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    add(fake_github, orgs=[SQRE, GitHubOrg("tty-like", 5)])
    with caplog.at_level(logging.WARNING):
        identity = await login_identity(make_auth(fake_github), fake_github)
    assert 5 not in identity.supplemental_gids
    assert "gid 5 is below min_gid 1000" in caplog.text


# --- refresh -----------------------------------------------------------------------


async def test_refresh_picks_up_group_changes(fake_github: FakeGitHub) -> None:
    user = add(fake_github)
    auth = make_auth(fake_github)
    model = await oauth_login(auth, fake_github)
    assert auth.refresh_pre_spawn
    user.orgs.append(DM)
    refreshed = await auth.refresh_user(StubUser("vera", model["auth_state"]))
    groups = Identity.from_auth_state(refreshed["auth_state"]).groups
    assert "lsst-dm" in [g.name for g in groups]


async def test_refresh_after_joining_denied_org_requires_login(fake_github: FakeGitHub) -> None:
    user = add(fake_github)
    auth = make_auth(fake_github, denied_organizations={"evil-corp"})
    model = await oauth_login(auth, fake_github)
    user.orgs.append(GitHubOrg("evil-corp", 30500))
    assert await auth.refresh_user(StubUser("vera", model["auth_state"])) is False


async def test_outage_within_grace_keeps_identity(
    fake_github: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    add(fake_github)
    auth = make_auth(fake_github, refresh_grace_period="1h")
    model = await oauth_login(auth, fake_github)
    fake_github.outage = True
    with caplog.at_level(logging.WARNING):
        assert await auth.refresh_user(StubUser("vera", model["auth_state"])) is True
    assert "Identity provider unreachable while refreshing vera" in caplog.text
    assert "keeping the identity" in caplog.text


async def test_outage_past_grace_requires_login(
    fake_github: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    add(fake_github)
    auth = make_auth(fake_github, refresh_grace_period="10m")
    model = await oauth_login(auth, fake_github)
    model["auth_state"][CHECKED_AT_KEY] -= 601
    fake_github.outage = True
    assert await auth.refresh_user(StubUser("vera", model["auth_state"])) is False
    assert "past the grace period" in caplog.text


async def test_provider_down_within_grace(fake_github: FakeGitHub) -> None:
    add(fake_github)
    auth = make_auth(fake_github)
    model = await oauth_login(auth, fake_github)
    fake_github.stop()  # connection refused, not a 5xx
    assert await auth.refresh_user(StubUser("vera", model["auth_state"])) is True


async def test_revoked_token_requires_login(fake_github: FakeGitHub) -> None:
    add(fake_github)
    auth = make_auth(fake_github)
    model = await oauth_login(auth, fake_github)
    fake_github.revoke_tokens()
    assert await auth.refresh_user(StubUser("vera", model["auth_state"])) is False


# --- tokens and configuration ------------------------------------------------------------


async def test_token_never_logged(
    fake_github: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    add(fake_github, email=None, emails=[GitHubEmail("vera@example.org", primary=True)])
    auth = make_auth(fake_github, provision_git_token=True, teams_as_groups=True)
    caplog.set_level(logging.DEBUG)
    auth.log.setLevel(logging.DEBUG)
    model = await oauth_login(auth, fake_github)
    await auth.refresh_user(StubUser("vera", model["auth_state"]))
    fake_github.outage = True
    await auth.refresh_user(StubUser("vera", model["auth_state"]))
    assert model["auth_state"]["identity"]["git_token"] == fake_github.issued_tokens[0]
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Identity of vera" in text
    for token in fake_github.issued_tokens:
        assert token not in text


def test_config_problems(fake_github: FakeGitHub) -> None:
    assert make_auth(fake_github).config_problems() == []
    auth = make_auth(
        fake_github,
        provision_git_token=True,
        scope=["user:email"],
        primary_gid=5,
        primary_group_name="Bad:Name",
        denied_organizations={"a:b:c"},
        min_uid=0,
    )
    wheres = sorted(p.where for p in auth.config_problems())
    assert wheres == [
        "LSSTGitHubOAuthenticator.denied_organizations",
        "LSSTGitHubOAuthenticator.min_uid",
        "LSSTGitHubOAuthenticator.primary_gid",
        "LSSTGitHubOAuthenticator.primary_group_name",
        "LSSTGitHubOAuthenticator.scope",
        "LSSTGitHubOAuthenticator.scope",
    ]
    with pytest.raises(Exception, match="configuration problem"):
        auth.check_allow_config()
