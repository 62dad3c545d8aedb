"""Pod status fragments the kubelet writes: conditions and container statuses."""

from __future__ import annotations

import uuid
from typing import Any

from .store import now_rfc3339

#: The status lists of app and of init containers.
APP = "containerStatuses"
INIT = "initContainerStatuses"

__all__ = [
    "APP",
    "INIT",
    "refresh_pod_conditions",
    "running_status",
    "set_condition",
    "set_container",
    "terminated_state",
    "waiting_status",
]


def set_condition(pod: dict[str, Any], kind: str, ok: bool, reason: str | None = None) -> None:
    conditions = pod["status"].setdefault("conditions", [])
    entry = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": now_rfc3339(),
    }
    if reason:
        entry["reason"] = reason
    for n, existing in enumerate(conditions):
        if existing["type"] == kind:
            if existing["status"] == entry["status"]:
                entry["lastTransitionTime"] = existing["lastTransitionTime"]
            conditions[n] = entry
            return
    conditions.append(entry)


def _base(container: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": "",
        "restartCount": 0,
        "ready": False,
        "started": False,
    }


def waiting_status(
    container: dict[str, Any], reason: str, message: str | None = None
) -> dict[str, Any]:
    state = {"reason": reason, **({"message": message} if message else {})}
    return {**_base(container), "state": {"waiting": state}}


def running_status(container: dict[str, Any], started: str, ready: bool) -> dict[str, Any]:
    return {
        **_base(container),
        "ready": ready,
        "started": True,
        "imageID": f"emulator://{container['image']}",
        "containerID": f"emulator://{uuid.uuid4().hex}",
        "state": {"running": {"startedAt": started}},
    }


def set_container(pod: dict[str, Any], name: str, status: dict[str, Any], group: str = APP) -> None:
    """Put ``status`` in the pod's ``group`` (``initContainerStatuses`` for init containers)."""
    statuses = pod["status"].setdefault(group, [])
    for n, existing in enumerate(statuses):
        if existing["name"] == name:
            statuses[n] = status
            return
    statuses.append(status)


def terminated_state(code: int, started: str, finished: str) -> dict[str, Any]:
    """A container's ``terminated`` state after it exited with ``code``."""
    reason = "Completed" if code == 0 else "Error"
    return {
        "exitCode": code,
        "reason": reason,
        "startedAt": started,
        "finishedAt": finished,
    }


def refresh_pod_conditions(pod: dict[str, Any]) -> None:
    """Phase and the Ready/ContainersReady conditions from the container statuses."""
    statuses = pod["status"].get("containerStatuses") or []
    states = [s["state"] for s in statuses]
    if states and all("terminated" in s for s in states):
        failed = any(s["terminated"]["exitCode"] != 0 for s in states)
        pod["status"]["phase"] = "Failed" if failed else "Succeeded"
        set_condition(pod, "Ready", False, "PodCompleted")
        set_condition(pod, "ContainersReady", False, "PodCompleted")
        return
    if any("running" in s for s in states) or any(s.get("restartCount") for s in statuses):
        pod["status"]["phase"] = "Running"
    ready = bool(statuses) and all(s.get("ready") for s in statuses)
    reason = None if ready else "ContainersNotReady"
    set_condition(pod, "ContainersReady", ready, reason)
    set_condition(pod, "Ready", ready, reason)
