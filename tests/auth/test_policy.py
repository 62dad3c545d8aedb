"""IdentityPolicy: the site rules on top of the identity contract."""

from __future__ import annotations

import pytest

from lsst_spawner.identity import Group, Identity, IdentityError, IdentityPolicy


def test_defaults() -> None:
    policy = IdentityPolicy()
    assert (policy.min_uid, policy.min_gid, policy.require_gid) == (1000, 1000, True)


def test_primary_gid() -> None:
    assert IdentityPolicy().primary_gid(5000, 6000) == 6000
    with pytest.raises(IdentityError, match="require_gid"):
        IdentityPolicy().primary_gid(5000, None)
    assert IdentityPolicy(require_gid=False).primary_gid(5000, None) == 5000


@pytest.mark.parametrize(
    ("identity", "message"),
    [
        (Identity("a", 999, 5000), "uid 999 is below the minimum uid 1000"),
        (Identity("a", 0, 5000), "uid 0 is below"),
        (Identity("a", 5000, 0), "gid 0 is below the minimum gid 1000"),
        (Identity("a", 5000, 5000, (Group("tty", 5),)), "group 'tty' has gid 5"),
    ],
)
def test_check_rejects(identity: Identity, message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        IdentityPolicy().check(identity)


def test_check_accepts() -> None:
    IdentityPolicy().check(Identity("a", 1000, 1000, (Group("a", 1000),)))
    IdentityPolicy(min_uid=1, min_gid=1).check(Identity("a", 1, 1))


@pytest.mark.parametrize("bad", [0, -1, True, 2**32, "1000"])
def test_invalid_policy(bad: object) -> None:
    with pytest.raises(IdentityError, match="min_uid"):
        IdentityPolicy(min_uid=bad)  # type: ignore[arg-type]
