"""A LabServer's creation: police it, build its objects, create them, one status patch.

kopf runs the create handler again for a LabServer it has handled when its own patch
(the "handled" annotation) does not come back through the watch within
``settings.persistence.consistency_timeout`` (5 s): it then takes the last event it has,
the handler's own status patch, for one not handled yet. Under load (an N=1,000 storm,
docs/performance.md) that was a fifth of the labs, each with a second Accepted Event,
two more create requests (kept on their 409) and two more status patches. The operator
waits longer (``--consistency-timeout``, 30 s), and beyond that
:attr:`OperatorState.created` remembers the LabServers this process has created the
objects of, so a second call does nothing; after a restart (kopf's resume) the creates
find this LabServer's objects and keep them. The status is written once, after the
creates, with both progress events (accepted, created).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..crd.models import LabServer
from ..images.model import ImageMenu
from ..kube.retries import KubernetesError
from ..lab.spec import LabObjects
from .build import (
    Rejected,
    build_server_objects,
    check_references,
    parse_lab_server,
    police,
)
from .kube import NotOurs
from .menu import MenuNotReadable, lab_menu_catalog
from .state import OperatorState, decode_secret, owned_by, patch_status, reject
from .status import add_event, condition, spec_digest

__all__ = ["MENU_RETRIES", "SECRET_RETRIES", "create_lab"]

_LOG = logging.getLogger("lsst_spawner.operator")
#: How long the hub's Secret may be missing before the LabServer is rejected (retries).
SECRET_RETRIES = 10
#: How many times an unreadable lab menu database is retried before the LabServer is rejected.
MENU_RETRIES = 10


async def create_lab(
    state: OperatorState, body: Any, namespace: str, name: str, uid: str, retry: int
) -> str | None:
    """Police the LabServer, then create its objects (idempotently: restart-safe); the
    lab pod's name when this call created them (and set phase Starting)."""
    if uid in state.created:
        _LOG.info("Labserver %s/%s: created already (kopf ran its handler again)", namespace, name)
        return None
    try:
        built = await _police_and_build(state, body, namespace, uid, retry)
    except Rejected as rejected:
        await reject(state, body, rejected)
        return None
    except MenuNotReadable as error:
        if retry >= MENU_RETRIES:
            await reject(state, body, Rejected("MenuUnavailable", str(error)))
            return None
        kopf.warn(body, reason="Retried", message=f"{error} (attempt {retry + 1})")
        raise kopf.TemporaryError(str(error), delay=2 + retry) from None
    except KubernetesError as error:
        kopf.warn(body, reason="Retried", message=f"{error}; trying again")
        raise kopf.TemporaryError(str(error), delay=5) from None
    server, objects = built
    pod_name = objects.pod["metadata"]["name"]
    identity = server.spec.identity
    accepted = (
        f"Accepted: image {server.spec.image}, size {server.spec.size}, uid {identity.uid}, "
        f"gid {identity.gid}, {len(identity.groups)} group(s)"
    )
    _LOG.info("Accepted labserver %s/%s: %s", namespace, name, accepted)
    kopf.info(body, reason="Accepted", message=accepted)
    try:
        for obj in objects.as_list():
            await state.kube.ensure(obj, uid)
    except NotOurs as error:
        await reject(state, body, Rejected("NameConflict", str(error)))
        return None
    except KubernetesError as error:
        kopf.warn(body, reason="Retried", message=f"{error}; trying again")
        raise kopf.TemporaryError(str(error), delay=5) from None
    created = f"Created your lab pod {pod_name} and its Secret(s)"
    _LOG.info("Labserver %s/%s: %s", namespace, name, created)
    kopf.info(body, reason="PodCreated", message=created)
    status = body.get("status") or {}
    generation = body["metadata"].get("generation")
    await patch_status(
        state,
        body,
        {**status, "events": add_event(status.get("events") or [], accepted, 20)},
        phase="Starting",
        message=created,
        progress=40,
        conditions=[condition("Accepted", True, "Accepted", accepted, generation)],
        podName=pod_name,
        acceptedSpec=spec_digest(body.get("spec")),
    )
    state.created.add(uid)
    return str(pod_name)


async def _police_and_build(
    state: OperatorState, body: Any, namespace: str, uid: str, retry: int
) -> tuple[LabServer, LabObjects]:
    """The parsed LabServer and its objects, or :class:`Rejected` (or a retry) saying why not."""
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
    if secret is not None and not owned_by(secret, uid):
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
        server, site, menu, decode_secret(secret), namespace=namespace, catalog=catalog
    )
    return server, objects
