"""Synthetic gids: deterministic, in range, the same in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lsst_spawner.auth.gids import (
    DEFAULT_SYNTHETIC_GID_MAX,
    DEFAULT_SYNTHETIC_GID_MIN,
    synthetic_gid,
)

ROOT = Path(__file__).resolve().parents[2]
NAMES = ["g_users", "lsst-sqre", "Équipe", "a:b", "x" * 200, "CO:COU:rubin:members:active"]


def test_in_range_and_spread() -> None:
    gids = [synthetic_gid(f"group-{i}") for i in range(2000)]
    assert all(DEFAULT_SYNTHETIC_GID_MIN <= gid <= DEFAULT_SYNTHETIC_GID_MAX for gid in gids)
    assert len(set(gids)) == len(gids)
    small = {synthetic_gid(f"g{i}", 5000, 5009) for i in range(500)}
    assert small == set(range(5000, 5010))
    assert synthetic_gid("only", 7000, 7000) == 7000


def test_stable_across_processes() -> None:
    here = {name: synthetic_gid(name) for name in NAMES}
    code = (
        "import json, sys\n"
        "from lsst_spawner.auth.gids import synthetic_gid\n"
        "print(json.dumps({n: synthetic_gid(n) for n in json.loads(sys.argv[1])}))\n"
    )
    # A different PYTHONHASHSEED makes sure Python's salted hash() is not involved.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"}
    output = subprocess.run(
        [sys.executable, "-c", code, json.dumps(NAMES)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(output) == here


def test_known_value() -> None:
    # Pinned: changing the hash would change gids of files on shared storage.
    assert synthetic_gid("g_users") == synthetic_gid("g_users", 2_000_000_000, 2_099_999_999)
    assert synthetic_gid("g_users") == KNOWN_G_USERS


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [("", 1, 10), ("g", 0, 10), ("g", 10, 9), ("g", 1, 2**32)],
)
def test_invalid_arguments(name: str, low: int, high: int) -> None:
    with pytest.raises(ValueError, match="synthetic gid"):
        synthetic_gid(name, low, high)


KNOWN_G_USERS = 2016850427
