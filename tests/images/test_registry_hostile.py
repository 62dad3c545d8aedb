"""Hostile registry replies: each fails with the registry's error, and the hub's loop keeps going.

Each reply below comes from a raw HTTP server in another thread (so it can send
16 ``Link`` headers, or anything else). While the client refreshes against it, a
ticker task on the event loop wakes every 5 ms and records two gaps between its
wake-ups: the wall time, and the CPU time of the loop's own thread
(``time.thread_time``).

- The CPU gap is the issue's bound: no more than 100 ms of the loop thread's CPU
  between two ticks, which is what a stall of the hub's loop by parsing would
  show. It does not depend on how loaded the machine is.
- The wall gap also catches a worker thread holding the GIL (C code that never
  lets go), which the CPU gap cannot see. Its bound, 500 ms, is generous on
  purpose: these machines are shared, and a process can wait that long for a
  core. Before this fix the Link reply below stalled the loop for seconds.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import socketserver
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from lsst_spawner.images.registry import RegistryClient, RegistryError
from lsst_spawner.images.registry_auth import RegistryAuthError
from lsst_spawner.images.registry_links import MAX_LINK_BYTES, next_link

REPO = "lsst-sqre/sciplat-lab"
#: The issue's bound on the loop thread's CPU between two ticks.
CPU_BOUND = 0.100
#: A generous bound on wall-clock gaps (shared, loaded machines; see the module doc).
WALL_BOUND = 0.500


def raw_reply(status: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers)]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("utf-8") + body


class RawServer:
    """Answers every request with ``reply(path)``, raw bytes, from its own thread."""

    def __init__(self, reply: Callable[[str], bytes]) -> None:
        outer = self
        self.paths: list[str] = []

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = self.request.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                path = data.split(b" ", 2)[1].decode("latin-1")
                outer.paths.append(path)
                try:
                    self.request.sendall(reply(path))
                    self.request.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host_port = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class LoopLag:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def worst_wall(self) -> float:
        return max(self.wall, default=0.0)

    @property
    def worst_cpu(self) -> float:
        return max(self.cpu, default=0.0)


async def measure_loop(work: Awaitable[Any]) -> tuple[Any, BaseException | None, LoopLag]:
    """Run ``work`` while a 5 ms ticker records the loop's gaps; return its result or error.

    The garbage collector is collected first and paused meanwhile: a full collection of a
    test worker's heap (grown by the thousand tests before) took 0.32 s of the loop
    thread's CPU in one CI run, a pause that measures the suite, not the registry client.
    """
    lag = LoopLag()
    done = asyncio.Event()
    gc.collect()
    gc.disable()

    async def ticker() -> None:
        wall, cpu = time.monotonic(), time.thread_time()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now_wall, now_cpu = time.monotonic(), time.thread_time()
            lag.wall.append(now_wall - wall)
            lag.cpu.append(now_cpu - cpu)
            wall, cpu = now_wall, now_cpu

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    result: Any = None
    error: BaseException | None = None
    try:
        result = await work
    except Exception as caught:
        error = caught
    finally:
        done.set()
        await task
        gc.enable()
    return result, error, lag


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[str], bytes]], RawServer]]:
    servers: list[RawServer] = []

    def start(reply: Callable[[str], bytes]) -> RawServer:
        server = RawServer(reply)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def client_for(server: RawServer, **kwargs: Any) -> RegistryClient:
    return RegistryClient(server.host_port, insecure_registries=[server.host_port], **kwargs)


def tags_reply(extra_headers: list[tuple[str, str]] = (), body: bytes | None = None) -> bytes:  # type: ignore[assignment]
    payload = body if body is not None else b'{"name": "%s", "tags": ["w_2024_01"]}' % REPO.encode()
    return raw_reply("200 OK", [("Content-Type", "application/json"), *extra_headers], payload)


def assert_responsive(lag: LoopLag) -> None:
    # Shown with ``pytest -s``: the figures quoted in docs/registry.md.
    cpu, wall = lag.worst_cpu * 1000, lag.worst_wall * 1000
    print(f"loop lag: worst CPU {cpu:.1f} ms, worst wall {wall:.1f} ms")
    assert lag.cpu, "the ticker never ran"
    assert lag.worst_cpu < CPU_BOUND, f"the loop thread ran {lag.worst_cpu:.3f}s between ticks"
    assert lag.worst_wall < WALL_BOUND, f"the loop stalled {lag.worst_wall:.3f}s"


HOSTILE_LINKS = [
    pytest.param(
        [("Link", "<" * 8000)] * 16, "Link headers are longer than", id="16-links-of-8000-unclosed"
    ),
    pytest.param([("Link", "<>," * 30)] * 3, "more than 64 links", id="too-many-link-values"),
    pytest.param(
        [("Link", "<http://127.0.0.1\uff0fevil/v2/x/tags/list>; rel=next")],
        "not a URL of printable ASCII",
        id="fullwidth-solidus-in-link-host",
    ),
    pytest.param(
        [("Link", "<http://127.0.0.1:99999/v2/x/tags/list>; rel=next")],
        "invalid port",
        id="link-port-out-of-range",
    ),
]


@pytest.mark.parametrize(("headers", "message"), HOSTILE_LINKS)
async def test_hostile_link_headers(
    serve: Any, headers: list[tuple[str, str]], message: str
) -> None:
    server = serve(lambda path: tags_reply(headers))
    _, error, lag = await measure_loop(client_for(server).list_tags(REPO))
    assert isinstance(error, RegistryError), error
    assert message in str(error)
    assert_responsive(lag)


async def test_unclosed_link_headers_under_the_cap_are_scanned_linearly(serve: Any) -> None:
    """Seven headers of 8,000 unclosed ``<`` (aiohttp's longest header is 8,190 bytes), under
    the cap: the old regex took seconds over them; now there is simply nothing to follow."""
    headers = [("Link", "<" * 8000)] * 7
    assert MAX_LINK_BYTES > 7 * 8000
    server = serve(lambda path: tags_reply(headers))
    tags, error, lag = await measure_loop(client_for(server).list_tags(REPO))
    assert error is None
    assert tags == ["w_2024_01"]
    assert_responsive(lag)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"[" * 10_000 + b"]" * 10_000, "nested more than 32 levels", id="10000-deep"),
        pytest.param(
            b'{"tags": ' + b"[" * 100_000, "nested more than 32 levels", id="unclosed-deep"
        ),
        pytest.param(b'{"tags": [' + b"9" * 5000 + b"]}", "is not JSON", id="5000-digit-number"),
        pytest.param(b'{"tags": ["\xff\xfe"]}', "not UTF-8", id="invalid-utf8"),
        pytest.param(b"x" * (2 * 1024 * 1024 + 1), "exceeds 2097152 bytes", id="over-size"),
    ],
)
async def test_hostile_json_replies(serve: Any, body: bytes, message: str) -> None:
    server = serve(lambda path: tags_reply(body=body))
    client = client_for(server, max_response_bytes=2 * 1024 * 1024)
    _, error, lag = await measure_loop(client.list_tags(REPO))
    assert isinstance(error, RegistryError), repr(error)
    assert message in str(error)
    assert_responsive(lag)


async def test_a_reply_that_takes_too_long_to_decode_fails_and_leaves_the_loop_free(
    serve: Any,
) -> None:
    """Four million numbers take the pure-Python decoder far longer than the 1 s allowed."""
    body = b'{"tags": [' + b"0," * 3_000_000 + b"0]}"
    server = serve(lambda path: tags_reply(body=body))
    client = client_for(server, request_timeout=1.0, connect_timeout=0.5)
    _, error, lag = await measure_loop(client.list_tags(REPO))
    assert isinstance(error, RegistryError), repr(error)
    assert "took too long" in str(error)
    assert_responsive(lag)


@pytest.mark.parametrize(
    ("realm", "message"),
    [
        pytest.param(
            "http://127.0.0.1\uff0fevil/token", "not a URL of printable ASCII", id="fullwidth"
        ),
        pytest.param("http://127.0.0.1:70000/token", "invalid port", id="port"),
        pytest.param("http://127.0.0.1/to ken", "not a URL of printable ASCII", id="space"),
    ],
)
async def test_malformed_realms_are_refused_with_the_registry_error(
    serve: Any, realm: str, message: str
) -> None:
    challenge = f'Bearer realm="{realm}",service="registry"'
    server = serve(
        lambda path: raw_reply("401 Unauthorized", [("WWW-Authenticate", challenge)], b"")
    )
    _, error, lag = await measure_loop(client_for(server).list_tags(REPO))
    assert isinstance(error, RegistryAuthError), repr(error)
    assert message in str(error)
    assert "refusing to contact it" in str(error)
    assert len(server.paths) == 1, "something was sent to the realm"
    assert_responsive(lag)


def test_next_link_still_finds_next_among_other_links() -> None:
    header = (
        '<https://docs.example/>; rel="help", </v2/x/tags/list?last=b>; title="a,b;c"; rel="next"'
    )
    assert next_link([header], "https://r.example/v2/x/tags/list") == (
        "https://r.example/v2/x/tags/list?last=b"
    )


async def test_a_whole_menu_refresh_of_a_large_repository_keeps_the_loop_free(serve: Any) -> None:
    """20,000 tags in one page (distribution sends them all at once), through the menu cache:
    decoding, the Link scan, parsing and the menu build all happen off the loop."""
    from lsst_spawner.images.cache import MenuCache
    from lsst_spawner.images.menu import MenuPolicy
    from lsst_spawner.images.registry import RegistryImageSource

    tags = [f"w_{2000 + n // 50}_{n % 50 + 1:02d}_rsp{n}" for n in range(20_000)]
    body = json.dumps({"name": REPO, "tags": tags}).encode()

    def reply(path: str) -> bytes:
        if "/manifests/" in path:
            return raw_reply("404 Not Found", [], b"")
        return tags_reply(body=body)

    server = serve(reply)
    source = RegistryImageSource(client_for(server), REPO)
    cache = MenuCache(source, MenuPolicy())
    # The refresh allocates enough objects to start a full collection of the cyclic
    # garbage collector, which holds the GIL while it walks every object of this test
    # process (the whole suite's): 340-440 ms measured here, against 34-56 ms with the
    # older objects frozen. That pause is CPython's, not the refresh's; frozen, the test
    # measures the refresh.
    gc.collect()
    gc.freeze()
    try:
        menu, error, lag = await measure_loop(cache.refresh())
    finally:
        gc.unfreeze()
    assert error is None, repr(error)
    assert len(menu.dropdown) + len(menu.radio) == 20_000
    assert_responsive(lag)
