"""How many API requests a client has in flight, and whose go first when it is full.

A storm of 3,000 LabServers at once made the operator's requests queue for its client's
100 connections inside their 10 s timeouts: they timed out unsent and were retried (4,351
``TimeoutError`` retries at N=3,000, docs/performance.md). :class:`Admission` queues them
before their timeout starts (``with_retries(admission=...)``). A plain semaphore wakes its
waiters first come, first served, request by request: each lab's next request queued
behind every other lab's, so all 3,000 labs became ready together at the very end (p50
226.8 s, p99 228.3 s). Here the waiter with the lowest *priority* goes first (the
operator gives the LabServer's creation time, :data:`PRIORITY`), so the labs declared
first finish first, as they would one at a time; equal priorities go in arrival order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from contextvars import ContextVar

__all__ = ["PRIORITY", "Admission"]

#: The priority of the requests the current task makes (lower goes first); tasks that do
#: not set it go after every task that does, in arrival order.
PRIORITY: ContextVar[float] = ContextVar("lsst_spawner_admission_priority", default=math.inf)


class Admission:
    """At most ``limit`` holders at once; waiters admitted lowest :data:`PRIORITY` first."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"an admission limit must be 1 or more, not {limit}")
        self.limit = limit
        self._free = limit
        self._order = itertools.count()
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []

    @property
    def waiting(self) -> int:
        """How many acquisitions are queued (cancelled ones aside)."""
        return sum(1 for *_, future in self._waiters if not future.done())

    async def acquire(self) -> None:
        """Wait for a slot (at once when one is free and nobody is queued)."""
        if self._free > 0:  # never while someone waits: release() hands slots over
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (PRIORITY.get(), next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # handed a slot as it was cancelled: pass it on
            raise

    def release(self) -> None:
        """Give a slot back: to the first waiter by priority, else to the free ones."""
        while self._waiters:
            *_, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)
                return
        self._free += 1
