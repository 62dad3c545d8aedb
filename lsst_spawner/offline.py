"""Stand-ins for the JupyterHub objects a spawner reads, for use without a hub.

``lsst-spawner render-pod`` builds a real :class:`~lsst_spawner.LSSTSpawner`
around these; tests and the benchmarks do the same.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

__all__ = ["OfflineHub", "OfflineServer", "OfflineUser"]


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
