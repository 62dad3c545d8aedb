"""A kubelet pod's ``portforward`` subresource, over the three transports clients use.

- **WebSocket channels** (``v4.channel.k8s.io``, ``v4.base64.channel.k8s.io`` or
  no subprotocol; the Python clients): ``ports`` in the query (required, each
  1-65535, comma lists allowed), two channels per port — data ``2i`` and error
  ``2i + 1`` — whose first frame is the port, 2 bytes little-endian. One TCP
  connection per port; the WebSocket closes when all of them have ended.
- **SPDY/3.1** (kubectl before 1.31; ``POST`` with ``Upgrade: SPDY/3.1`` and
  ``X-Stream-Protocol-Version: portforward.k8s.io``): the client opens a pair of
  streams per connection (``streamtype`` ``error`` and ``data``, the same
  ``port`` and ``requestid``); the kubelet connects to the port and copies.
- **SPDY tunnelled in a WebSocket** (kubectl 1.31+, subprotocol
  ``SPDY/3.1+portforward.k8s.io``): the same SPDY frames in binary messages, as
  the API server's tunnelling handler (``PortForwardWebsockets``, on from 1.31)
  serves them; an emulator reporting an older version refuses it, and kubectl
  falls back to SPDY.

The port is the pod's: the kubelet connects to the pod's loopback address (its
processes listen there, as a real pod's listen in its own network namespace).
A port nothing listens on answers on the error stream with the kubelet's
``error forwarding port ...`` text, as containerd words it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from aiohttp import WSMsgType, web

from . import spdy
from .forward import BACKLOG, CHUNK, Inbox, PodTarget, copy_both_ways, version_tuple
from .status import ApiError

if TYPE_CHECKING:
    from .kubelet import ProcessKubelet

__all__ = ["CHANNEL_PROTOCOLS", "PORTFORWARD_PROTOCOL", "TUNNEL_PROTOCOL", "serve_portforward"]

PORTFORWARD_PROTOCOL = "portforward.k8s.io"
TUNNEL_PROTOCOL = f"SPDY/3.1+{PORTFORWARD_PROTOCOL}"
CHANNEL_PROTOCOLS = ("v4.channel.k8s.io", "v4.base64.channel.k8s.io")
#: The first API server version whose PortForwardWebsockets gate is on by default.
TUNNEL_SINCE = (1, 31)

Send = Callable[[bytes], Awaitable[None]]


def parse_ports(values: list[str]) -> list[int]:
    """The ``ports`` query values as the kubelet's ``NewV4Options`` reads them."""
    if not values:
        raise ApiError.bad_request('query parameter "port" is required')
    ports = []
    for value in values:
        if not value:
            raise ApiError.bad_request('query parameter "port" cannot be empty')
        for part in value.split(","):
            if not part.isdigit() or int(part) > 65535:
                raise ApiError.bad_request(f"unable to parse {json.dumps(value)} as a port")
            if int(part) < 1:
                raise ApiError.bad_request(f"port {json.dumps(value)} must be > 0")
            ports.append(int(part))
    return ports


async def serve_portforward(
    kubelet: ProcessKubelet, request: web.Request, namespace: str, name: str
) -> web.StreamResponse:
    pod = kubelet.store.get("pods", namespace, name)
    if not (pod.get("spec") or {}).get("nodeName"):
        raise ApiError.bad_request(f"pod {name} does not have a host assigned")
    upgrade = request.headers.get("Upgrade", "").lower()
    connection = request.headers.get("Connection", "").lower()
    if "upgrade" not in connection or not upgrade:
        raise ApiError.bad_request("Upgrade request required")
    runtime = kubelet.runtime_of(namespace, name)
    if runtime is None or runtime.uid != pod["metadata"]["uid"]:
        return web.Response(status=404, text="pod does not exist\n")
    if runtime.ip is None:
        return web.Response(status=500, text="sandbox container is not running\n")
    target = PodTarget(runtime.ip, runtime.uid)
    if upgrade == "websocket":
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        offered = [p for p in offered if p]
        tunnel = version_tuple(kubelet.emulator.kubernetes_version) >= TUNNEL_SINCE
        if tunnel and TUNNEL_PROTOCOL in offered:
            return await _serve_tunnel(request, target)
        return await _serve_channels(request, target, offered)
    if upgrade != "spdy/3.1":
        return web.Response(
            status=400, text="unable to upgrade: missing upgrade headers in request\n"
        )
    return await _serve_spdy(request, target)


# -- WebSocket channels (v4.channel.k8s.io) -------------------------------------------------


async def _serve_channels(
    request: web.Request, target: PodTarget, offered: list[str]
) -> web.StreamResponse:
    ports = parse_ports(request.query.getall("ports", []))
    if offered and not any(p in CHANNEL_PROTOCOLS for p in offered):
        raise ApiError.bad_request(
            f"unable to upgrade connection: requested protocol(s) are not supported: "
            f"{offered}; supports {['', *CHANNEL_PROTOCOLS]}"
        )
    ws = web.WebSocketResponse(protocols=CHANNEL_PROTOCOLS, autoping=True)
    await ws.prepare(request)
    text = ws.ws_protocol == "v4.base64.channel.k8s.io"

    async def send(channel: int, payload: bytes) -> None:
        if text:
            await ws.send_str(chr(ord("0") + channel) + base64.b64encode(payload).decode())
        else:
            await ws.send_bytes(bytes([channel]) + payload)

    inboxes = [Inbox() for _ in ports]
    reader: asyncio.Task[None] | None = None
    try:
        for index, port in enumerate(ports):
            prefix = port.to_bytes(2, "little")
            await send(2 * index, prefix)
            await send(2 * index + 1, prefix)
        reader = asyncio.get_running_loop().create_task(_read_channels(ws, inboxes, text))
        await asyncio.gather(
            *(
                _forward_channel(target, port, 2 * i, inboxes[i], send)
                for i, port in enumerate(ports)
            )
        )
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        if reader is not None:
            reader.cancel()
        await ws.close()
    return ws


async def _read_channels(ws: web.WebSocketResponse, inboxes: list[Inbox], text: bool) -> None:
    async for message in ws:
        if message.type == WSMsgType.BINARY and not text:
            data: bytes = message.data
        elif message.type == WSMsgType.TEXT and text and message.data:
            channel = ord(message.data[0]) - ord("0")  # the channel as a character, from "0"
            try:
                data = bytes([channel]) + base64.b64decode(message.data[1:], validate=True)
            except ValueError:  # a channel out of range, or not base64: end, as the kubelet
                break
        else:
            continue
        if not data:
            continue
        channel, payload = data[0], data[1:]
        if channel % 2 == 0 and channel // 2 < len(inboxes) and payload:
            await inboxes[channel // 2].put(payload)
    for inbox in inboxes:
        inbox.end()


async def _forward_channel(
    target: PodTarget,
    port: int,
    channel: int,
    inbox: Inbox,
    send: Callable[[int, bytes], Awaitable[None]],
) -> None:
    async def down(chunk: bytes) -> None:
        await send(channel, chunk)

    failure = await copy_both_ways(target, port, inbox, down)
    if failure:
        await send(channel + 1, failure.encode())


# -- SPDY/3.1, direct or tunnelled --------------------------------------------------------


@dataclass
class _Stream:
    stream_id: int
    kind: str
    port: int
    request_id: str
    inbox: Inbox = field(default_factory=Inbox)
    closed_here: bool = False


class SpdyPortForward:
    """The kubelet's side of one SPDY port-forward connection (``httpStreamHandler``)."""

    def __init__(self, send: Send, target: PodTarget) -> None:
        self._send_bytes = send
        self.target = target
        self.reader = spdy.FrameReader()
        self.writer = spdy.FrameWriter()
        self._lock = asyncio.Lock()  # frames go out in the order their headers compressed
        self.streams: dict[int, _Stream] = {}
        self.pairs: dict[str, dict[str, _Stream]] = {}
        self.last_stream = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    async def _send(self, build: Callable[[], bytes]) -> None:
        async with self._lock:
            if not self.closed:
                await self._send_bytes(build())

    async def receive(self, data: bytes) -> bool:
        """Handle bytes from the client; False when the connection is to end."""
        try:
            frames = self.reader.feed(data)
        except spdy.SpdyProtocolError:
            await self._send(lambda: self.writer.goaway(self.last_stream, 1))
            return False
        for frame in frames:
            if not await self._handle(frame):
                return False
        return True

    async def _handle(self, frame: spdy.Frame) -> bool:
        if frame.kind == spdy.SYN_STREAM:
            await self._open(frame)
        elif frame.kind == spdy.DATA:
            stream = self.streams.get(frame.stream_id)
            if stream is None:
                await self._reset(frame.stream_id, spdy.INVALID_STREAM)
                return True
            if frame.data and stream.kind == "data":
                await stream.inbox.put(frame.data)
            if frame.fin:
                stream.inbox.end()
        elif frame.kind == spdy.RST_STREAM:
            stream = self.streams.pop(frame.stream_id, None)
            if stream is not None:
                stream.closed_here = True
                stream.inbox.end()
        elif frame.kind == spdy.PING:
            if frame.value % 2 == 1:  # the client's ping; ours would be even
                await self._send(lambda: self.writer.ping(frame.value))
        elif frame.kind == spdy.GOAWAY:
            return False
        elif frame.kind in (spdy.SYN_REPLY, spdy.HEADERS) and frame.stream_id not in self.streams:
            await self._reset(frame.stream_id, spdy.INVALID_STREAM)
        return True  # SETTINGS, WINDOW_UPDATE: no flow control, as spdystream

    async def _reset(self, stream_id: int, status: int) -> None:
        await self._send(lambda: self.writer.rst_stream(stream_id, status))

    async def _open(self, frame: spdy.Frame) -> None:
        sid = frame.stream_id
        if sid % 2 == 0 or sid <= self.last_stream:
            await self._reset(sid, spdy.PROTOCOL_ERROR)
            return
        self.last_stream = sid
        port_text, kind = frame.header("port"), frame.header("streamtype")
        request_id = frame.header("requestid")
        port_ok = port_text.isdigit() and 1 <= int(port_text) <= 65535
        if not port_ok or kind not in ("error", "data") or not request_id:
            await self._reset(sid, 5)  # spdystream's Reset(): CANCEL
            return
        pair = self.pairs.setdefault(request_id, {})
        if kind in pair or (pair and next(iter(pair.values())).port != int(port_text)):
            await self._reset(sid, 5)
            return
        stream = _Stream(sid, kind, int(port_text), request_id)
        self.streams[sid] = stream
        await self._send(lambda: self.writer.syn_reply(sid))
        if frame.fin:
            stream.inbox.end()
        pair[kind] = stream
        if len(pair) == 2:
            task = asyncio.get_running_loop().create_task(self._forward(pair))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _finish(self, stream: _Stream) -> None:
        if not stream.closed_here:
            stream.closed_here = True
            await self._send(lambda: self.writer.data(stream.stream_id, b"", fin=True))

    async def _forward(self, pair: dict[str, _Stream]) -> None:
        data, error = pair["data"], pair["error"]

        async def down(chunk: bytes) -> None:
            if not data.closed_here:
                await self._send(lambda: self.writer.data(data.stream_id, chunk))

        try:
            failure = await copy_both_ways(self.target, data.port, data.inbox, down)
            if failure and not error.closed_here:
                await self._send(lambda: self.writer.data(error.stream_id, failure.encode()))
        except (ConnectionError, RuntimeError):
            return
        finally:
            self.pairs.pop(data.request_id, None)
        for stream in (data, error):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._finish(stream)
            self.streams.pop(stream.stream_id, None)

    async def close(self) -> None:
        self.closed = True
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class _RawReader:
    """The payload parser of an upgraded aiohttp connection: bytes into a queue.

    Reading from the socket pauses while :data:`BACKLOG` chunks wait, so a client
    that sends faster than the pod takes is held back by TCP, not by memory.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.paused = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.queue.put_nowait(bytes(data))
        if self.queue.qsize() >= BACKLOG and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(None)

    async def get(self) -> bytes | None:
        chunk = await self.queue.get()
        if self.paused and self.queue.qsize() < BACKLOG // 2:
            self.paused = False
            self.transport.resume_reading()
        return chunk


async def _serve_spdy(request: web.Request, target: PodTarget) -> web.StreamResponse:
    offered = request.headers.getall("X-Stream-Protocol-Version", [])
    offered = [p.strip() for value in offered for p in value.split(",") if p.strip()]
    if not offered:
        return web.Response(
            status=400, text="unable to upgrade: X-Stream-Protocol-Version is required\n"
        )
    if PORTFORWARD_PROTOCOL not in offered:
        return web.Response(
            status=403,
            text=(
                f"unable to upgrade: unable to negotiate protocol: client supports "
                f"[{' '.join(offered)}], server accepts [{PORTFORWARD_PROTOCOL}]\n"
            ),
            headers={"X-Accepted-Stream-Protocol-Versions": PORTFORWARD_PROTOCOL},
        )
    response = web.StreamResponse(
        status=101,
        headers={
            "Connection": "Upgrade",
            "Upgrade": "SPDY/3.1",
            "X-Stream-Protocol-Version": PORTFORWARD_PROTOCOL,
        },
    )
    await response.prepare(request)
    transport = request.transport
    protocol = request.protocol
    if transport is None:
        return response
    raw = _RawReader(transport)
    cast(Any, protocol).set_parser(raw)
    protocol.keep_alive(False)

    async def send(data: bytes) -> None:
        if transport.is_closing():
            raise ConnectionResetError("the client went away")
        transport.write(data)
        if transport.get_write_buffer_size() > 4 * CHUNK:
            await cast(Any, protocol)._drain_helper()

    session = SpdyPortForward(send, target)
    try:
        while (chunk := await raw.get()) is not None:
            if not await session.receive(chunk):
                break
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        await session.close()
        transport.close()
    return response


async def _serve_tunnel(request: web.Request, target: PodTarget) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=(TUNNEL_PROTOCOL,), autoping=True)
    await ws.prepare(request)
    session = SpdyPortForward(ws.send_bytes, target)
    try:
        async for message in ws:
            if message.type != WSMsgType.BINARY:  # the tunnel carries binary messages only
                break
            if not await session.receive(message.data):
                break
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        await session.close()
        await ws.close()
    return ws
