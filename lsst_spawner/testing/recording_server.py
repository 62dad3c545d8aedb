"""A tiny threaded HTTP server on loopback that records every request it receives.

Used as a mock registry (pagination, odd payloads), as a token server and as a
hostile token realm whose record proves that no credential reached it. It runs
in its own thread, so it serves async clients on any event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .loopback import LoopbackServer

__all__ = ["LocalHTTPServer", "RecordedRequest", "Reply"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it (header names lower case)."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)


@dataclass
class Reply:
    """What the server answers."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


Handler = Callable[[RecordedRequest], Reply]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # A client that gave up (a timeout test) is expected; anything else is shown.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class LocalHTTPServer(LoopbackServer):
    """Serve ``handler`` on ``host`` (a loopback address) and ``port`` (0: a free one).

    It starts when it is made (``with`` then only stops it), and records every request.
    """

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.handler = handler
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server: _QuietServer | None = None
        self._thread: threading.Thread | None = None
        self.start()

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = RecordedRequest(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with outer._lock:
                    outer.requests.append(request)
                try:
                    reply = outer.handler(request)
                except Exception as error:  # a broken handler must show in the test
                    reply = Reply(500, body=f"handler error: {error!r}".encode())
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return _Handler

    def _serve(self) -> None:
        server = _QuietServer((self.host, self.port), self._make_handler(), bind_and_activate=False)
        server.socket.close()
        server.socket = self.listen()
        server.socket.setblocking(True)
        server.server_address = server.socket.getsockname()
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"LocalHTTPServer:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def _close(self) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def authorization_headers(self) -> list[str]:
        """Every ``Authorization`` header received, in order."""
        with self._lock:
            return [
                r.headers["authorization"] for r in self.requests if "authorization" in r.headers
            ]

    def close(self) -> None:
        """The same as :meth:`stop`."""
        self.stop()
