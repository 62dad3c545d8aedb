"""A lab's own objects on the Kubernetes API: created replacing leftovers, deleted together.

:func:`create_lab_config` and :func:`delete_lab_config` are the one place the
lab's Secret (``-secret``: secrets, NSS files, static files, long env values) is
written and removed; the spawn attempt, ``stop`` and the cleanup of a failed
start all call them. Labs started before 0.1.0 had a second Secret, ``-env``,
read with ``envFrom`` (:func:`has_legacy_env_secret` tells them apart), which
``stop`` deletes too.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..lab.names import names_for_pod
from ..lab.spec import LabObjects
from .retries import (
    KubernetesError,
    RetryPolicy,
    request_json,
    request_without_reply,
    with_retries,
)

__all__ = [
    "create_lab_config",
    "create_replacing",
    "delete_lab_config",
    "delete_lab_objects",
    "has_legacy_env_secret",
    "legacy_env_secret_name",
]

# Object kind -> (create method, delete method) of CoreV1Api.
_METHODS = {
    "pod": ("create_namespaced_pod", "delete_namespaced_pod"),
    "config_map": ("create_namespaced_config_map", "delete_namespaced_config_map"),
    "secret": ("create_namespaced_secret", "delete_namespaced_secret"),
}


def _method(api: Any, kind: str, index: int) -> Callable[..., Awaitable[Any]]:
    try:
        name = _METHODS[kind][index]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(_METHODS)}") from None
    method: Callable[..., Awaitable[Any]] = getattr(api, name)
    return method


async def _delete(api: Any, kind: str, name: str, namespace: str, policy: RetryPolicy) -> bool:
    delete = _method(api, kind, 1)
    try:
        await with_retries(
            lambda: request_without_reply(delete, name, namespace),
            what=f"deleting {kind} {namespace}/{name}",
            policy=policy,
        )
    except KubernetesError as error:
        if error.status == 404:
            return False
        raise
    return True


async def create_replacing(
    api: Any, kind: str, namespace: str, body: dict[str, Any], policy: RetryPolicy
) -> None:
    """Create ``body``; if it already exists (a leftover of a lab that died), replace it.

    The lab's ConfigMap and Secret are immutable, so replacing means deleting
    and creating again. An object found with exactly ``body``'s data is kept: an
    attempt whose reply timed out had created it (a hub whose event loop stalls
    sees its own creates answer 409 when retried). ``kind`` is ``pod``,
    ``config_map`` or ``secret``.
    """
    create = _method(api, kind, 0)
    name = body["metadata"]["name"]
    what = f"creating {kind} {namespace}/{name}"
    for replaced in (False, True):
        try:
            await with_retries(
                lambda: request_without_reply(create, namespace, body), what=what, policy=policy
            )
            return
        except KubernetesError as error:
            if error.status != 409:
                raise
            if await _holds_the_same_data(api, kind, namespace, body, policy):
                policy.logger.info(
                    "%s %s/%s already exists with the data sent: an attempt whose reply timed "
                    "out created it",
                    kind,
                    namespace,
                    name,
                )
                return
            if replaced:
                raise
        policy.logger.info("Replacing %s %s/%s: it already exists", kind, namespace, name)
        await _delete(api, kind, name, namespace, policy)


_READERS = {"config_map": "read_namespaced_config_map", "secret": "read_namespaced_secret"}


async def _holds_the_same_data(
    api: Any, kind: str, namespace: str, body: dict[str, Any], policy: RetryPolicy
) -> bool:
    """Whether the existing ``kind`` named by ``body`` has ``body``'s data (never for a pod)."""
    if kind not in _READERS:
        return False
    name = body["metadata"]["name"]
    read = getattr(api, _READERS[kind])
    try:
        existing = await with_retries(
            lambda: request_json(read, name, namespace),
            what=f"reading {kind} {namespace}/{name}",
            policy=policy,
        )
    except KubernetesError as error:
        if error.status == 404:
            return False  # deleted meanwhile: replacing creates it again
        raise
    wanted = dict(body.get("data") or {})
    for key, value in (body.get("stringData") or {}).items():  # as the server stores it
        wanted[key] = base64.b64encode(str(value).encode()).decode() if kind == "secret" else value
    return bool(
        (existing.get("data") or {}) == wanted
        and (existing.get("binaryData") or {}) == (body.get("binaryData") or {})
        and existing.get("type", "Opaque") == body.get("type", "Opaque")
    )


async def delete_lab_objects(
    api: Any,
    namespace: str,
    *,
    pod: str | None,
    config_map: str | None,
    secret: str | None,
    env_secret: str | None = None,
    policy: RetryPolicy,
) -> list[str]:
    """Delete a lab's pod, env Secret, ConfigMap and Secret; objects already gone (404) are fine.

    Every deletion is attempted even when an earlier one fails, so one stuck
    object does not orphan the others; then the failures, if any, are raised
    together as one :class:`KubernetesError`. Returns ``kind/name`` of the
    objects this call deleted. ``api`` is a ``CoreV1Api`` or a fake with the
    same methods.
    """
    deleted: list[str] = []
    failures: list[str] = []
    objects = (("pod", pod), ("secret", env_secret), ("config_map", config_map), ("secret", secret))
    for kind, name in objects:
        if not name:
            continue
        try:
            if await _delete(api, kind, name, namespace, policy):
                deleted.append(f"{kind}/{name}")
        except KubernetesError as error:
            failures.append(str(error))
    if failures:
        raise KubernetesError("; ".join(failures))
    return deleted


async def create_lab_config(
    api: Any, namespace: str, objects: LabObjects, policy: RetryPolicy
) -> None:
    """Create the lab's Secret, replacing a leftover."""
    await create_replacing(api, "secret", namespace, objects.secret, policy)


def legacy_env_secret_name(pod_name: str) -> str:
    """The ``-env`` Secret a lab started before 0.1.0 read its environment from."""
    return names_for_pod(pod_name)["legacy_env_secret"]


def has_legacy_env_secret(pod: Mapping[str, Any] | None, pod_name: str) -> bool:
    """Whether the lab of ``pod`` (a dict; ``None`` if unknown) may have an ``-env`` Secret.

    True when a container of the pod reads it with ``envFrom``, or when the pod
    is not known (it is gone already): then only a delete can tell.
    """
    if pod is None:
        return True
    legacy = legacy_env_secret_name(pod_name)
    spec = pod.get("spec") or {}
    return any(
        (source.get("secretRef") or {}).get("name") == legacy
        for container in spec.get("containers") or ()
        for source in container.get("envFrom") or ()
    )


async def delete_lab_config(
    api: Any,
    namespace: str,
    pod_name: str,
    policy: RetryPolicy,
    *,
    legacy_env_secret: bool = False,
) -> list[str]:
    """Delete the Secret of the lab whose pod is ``pod_name`` (not the pod).

    With ``legacy_env_secret`` also its ``-env`` Secret (a lab started before
    0.1.0). The names come from the pod's name
    (:func:`~lsst_spawner.lab.names.names_for_pod`), which the spawner's saved
    state keeps, so a lab started before the name template changed is still
    cleaned up completely.
    """
    return await delete_lab_objects(
        api,
        namespace,
        pod=None,
        config_map=None,
        secret=names_for_pod(pod_name)["secret"],
        env_secret=legacy_env_secret_name(pod_name) if legacy_env_secret else None,
        policy=policy,
    )
