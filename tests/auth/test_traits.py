"""The authenticators' traits live in lsst_spawner.auth.traits and become settings there."""

from __future__ import annotations

import pytest

from lsst_spawner.auth.cilogon import LSSTCILogonOAuthenticator
from lsst_spawner.auth.github import LSSTGitHubOAuthenticator
from lsst_spawner.auth.traits import (
    SETTINGS_TRAITS,
    CILogonSettings,
    GitHubSettings,
    IdentitySettings,
    IdentityTraits,
    to_settings,
)
from lsst_spawner.config import ConfigError

AUTHENTICATORS = [LSSTGitHubOAuthenticator, LSSTCILogonOAuthenticator]


@pytest.mark.parametrize("cls", AUTHENTICATORS)
def test_every_lsst_trait_is_declared_in_traits_py_with_help(cls: type) -> None:
    ours = {
        name: trait
        for name, trait in cls.class_traits().items()  # type: ignore[attr-defined]
        if trait.this_class.__module__.startswith("lsst_spawner.")
    }
    assert ours, "the authenticator has lsst_spawner traits"
    assert {t.this_class.__module__ for t in ours.values()} == {"lsst_spawner.auth.traits"}
    assert set(ours) <= SETTINGS_TRAITS
    for name, trait in ours.items():
        sentences = trait.help.count(". ") + 1
        assert trait.help.endswith((".", ")")), (name, trait.help)
        assert sentences <= 2, (name, trait.help)


def test_github_settings_are_the_traits_frozen() -> None:
    auth = LSSTGitHubOAuthenticator(
        enable_auth_state=True,
        min_uid=2000,
        allowed_system_gids=[100],
        teams_as_groups=True,
        primary_gid=5000,
        denied_organizations={"evil-corp"},
        refresh_grace_period="30m",
    )
    settings, problems = to_settings(auth)
    assert problems == []
    assert isinstance(settings, GitHubSettings)
    assert settings.policy.min_uid == 2000
    assert settings.policy.allowed_gids == frozenset({100})
    assert settings.teams_as_groups is True
    assert settings.primary_gid == 5000
    assert settings.denied_organizations == frozenset({"evil-corp"})
    assert settings.refresh_grace_period == 1800.0
    assert auth.auth_settings == settings
    with pytest.raises(AttributeError):
        settings.primary_gid = 1  # type: ignore[misc]


def test_cilogon_settings_hold_the_claims_and_the_synthetic_range() -> None:
    auth = LSSTCILogonOAuthenticator(
        enable_auth_state=True, uid_claim="uid", synthetic_gid_min=3_000_000
    )
    settings, problems = to_settings(auth)
    assert problems == []
    assert isinstance(settings, CILogonSettings)
    assert settings.uid_claim == "uid"
    assert settings.synthetic_gids[0] == 3_000_000


def test_a_problem_in_its_own_traits_voids_the_settings_and_fails_the_login() -> None:
    auth = LSSTGitHubOAuthenticator(enable_auth_state=True, min_uid=0, primary_group_name="A b")
    settings, problems = to_settings(auth)
    assert settings is None
    assert [str(p) for p in problems] == [
        "LSSTGitHubOAuthenticator.min_uid: must be between 1 and 4294967294, not 0",
        "LSSTGitHubOAuthenticator.primary_group_name: 'A b' is not a POSIX group name "
        "([a-z_][a-z0-9_-]*, at most 32 characters)",
    ]
    assert [str(p) for p in auth.config_problems()] == [str(p) for p in problems]
    with pytest.raises(ConfigError, match=r"LSSTGitHubOAuthenticator\.min_uid: must be between"):
        auth.build_identity(username="rra", uid=4137, gid=4137, primary_group_name=None, groups=[])


def test_a_problem_in_a_jupyterhub_trait_is_reported_but_keeps_the_settings() -> None:
    auth = LSSTCILogonOAuthenticator(enable_auth_state=False)
    settings, problems = to_settings(auth)
    assert isinstance(settings, CILogonSettings)
    assert [p.where for p in problems] == ["LSSTCILogonOAuthenticator.enable_auth_state"]


def test_a_plain_identity_traits_object_gets_identity_settings() -> None:
    settings, problems = to_settings(IdentityTraits(min_gid=1500, known_groups={"staff"}))
    assert problems == []
    assert type(settings) is IdentitySettings
    assert settings.policy.min_gid == 1500
    assert settings.known_groups == frozenset({"staff"})


def test_a_trait_changed_after_construction_is_what_the_next_login_uses() -> None:
    auth = LSSTGitHubOAuthenticator(enable_auth_state=True)
    auth.min_uid = 5000
    with pytest.raises(Exception, match="uid 4137 is below the minimum uid 5000"):
        auth.build_identity(username="rra", uid=4137, gid=4137, primary_group_name=None, groups=[])
