"""The registry's answers to "is this pinned manifest still there?", kept for a short age.

Each spawn asks, off its critical path, whether its image's pinned manifest still
exists (:func:`lsst_spawner.kube.pull.watch_image_pull` fails fast when it is gone).
In a spawn storm most spawns pin the same few digests: :class:`ManifestAnswers`
keeps each answer for ``max_age`` seconds (``image_manifest_check_max_age``) and
lets concurrent spawns asking about one digest share one request, so the registry
sees about one ``HEAD`` per image and period instead of one per spawn. A failed
request is not an answer: it is not kept, and the next spawn asks again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["ANSWERS_KEPT", "ManifestAnswers"]

#: At most this many digests' answers are kept (the menu offers far fewer images).
ANSWERS_KEPT = 1024


class ManifestAnswers:
    """``exists(digest)`` through ``check`` (one registry request), answers kept ``max_age``."""

    def __init__(
        self,
        check: Callable[[str], Awaitable[bool]],
        max_age: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        limit: int = ANSWERS_KEPT,
    ) -> None:
        self._check = check
        self.max_age = max_age
        self._clock = clock
        self._limit = limit
        self._answers: dict[str, tuple[bool, float]] = {}
        self._asking: dict[str, asyncio.Future[bool]] = {}
        #: Requests made to the registry (tests and benchmarks read it).
        self.requests = 0

    async def exists(self, digest: str) -> bool:
        """Whether the manifest ``digest`` exists: a kept answer younger than ``max_age``, the
        answer of a request in flight for it, or a new request's."""
        kept = self._answers.get(digest)
        if kept is not None and self._clock() - kept[1] < self.max_age:
            return kept[0]
        asking = self._asking.get(digest)
        if asking is None:
            asking = self._asking[digest] = asyncio.ensure_future(self._ask(digest))
            # Retrieved here too, for when every asker gave up before a failure.
            asking.add_done_callback(lambda done: done.cancelled() or done.exception())
        # One spawn giving up (its pod started) does not cancel the others' answer.
        return await asyncio.shield(asking)

    async def _ask(self, digest: str) -> bool:
        self.requests += 1
        try:
            answer = bool(await self._check(digest))
        finally:
            del self._asking[digest]
        if len(self._answers) >= self._limit:
            self._answers.clear()
        self._answers[digest] = (answer, self._clock())
        return answer
