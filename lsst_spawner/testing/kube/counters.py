"""Request counters, per verb and resource, for benchmarks and assertions."""

from __future__ import annotations

import threading
from collections import Counter

__all__ = ["RequestCounters"]


class RequestCounters:
    """Counts every request the emulator receives, faults included.

    Verbs are the API server's audit verbs: ``get``, ``list``, ``watch``,
    ``create``, ``update``, ``patch``, ``delete``, ``deletecollection``.
    Resources include the subresource (``pods/status``). ``seconds`` sums the
    time spent handling each verb (for watches, until the stream starts).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.seconds: dict[str, float] = {}
        self.faults: Counter[tuple[str, str, str]] = Counter()

    def count(self, verb: str, resource: str) -> None:
        with self._lock:
            self.requests[(verb, resource)] += 1

    def timed(self, verb: str, elapsed: float) -> None:
        with self._lock:
            self.seconds[verb] = self.seconds.get(verb, 0.0) + elapsed

    def fault(self, kind: str, verb: str, resource: str) -> None:
        with self._lock:
            self.faults[(kind, verb, resource)] += 1

    def get(self, verb: str | None = None, resource: str | None = None) -> int:
        """Requests matching a verb and/or resource (None matches any)."""
        with self._lock:
            return sum(
                n
                for (v, r), n in self.requests.items()
                if (verb is None or v == verb) and (resource is None or r == resource)
            )

    @property
    def total(self) -> int:
        return self.get()

    def faults_injected(self, kind: str | None = None) -> int:
        with self._lock:
            return sum(n for (k, _, _), n in self.faults.items() if kind is None or k == kind)

    def as_dict(self) -> dict[str, dict[str, int]]:
        """``{verb: {resource: count}}``, JSON-friendly."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for (verb, resource), n in sorted(self.requests.items()):
                out.setdefault(verb, {})[resource] = n
        return out

    def mean_seconds(self, verb: str) -> float:
        with self._lock:
            n = sum(c for (v, _), c in self.requests.items() if v == verb)
            return self.seconds.get(verb, 0.0) / n if n else 0.0

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.seconds.clear()
            self.faults.clear()
