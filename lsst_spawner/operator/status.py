"""The LabServer's status: phases, conditions and bounded progress events (pure).

The hub's ``progress`` relays ``status.events``; its ``poll`` reads ``status.phase``,
which follows the pod (:func:`pod_state`), never only the resource's existence.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..crd.models import MAX_STATUS_EVENTS, now
from ..kube.pull import PullFailure, pull_failure
from ..kube.startfail import StartFailure, start_failure

__all__ = [
    "TERMINAL_PHASES",
    "PodState",
    "add_event",
    "changed_spec_fields",
    "condition",
    "kube_timestamp",
    "pod_state",
    "spec_digest",
    "status_patch",
]

#: Phases after which the operator does nothing more for a LabServer.
TERMINAL_PHASES = frozenset({"Rejected", "Failed"})


def _time() -> str:
    return now().isoformat().replace("+00:00", "Z")


def add_event(
    events: Sequence[Mapping[str, Any]], message: str, progress: int, severity: str = "info"
) -> list[dict[str, Any]]:
    """``events`` with one more, keeping the newest :data:`MAX_STATUS_EVENTS`."""
    event = {"timestamp": _time(), "severity": severity, "progress": progress, "message": message}
    return [*[dict(e) for e in events], event][-MAX_STATUS_EVENTS:]


def condition(
    kind: str, status: bool, reason: str, message: str, generation: int | None
) -> dict[str, Any]:
    """One condition, as Kubernetes writes them."""
    return {
        "type": kind,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message[:1024],
        "lastTransitionTime": _time(),
        "observedGeneration": generation,
    }


def status_patch(
    current: Mapping[str, Any] | None,
    *,
    phase: str,
    message: str,
    progress: int | None = None,
    severity: str = "info",
    conditions: Sequence[Mapping[str, Any]] = (),
    generation: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A merge patch of ``status``: the new phase and message, one more event, conditions."""
    current = current or {}
    merged = {c["type"]: dict(c) for c in current.get("conditions") or [] if "type" in c}
    for item in conditions:
        merged[item["type"]] = dict(item)
    patch: dict[str, Any] = {
        "phase": phase,
        "message": message[:1024],
        "observedGeneration": generation,
        "conditions": list(merged.values()),
        **fields,
    }
    if progress is not None:
        patch["events"] = add_event(current.get("events") or [], message[:1024], progress, severity)
    return patch


def spec_digest(spec: Mapping[str, Any] | None) -> str:
    """A digest of a LabServer's spec: the status keeps the accepted one's (``acceptedSpec``),
    so a spec edited back to it is known to be what the lab runs again."""
    text = json.dumps(spec or {}, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def changed_spec_fields(diff: Iterable[Sequence[Any]]) -> list[str]:
    """The ``spec.…`` paths a kopf diff of the spec (``field="spec"``) changes, sorted."""
    paths = set()
    for item in diff:
        path = [str(part) for part in (item[1] if len(item) > 1 else ())]
        if path[:1] != ["spec"]:
            path = ["spec", *path]
        paths.add(".".join(path[:3]))
    return sorted(paths)


@dataclass(frozen=True)
class PodState:
    """What a LabServer's status says of its pod."""

    phase: str
    message: str
    address: str | None = None
    pull_failure: PullFailure | None = None
    #: A missing Secret/ConfigMap (or key) the pod reads, or a failing init container.
    start_failure: StartFailure | None = None


def pod_state(pod: Mapping[str, Any] | None) -> PodState:
    """The LabServer phase a pod's state means: Starting, Running or Failed."""
    if pod is None:
        return PodState("Failed", "the lab pod is gone")
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase in ("Failed", "Succeeded"):
        return PodState(
            "Failed", f"the lab pod ended ({phase}): {status.get('message') or ''}".strip()
        )
    failure = pull_failure(pod)
    if failure is not None:
        return PodState("Starting", failure.user_message(), pull_failure=failure)
    held = start_failure(pod)
    if held is not None:
        return PodState("Starting", held.user_message(), start_failure=held)
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    if phase == "Running" and ready and status.get("podIP"):
        return PodState("Running", "your lab pod is running", address=status["podIP"])
    return PodState("Starting", f"the lab pod is {phase or 'being scheduled'}")


def kube_timestamp(value: object) -> float | None:
    """A Kubernetes timestamp as seconds since the epoch."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
