"""kopf's edge: the handlers of LabServers, their pods, the heartbeat and the liveness probe.

Handlers are plain functions over :class:`~.state.OperatorState` (kopf's ``memo``); the
decisions are made by :mod:`.build` (policy and objects), :mod:`.reconcile` (a LabServer's
creation) and :mod:`.status`.
Every decision is an Event on the LabServer: ``Accepted``, ``PodCreated``,
``PodReady``, a rejection's reason (``ImageRejected``, ``IdentityRejected``, ...),
``Retried``, ``ImagePullFailed``, ``PodFailed`` and ``Deleted``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import kopf

from ..crd.models import GROUP, VERSION
from ..kube.admission import PRIORITY
from ..kube.retries import KubernetesError
from .build import SERVER_LABEL
from .reconcile import create_lab
from .state import OperatorState, owned_by, patch_status
from .status import (
    TERMINAL_PHASES,
    changed_spec_fields,
    condition,
    kube_timestamp,
    pod_state,
    spec_digest,
)

__all__ = ["FINALIZER", "HEARTBEAT_LABEL", "OperatorState"]

_LOG = logging.getLogger("lsst_spawner.operator")
FINALIZER = "lab.lsst-spawner.io/cleanup"
HEARTBEAT_LABEL = "lab.lsst-spawner.io/operator-heartbeat"
#: How often a held lab's pod is looked at, besides its watch events (pull failures).
CHECK_INTERVAL = 5.0
#: How often any starting lab's pod is looked at, besides its watch events.
SAFETY_INTERVAL = 30.0
#: The conditions a pull or start failure within its grace sets False.
HELD_CONDITIONS = ("ImagePulled", "PodStartable")


def _state(memo: Any) -> OperatorState:
    state: OperatorState = memo.state
    return state


def _first_come(body: Any) -> None:
    """This handler's API requests queue by its object's creation time, the oldest first
    (:mod:`lsst_spawner.kube.admission`): labs declared first are ready first."""
    created = kube_timestamp((body.get("metadata") or {}).get("creationTimestamp"))
    PRIORITY.set(math.inf if created is None else created)


# --- LabServers ---------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, "labservers")
@kopf.on.create(GROUP, VERSION, "labservers")
async def reconcile(
    body: Any, namespace: Any, name: str, uid: str, memo: Any, retry: int, **_: Any
) -> None:
    """Police the LabServer, then create its objects (:mod:`.reconcile`; restart-safe)."""
    _first_come(body)
    state = _state(memo)
    phase = (body.get("status") or {}).get("phase")
    if phase in TERMINAL_PHASES:
        return
    if phase in ("Starting", "Running") and uid not in state.created:
        await _follow_pod(state, body)  # created before a restart: follow the pod again
        return
    pod_name = await create_lab(state, body, namespace, name, uid, retry)
    if pod_name is not None:
        # Pod events seen before the status said Starting were passed over: look once.
        try:
            await _follow_pod(state, body, pod_name)
        except KubernetesError as error:  # the starting checks look again
            _LOG.warning("Labserver %s/%s: could not look at its pod: %s", namespace, name, error)


@kopf.on.update(GROUP, VERSION, "labservers", field="spec")
async def spec_changed(body: Any, diff: Any, memo: Any, **_: Any) -> None:
    """A LabServer's spec edited after it was handled: never applied to the lab it has.

    A lab is a user's running session: rebuilding its pod would end it behind the hub's back,
    and the hub (which cannot patch LabServers) would not know. So, like a Job's pod template,
    the spec is fixed once handled: the change is refused with the ``SpecApplied`` condition
    and a ``Warning`` Event, and the lab (or the rejection) stays as generation N made it.
    Deleting the LabServer and creating it again (stopping and starting the server) applies
    it. A spec edited back to the accepted one is ``SpecApplied`` again.
    """
    _first_come(body)
    state = _state(memo)
    meta, status = body["metadata"], body.get("status") or {}
    generation = meta.get("generation")
    accepted = status.get("acceptedSpec")
    if accepted is not None and accepted == spec_digest(body.get("spec")):
        message = f"the spec is the accepted one again (generation {generation})"
        kopf.info(body, reason="SpecRestored", message=message)
        applied = condition("SpecApplied", True, "SpecRestored", message, generation)
    else:
        fields = ", ".join(changed_spec_fields(diff)) or "spec"
        built = next(
            (
                c.get("observedGeneration")
                for c in status.get("conditions") or []
                if c.get("type") == "Accepted"
            ),
            None,
        )
        message = (
            f"{fields} changed (generation {generation}) and is not applied: the lab keeps the "
            f"spec of generation {built}; delete the LabServer and create it again (stop and "
            "start the server) to change it"
        )
        kopf.warn(body, reason="SpecChangeRefused", message=message)
        applied = condition("SpecApplied", False, "RestartRequired", message, generation)
    _LOG.info("Labserver %s/%s: %s", meta.get("namespace"), meta.get("name"), message)
    await patch_status(
        state,
        body,
        phase=status.get("phase") or "Pending",
        message=status.get("message") or "",
        conditions=[applied],
    )


def _starting(status: Any, **_: Any) -> bool:
    return bool((status or {}).get("phase") == "Starting")


def _held(status: Any, **_: Any) -> bool:
    """Starting, with its pod held by a pull or start failure within its grace."""
    return _starting(status) and any(
        c.get("type") in HELD_CONDITIONS and c.get("status") == "False"
        for c in (status or {}).get("conditions") or []
    )


@kopf.timer(
    GROUP,
    VERSION,
    "labservers",
    interval=CHECK_INTERVAL,
    initial_delay=CHECK_INTERVAL,
    when=_held,
)
async def check_held(body: Any, memo: Any, **_: Any) -> None:
    """A held lab's pod, looked at even when it does not change: its grace ends on time.

    Timers live only while ``when`` holds (kopf starts and stops them as the LabServer
    changes), so a lab starting normally, or running, costs no ticks and its deletion no
    timer to stop.
    """
    _first_come(body)
    if _held(body.get("status") or {}):
        await _follow_pod(_state(memo), body)


@kopf.timer(
    GROUP,
    VERSION,
    "labservers",
    interval=SAFETY_INTERVAL,
    initial_delay=SAFETY_INTERVAL,
    when=_starting,
)
async def check_starting(body: Any, memo: Any, **_: Any) -> None:
    """A starting lab's pod, now and then: in case a look after its creation failed.

    At N=3,000 a 5 s check of every starting lab cost 7 reads of the pod and 7 of the
    LabServer per lab (labs start for minutes then): the pod's own events, one look after
    the creation and :func:`check_held` cover the rest.
    """
    _first_come(body)
    if _starting(body.get("status") or {}):
        await _follow_pod(_state(memo), body)


@kopf.on.delete(GROUP, VERSION, "labservers")
async def delete_lab(body: Any, namespace: Any, name: str, uid: str, memo: Any, **_: Any) -> None:
    """Delete the lab's pod and Secrets (the finalizer holds the LabServer until then)."""
    _first_come(body)
    state = _state(memo)
    state.created.discard(uid)
    pod_name = (body.get("status") or {}).get("podName")
    deleted = await _delete_objects(state, namespace, name, uid, pod_name)
    secret_ref = ((body.get("spec") or {}).get("secretRef") or {}).get("name")
    if isinstance(secret_ref, str):
        secret = await state.kube.get_secret(namespace, secret_ref)
        if secret is not None and owned_by(secret, uid):
            await state.kube.delete("Secret", namespace, secret_ref)
            deleted.append(f"Secret/{secret_ref}")
    message = f"Deleted {', '.join(deleted) or 'nothing'}"
    _LOG.info("Labserver %s/%s: %s", namespace, name, message)
    kopf.info(body, reason="Deleted", message=message)


async def _delete_objects(
    state: OperatorState, namespace: str, name: str, uid: str, pod_name: str | None = None
) -> list[str]:
    """Delete the LabServer's pod and its Secret(s), those with an owner reference to it.

    With the pod's name (the status'), by name: the pod, then the Secrets its volumes name,
    each read first (2 reads, not 2 label-selected lists: at N=3,000 those lists of 9,000
    objects each, one pair per deletion, kept the API server busy for minutes). Without
    one, or with the pod gone, by the server label.
    """
    deleted: list[str] = []
    pod = await state.kube.get_pod(namespace, pod_name) if pod_name else None
    if pod is not None and owned_by(pod, uid):
        volumes = (pod.get("spec") or {}).get("volumes") or []
        secret_names = dict.fromkeys(
            str(v["secret"]["secretName"])
            for v in volumes
            if (v.get("secret") or {}).get("secretName")
        )
        if await state.kube.delete("Pod", namespace, str(pod_name)):
            deleted.append(f"Pod/{pod_name}")
        for secret_name in secret_names:
            secret = await state.kube.get_secret(namespace, secret_name)
            owned = secret is not None and owned_by(secret, uid)
            if owned and await state.kube.delete("Secret", namespace, secret_name):
                deleted.append(f"Secret/{secret_name}")
        return deleted
    for kind in ("Pod", "Secret"):
        for obj in await state.kube.list_names(kind, namespace, f"{SERVER_LABEL}={name}"):
            if owned_by(obj, uid):
                object_name = obj["metadata"]["name"]
                if await state.kube.delete(kind, namespace, object_name):
                    deleted.append(f"{kind}/{object_name}")
    return deleted


# --- pods -------------------------------------------------------------------------


@kopf.on.event("", "v1", "pods", labels={SERVER_LABEL: kopf.PRESENT})
async def pod_changed(event: Any, body: Any, namespace: Any, memo: Any, **_: Any) -> None:
    """A lab pod changed: the LabServer's status follows it."""
    _first_come(body)
    state = _state(memo)
    name = body["metadata"]["labels"][SERVER_LABEL]
    async with state.following(namespace, name):
        server = await state.kube.get_lab_server(namespace, name)
        if server is None or server["metadata"].get("deletionTimestamp"):
            return
        if not owned_by(body, server["metadata"].get("uid", "")):
            return
        pod = None if event.get("type") == "DELETED" else body
        await _update_from_pod(state, server, pod)


async def _follow_pod(state: OperatorState, server: Any, pod_name: str | None = None) -> None:
    meta = server["metadata"]
    pod_name = pod_name or (server.get("status") or {}).get("podName")
    if not pod_name:
        return
    async with state.following(meta["namespace"], meta["name"]):
        fresh = await state.kube.get_lab_server(meta["namespace"], meta["name"])
        if fresh is None or fresh["metadata"].get("deletionTimestamp"):
            return
        pod = await state.kube.get_pod(meta["namespace"], pod_name)
        await _update_from_pod(state, fresh, pod)


async def _update_from_pod(
    state: OperatorState, server: Any, pod: Mapping[str, Any] | None
) -> None:
    status = server.get("status") or {}
    phase = status.get("phase")
    if phase in TERMINAL_PHASES or phase not in ("Starting", "Running"):
        return
    meta = server["metadata"]
    generation = meta.get("generation")
    seen = pod_state(pod)
    if seen.pull_failure is not None:
        await _pull_failing(state, server, seen.pull_failure)
        return
    if seen.start_failure is not None:
        await _start_failing(state, server, seen.start_failure)
        return
    if seen.phase == phase == "Running" and seen.address == status.get("podAddress"):
        return  # said already (the status' message is not the pod's: compared, it never matched)
    if seen.phase == phase and seen.message == status.get("message"):
        return
    if seen.phase == "Running":
        kopf.info(
            server, reason="PodReady", message=f"pod {status.get('podName')} at {seen.address}"
        )
        await patch_status(
            state,
            server,
            phase="Running",
            message=f"Your lab pod {status.get('podName')} is running",
            progress=100,
            podAddress=seen.address,
            conditions=[condition("PodReady", True, "PodReady", seen.message, generation)],
        )
    elif seen.phase == "Failed":
        kopf.warn(server, reason="PodFailed", message=seen.message)
        await patch_status(
            state,
            server,
            phase="Failed",
            message=seen.message,
            progress=100,
            severity="error",
            podAddress=None,
            conditions=[condition("PodReady", False, "PodFailed", seen.message, generation)],
        )
    elif phase == "Starting":
        await patch_status(state, server, phase="Starting", message=seen.message, progress=50)


async def _pull_failing(state: OperatorState, server: Any, failure: Any) -> None:
    site = await _site_of(state, server)
    await _failing(
        state,
        server,
        failure,
        kind=("ImagePulled", "ImagePullFailed"),
        grace=float(site.traits.lab_image_pull_grace),
        waiting=f"The node cannot pull {failure.image} yet ({failure.reason})",
    )


async def _start_failing(state: OperatorState, server: Any, failure: Any) -> None:
    """A missing Secret/ConfigMap or a failing init container: as a pull failure, with
    ``lab_start_failure_grace`` (none when the pod failed)."""
    site = await _site_of(state, server)
    await _failing(
        state,
        server,
        failure,
        kind=("PodStartable", "StartFailed"),
        grace=0.0 if failure.final else float(site.traits.lab_start_failure_grace),
        waiting=f"The lab pod cannot start yet: {failure.subject} ({failure.reason})",
    )


async def _site_of(state: OperatorState, server: Any) -> Any:
    return await state.site(server["metadata"]["namespace"], server["spec"]["templateRef"]["name"])


async def _failing(
    state: OperatorState,
    server: Any,
    failure: Any,
    *,
    kind: tuple[str, str],
    grace: float,
    waiting: str,
) -> None:
    """Say the pod is held (a False ``kind[0]`` condition), then after ``grace`` fail the
    lab: a Warning ``kind[1]`` Event, its objects deleted, phase Failed."""
    condition_type, event_reason = kind
    meta = server["metadata"]
    status = server.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    held = conditions.get(condition_type)
    if (held is None or held.get("status") != "False") and grace > 0:
        since = condition(
            condition_type, False, failure.reason, failure.message, meta.get("generation")
        )
        await patch_status(
            state,
            server,
            phase=status.get("phase", "Starting"),
            message=waiting,
            progress=50,
            severity="warning",
            conditions=[since],
        )
        return
    started = kube_timestamp((held or {}).get("lastTransitionTime"))
    if started is not None and time.time() - started < grace:
        return
    message = failure.user_message()
    kopf.warn(server, reason=event_reason, message=message)
    await _delete_objects(
        state, meta["namespace"], meta["name"], meta.get("uid", ""), status.get("podName")
    )
    await patch_status(
        state,
        server,
        phase="Failed",
        message=message,
        progress=100,
        severity="error",
        conditions=[condition("PodReady", False, event_reason, message, meta.get("generation"))],
    )


# --- heartbeat and liveness ----------------------------------------------------------------


@kopf.on.event("coordination.k8s.io", "v1", "leases", labels={HEARTBEAT_LABEL: kopf.PRESENT})
async def heartbeat_seen(body: Any, memo: Any, **_: Any) -> None:
    """Our own heartbeat came back through a watch: the watch streams are alive."""
    state = _state(memo)
    if body["metadata"]["labels"].get(HEARTBEAT_LABEL) == state.identity:
        state.heartbeat_seen = time.monotonic()
