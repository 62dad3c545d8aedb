"""SPDY/3.1 framing, as Kubernetes' SPDY streams speak it (``moby/spdystream``).

kubectl before 1.31 upgrades ``pods/portforward`` (and ``exec``) to SPDY/3.1;
kubectl 1.31 and later tunnel the same frames through a WebSocket. This module
is the framing only: :class:`FrameReader` turns bytes into :class:`Frame`
objects (any split of the byte stream), :class:`FrameWriter` builds frames. Each
direction of a connection has one zlib stream for its header blocks, primed
with SPDY/3's dictionary and sync-flushed after every block, as the draft says.

The reader is at least as strict as spdystream's: version 3 only, the frame
types it knows, the lengths each control frame must have, no stream id 0 where
a stream is named, lowercase and unique header names, none of the hop-by-hop
headers in SYN_STREAM, a header block that fills its frame exactly. Anything
else raises :class:`SpdyProtocolError`. Flow control (WINDOW_UPDATE) is parsed
but not enforced, as spdystream does not enforce it either.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

__all__ = [
    "DATA",
    "DICTIONARY",
    "FLAG_FIN",
    "GOAWAY",
    "HEADERS",
    "PING",
    "RST_STREAM",
    "SETTINGS",
    "SYN_REPLY",
    "SYN_STREAM",
    "WINDOW_UPDATE",
    "Frame",
    "FrameReader",
    "FrameWriter",
    "SpdyProtocolError",
]

VERSION = 3
DATA, SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS = 0, 1, 2, 3, 4
PING, GOAWAY, HEADERS, WINDOW_UPDATE = 6, 7, 8, 9
FLAG_FIN, FLAG_UNIDIRECTIONAL = 0x01, 0x02
#: RST_STREAM status codes.
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, STREAM_IN_USE = 1, 2, 3, 8
#: A decompressed header block larger than this is refused (a zlib bomb otherwise).
MAX_HEADER_BLOCK = 1 << 20
_INVALID_REQUEST_HEADERS = frozenset(
    ("connection", "host", "keep-alive", "proxy-connection", "transfer-encoding")
)
#: The fixed length (or minimum, for those with a header block) of each control frame.
_LENGTHS = {
    SYN_STREAM: 10,
    SYN_REPLY: 4,
    RST_STREAM: 8,
    SETTINGS: 4,
    PING: 4,
    GOAWAY: 8,
    HEADERS: 4,
    WINDOW_UPDATE: 8,
}
_EXACT = (RST_STREAM, PING, GOAWAY, WINDOW_UPDATE)

_WORDS = (
    *(  # noqa: SIM905 - the draft's list, as it reads
        "options head post put delete trace accept accept-charset accept-encoding "
        "accept-language accept-ranges age allow authorization cache-control connection "
        "content-base content-encoding content-language content-length content-location "
        "content-md5 content-range content-type date etag expect expires from host if-match "
        "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
        "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
        "server te trailer transfer-encoding upgrade user-agent vary via warning "
        "www-authenticate method get status"
    ).split(),
    "200 OK",
    *"version HTTP/1.1 url public set-cookie keep-alive origin".split(),  # noqa: SIM905
)
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417"
    "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
    "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
    "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8"
    "charset=iso-8859-1,utf-,*,enq=0."
)
#: SPDY/3's header compression dictionary (draft 3, section 2.6.10.1): length-prefixed
#: words, then a run of text. Its Adler-32 is the DICTID of every header zlib stream.
DICTIONARY = (
    b"".join(struct.pack(">I", len(word)) + word.encode() for word in _WORDS) + _TAIL.encode()
)


class SpdyProtocolError(Exception):
    """The peer broke SPDY/3.1; ``stream_id`` is 0 for a connection error (GOAWAY)."""

    def __init__(self, message: str, stream_id: int = 0) -> None:
        super().__init__(message)
        self.stream_id = stream_id


@dataclass(frozen=True)
class Frame:
    """One frame, unpacked. ``kind`` is :data:`DATA` or a control frame type."""

    kind: int
    flags: int = 0
    stream_id: int = 0
    data: bytes = b""
    #: SYN_STREAM, SYN_REPLY and HEADERS: header name (lowercase) -> values.
    headers: dict[str, list[str]] = field(default_factory=dict)
    #: RST_STREAM and GOAWAY status; PING id; WINDOW_UPDATE delta; GOAWAY last good id.
    status: int = 0
    value: int = 0
    associated_to: int = 0
    priority: int = 0
    settings: tuple[tuple[int, int, int], ...] = ()

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)

    def header(self, name: str) -> str:
        """The first value of header ``name`` (any case), or ``""``."""
        values = self.headers.get(name.lower()) or [""]
        return values[0]


def _parse_header_block(block: bytes, stream_id: int) -> dict[str, list[str]]:
    offset = 0

    def take(n: int) -> bytes:
        nonlocal offset
        if offset + n > len(block):
            raise SpdyProtocolError("truncated header block", stream_id)
        chunk = block[offset : offset + n]
        offset += n
        return chunk

    (count,) = struct.unpack(">I", take(4))
    headers: dict[str, list[str]] = {}
    for _ in range(count):
        (length,) = struct.unpack(">I", take(4))
        name = take(length).decode("latin-1")
        (length,) = struct.unpack(">I", take(4))
        value = take(length).decode("latin-1")
        if not name:
            raise SpdyProtocolError("empty header name", stream_id)
        if name != name.lower():
            raise SpdyProtocolError(f"header was not lowercased: {name!r}", stream_id)
        if name in headers:
            raise SpdyProtocolError(f"multiple headers with same name: {name!r}", stream_id)
        headers[name] = value.split("\x00")
    if offset != len(block):
        raise SpdyProtocolError("compressed payload size was incorrect", stream_id)
    return headers


class FrameReader:
    """Incremental SPDY/3.1 frame parser for one direction of a connection."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        """The frames ``data`` completes (a partial frame waits for more bytes)."""
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            length = int.from_bytes(self._buffer[5:8], "big")
            if len(self._buffer) < 8 + length:
                break
            head = bytes(self._buffer[:8])
            payload = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            frames.append(self._frame(head, payload))
        return frames

    def _headers(self, block: bytes, stream_id: int) -> dict[str, list[str]]:
        try:
            raw = self._inflate.decompress(block, MAX_HEADER_BLOCK + 1)
        except zlib.error as error:
            raise SpdyProtocolError(f"header block does not decompress: {error}") from None
        if len(raw) > MAX_HEADER_BLOCK or self._inflate.unconsumed_tail:
            raise SpdyProtocolError("header block too large")
        return _parse_header_block(raw, stream_id)

    def _frame(self, head: bytes, payload: bytes) -> Frame:
        first, flags = struct.unpack(">IB", head[:5])
        if not first & 0x80000000:
            stream_id = first & 0x7FFFFFFF
            if stream_id == 0:
                raise SpdyProtocolError("stream id zero is disallowed")
            return Frame(DATA, flags, stream_id, data=payload)
        version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise SpdyProtocolError(f"unsupported SPDY version {version}")
        if kind not in _LENGTHS:
            raise SpdyProtocolError(f"unknown control frame type {kind}")
        need = _LENGTHS[kind]
        if len(payload) < need or (kind in _EXACT and len(payload) != need):
            raise SpdyProtocolError(f"invalid control frame: type {kind}, length {len(payload)}")
        word = struct.unpack(">I", payload[:4])[0]
        stream_id = word & 0x7FFFFFFF
        if kind == SETTINGS:
            return self._settings(flags, payload)
        if kind == PING:
            if word == 0 or flags:
                raise SpdyProtocolError("invalid PING frame")
            return Frame(PING, flags, value=word)
        if kind == GOAWAY:
            if flags:
                raise SpdyProtocolError("invalid GOAWAY frame")
            return Frame(GOAWAY, value=stream_id, status=struct.unpack(">I", payload[4:])[0])
        if stream_id == 0:
            raise SpdyProtocolError("stream id zero is disallowed")
        if kind == RST_STREAM:
            status = struct.unpack(">I", payload[4:])[0]
            if status == 0:
                raise SpdyProtocolError("RST_STREAM with status 0", stream_id)
            return Frame(RST_STREAM, flags, stream_id, status=status)
        if kind == WINDOW_UPDATE:
            if flags:
                raise SpdyProtocolError("invalid WINDOW_UPDATE frame", stream_id)
            delta = struct.unpack(">I", payload[4:])[0] & 0x7FFFFFFF
            return Frame(WINDOW_UPDATE, flags, stream_id, value=delta)
        if kind == SYN_STREAM:
            associated = struct.unpack(">I", payload[4:8])[0] & 0x7FFFFFFF
            headers = self._headers(payload[10:], stream_id)
            if bad := _INVALID_REQUEST_HEADERS & headers.keys():
                raise SpdyProtocolError(
                    f"frame contained invalid header {sorted(bad)[0]!r}", stream_id
                )
            return Frame(
                SYN_STREAM,
                flags,
                stream_id,
                headers=headers,
                associated_to=associated,
                priority=payload[8] >> 5,
            )
        return Frame(kind, flags, stream_id, headers=self._headers(payload[4:], stream_id))

    @staticmethod
    def _settings(flags: int, payload: bytes) -> Frame:
        (count,) = struct.unpack(">I", payload[:4])
        if len(payload) != 4 + 8 * count:
            raise SpdyProtocolError("invalid SETTINGS frame length")
        entries = []
        for i in range(count):
            word, value = struct.unpack(">II", payload[4 + 8 * i : 12 + 8 * i])
            entries.append((word >> 24, word & 0xFFFFFF, value))
        return Frame(SETTINGS, flags, settings=tuple(entries))


class FrameWriter:
    """Builds frames for one direction of a connection (its own header zlib stream)."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(
            9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY
        )

    def _block(self, headers: dict[str, str | list[str]]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            joined = value if isinstance(value, str) else "\x00".join(value)
            for text in (name.lower(), joined):
                encoded = text.encode("latin-1")
                raw += struct.pack(">I", len(encoded)) + encoded
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def _control(kind: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload

    def syn_stream(
        self, stream_id: int, headers: dict[str, str | list[str]], *, fin: bool = False
    ) -> bytes:
        body = struct.pack(">IIBB", stream_id, 0, 0, 0) + self._block(headers)
        return self._control(SYN_STREAM, FLAG_FIN if fin else 0, body)

    def syn_reply(self, stream_id: int, headers: dict[str, str | list[str]] | None = None) -> bytes:
        return self._control(
            SYN_REPLY, 0, struct.pack(">I", stream_id) + self._block(headers or {})
        )

    def data(self, stream_id: int, payload: bytes, *, fin: bool = False) -> bytes:
        flags = FLAG_FIN if fin else 0
        return struct.pack(">II", stream_id, (flags << 24) | len(payload)) + payload

    def rst_stream(self, stream_id: int, status: int) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_good: int, status: int = 0) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_good, status))

    def window_update(self, stream_id: int, delta: int) -> bytes:
        return self._control(WINDOW_UPDATE, 0, struct.pack(">II", stream_id, delta))

    def settings(self, entries: tuple[tuple[int, int, int], ...]) -> bytes:
        body = struct.pack(">I", len(entries)) + b"".join(
            struct.pack(">II", (flag << 24) | key, value) for flag, key, value in entries
        )
        return self._control(SETTINGS, 0, body)
