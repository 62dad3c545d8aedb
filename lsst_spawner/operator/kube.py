"""The operator's Kubernetes edge: reads, idempotent creates, status patches, deletions.

Every request goes through :func:`~lsst_spawner.kube.retries.with_retries` with the
template's :class:`~lsst_spawner.kube.retries.RetryPolicy`; a create that finds
its object already there (an operator restarted mid-spawn, or the other replica)
keeps it when it belongs to the same LabServer.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes_asyncio import client

from ..crd.models import GROUP, VERSION
from ..kube.admission import Admission
from ..kube.retries import KubernetesError, RetryPolicy, with_retries

__all__ = ["LabKube", "NotOurs", "json_reply"]

_CORE = {"Pod": "pod", "Secret": "secret"}
_MERGE = "application/merge-patch+json"


class NotOurs(Exception):
    """An object of that name exists and belongs to someone else."""


async def json_reply(call: Any) -> Any:
    """Await a ``_preload_content=False`` call: its JSON, or the ``ApiException`` it meant."""
    response = await call
    try:
        text = await response.read()
    finally:
        response.release()
    if not 200 <= response.status <= 299:
        error = client.ApiException(status=response.status, reason=response.reason)
        error.body = text.decode("utf-8", "replace")
        raise error
    return json.loads(text) if text else None


class LabKube:
    """The requests the operator makes, as one user (its service account)."""

    def __init__(
        self, api: client.ApiClient, policy: RetryPolicy, max_in_flight: int | None = None
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.custom: Any = client.CustomObjectsApi(api)  # its patch takes _content_type
        self.policy = policy
        #: At most this many requests sent at once; the others wait, their timeouts not
        #: running (:func:`~lsst_spawner.kube.retries.with_retries`' ``admission``), the
        #: oldest LabServer's first (:data:`~lsst_spawner.kube.admission.PRIORITY`).
        self.admission = Admission(max_in_flight) if max_in_flight else None

    async def _call(self, what: str, make: Any) -> Any:
        return await with_retries(
            lambda: json_reply(make()), what=what, policy=self.policy, admission=self.admission
        )

    async def _get(self, what: str, make: Any) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self._call(what, make)
        except KubernetesError as error:
            if error.status == 404:
                return None
            raise
        return found

    async def get_template(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(
            f"reading labtemplate {namespace}/{name}",
            lambda: self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "labtemplates", name, _preload_content=False
            ),
        )

    async def list_templates(self, namespace: str) -> list[dict[str, Any]]:
        found = await self._call(
            f"listing labtemplates in {namespace}",
            lambda: self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, "labtemplates", _preload_content=False
            ),
        )
        items: list[dict[str, Any]] = found.get("items") or []
        return items

    async def patch_template_status(self, namespace: str, name: str, status: Any) -> None:
        await self._call(
            f"updating the status of labtemplate {namespace}/{name}",
            lambda: self.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                "labtemplates",
                name,
                {"status": status},
                _content_type=_MERGE,
                _preload_content=False,
            ),
        )

    async def get_lab_server(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(
            f"reading labserver {namespace}/{name}",
            lambda: self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "labservers", name, _preload_content=False
            ),
        )

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(
            f"reading secret {namespace}/{name}",
            lambda: self.core.read_namespaced_secret(name, namespace, _preload_content=False),
        )

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._get(
            f"reading pod {namespace}/{name}",
            lambda: self.core.read_namespaced_pod(name, namespace, _preload_content=False),
        )

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await self._call(
            f"updating the status of labserver {namespace}/{name}",
            lambda: self.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                namespace,
                "labservers",
                name,
                {"status": status},
                _content_type=_MERGE,
                _preload_content=False,
            ),
        )

    async def ensure(self, body: dict[str, Any], owner_uid: str) -> bool:
        """Create ``body``; True if created, False if this LabServer's copy was already there."""
        kind = _CORE[body["kind"]]
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        create = getattr(self.core, f"create_namespaced_{kind}")
        try:
            await self._call(
                f"creating {kind} {namespace}/{name}",
                lambda: create(namespace, body, _preload_content=False),
            )
            return True
        except KubernetesError as error:
            if error.status != 409:
                raise
        read = getattr(self.core, f"read_namespaced_{kind}")
        existing = await self._get(
            f"reading {kind} {namespace}/{name}",
            lambda: read(name, namespace, _preload_content=False),
        )
        owners = (existing or {}).get("metadata", {}).get("ownerReferences") or []
        if not any(owner.get("uid") == owner_uid for owner in owners):
            raise NotOurs(f"{body['kind']} {name} already exists and belongs to another owner")
        return False

    async def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete one object; False when it was already gone."""
        method = getattr(self.core, f"delete_namespaced_{_CORE[kind]}")
        try:
            await self._call(
                f"deleting {kind} {namespace}/{name}",
                lambda: method(name, namespace, _preload_content=False),
            )
        except KubernetesError as error:
            if error.status == 404:
                return False
            raise
        return True

    async def list_names(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The objects of ``kind`` in ``namespace`` matching the label selector."""
        method = getattr(self.core, f"list_namespaced_{_CORE[kind]}")
        found = await self._call(
            f"listing {kind}s in {namespace}",
            lambda: method(namespace, label_selector=selector, _preload_content=False),
        )
        items: list[dict[str, Any]] = found.get("items") or []
        return items
