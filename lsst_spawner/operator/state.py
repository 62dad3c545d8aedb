"""What the operator's handlers share (kopf's ``memo``), and their status writes.

:class:`OperatorState` holds the API, the templates read so far, the heartbeat and the
LabServers this process has created the objects of; :func:`patch_status` and
:func:`reject` are how every handler writes a LabServer's status.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
import weakref
from collections.abc import Mapping
from typing import Any

import kopf

from ..images.model import ImageMenu
from ..menu.hub import LiveMenus
from .build import MENU_DB_URL_ENV, Rejected, SiteTemplate, read_template
from .kube import LabKube
from .prepull import TemplatePrepulls
from .status import condition, status_patch

__all__ = ["OperatorState", "decode_secret", "owned_by", "patch_status", "reject"]

_LOG = logging.getLogger("lsst_spawner.operator")


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
        #: The uids of the LabServers whose objects this process created and whose status it
        #: set to Starting (until they are deleted): kopf may run the create handler again on
        #: an event older than its own patch (:mod:`.reconcile`), which then does nothing.
        self.created: set[str] = set()
        self._following: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def following(self, namespace: str, name: str) -> asyncio.Lock:
        """The lock of a LabServer's status following its pod: a pod event and the starting
        check, run at once, both read phase Starting and both said PodReady (at N=1,000,
        0.1 to 0.5 more per lab). Kept while held or awaited."""
        key = (namespace, name)
        lock = self._following.get(key)
        if lock is None:
            lock = self._following[key] = asyncio.Lock()
        return lock

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


def decode_secret(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's ``data``, decoded."""
    return {
        key: base64.b64decode(value).decode("utf-8", "replace")
        for key, value in (secret.get("data") or {}).items()
    }


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    """Whether ``obj`` has an owner reference to the object of ``uid``."""
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(owner.get("uid") == uid for owner in owners)


async def patch_status(
    state: OperatorState,
    body: Any,
    current: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Patch the LabServer's status (:func:`~.status.status_patch`) from ``current`` (its
    status in ``body`` unless given)."""
    meta = body["metadata"]
    start = body.get("status") if current is None else current
    patch = status_patch(start, generation=meta.get("generation"), **kwargs)
    await state.kube.patch_status(meta["namespace"], meta["name"], patch)


async def reject(state: OperatorState, body: Any, rejected: Rejected) -> None:
    """Phase Rejected, ``Accepted=False`` and a Warning Event of the rejection's reason."""
    _LOG.warning("Rejected labserver %s: %s", body["metadata"]["name"], rejected)
    kopf.warn(body, reason=rejected.reason, message=rejected.message)
    await patch_status(
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
