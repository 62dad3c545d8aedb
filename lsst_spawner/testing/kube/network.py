"""Pod addresses on loopback and the cheap HTTP responder of the stub kubelet."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
from collections.abc import Iterable

__all__ = ["AddressPool", "StubResponder"]


def _stub_response() -> bytes:
    """A 200 reply that JupyterHub accepts as a single-user server of its own version.

    The hub parses ``X-JupyterHub-Version`` when it checks a new server, so it
    must be a real version number: the installed JupyterHub's.
    """
    try:
        from jupyterhub import __version__ as version
    except ImportError:  # the emulator alone, without JupyterHub
        version = "0.0.0"
    body = b'{"kubelet": "stub"}\n'
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nX-JupyterHub-Version: {version}\r\n\r\n".encode()
        + body
    )


_RESPONSE = _stub_response()


class AddressPool:
    """Hands out distinct 127.0.x.y addresses whose ports are free to bind.

    Starts at a per-process offset so concurrent test sessions rarely collide,
    and skips any address where a wanted port is already taken.
    """

    def __init__(self, network: str = "127.0.0.0/16", start: int | None = None) -> None:
        self._net = ipaddress.ip_network(network)
        self._size = self._net.num_addresses
        # Skip 127.0.0.0/24 (127.0.0.1 is where everything else listens).
        self._next = 256 + ((os.getpid() * 97) % (self._size - 512) if start is None else start)
        self._used: set[str] = set()

    def allocate(self, ports: Iterable[int] = ()) -> str:
        ports = list(ports)
        for _ in range(self._size):
            offset = self._next
            self._next = 256 + (self._next - 255) % (self._size - 256)
            if offset % 256 in (0, 255):
                continue
            address = str(self._net.network_address + offset)
            if address not in self._used and all(_bindable(address, p) for p in ports):
                self._used.add(address)
                return address
        raise RuntimeError(f"no free address left in {self._net}")

    def release(self, address: str) -> None:
        self._used.discard(address)


def _bindable(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


class _StubProtocol(asyncio.Protocol):
    """Answers every HTTP/1.1 request with a fixed 200; keeps the connection alive."""

    def __init__(self) -> None:
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            head, rest = self._buffer[:end], self._buffer[end + 4 :]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or 0)
            if len(rest) < length:
                return
            self._buffer = rest[length:]
            assert self._transport is not None
            self._transport.write(_RESPONSE)


class StubResponder:
    """One listening socket per (pod IP, port), all served by a tiny protocol."""

    def __init__(self) -> None:
        self._servers: dict[tuple[str, int], asyncio.base_events.Server] = {}

    async def listen(self, address: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._servers[(address, port)] = await loop.create_server(
            _StubProtocol, address, port, reuse_address=True, backlog=64
        )

    def close(self, address: str) -> None:
        for key in [k for k in self._servers if k[0] == address]:
            self._servers.pop(key).close()

    def close_all(self) -> None:
        for server in self._servers.values():
            server.close()
        self._servers.clear()

    def __len__(self) -> int:
        return len(self._servers)
