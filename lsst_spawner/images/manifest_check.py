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

import time
from collections.abc import Awaitable, Callable

from .answer_cache import AnswerCache

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
        # failure_ttl 0: a failed request is raised to the spawns waiting on it, not kept.
        self._answers: AnswerCache[str, bool] = AnswerCache(
            self._ask, max_age, clock=clock, limit=limit
        )

    @property
    def requests(self) -> int:
        """Requests made to the registry (tests and benchmarks read it)."""
        return self._answers.fetches

    async def exists(self, digest: str) -> bool:
        """Whether the manifest ``digest`` exists: a kept answer younger than ``max_age``, the
        answer of a request in flight for it, or a new request's. One spawn giving up (its
        pod started) does not cancel the others' answer."""
        return await self._answers.get(digest)

    async def _ask(self, digest: str) -> bool:
        return bool(await self._check(digest))
