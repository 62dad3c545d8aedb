"""Waiting in a test for what signals nothing: a bounded poll that says what it waited for.

:func:`wait_for` calls ``check`` every ``interval`` seconds until its value is accepted
(truthy, or what ``until`` accepts) and returns that value; after ``timeout`` seconds
it fails with :class:`WaitTimeout`, an ``AssertionError`` naming ``what`` was awaited,
the last value ``check`` gave and, when given, ``detail()`` (a log tail, say).
:func:`wait_for_async` is the same for a coroutine, with a ``check`` that may be a
coroutine function; it sleeps with ``asyncio.sleep``, so the event loop goes on.
``check`` is always called at least once, and once more at the deadline.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["WaitTimeout", "wait_for", "wait_for_async"]

T = TypeVar("T")

#: At most this many characters of the last value seen go into the message.
SHOWN = 3000


class WaitTimeout(AssertionError):
    """What was awaited did not come within the timeout; the message says what and the last
    value seen."""


def _shown(value: object) -> str:
    text = repr(value)
    if len(text) <= SHOWN:
        return text
    return f"{text[: SHOWN // 3]} … {text[-2 * SHOWN // 3 :]}"


def _timed_out(
    what: str, timeout: float, value: object, detail: Callable[[], str] | None
) -> WaitTimeout:
    message = f"timed out after {timeout:g}s waiting for {what}; the last value seen: "
    message += _shown(value)
    if detail is not None:
        message += f"\n{detail()}"
    return WaitTimeout(message)


def wait_for(
    check: Callable[[], T],
    what: str,
    *,
    timeout: float = 60.0,
    interval: float = 0.1,
    until: Callable[[T], object] = bool,
    detail: Callable[[], str] | None = None,
) -> T:
    """``check()``'s first value that ``until`` accepts, polled every ``interval`` seconds;
    :class:`WaitTimeout` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, value, detail)
        time.sleep(interval)


async def wait_for_async(
    check: Callable[[], Any],
    what: str,
    *,
    timeout: float = 60.0,  # noqa: ASYNC109 - the poll's bound, named in its failure
    interval: float = 0.1,
    until: Callable[[Any], object] = bool,
    detail: Callable[[], str] | None = None,
) -> Any:
    """:func:`wait_for` in a coroutine: ``check()`` is awaited when it gives an awaitable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if until(value):
            return value
        if loop.time() >= deadline:
            raise _timed_out(what, timeout, value, detail)
        await asyncio.sleep(interval)
