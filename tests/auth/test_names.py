"""POSIX group-name mapping and collision resolution."""

from __future__ import annotations

import logging
import random

import pytest

from lsst_spawner.auth.names import (
    GroupCandidate,
    UnsafeNameError,
    name_digest,
    posix_group_name,
    resolve_groups,
)
from lsst_spawner.identity import GROUP_NAME_PATTERN, Group

log = logging.getLogger("test_names")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("lsst-sqre", "lsst-sqre"),
        ("LSST-SQRE", "lsst-sqre"),
        ("g_users", "g_users"),
        ("18f", "_18f"),
        ("a" * 32, "a" * 32),
    ],
)
def test_valid_names_map_without_suffix(raw: str, expected: str) -> None:
    assert posix_group_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "prefix"),
    [
        ("a:b", "a-b-"),
        ("my org", "my-org-"),
        ("Équipe Rubin", "equipe-rubin-"),
        ("-lead", "lead-"),
        ("a/../../etc", "a-etc-"),
        ("日本", "_-"),
        ("root:x:0:0", "root-x-0-0-"),
    ],
)
def test_lossy_names_get_a_digest_suffix(raw: str, prefix: str) -> None:
    name = posix_group_name(raw)
    assert name == prefix + name_digest(raw)
    assert GROUP_NAME_PATTERN.fullmatch(name)


def test_long_name_is_truncated_with_digest() -> None:
    raw = "x" * 200
    name = posix_group_name(raw)
    assert len(name) == 32
    assert name == "x" * 23 + "-" + name_digest(raw)
    assert posix_group_name("x" * 199) != name


@pytest.mark.parametrize(
    "raw",
    [
        "evil\nroot:x:0:0::/:/bin/sh",
        "a\rb",
        "nul\x00byte",
        "tab\there",
        "bidi\u202eevil",
        "zero\u200bwidth",
        "line\u2028sep",
        "",
        "y" * 257,
        None,
        42,
    ],
)
def test_unsafe_names_are_refused(raw: object) -> None:
    with pytest.raises(UnsafeNameError):
        posix_group_name(raw)


def _candidates() -> list[GroupCandidate]:
    return [
        GroupCandidate("user", "user", 5000, "primary", primary=True),
        GroupCandidate("LSST", "lsst", 3001, "isMemberOf"),
        GroupCandidate("lsst", "lsst", 3002, "isMemberOf"),
        GroupCandidate("dup", "dup", 3003, "isMemberOf"),
        GroupCandidate("dup", "dup", 3003, "isMemberOf"),
        GroupCandidate("team-x", "team-x", 5000, "team"),
        GroupCandidate("other", "other", 3002, "team"),
    ]


def test_collisions_resolved_independently_of_order(caplog: pytest.LogCaptureFixture) -> None:
    results = set()
    for seed in range(200):
        order = _candidates()
        random.Random(seed).shuffle(order)
        results.add(tuple(resolve_groups(order, log)))
    assert len(results) == 1
    with caplog.at_level(logging.WARNING):
        groups = resolve_groups(_candidates(), log)
    renamed = "lsst"[:23] + "-" + name_digest("LSST:3001")
    assert groups == [
        Group("user", 5000),
        Group("lsst", 3002),  # unchanged name wins the name
        Group("dup", 3003),  # exact repeat dropped silently
        Group(renamed, 3001),  # LSST renamed
    ]
    messages = caplog.text
    assert "Dropping team group 'team-x': gid 5000 is already used by group 'user'" in messages
    assert "Dropping team group 'other': gid 3002 is already used by group 'lsst'" in messages
    assert f"Renaming isMemberOf group 'LSST' (gid 3001) to '{renamed}'" in messages
