"""Deterministic synthetic gids for groups that arrive without one.

Some identity providers (CILogon ``isMemberOf`` entries from some campuses)
name a group without giving it a gid. A site may choose to give such a group a
*synthetic* gid. The gid must be the same on every hub replica, on every host
and after every restart, because it ends up as the owner of files on shared
storage: it is derived from the group's name with SHA-256, never from Python's
``hash()`` (salted per process) or a random number.

Two names can hash to the same gid; callers resolve that collision (see
:func:`lsst_spawner.auth.names.resolve_groups`) by dropping one group and
logging it. Re-hashing one of them would make the gid depend on which other
groups a user has, so the same group would get different gids for different
users. A wide range makes collisions rare: with a range of 100 million gids
and 10,000 distinct groups the chance of any collision is about 0.05%.
"""

from __future__ import annotations

import hashlib

from ..identity import MAX_ID

__all__ = ["DEFAULT_SYNTHETIC_GID_MAX", "DEFAULT_SYNTHETIC_GID_MIN", "synthetic_gid"]

#: Default first gid of the synthetic range (below 2**31, which some tools treat as signed).
DEFAULT_SYNTHETIC_GID_MIN = 2_000_000_000

#: Default last gid of the synthetic range (inclusive): 100 million gids.
DEFAULT_SYNTHETIC_GID_MAX = 2_099_999_999

# A fixed prefix so the gid of a name differs from other SHA-256 uses of that name.
_DOMAIN = b"lsst-spawner synthetic gid v1\x00"


def synthetic_gid(
    name: str,
    minimum: int = DEFAULT_SYNTHETIC_GID_MIN,
    maximum: int = DEFAULT_SYNTHETIC_GID_MAX,
) -> int:
    """Return the synthetic gid of group ``name`` in ``minimum..maximum`` (inclusive).

    The result depends only on the three arguments. ``name`` is hashed exactly
    as given (the provider's name, not the POSIX-mapped one), encoded as UTF-8.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("a synthetic gid needs a non-empty group name")
    if not 1 <= minimum <= maximum <= MAX_ID:
        raise ValueError(
            f"invalid synthetic gid range {minimum}..{maximum} (must be within 1..{MAX_ID})"
        )
    digest = hashlib.sha256(_DOMAIN + name.encode("utf-8", "surrogatepass")).digest()
    # 64 bits of hash modulo a range of at most 2**32: the bias is below 2**-32.
    value = int.from_bytes(digest[:8], "big")
    return minimum + value % (maximum - minimum + 1)
