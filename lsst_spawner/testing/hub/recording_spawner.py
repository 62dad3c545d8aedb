"""A JupyterHub spawner that records the identity it is given, for end-to-end tests.

``start()`` reads ``auth_state["identity"]`` through
:meth:`lsst_spawner.identity.Identity.from_auth_state` (exactly as the real
spawner does), appends it as one JSON line to the file named by
:attr:`RecordingSpawner.record_file`, and serves a one-page HTTP server in the
hub process so the hub sees a running server. The git token is recorded as
``"<set>"`` or ``null``, never in clear.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyterhub.spawner import Spawner
from tornado import web
from tornado.httpserver import HTTPServer
from traitlets import Unicode

from ...identity import Identity
from ..loopback import listen

__all__ = ["RecordingSpawner"]


class _Page(web.RequestHandler):
    def get(self, *args: Any) -> None:
        self.finish({"recording_spawner": True})


class RecordingSpawner(Spawner):
    """Records the user's identity at each start; serves a placeholder page."""

    record_file = Unicode(
        config=True, help="File to which each start appends the identity as JSON."
    )

    _http_server: HTTPServer | None = None

    async def start(self) -> tuple[str, int]:
        auth_state = await self.user.get_auth_state()
        identity = Identity.from_auth_state(auth_state)
        record = identity.to_dict()
        record["git_token"] = "<set>" if identity.git_token else None
        if self.record_file:
            await asyncio.to_thread(self._append, json.dumps(record))
        sock = listen("127.0.0.1")  # served by the hub's own loop, so not a LoopbackServer
        port = sock.getsockname()[1]
        self._http_server = HTTPServer(web.Application([(r"/(.*)", _Page)]))
        self._http_server.add_sockets([sock])
        return ("127.0.0.1", port)

    def _append(self, line: str) -> None:
        with open(self.record_file, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    async def poll(self) -> int | None:
        return None if self._http_server is not None else 0

    async def stop(self, now: bool = False) -> None:
        if self._http_server is not None:
            self._http_server.stop()
            self._http_server = None
