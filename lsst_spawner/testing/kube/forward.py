"""What every port-forward transport shares: the pod's address, one connection's inbox,
and the copy both ways, as the kubelet and containerd do it (:mod:`.portforward`)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["BACKLOG", "CHUNK", "Inbox", "PodTarget", "copy_both_ways", "version_tuple"]

CHUNK = 65536
#: Chunks one forwarded connection may queue before its client is held back.
BACKLOG = 64


def version_tuple(version: str) -> tuple[int, int]:
    """``"1.37"`` (or ``"1.37.2"``) as ``(1, 37)``: the API server's gates go by it."""
    major, _, minor = version.partition(".")
    return int(major), int(minor.split(".")[0])


class Inbox:
    """What the client sent for one forwarded connection, until the pod takes it.

    :meth:`put` waits while :data:`BACKLOG` chunks are queued, so a client faster
    than the pod is held back (its reads pause) instead of filling memory; ``None``
    ends the input. Once the consumer is gone (:meth:`close`) input is dropped.
    """

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.room = asyncio.Event()
        self.room.set()
        self.closed = False

    async def put(self, chunk: bytes) -> None:
        if self.closed:
            return  # the pod's side is gone; nobody would read it
        self.queue.put_nowait(chunk)
        if self.queue.qsize() >= BACKLOG:
            self.room.clear()
            await self.room.wait()

    def end(self) -> None:
        self.queue.put_nowait(None)

    async def get(self) -> bytes | None:
        chunk = await self.queue.get()
        if self.queue.qsize() < BACKLOG // 2:
            self.room.set()
        return chunk

    def close(self) -> None:
        self.closed = True
        self.room.set()


@dataclass
class PodTarget:
    """Where a pod's ports are, and the names its errors use."""

    ip: str
    uid: str

    @property
    def sandbox(self) -> str:
        return hashlib.sha256(self.uid.encode()).hexdigest()

    async def dial(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.ip, port)

    def failure(self, port: int, error: OSError) -> str:
        """The kubelet's message (containerd's words) for a port it could not reach."""
        reason = os.strerror(error.errno).lower() if error.errno else str(error)
        return (
            f"error forwarding port {port} to pod {self.sandbox}, uid : failed to execute "
            f'portforward in network namespace "/var/run/netns/cni-{self.uid}": failed to '
            f'connect to localhost:{port} inside namespace "{self.sandbox}", IPv4: dial tcp4 '
            f"{self.ip}:{port}: connect: {reason} "
        )


async def copy_both_ways(
    target: PodTarget,
    port: int,
    inbox: Inbox,
    down: Callable[[bytes], Awaitable[None]],
) -> str | None:
    """Connect to the pod's port and copy both ways, as containerd does; the error text."""
    try:
        reader, writer = await target.dial(port)
    except OSError as error:
        inbox.close()
        return target.failure(port, error)

    async def upstream() -> None:
        while (chunk := await inbox.get()) is not None:
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # the client is done sending: half-close, as CloseWrite

    async def downstream() -> None:
        while chunk := await reader.read(CHUNK):
            await down(chunk)

    tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
    try:
        # Whichever way ends first, the other gets a second (containerd's grace), no more.
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.wait(pending, timeout=1.0)
    finally:
        inbox.close()
        for task in tasks:
            task.cancel()
        writer.close()
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await writer.wait_closed()
    return None
