"""Bounded identity fields (issue 13): each hostile value rejected early, with a message.

Before, these passed the identity contract and failed late (at the API server or
at exec) or landed verbatim in the lab's environment.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from lsst_spawner.identity import (
    MAX_EMAIL_LENGTH,
    MAX_GIT_TOKEN_LENGTH,
    Identity,
    IdentityError,
    clean_display_name,
)

GOOD: dict[str, Any] = {
    "username": "rra",
    "uid": 4137,
    "gid": 4137,
    "groups": [{"name": "rra", "gid": 4137}],
    "name": "Russ Allbery",
    "email": "rra@example.org",
    "git_token": "gho_GitTokenValue0123456789",
}

HOSTILE_CHARACTERS = {
    "NUL": "\x00",
    "ESC": "\x1b",
    "DEL": "\x7f",
    "newline": "\n",
    "RLO U+202E": "\u202e",
    "RLM U+200F": "\u200f",
    "LRI U+2066": "\u2066",
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "BOM": "\ufeff",
    "line separator": "\u2028",
}


def identity(**overrides: Any) -> Identity:
    return Identity.from_dict({**GOOD, **overrides})


@pytest.mark.parametrize("character", HOSTILE_CHARACTERS.values(), ids=HOSTILE_CHARACTERS.keys())
@pytest.mark.parametrize("field", ["email", "name"])
def test_control_bidi_and_invisible_characters_are_rejected(field: str, character: str) -> None:
    value = f"rra{character}@example.org" if field == "email" else f"Russ{character} Allbery"
    with pytest.raises(IdentityError, match=rf"^{field} ") as excinfo:
        identity(**{field: value})
    assert "control, bidi and invisible characters are not allowed" in str(excinfo.value)


@pytest.mark.parametrize("character", HOSTILE_CHARACTERS.values(), ids=HOSTILE_CHARACTERS.keys())
def test_git_tokens_are_visible_ascii(character: str) -> None:
    with pytest.raises(IdentityError, match="git_token must be visible ASCII"):
        identity(git_token=f"gho_abc{character}def")
    with pytest.raises(IdentityError, match="git_token must be visible ASCII"):
        identity(git_token="gho_abc déf")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("email", "a" * 200_000 + "@example.org", "email is 200012 characters, more than the 254"),
        ("email", "a" * 2_000_000 + "@example.org", "more than the 254 allowed"),
        ("name", "N" * 257, "name is 257 characters, more than the 256 allowed"),
        ("git_token", "g" * 2_000_000, "git_token is 2000000 characters, more than the 4096"),
        ("username", "a" * 65, "use 1 to 64"),
        ("groups", [{"name": "g" * 33, "gid": 5000}], "1 to 32 characters"),
    ],
)
def test_fields_are_bounded(field: str, value: Any, message: str) -> None:
    with pytest.raises(IdentityError, match=message) as excinfo:
        identity(**{field: value})
    assert len(str(excinfo.value)) < 400  # the value is not echoed whole


def test_the_bounds_themselves_are_accepted() -> None:
    local = "a" * (MAX_EMAIL_LENGTH - len("@example.org"))
    accepted = identity(
        email=f"{local}@example.org",
        name="Ŕüß Allbéry 😀 " + "n" * 240,
        git_token="g" * MAX_GIT_TOKEN_LENGTH,
    )
    assert accepted.email is not None
    assert len(accepted.email) == MAX_EMAIL_LENGTH


@pytest.mark.parametrize("auth_state", [[], ["identity"], "identity", 42, True, 1.5])
def test_a_malformed_auth_state_is_rejected_with_a_message(auth_state: Any) -> None:
    with pytest.raises(IdentityError) as excinfo:
        Identity.from_auth_state(auth_state)
    assert "auth_state must be a JSON object holding 'identity'" in str(excinfo.value)
    assert type(auth_state).__name__ in str(excinfo.value)


@pytest.mark.parametrize("inner", [[], "rra", 42, [GOOD]])
def test_a_malformed_identity_inside_auth_state_is_rejected(inner: Any) -> None:
    with pytest.raises(IdentityError):
        Identity.from_auth_state({"identity": inner})


def test_clean_display_name_keeps_a_login_with_an_invisible_character() -> None:
    assert clean_display_name("Ada\u200d Lovelace\u202e\n") == "Ada Lovelace"
    assert clean_display_name("\u200b") is None
    assert clean_display_name(42) is None
    assert clean_display_name("x" * 1000) == "x" * 256


def login(authenticator: Any, **fields: Any) -> Identity:
    """``build_identity`` for rra (uid and gid 4137) with ``fields`` from the provider."""
    built: Identity = authenticator.build_identity(
        **{"username": "rra", "uid": 4137, "gid": 4137, "primary_group_name": None, "groups": []}
        | fields
    )
    return built


def test_the_authenticator_cleans_names_and_drops_hostile_emails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from lsst_spawner.auth.github import LSSTGitHubOAuthenticator

    authenticator = LSSTGitHubOAuthenticator()
    with caplog.at_level(logging.WARNING):
        built = login(
            authenticator,
            name="Russ\u202e Allbery",
            email="rra\x1b[31m@example.org",
            git_token="gho_token",
        )
    assert built.name == "Russ Allbery"
    assert built.email is None
    assert "Ignoring invalid email address" in caplog.text


def test_the_authenticator_refuses_an_oversized_git_token() -> None:
    from lsst_spawner.auth.base import IdentityRejected
    from lsst_spawner.auth.github import LSSTGitHubOAuthenticator

    with pytest.raises(IdentityRejected, match="git_token is 2000000 characters"):
        login(LSSTGitHubOAuthenticator(), git_token="g" * 2_000_000)


def test_the_authenticator_keeps_only_allowed_system_gids(caplog: pytest.LogCaptureFixture) -> None:
    from lsst_spawner.auth.github import LSSTGitHubOAuthenticator

    authenticator = LSSTGitHubOAuthenticator(allowed_system_gids=[100])
    with caplog.at_level(logging.WARNING):
        built = login(
            authenticator,
            groups=[("users", 100, "org"), ("sudo", 27, "org"), ("lsst", 3010, "org")],
        )
    assert sorted(g.gid for g in built.groups) == [100, 3010, 4137]
    assert "Dropping org group 'sudo' of 'rra': gid 27 is below min_gid 1000" in caplog.text
    assert "'users'" not in caplog.text
    problems = LSSTGitHubOAuthenticator(allowed_system_gids=[0]).config_problems()
    assert [str(p) for p in problems if "allowed_system_gids" in p.where] == [
        "LSSTGitHubOAuthenticator.allowed_system_gids[0]: 0 must be a gid in 1..4294967294 "
        "(never root's group)"
    ]
