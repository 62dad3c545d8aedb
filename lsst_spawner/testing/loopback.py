"""The one base of the test kit's servers: a loopback address, a free port, start/stop, ``with``.

Every server of the kit (the fake identity providers, the recording HTTP server,
the real registry and its token server, the real hub process, the Kubernetes API
emulator) is a :class:`LoopbackServer`: it binds an address in 127.0.0.0/8 (and
refuses any other), takes a free port when given port 0, has a :attr:`url`, and
``start()`` returns once it accepts connections. In-process servers bind their
socket with :meth:`LoopbackServer.listen` (no window in which another process
could take the port); servers in a child process get a port from
:meth:`LoopbackServer.reserve_port`. :class:`LoopThread` is the event loop in a
daemon thread that the tornado and aiohttp servers run on, so the same object
serves a synchronous script, a pytest fixture and a test on any event loop.

:class:`ThreadedServer` serves a tornado application that way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Self

from tornado.httpserver import HTTPServer
from tornado.web import Application

from .ports import free_port

__all__ = ["LoopThread", "LoopbackServer", "ThreadedServer", "check_loopback", "listen"]


def check_loopback(host: str) -> str:
    """``host`` if it is an IPv4 loopback address (127.0.0.0/8); otherwise ``ValueError``."""
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        raise ValueError(
            f"test servers bind a loopback address (127.0.0.0/8), not {host!r}"
        ) from None
    if not address.is_loopback:
        raise ValueError(f"test servers bind a loopback address (127.0.0.0/8), not {host!r}")
    return host


def listen(host: str = "127.0.0.1", port: int = 0, backlog: int = 128) -> socket.socket:
    """A non-blocking listening TCP socket on loopback ``host`` (port 0: a free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((check_loopback(host), port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class LoopbackServer:
    """A server on a loopback address; subclasses implement :meth:`_serve` and :meth:`_close`.

    ``start()`` calls ``_serve()`` (start serving, return once connections are
    accepted) and returns the server; ``stop()`` calls ``_close()`` once, and
    does nothing for a server that is not running. ``with`` starts the server
    (unless it is already running) and stops it.
    """

    #: The URL scheme; a TLS server sets ``https``.
    scheme = "http"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = check_loopback(host)
        self.port = port
        self._running = False

    @property
    def running(self) -> bool:
        """Whether it serves (between a successful ``start()`` and ``stop()``)."""
        return self._running

    @property
    def host_port(self) -> str:
        """``host:port``; an error before a port is chosen."""
        if not self.port:
            raise RuntimeError(f"{type(self).__name__} is not started: it has no port yet")
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        return f"{self.scheme}://{self.host_port}"

    def listen(self, backlog: int = 128) -> socket.socket:
        """Bind :attr:`host` and :attr:`port` (a free port when 0, then recorded)."""
        sock = listen(self.host, self.port, backlog)
        self.port = sock.getsockname()[1]
        return sock

    def reserve_port(self) -> int:
        """A port for a server in another process: :attr:`port`, or a free one when 0."""
        if not self.port:
            self.port = free_port(self.host)
        return self.port

    def start(self) -> Self:
        """Start serving; returns when the server accepts connections."""
        if self.running:
            raise RuntimeError(f"{type(self).__name__} is already running at {self.url}")
        self._serve()
        self._running = True
        return self

    def stop(self) -> None:
        """Stop serving (nothing to do when it is not running)."""
        running, self._running = self.running, False
        if running:
            self._close()

    def _serve(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self if self.running else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LoopThread:
    """An event loop in a daemon thread: ``setup`` runs on it, then it serves until :meth:`stop`,
    which runs ``teardown`` on it before the loop closes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(
        self,
        setup: Callable[[], Awaitable[None]],
        teardown: Callable[[], Awaitable[None]],
        timeout: float = 30,
    ) -> asyncio.AbstractEventLoop:
        """Start the thread; return its loop once ``setup`` finished (or raise its error)."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already running")
        ready: concurrent.futures.Future[asyncio.AbstractEventLoop] = concurrent.futures.Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(setup())
            except BaseException as error:  # reported to start()
                ready.set_exception(error)
                loop.close()
                return
            ready.set_result(loop)
            loop.run_forever()
            try:
                loop.run_until_complete(teardown())
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        try:
            self.loop = ready.result(timeout=timeout)
        except BaseException:
            self._thread = None
            raise
        return self.loop

    def stop(self, timeout: float = 10) -> None:
        """Stop the loop (``teardown`` runs first) and join the thread."""
        if self._thread is None or self.loop is None:
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        self._thread = None
        self.loop = None


class ThreadedServer(LoopbackServer):
    """Serve a tornado :class:`Application` (:meth:`make_app`) from a :class:`LoopThread`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._loop_thread = LoopThread(f"{type(self).__name__}")
        self._server: HTTPServer | None = None

    def make_app(self) -> Application:
        raise NotImplementedError

    def _serve(self) -> None:
        sock = self.listen()

        async def setup() -> None:
            self._server = HTTPServer(self.make_app())
            self._server.add_sockets([sock])

        async def teardown() -> None:
            if self._server is not None:
                self._server.stop()
                self._server = None

        try:
            self._loop_thread.start(setup, teardown, timeout=10)
        except BaseException:
            sock.close()
            raise

    def _close(self) -> None:
        self._loop_thread.stop()
