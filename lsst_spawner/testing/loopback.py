"""A tornado application served on 127.0.0.1 from its own thread and event loop.

Running the fake identity providers in a thread lets the same object serve a
synchronous demo script, a pytest fixture, and a JupyterHub process that the
test drives from its own event loop.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.web import Application


class ThreadedServer:
    """Serve a tornado :class:`Application` on ``host`` (a loopback address) in a thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: HTTPServer | None = None

    def make_app(self) -> Application:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> ThreadedServer:
        """Bind and start serving; returns when the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} is already running at {self.url}")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._server = HTTPServer(self.make_app())
                self._server.add_sockets([sock])
            except BaseException as error:  # pragma: no cover - reported to start()
                errors.append(error)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(
            target=run, name=f"{type(self).__name__}:{self.port}", daemon=True
        )
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._thread is None or self._loop is None:
            return
        loop, server = self._loop, self._server

        def shutdown() -> None:
            if server is not None:
                server.stop()
            loop.stop()

        loop.call_soon_threadsafe(shutdown)
        self._thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
