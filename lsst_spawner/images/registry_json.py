"""Decoding a registry's JSON replies within bounds: size, nesting depth and CPU time.

A registry is not trusted to send sensible JSON. :func:`decode_json` refuses a
reply nested deeper than ``max_depth`` (the C decoder would raise
``RecursionError`` at some depth, or crash the thread's stack) and one whose
decoding takes longer than ``time_limit`` seconds, with :class:`ReplyError`.

It uses the standard library's pure-Python scanner instead of the C one, with
the depth and the clock checked at each array and object. That is slower (a
10,000-tag page takes a few tens of milliseconds), but it returns to the
interpreter often, so when it runs in a worker thread (the registry client
calls it through ``asyncio.to_thread``) the event loop's thread gets the GIL
back every switch interval (5 ms) instead of waiting for the whole reply.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import time
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_MAX_DEPTH", "ReplyError", "decode_json"]

#: Registry replies are flat (a tag list is depth 2): anything deeper than this is hostile.
DEFAULT_MAX_DEPTH = 32
#: How many values are decoded between two looks at the clock.
_CLOCK_EVERY = 256


class ReplyError(ValueError):
    """A reply that is not JSON, or breaks a bound; the message says which."""


class _BoundedDecoder(json.JSONDecoder):
    def __init__(self, max_depth: int, deadline: float, clock: Callable[[], float]) -> None:
        super().__init__(strict=True)
        self._max_depth = max_depth
        self._deadline = deadline
        self._clock = clock
        self._depth = 0
        self._count = 0
        parse_object: Callable[..., Any] = json.decoder.JSONObject  # type: ignore[attr-defined]
        parse_array: Callable[..., Any] = json.decoder.JSONArray  # type: ignore[attr-defined]

        def tick() -> None:
            self._count += 1
            if self._count % _CLOCK_EVERY == 0 and self._clock() > self._deadline:
                raise ReplyError("decoding the reply took too long")

        def nested(parse: Callable[..., Any]) -> Callable[..., Any]:
            def parse_nested(*args: Any) -> Any:
                self._depth += 1
                if self._depth > self._max_depth:
                    raise ReplyError(f"the reply is nested more than {self._max_depth} levels deep")
                tick()
                try:
                    return parse(*args)
                finally:
                    self._depth -= 1

            return parse_nested

        parse_string: Callable[..., Any] = json.decoder.scanstring  # type: ignore[attr-defined]

        def counted_string(*args: Any) -> Any:
            tick()
            return parse_string(*args)

        def counted_number(convert: Callable[[str], Any]) -> Callable[[str], Any]:
            def parse_number(text: str) -> Any:
                tick()
                return convert(text)

            return parse_number

        self.parse_object = nested(parse_object)
        self.parse_array = nested(parse_array)
        self.parse_string = counted_string
        self.parse_int = counted_number(int)
        self.parse_float = counted_number(float)
        # The pure-Python scanner (not the C one): it calls the hooks above.
        self.scan_once = json.scanner.py_make_scanner(self)  # type: ignore[attr-defined]


def decode_json(
    body: bytes,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    time_limit: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """Decode ``body`` as UTF-8 JSON within ``max_depth`` levels and ``time_limit`` seconds.

    Raises :class:`ReplyError` for anything else: invalid UTF-8 or JSON,
    too deep, too slow, a number too long for ``int()``.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ReplyError("the reply is not UTF-8") from None
    decoder = _BoundedDecoder(max_depth, clock() + time_limit, clock)
    try:
        return decoder.decode(text)
    except ReplyError:
        raise
    except RecursionError:  # only if max_depth is above the interpreter's limit
        raise ReplyError("the reply is nested too deeply") from None
    except ValueError:  # JSONDecodeError, and int() of more than 4,300 digits
        raise ReplyError("the reply is not JSON") from None
