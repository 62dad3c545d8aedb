"""An example identity derived from a username, for ``render-pod`` and the test kit.

It is what :class:`lsst_spawner.testing.oauth.identity.StaticIdentityAuthenticator`
gives a user: a stable uid from the synthetic-id hash, a user-private group and
the given extra groups. It is never used to start a real lab.
"""

from __future__ import annotations

from ..identity import Group, Identity
from .gids import synthetic_gid

__all__ = ["example_identity"]


def example_identity(
    username: str,
    *,
    uid_min: int = 100_000,
    uid_max: int = 199_999,
    groups: dict[str, int] | None = None,
) -> Identity:
    """The example identity of ``username``: the same on every call and every host."""
    uid = synthetic_gid(f"user:{username}", uid_min, uid_max)
    extra = tuple(Group(name=name, gid=gid) for name, gid in sorted((groups or {}).items()))
    return Identity(
        username=username,
        uid=uid,
        gid=uid,
        groups=(Group(name=username.replace(".", "_")[:32], gid=uid), *extra),
        name=f"Test User {username}",
        email=f"{username}@example.org",
    )
