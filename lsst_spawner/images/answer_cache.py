"""One answer per key, fetched once however many callers ask at once, and kept a while.

The registry's answers the hub and the editor ask for again and again (does this
pinned manifest exist? how large is this tag?) go through :class:`AnswerCache`:
callers asking about one key while its fetch is in flight share that fetch, and its
answer is kept ``ttl`` seconds. What happens to a failure is the caller's rule,
``failure_ttl``: 0 keeps none (the next caller fetches again), more keeps it that
long (a registry that is down is not asked by every page view, but soon again).
A caller that stops waiting (cancelled, or gone past its own timeout) cancels
nobody else's answer and leaves the fetch running.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["AnswerCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _never_failed(answer: object) -> bool:
    return False


def _retrieve(done: asyncio.Future[Any]) -> None:
    # For when every caller gave up before a failure: no "exception never retrieved".
    if not done.cancelled():
        done.exception()


class _Entry(Generic[V]):
    """One key's fetch; ``kept_until`` is set when it settles into a kept answer."""

    __slots__ = ("future", "kept_until")

    def __init__(self) -> None:
        self.future: asyncio.Future[V]
        self.kept_until: float | None = None


class AnswerCache(Generic[K, V]):
    """``fetch(key)`` at most once at a time per key; answers kept ``ttl`` seconds.

    A failure, ``fetch`` raising or an answer that ``failed(answer)`` calls one, is kept
    ``failure_ttl`` seconds (0: not kept). A kept raised failure is raised again to the
    callers within its time. At most ``limit`` keys are kept: past it, the older half of
    the settled answers are dropped (fetches in flight never are).
    """

    def __init__(
        self,
        fetch: Callable[[K], Awaitable[V]],
        ttl: float,
        *,
        failure_ttl: float = 0.0,
        failed: Callable[[V], bool] = _never_failed,
        clock: Callable[[], float] = time.monotonic,
        limit: int = 1024,
    ) -> None:
        for name, seconds in (("ttl", ttl), ("failure_ttl", failure_ttl)):
            if not (seconds >= 0 and math.isfinite(seconds)):
                raise ValueError(
                    f"AnswerCache {name} must be a finite number >= 0, not {seconds!r}"
                )
        if limit < 1:
            raise ValueError(f"AnswerCache limit must be at least 1, not {limit!r}")
        self._fetch_answer = fetch
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self._failed = failed
        self._clock = clock
        self.limit = limit
        self._entries: dict[K, _Entry[V]] = {}
        #: Fetches started (tests, benchmarks and diagnostics read it).
        self.fetches = 0

    def ask(self, key: K) -> asyncio.Future[V]:
        """This caller's future of ``key``'s answer: a kept one, the one of the fetch in
        flight, or a new fetch's. Cancelling it cancels nobody else's, nor the fetch."""
        entry = self._entries.get(key)
        if entry is None or not self._fresh(entry):
            entry = self._start(key)
        return asyncio.shield(entry.future)

    async def get(self, key: K) -> V:
        """``key``'s answer (see :meth:`ask`); a failure fetching it is raised."""
        return await self.ask(key)

    def __len__(self) -> int:
        return len(self._entries)

    def _fresh(self, entry: _Entry[V]) -> bool:
        if not entry.future.done():
            return True
        if entry.future.cancelled() or entry.kept_until is None:
            return False
        return self._clock() < entry.kept_until

    def _start(self, key: K) -> _Entry[V]:
        self._entries.pop(key, None)  # re-added last: the dict's order is the answers' age
        if len(self._entries) >= self.limit:
            settled = [k for k, e in self._entries.items() if e.future.done()]
            for old in settled[: max(1, len(settled) // 2)]:
                del self._entries[old]
        entry: _Entry[V] = _Entry()
        entry.future = asyncio.ensure_future(self._fetch(key, entry))
        entry.future.add_done_callback(_retrieve)
        self._entries[key] = entry
        return entry

    async def _fetch(self, key: K, entry: _Entry[V]) -> V:
        self.fetches += 1
        try:
            answer = await self._fetch_answer(key)
        except asyncio.CancelledError:
            raise  # a cancelled fetch is no answer: the next caller fetches again
        except Exception:
            self._settle(key, entry, self.failure_ttl)
            raise
        self._settle(key, entry, self.failure_ttl if self._failed(answer) else self.ttl)
        return answer

    def _settle(self, key: K, entry: _Entry[V], keep: float) -> None:
        if keep > 0:
            entry.kept_until = self._clock() + keep
        elif self._entries.get(key) is entry:
            del self._entries[key]

    async def close(self) -> None:
        """Cancel the fetches in flight and forget every answer."""
        running = [e.future for e in self._entries.values() if not e.future.done()]
        for future in running:
            future.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self._entries.clear()
