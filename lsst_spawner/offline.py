"""Stand-ins for the JupyterHub objects a spawner reads, for use without a hub.

``lsst-spawner render-pod`` builds a real :class:`~lsst_spawner.LSSTSpawner`
around these; tests and the benchmarks do the same.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .auth.gids import synthetic_gid
from .identity import Group, Identity

__all__ = ["OfflineHub", "OfflineServer", "OfflineUser", "example_identity"]


def example_identity(
    username: str,
    *,
    uid_min: int = 100_000,
    uid_max: int = 199_999,
    groups: dict[str, int] | None = None,
) -> Identity:
    """A made-up identity for ``username`` (``render-pod`` without ``--auth-state``, tests).

    The uid (also the gid of the user's own group) is derived from the name, in
    ``uid_min..uid_max``; ``groups`` adds more groups as ``{name: gid}``.
    """
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


class OfflineUser:
    """The parts of a JupyterHub user a spawner reads: name, URL and auth_state."""

    def __init__(self, name: str, auth_state: dict[str, Any] | None) -> None:
        self.name = name
        self.escaped_name = quote(name, safe="@~")
        self.id = 0
        self.url = f"/user/{self.escaped_name}/"
        self.auth_state = auth_state

    async def get_auth_state(self) -> dict[str, Any] | None:
        return self.auth_state


class OfflineHub:
    """The parts of JupyterHub's ``Hub`` object a spawner reads."""

    public_host = ""
    url = "http://hub:8081/hub/"
    base_url = "/hub/"
    api_url = "http://hub:8081/hub/api"


class OfflineServer:
    """The parts of a JupyterHub ``Server`` a spawner reads."""

    def __init__(self, user: OfflineUser) -> None:
        self.base_url = user.url
