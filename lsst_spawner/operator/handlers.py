"""kopf's edge: the handlers of LabServers, their pods, the heartbeat and the liveness probe.

Handlers are plain functions over :class:`OperatorState` (kopf's ``memo``); the
decisions are made by :mod:`.build` (policy and objects) and :mod:`.status`.
Every decision is an Event on the LabServer: ``Accepted``, ``PodCreated``,
``PodReady``, a rejection's reason (``ImageRejected``, ``IdentityRejected``, ...),
``Retried``, ``ImagePullFailed``, ``PodFailed`` and ``Deleted``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import kopf

from ..crd.models import GROUP, VERSION
from ..images.model import ImageMenu
from ..kube.retries import KubernetesError
from ..menu.hub import LiveMenus
from .build import (
    MENU_DB_URL_ENV,
    SERVER_LABEL,
    Rejected,
    SiteTemplate,
    build_server_objects,
    check_references,
    parse_lab_server,
    police,
    read_template,
)
from .kube import LabKube, NotOurs
from .menu import MenuNotReadable, lab_menu_catalog
from .prepull import TemplatePrepulls
from .status import (
    TERMINAL_PHASES,
    changed_spec_fields,
    condition,
    kube_timestamp,
    pod_state,
    spec_digest,
    status_patch,
)

__all__ = ["FINALIZER", "HEARTBEAT_LABEL", "OperatorState"]

_LOG = logging.getLogger("lsst_spawner.operator")
FINALIZER = "lab.lsst-spawner.io/cleanup"
HEARTBEAT_LABEL = "lab.lsst-spawner.io/operator-heartbeat"
#: How long the hub's Secret may be missing before the LabServer is rejected (retries).
SECRET_RETRIES = 10
#: How often a starting lab's pod is looked at, besides its watch events (pull failures).
CHECK_INTERVAL = 5.0
#: How many times an unreadable lab menu database is retried before the LabServer is rejected.
MENU_RETRIES = 10


class OperatorState:
    """What the handlers share: the API, the templates read so far, the heartbeat."""

    def __init__(
        self,
        kube: LabKube,
        *,
        identity: str,
        priority: int,
        peering: str | None,
        heartbeat: float,
        namespaces: tuple[str, ...],
        menu_db_url: str | None = None,
    ) -> None:
        self.kube = kube
        self.identity = identity
        self.priority = priority
        self.peering = peering
        self.heartbeat = heartbeat
        self.namespaces = namespaces
        self._templates: dict[tuple[str, str], tuple[str, SiteTemplate | Rejected]] = {}
        #: The lab menu database's URL (from a Secret, through the environment), if any.
        self.menu_db_url = os.environ.get(MENU_DB_URL_ENV) if menu_db_url is None else menu_db_url
        #: The lab menus of the templates' ``spec.labMenu``: the hub's reader, one per database.
        self.lab_menus = LiveMenus()
        #: The prepullers of the templates that prepull (set at startup: :mod:`.prepull`).
        self.prepulls: TemplatePrepulls | None = None
        self.prepull_task: asyncio.Task[None] | None = None
        self.heartbeat_seen = time.monotonic()
        self.heartbeat_task: asyncio.Task[None] | None = None

    async def mark(self, namespace: str, template: str, menu: ImageMenu) -> ImageMenu:
        """``menu`` with the template's prepull presence, when the operator prepulls for it."""
        if self.prepulls is None:
            return menu
        return await self.prepulls.mark(namespace, template, menu)

    async def site(self, namespace: str, name: str) -> SiteTemplate:
        """The template, read through the spawner's checks once per resourceVersion."""
        body = await self.kube.get_template(namespace, name)
        if body is None:
            raise Rejected(
                "MissingTemplate",
                f"LabTemplate {namespace}/{name} (spec.templateRef) does not exist",
            )
        version = str(body.get("metadata", {}).get("resourceVersion", ""))
        cached = self._templates.get((namespace, name))
        if cached is None or cached[0] != version:
            try:
                result: SiteTemplate | Rejected = read_template(body, self.menu_db_url)
            except Rejected as rejected:
                result = rejected
            cached = self._templates[(namespace, name)] = (version, result)
        if isinstance(cached[1], Rejected):
            raise cached[1]
        return cached[1]


def _state(memo: Any) -> OperatorState:
    state: OperatorState = memo.state
    return state


def _decode(secret: Mapping[str, Any]) -> dict[str, str]:
    return {
        key: base64.b64decode(value).decode("utf-8", "replace")
        for key, value in (secret.get("data") or {}).items()
    }


def _owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(owner.get("uid") == uid for owner in owners)


async def _patch(state: OperatorState, body: Any, **kwargs: Any) -> None:
    meta = body["metadata"]
    patch = status_patch(body.get("status"), generation=meta.get("generation"), **kwargs)
    await state.kube.patch_status(meta["namespace"], meta["name"], patch)


async def _reject(state: OperatorState, body: Any, rejected: Rejected) -> None:
    _LOG.warning("Rejected labserver %s: %s", body["metadata"]["name"], rejected)
    kopf.warn(body, reason=rejected.reason, message=rejected.message)
    await _patch(
        state,
        body,
        phase="Rejected",
        message=rejected.message,
        progress=100,
        severity="error",
        conditions=[
            condition(
                "Accepted",
                False,
                rejected.reason,
                rejected.message,
                body["metadata"].get("generation"),
            )
        ],
    )


# --- LabServers ---------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, "labservers")
@kopf.on.create(GROUP, VERSION, "labservers")
async def reconcile(
    body: Any, namespace: Any, name: str, uid: str, memo: Any, retry: int, **_: Any
) -> None:
    """Police the LabServer, then create its objects (idempotently: restart-safe)."""
    state = _state(memo)
    phase = (body.get("status") or {}).get("phase")
    if phase in TERMINAL_PHASES:
        return
    if phase in ("Starting", "Running"):  # created before a restart: follow the pod again
        await _follow_pod(state, body)
        return
    try:
        server = parse_lab_server(body)
        check_references(server, namespace)
        site = await state.site(namespace, server.spec.template_ref.name)
        groups = [group.name for group in server.spec.identity.groups]
        template = server.spec.template_ref.name

        async def mark(menu: ImageMenu) -> ImageMenu:
            return await state.mark(namespace, template, menu)

        catalog = await lab_menu_catalog(state.lab_menus, site, groups, mark)
        menu = catalog.menu if catalog is not None else await mark(await site.traits.get_menu())
        await police(server, site, menu, namespace=namespace, catalog=catalog)
        secret = await state.kube.get_secret(namespace, server.spec.secret_ref.name)
        if secret is not None and not _owned_by(secret, uid):
            raise Rejected(
                "ForeignSecret",
                f"Secret {server.spec.secret_ref.name} (spec.secretRef) does not belong to this "
                "LabServer (no owner reference to it)",
            )
        if secret is None:
            if retry < SECRET_RETRIES:
                message = f"waiting for Secret {server.spec.secret_ref.name} (attempt {retry + 1})"
                kopf.info(body, reason="Retried", message=message)
                raise kopf.TemporaryError(message, delay=1 + retry)
            raise Rejected(
                "MissingSecret",
                f"Secret {server.spec.secret_ref.name} (spec.secretRef) does not exist",
            )
        objects = await build_server_objects(
            server, site, menu, _decode(secret), namespace=namespace, catalog=catalog
        )
    except Rejected as rejected:
        await _reject(state, body, rejected)
        return
    except MenuNotReadable as error:
        if retry >= MENU_RETRIES:
            await _reject(state, body, Rejected("MenuUnavailable", str(error)))
            return
        kopf.warn(body, reason="Retried", message=f"{error} (attempt {retry + 1})")
        raise kopf.TemporaryError(str(error), delay=2 + retry) from None
    except KubernetesError as error:
        kopf.warn(body, reason="Retried", message=f"{error}; trying again")
        raise kopf.TemporaryError(str(error), delay=5) from None
    pod_name = objects.pod["metadata"]["name"]
    identity = server.spec.identity
    accepted = (
        f"Accepted: image {server.spec.image}, size {server.spec.size}, uid {identity.uid}, "
        f"gid {identity.gid}, {len(identity.groups)} group(s)"
    )
    _LOG.info("Accepted labserver %s/%s: %s", namespace, name, accepted)
    kopf.info(body, reason="Accepted", message=accepted)
    generation = body["metadata"].get("generation")
    await _patch(
        state,
        body,
        phase="Creating",
        message=accepted,
        progress=20,
        conditions=[condition("Accepted", True, "Accepted", accepted, generation)],
        podName=pod_name,
        acceptedSpec=spec_digest(body.get("spec")),
    )
    try:
        for obj in objects.as_list():
            await state.kube.ensure(obj, uid)
    except NotOurs as error:
        await _reject(state, body, Rejected("NameConflict", str(error)))
        return
    except KubernetesError as error:
        kopf.warn(body, reason="Retried", message=f"{error}; trying again")
        raise kopf.TemporaryError(str(error), delay=5) from None
    created = f"Created your lab pod {pod_name} and its Secret(s)"
    _LOG.info("Labserver %s/%s: %s", namespace, name, created)
    kopf.info(body, reason="PodCreated", message=created)
    fresh = await state.kube.get_lab_server(namespace, name)
    await _patch(state, fresh or body, phase="Starting", message=created, progress=40)


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
    await _patch(
        state,
        body,
        phase=status.get("phase") or "Pending",
        message=status.get("message") or "",
        conditions=[applied],
    )


@kopf.timer(GROUP, VERSION, "labservers", interval=CHECK_INTERVAL, initial_delay=CHECK_INTERVAL)
async def check_starting(body: Any, memo: Any, **_: Any) -> None:
    """A starting lab's pod, looked at even when it does not change (pull-failure grace)."""
    if (body.get("status") or {}).get("phase") == "Starting":
        await _follow_pod(_state(memo), body)


@kopf.on.delete(GROUP, VERSION, "labservers")
async def delete_lab(body: Any, namespace: Any, name: str, uid: str, memo: Any, **_: Any) -> None:
    """Delete the lab's pod and Secrets (the finalizer holds the LabServer until then)."""
    state = _state(memo)
    deleted = await _delete_objects(state, namespace, name, uid)
    secret_ref = ((body.get("spec") or {}).get("secretRef") or {}).get("name")
    if isinstance(secret_ref, str):
        secret = await state.kube.get_secret(namespace, secret_ref)
        if secret is not None and _owned_by(secret, uid):
            await state.kube.delete("Secret", namespace, secret_ref)
            deleted.append(f"Secret/{secret_ref}")
    kopf.info(body, reason="Deleted", message=f"Deleted {', '.join(deleted) or 'nothing'}")


async def _delete_objects(state: OperatorState, namespace: str, name: str, uid: str) -> list[str]:
    deleted = []
    for kind in ("Pod", "Secret"):
        for obj in await state.kube.list_names(kind, namespace, f"{SERVER_LABEL}={name}"):
            if _owned_by(obj, uid):
                object_name = obj["metadata"]["name"]
                if await state.kube.delete(kind, namespace, object_name):
                    deleted.append(f"{kind}/{object_name}")
    return deleted


# --- pods -------------------------------------------------------------------------


@kopf.on.event("", "v1", "pods", labels={SERVER_LABEL: kopf.PRESENT})
async def pod_changed(event: Any, body: Any, namespace: Any, memo: Any, **_: Any) -> None:
    """A lab pod changed: the LabServer's status follows it."""
    state = _state(memo)
    server = await state.kube.get_lab_server(namespace, body["metadata"]["labels"][SERVER_LABEL])
    if server is None or server["metadata"].get("deletionTimestamp"):
        return
    if not _owned_by(body, server["metadata"].get("uid", "")):
        return
    pod = None if event.get("type") == "DELETED" else body
    await _update_from_pod(state, server, pod)


async def _follow_pod(state: OperatorState, server: Any) -> None:
    meta = server["metadata"]
    pod_name = (server.get("status") or {}).get("podName")
    if not pod_name:
        return
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
    if seen.phase == phase and seen.message == status.get("message"):
        return
    if seen.phase == "Running":
        kopf.info(
            server, reason="PodReady", message=f"pod {status.get('podName')} at {seen.address}"
        )
        await _patch(
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
        await _patch(
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
        await _patch(state, server, phase="Starting", message=seen.message, progress=50)


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
        await _patch(
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
    await _delete_objects(state, meta["namespace"], meta["name"], meta.get("uid", ""))
    await _patch(
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
