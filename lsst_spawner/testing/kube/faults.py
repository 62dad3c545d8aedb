"""Fault injection: error responses, connection resets and latency, seeded.

Rules are checked in the order they were added for every request whose verb
and resource they cover. Latency from every matching rule adds up; the first
matching error or reset rule that fires ends the request. All randomness
comes from one ``random.Random(seed)``, so the same sequence of requests sees
the same faults. "API down" is handled by the server (it closes its socket);
see :meth:`KubeEmulator.down`. A watch lag (:meth:`FaultInjector.watch_lag`)
delivers a resource's watch events late, as a loaded API server or client does.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

__all__ = ["FaultInjector", "FaultRule", "Verdict"]

FaultKind = Literal["error", "reset", "latency", "lost"]


@dataclass
class FaultRule:
    kind: FaultKind
    rate: float = 1.0
    verbs: frozenset[str] | None = None
    resources: frozenset[str] | None = None
    status: int = 500
    retry_after: int | None = None
    seconds: float = 0.0
    times: int | None = None  # fire at most this many times (None: unlimited)
    fired: int = 0

    def covers(self, verb: str, resource: str) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        return (self.verbs is None or verb in self.verbs) and (
            self.resources is None or resource in self.resources
        )


@dataclass
class Verdict:
    delay: float = 0.0
    error: FaultRule | None = None
    reset: bool = False
    #: Handle the request, then drop the connection instead of answering.
    lost: bool = False


def _set(values: Collection[str] | str | None) -> frozenset[str] | None:
    if values is None:
        return None
    return frozenset([values] if isinstance(values, str) else values)


class FaultInjector:
    """Per-verb/resource faults; configure from any thread."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = []
        self._lags: dict[str, float] = {}
        self.seed(seed)

    def seed(self, seed: int) -> None:
        with self._lock:
            self._random = random.Random(seed)

    def add(self, rule: FaultRule) -> FaultRule:
        if not 0.0 <= rule.rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, not {rule.rate}")
        with self._lock:
            self.rules.append(rule)
        return rule

    def error_rate(
        self,
        rate: float,
        status: int = 500,
        *,
        verbs: Collection[str] | str | None = None,
        resources: Collection[str] | str | None = None,
        retry_after: int | None = None,
        times: int | None = None,
    ) -> FaultRule:
        """Answer a fraction of matching requests with ``status`` (500, 503, 429, ...)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        return self.add(
            FaultRule("error", rate, _set(verbs), _set(resources), status, retry_after, times=times)
        )

    def reset_rate(
        self,
        rate: float,
        *,
        verbs: Collection[str] | str | None = None,
        resources: Collection[str] | str | None = None,
        times: int | None = None,
    ) -> FaultRule:
        """Drop the TCP connection without a response for a fraction of requests."""
        return self.add(FaultRule("reset", rate, _set(verbs), _set(resources), times=times))

    def latency(
        self,
        seconds: float,
        rate: float = 1.0,
        *,
        verbs: Collection[str] | str | None = None,
        resources: Collection[str] | str | None = None,
        times: int | None = None,
    ) -> FaultRule:
        """Delay matching requests by ``seconds`` before they are handled."""
        return self.add(
            FaultRule("latency", rate, _set(verbs), _set(resources), seconds=seconds, times=times)
        )

    def lost_reply_rate(
        self,
        rate: float,
        *,
        verbs: Collection[str] | str | None = None,
        resources: Collection[str] | str | None = None,
        times: int | None = None,
    ) -> FaultRule:
        """Carry out a fraction of matching requests, then drop the connection instead of
        answering: the write happened, the client only sees a failure (a reply lost to a
        timeout or a broken connection), so its retry finds its own object there."""
        return self.add(FaultRule("lost", rate, _set(verbs), _set(resources), times=times))

    def watch_lag(self, seconds: float, resources: Collection[str] | str) -> None:
        """Send each watch event of ``resources`` no sooner than ``seconds`` after its change
        (in order, so the watch runs that far behind); 0 ends the lag."""
        with self._lock:
            for resource in _set(resources) or ():
                if seconds > 0:
                    self._lags[resource] = seconds
                else:
                    self._lags.pop(resource, None)

    def lag_of(self, resource: str) -> float:
        """How late the watch events of ``resource`` are sent (seconds)."""
        with self._lock:
            return self._lags.get(resource, 0.0)

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            self.rules.remove(rule)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self._lags.clear()

    def decide(self, verb: str, resource: str) -> Verdict:
        verdict = Verdict()
        with self._lock:
            for rule in self.rules:
                if not rule.covers(verb, resource):
                    continue
                if rule.rate < 1.0 and self._random.random() >= rule.rate:
                    continue
                rule.fired += 1
                if rule.kind == "latency":
                    verdict.delay += rule.seconds
                elif rule.kind == "reset":
                    verdict.reset = True
                    break
                elif rule.kind == "lost":
                    verdict.lost = True
                    break
                else:
                    verdict.error = rule
                    break
        return verdict
