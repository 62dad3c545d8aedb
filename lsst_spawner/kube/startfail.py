"""Failing fast when the lab's pod cannot start for a reason the kubelet retries forever.

Besides image pulls (:mod:`lsst_spawner.kube.pull`), two such reasons keep a lab
pending until KubeSpawner's ``start_timeout``:

- **A Secret or ConfigMap the pod reads is missing, or lacks a key.** For an env
  ``secretKeyRef``/``configMapKeyRef``/``envFrom`` (not ``optional``) the kubelet
  reports the container ``waiting`` with reason ``CreateContainerConfigError`` and a
  message such as ``secret "x" not found`` or ``couldn't find key k in Secret ns/x``;
  for a volume it posts ``FailedMount`` events (``MountVolume.SetUp failed for
  volume "v" : secret "x" not found``) and no container starts. It retries both, so
  a Secret created later still starts the lab.
- **An init container fails.** Under ``restartPolicy: Never`` the pod fails at
  once; under KubeSpawner's ``OnFailure`` the kubelet restarts it with back-off
  (``Init:CrashLoopBackOff``) for as long as it fails.

:func:`start_failure` reads a pod (the reflector's copy) and its events (the event
reflector's: no extra request) for those; :func:`watch_start` gives the kubelet a
grace period (a Secret being created by the site's own tooling, a flaky download in
an init container) and then returns the failure, naming the Secret or ConfigMap and
its keys, or the init container and its exit code. A failed pod is returned at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .pull import container_started, waiting_containers

T = TypeVar("T")

__all__ = [
    "StartFailure",
    "init_failure",
    "missing_reference",
    "start_failure",
    "until_failure",
    "watch_start",
]

CONFIG_ERROR = "CreateContainerConfigError"
MOUNT_FAILED = "FailedMount"
INIT_FAILED = "InitContainerFailed"

_NOT_FOUND = re.compile(r'\b(secret|configmap)s? "([^"]+)" not found')
_NO_KEY = re.compile(r"couldn't find key (\S+) in (Secret|ConfigMap) ([^/\s]+)/(\S+)")
_NO_VOLUME_KEY = re.compile(r"references non-existent (?:secret |config )?key:? (\S+)")
_KIND = {"secret": "Secret", "configmap": "ConfigMap"}


@dataclass(frozen=True)
class StartFailure:
    """Why the lab's pod cannot start: the reason, what is wrong, the kubelet's words."""

    reason: str
    #: What the user and the administrators are to look at, e.g. ``the Secret site (key k)``.
    subject: str
    message: str
    #: Nothing will recover (the pod failed): no grace period.
    final: bool = False

    def user_message(self) -> str:
        detail = f" (the node said: {self.message})" if self.message else ""
        if self.reason == INIT_FAILED:
            what = f"{self.subject} failed"
        else:
            what = f"{self.subject} it reads is missing"
        return (
            f"Your lab could not start: {what} [{self.reason}]{detail}. "
            "Please tell the hub's administrators; starting again will not help until "
            "they fix it."
        )


def _refs(pod: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Every (kind, name, key) the pod's containers and volumes read; key "" for a whole object."""
    spec = pod.get("spec") or {}
    found: list[tuple[str, str, str]] = []
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for source in container.get("envFrom") or []:
            for kind, field in (("secret", "secretRef"), ("configmap", "configMapRef")):
                if field in source:
                    found.append((kind, str(source[field].get("name", "")), ""))
        for var in container.get("env") or []:
            value_from = var.get("valueFrom") or {}
            for kind, field in (("secret", "secretKeyRef"), ("configmap", "configMapKeyRef")):
                if field in value_from:
                    ref = value_from[field]
                    found.append((kind, str(ref.get("name", "")), str(ref.get("key", ""))))
    for volume in spec.get("volumes") or []:
        sources: list[tuple[str, Mapping[str, Any]]] = []
        if "secret" in volume:
            source = volume["secret"]
            sources.append(("secret", {**source, "name": source.get("secretName", "")}))
        if "configMap" in volume:
            sources.append(("configmap", volume["configMap"]))
        for part in (volume.get("projected") or {}).get("sources") or []:
            for kind, field in (("secret", "secret"), ("configmap", "configMap")):
                if field in part:
                    sources.append((kind, part[field]))
        for kind, source in sources:
            name = str(source.get("name", ""))
            keys = [str(item.get("key", "")) for item in source.get("items") or []]
            found += [(kind, name, key) for key in keys] or [(kind, name, "")]
    return found


def _subject(kind: str, name: str, keys: Iterable[str]) -> str:
    wanted = sorted({k for k in keys if k})
    label = "keys" if len(wanted) > 1 else "key"
    suffix = f" ({label} {', '.join(wanted)})" if wanted else ""
    return f"the {_KIND[kind]} {name}{suffix}"


def _classify(pod: Mapping[str, Any], reason: str, message: str) -> StartFailure | None:
    refs = _refs(pod)
    if match := _NO_KEY.search(message):
        key, label, _, name = match.groups()
        return StartFailure(reason, _subject(label.lower(), name, [key]), message)
    if match := _NOT_FOUND.search(message):
        kind, name = match.groups()
        keys = [k for (c, n, k) in refs if (c, n) == (kind, name)]
        return StartFailure(reason, _subject(kind, name, keys), message)
    if match := _NO_VOLUME_KEY.search(message):
        key = match.group(1)
        owners = sorted({(c, n) for (c, n, k) in refs if k == key})
        if len(owners) == 1:
            return StartFailure(reason, _subject(*owners[0], [key]), message)
        return StartFailure(reason, f"the key {key} of a Secret or ConfigMap", message)
    return None


def missing_reference(
    pod: Mapping[str, Any] | None, events: Sequence[Mapping[str, Any]] = ()
) -> StartFailure | None:
    """A container held by a missing Secret/ConfigMap or key, from its status or the pod's
    ``FailedMount`` events (``events``: the pod's, any order), before any container started."""
    if not pod:
        return None
    for _, reason, message in waiting_containers(pod):
        if reason == CONFIG_ERROR and (found := _classify(pod, CONFIG_ERROR, message)):
            return found
    if container_started(pod):
        return None  # the volumes were mounted: an old FailedMount is past
    uid = (pod.get("metadata") or {}).get("uid")
    for event in reversed(list(events)):
        involved = event.get("involvedObject") or {}
        if event.get("reason") != MOUNT_FAILED or (uid and involved.get("uid") not in (uid, None)):
            continue
        found = _classify(pod, MOUNT_FAILED, str(event.get("message") or "")[:500])
        if found is not None:
            return found
    return None


def init_failure(pod: Mapping[str, Any] | None) -> StartFailure | None:
    """An init container that failed and has not completed since (``final`` if the pod failed)."""
    if not pod:
        return None
    status = pod.get("status") or {}
    failed_pod = status.get("phase") == "Failed"
    for container in status.get("initContainerStatuses") or []:
        state = container.get("state") or {}
        terminated = state.get("terminated") or {}
        if terminated.get("exitCode") == 0:
            continue
        last = ((container.get("lastState") or {}).get("terminated")) or {}
        run = terminated or last
        if not run or run.get("exitCode") in (None, 0):
            continue
        name = str(container.get("name") or "?")
        code = run.get("exitCode")
        restarts = int(container.get("restartCount") or 0)
        message = f"exit code {code} ({run.get('reason') or 'Error'})"
        if restarts:
            message += f", restarted {restarts} time{'s' if restarts != 1 else ''}"
        subject = f"its init container {name} (exit code {code})"
        return StartFailure(INIT_FAILED, subject, message, final=failed_pod)
    return None


def start_failure(
    pod: Mapping[str, Any] | None, events: Sequence[Mapping[str, Any]] = ()
) -> StartFailure | None:
    """The first reason of :func:`init_failure` and :func:`missing_reference`, or None."""
    return init_failure(pod) or missing_reference(pod, events)


async def watch_start(
    read_pod: Callable[[], Mapping[str, Any] | None],
    read_events: Callable[[], Sequence[Mapping[str, Any]]] = lambda: (),
    *,
    grace: float,
    interval: float = 1.0,
    events_interval: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> StartFailure:
    """Return once :func:`start_failure` has shown a failure for ``grace`` seconds without a
    break (at once for a final one). Runs until cancelled otherwise; ``read_pod`` and
    ``read_events`` must not do I/O (reflectors' caches).

    The pod is read every ``interval``. The events (KubeSpawner's ``events`` sorts every
    event of the namespace) are read only once the pod has been waiting without any
    container started for ``grace`` seconds, and then at most every ``events_interval``:
    a spawn storm of pods that start normally never reads them here.
    """
    since: float | None = None
    waiting_since: float | None = None
    events: Sequence[Mapping[str, Any]] = ()
    events_read: float | None = None
    while True:
        pod = read_pod()
        now = clock()
        if pod is None or container_started(pod):
            waiting_since, events = None, ()
        else:
            waiting_since = now if waiting_since is None else waiting_since
            due = events_read is None or now - events_read >= events_interval
            if now - waiting_since >= grace and due:
                events, events_read = read_events(), now
        failure = start_failure(pod, events)
        if failure is None:
            since = None
        else:
            since = now if since is None else since
            # Events are read only after the pod waited ``grace``: a FailedMount has had it.
            if failure.final or failure.reason == MOUNT_FAILED or now - since >= grace:
                return failure
        await asyncio.sleep(interval)


async def until_failure(start: Awaitable[T], *watchers: Awaitable[Any]) -> tuple[T | None, Any]:
    """``(start's result, None)``, or ``(None, failure)`` once a watcher returned a failure
    first; then ``start`` is cancelled (and awaited). The watchers are always cancelled."""
    started = asyncio.ensure_future(start)
    watching = [asyncio.ensure_future(w) for w in watchers]
    try:
        await asyncio.wait({started, *watching}, return_when=asyncio.FIRST_COMPLETED)
        failed = next((w for w in watching if w.done()), None)
        if started.done() or failed is None:
            return await started, None
        failure = failed.result()
    finally:
        for watcher in watching:
            watcher.cancel()
    started.cancel()
    with contextlib.suppress(BaseException):
        await started
    return None, failure
