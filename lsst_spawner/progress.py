"""Spawn progress events: the spawner's own steps and the pod's Kubernetes events, merged.

Every event has a ``progress`` percentage that only goes up, an ISO 8601
``timestamp`` and a ``severity`` (``info``, ``warning`` or ``error``), besides
the ``message`` JupyterHub's progress page shows. The last event of a
successful spawn is at 100.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["KUBE_REASON_PROGRESS", "SpawnProgress", "severity_of"]

#: Where a Kubernetes event of this reason puts the progress bar.
KUBE_REASON_PROGRESS = {
    "Scheduled": 40,
    "Pulling": 50,
    "Pulled": 75,
    "Created": 85,
    "Started": 90,
}
#: Errors among Kubernetes event reasons (their type is only ``Warning``).
_ERROR_REASONS = frozenset({"Failed", "FailedScheduling", "FailedMount", "ErrImagePull"})
_LAST_BEFORE_READY = 99


def severity_of(event: Mapping[str, Any]) -> str:
    """``info`` for Normal events, ``error`` for failures, ``warning`` for other Warnings."""
    if event.get("type") == "Normal":
        return "info"
    if event.get("reason") in _ERROR_REASONS:
        return "error"
    return "warning"


def _now() -> datetime:
    return datetime.now(UTC)


class SpawnProgress:
    """The progress of one spawn. One per spawn attempt, never shared between users."""

    def __init__(self, clock: Callable[[], datetime] = _now) -> None:
        self._clock = clock
        self._last = 0
        self.events: list[dict[str, Any]] = []
        #: True once the pod was requested: its Kubernetes events belong to this spawn.
        self.follows_pod_events = False
        #: How many of the pod's Kubernetes events are recorded in :attr:`events`.
        self._kube_recorded = 0
        #: The final event, made once (every page that follows the spawn is shown it).
        self._final: dict[str, Any] | None = None
        #: Made by the first reader that waits: many spawns have none (REST API clients).
        self._changed: asyncio.Event | None = None

    @property
    def last_progress(self) -> int:
        return self._last

    def _advance(self, wanted: int, *, final: bool = False) -> int:
        ceiling = 100 if final else _LAST_BEFORE_READY
        value = min(ceiling, max(wanted, self._last + 1))
        self._last = max(self._last, value)
        return self._last

    def _event(
        self, message: str, progress: int, severity: str, timestamp: str | None = None
    ) -> dict[str, Any]:
        return {
            "progress": progress,
            "message": message,
            "severity": severity,
            "timestamp": timestamp or self._clock().isoformat(),
        }

    def step(self, message: str, progress: int, severity: str = "info") -> dict[str, Any]:
        """Record one of the spawner's own steps; ``progress`` is where it should be at least."""
        event = self._event(message, self._advance(progress), severity)
        self.events.append(event)
        if self._changed is not None:
            self._changed.set()
        return event

    def kube_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The progress event for a Kubernetes event of the lab's pod (not recorded)."""
        reason = str(event.get("reason") or "")
        wanted = KUBE_REASON_PROGRESS.get(reason, self._last + (95 - self._last) // 4)
        field = str((event.get("involvedObject") or {}).get("fieldPath") or "")
        if field.startswith("spec.initContainers"):
            # Init containers run before the lab's image is pulled: their events move the bar
            # by one each, so the lab container's own steps keep their percentages.
            wanted = self._last + 1
        severity = severity_of(event)
        text = str(event.get("message") or "").strip()
        message = f"{reason}: {text}" if reason else text
        if severity != "info":
            message = f"{severity.capitalize()}: {message}"
        stamp = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
        timestamp = stamp.isoformat() if isinstance(stamp, datetime) else stamp
        return self._event(message, self._advance(wanted), severity, timestamp)

    def record_kube_events(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Record the pod's events not yet recorded (``events``: all of them, in order)."""
        for event in events[self._kube_recorded :]:
            self.events.append(self.kube_event(event))
        self._kube_recorded = max(self._kube_recorded, len(events))

    def ready(self, message: str = "Your lab is ready") -> dict[str, Any]:
        """The final event of a successful spawn, at 100."""
        return self._event(message, self._advance(100, final=True), "info")

    def finish(self, message: str) -> dict[str, Any]:
        """The final event of this successful spawn, made by its first reader, at 100."""
        if self._final is None:
            self._final = self.ready(message)
        return self._final

    async def wait_for_step(self, seconds: float) -> None:
        """Wait until a step is recorded or ``seconds`` pass."""
        if self._changed is None:
            self._changed = asyncio.Event()
        try:
            async with asyncio.timeout(seconds):
                await self._changed.wait()
        except TimeoutError:
            pass
        self._changed.clear()
