"""Deletion for the object store: grace periods, finalizers and ownerReference GC.

Modelled on the API server and the garbage collector:

- An object with finalizers gets a ``deletionTimestamp`` and stays until its
  finalizers are removed.
- A pod bound to a node (``spec.nodeName``) with a grace period above zero gets
  ``deletionTimestamp`` and ``deletionGracePeriodSeconds``; it disappears when
  the kubelet reports its containers stopped, or when the grace period ends
  (the emulator then plays the kubelet's SIGKILL). An unbound pod, or a grace
  period of 0, deletes at once.
- When an object disappears, dependents whose every owner is gone are deleted
  (``propagationPolicy`` Background or Foreground, both applied as background);
  ``Orphan`` strips the ownerReference instead.
- Deleting a namespace deletes everything in it, then the namespace.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import TYPE_CHECKING, Any

from .status import ApiError

if TYPE_CHECKING:
    from .store import ObjectStore

__all__ = [
    "delete",
    "delete_collection",
    "finish_pod_termination",
    "pod_terminated",
    "preview_delete",
    "remove",
]


def delete(
    store: ObjectStore,
    resource: str,
    namespace: str | None,
    name: str,
    *,
    grace_period: int | None = None,
    propagation: str | None = None,
    preconditions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Start deleting an object; return the object as last seen (or as marked)."""
    current = store.get(resource, namespace, name)
    meta = current["metadata"]
    _check_preconditions(meta, preconditions)
    if resource == "pods":
        default = (current.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        grace = default if grace_period is None else max(grace_period, 0)
        bound = bool((current.get("spec") or {}).get("nodeName"))
        if not bound or grace == 0:
            store._terminated.add(meta["uid"])
            if not meta.get("finalizers"):
                return store.remove(resource, namespace, name, propagation)
            grace = 0
        return _mark_deleting(store, resource, current, grace, propagation)
    if resource == "namespaces":
        return _delete_namespace(store, current, propagation)
    if meta.get("finalizers"):
        return _mark_deleting(store, resource, current, 0, propagation)
    return store.remove(resource, namespace, name, propagation)


def _check_preconditions(meta: dict[str, Any], preconditions: dict[str, Any] | None) -> None:
    preconditions = preconditions or {}
    for field in ("uid", "resourceVersion"):
        if preconditions.get(field) and preconditions[field] != meta.get(field):
            raise ApiError(
                409,
                f"Precondition failed: {field} in precondition: "
                f"{preconditions[field]}, {field} in object meta: "
                f"{meta.get(field)}",
                "Conflict",
            )


def preview_delete(
    store: ObjectStore,
    resource: str,
    namespace: str | None,
    name: str,
    grace_period: int | None = None,
    preconditions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``dryRun=All``: what :func:`delete` would answer, with nothing changed.

    An object that deleting would only mark (finalizers, a bound pod's grace period)
    comes back marked, as the API server answers a dry-run delete.
    """
    current = store.get(resource, namespace, name)
    meta = current["metadata"]
    _check_preconditions(meta, preconditions)
    grace = 0
    if resource == "pods":
        default = (current.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        grace = default if grace_period is None else max(grace_period, 0)
        if not (current.get("spec") or {}).get("nodeName"):
            grace = 0
    if not grace and not meta.get("finalizers") and resource != "namespaces":
        return current
    from .store import now_rfc3339

    marked = copy.deepcopy(current)
    if resource == "namespaces":
        marked["status"] = {"phase": "Terminating"}
    if not meta.get("deletionTimestamp"):
        marked["metadata"]["deletionTimestamp"] = now_rfc3339(time.time() + grace)
        marked["metadata"]["deletionGracePeriodSeconds"] = grace
    return marked


def _mark_deleting(
    store: ObjectStore,
    resource: str,
    current: dict[str, Any],
    grace: int,
    propagation: str | None,
) -> dict[str, Any]:
    meta = current["metadata"]
    previous = meta.get("deletionGracePeriodSeconds")
    if meta.get("deletionTimestamp") and previous is not None and grace >= previous:
        return current  # already deleting with an equal or shorter grace period
    from .store import now_rfc3339

    def mark(obj: dict[str, Any]) -> None:
        obj["metadata"]["deletionTimestamp"] = now_rfc3339(time.time() + grace)
        obj["metadata"]["deletionGracePeriodSeconds"] = grace

    updated = store.mutate(resource, meta.get("namespace"), meta["name"], mark)
    if resource == "pods" and grace > 0:
        _schedule(
            store,
            meta["uid"],
            grace,
            lambda: finish_pod_termination(
                store, meta.get("namespace", ""), meta["name"], meta["uid"], propagation
            ),
        )
    return updated


def _schedule(store: ObjectStore, uid: str, delay: float, fn: Any) -> None:
    old = store._timers.pop(uid, None)
    if old is not None:
        old.cancel()
    store._timers[uid] = asyncio.get_running_loop().call_later(delay, fn)


def pod_terminated(store: ObjectStore, pod: dict[str, Any]) -> bool:
    return pod["metadata"]["uid"] in store._terminated or not (pod.get("spec") or {}).get(
        "nodeName"
    )


def finish_pod_termination(
    store: ObjectStore, namespace: str, name: str, uid: str, propagation: str | None = None
) -> None:
    """The pod's containers have stopped: remove it unless finalizers hold it."""
    timer = store._timers.pop(uid, None)
    if timer is not None:
        timer.cancel()
    pod = store.objects["pods"].get((namespace, name))
    if pod is None or pod["metadata"]["uid"] != uid:
        return
    store._terminated.add(uid)
    if not pod["metadata"].get("finalizers"):
        store.remove("pods", namespace, name, propagation)


def remove(
    store: ObjectStore,
    resource: str,
    namespace: str | None,
    name: str,
    propagation: str | None = None,
) -> dict[str, Any]:
    """Remove an object now (DELETED event) and garbage-collect its dependents."""
    rtype = store.resource_type(resource)
    key = store._key(rtype, namespace, name)
    current = store.objects[resource].pop(key, None)
    if current is None:
        raise ApiError.not_found(resource, name)
    store._index_owners(resource, current, add=False)
    uid = current["metadata"]["uid"]
    store._uids.discard(uid)
    store._terminated.discard(uid)
    timer = store._timers.pop(uid, None)
    if timer is not None:
        timer.cancel()
    final = copy.copy(current)
    final["metadata"] = dict(current["metadata"])
    store._bump(final)
    store._record("DELETED", resource, final, current)
    if uid in store._dependents:
        if store.gc_delay > 0:
            asyncio.get_running_loop().call_later(store.gc_delay, _collect, store, uid, propagation)
        else:
            _collect(store, uid, propagation)
    return final


def _collect(store: ObjectStore, owner_uid: str, propagation: str | None) -> None:
    for resource, namespace, name in sorted(store._dependents.get(owner_uid, set())):
        obj = store.objects[resource].get((namespace, name))
        if obj is None:
            continue
        refs = obj["metadata"].get("ownerReferences") or []
        if propagation == "Orphan":

            def strip(o: dict[str, Any]) -> None:
                o["metadata"]["ownerReferences"] = [
                    r
                    for r in o["metadata"].get("ownerReferences") or []
                    if r.get("uid") != owner_uid
                ] or None
                if o["metadata"]["ownerReferences"] is None:
                    del o["metadata"]["ownerReferences"]

            store.mutate(resource, namespace, name, strip)
        elif not obj["metadata"].get("deletionTimestamp") and not any(
            r.get("uid") in store._uids for r in refs
        ):
            store.delete(resource, namespace, name)


def _delete_namespace(
    store: ObjectStore, current: dict[str, Any], propagation: str | None
) -> dict[str, Any]:
    name = current["metadata"]["name"]
    if not current["metadata"].get("deletionTimestamp"):
        from .store import now_rfc3339

        def mark(obj: dict[str, Any]) -> None:
            obj["metadata"]["deletionTimestamp"] = now_rfc3339()
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            obj["status"] = {"phase": "Terminating"}

        current = store.mutate("namespaces", None, name, mark)
    for resource, objects in store.objects.items():
        for ns, obj_name in [k for k in objects if k[0] == name]:
            store._terminated.add(objects[(ns, obj_name)]["metadata"]["uid"])
            if (ns, obj_name) in objects:
                store.remove(resource, ns, obj_name)
    return store.remove("namespaces", None, name, propagation)


def delete_collection(
    store: ObjectStore,
    resource: str,
    namespace: str | None,
    label_selector: str | None = None,
    field_selector: str | None = None,
    grace_period: int | None = None,
    dry_run: bool = False,
) -> list[dict[str, Any]]:
    items, _ = store.list(resource, namespace, label_selector, field_selector)
    if dry_run:
        return [
            preview_delete(store, resource, o["metadata"].get("namespace"), o["metadata"]["name"])
            for o in items
        ]
    deleted = []
    for obj in items:
        meta = obj["metadata"]
        try:
            deleted.append(
                store.delete(
                    resource, meta.get("namespace"), meta["name"], grace_period=grace_period
                )
            )
        except ApiError as exc:
            if exc.code != 404:  # already collected as a dependent
                raise
    return deleted
