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

__all__ = ["DeletionMixin"]


class DeletionMixin:
    def delete(
        self: ObjectStore,
        resource: str,
        namespace: str | None,
        name: str,
        *,
        grace_period: int | None = None,
        propagation: str | None = None,
        preconditions: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Start deleting an object; return the object as last seen (or as marked)."""
        current = self.get(resource, namespace, name)
        meta = current["metadata"]
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
        if resource == "pods":
            default = (current.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            grace = default if grace_period is None else max(grace_period, 0)
            bound = bool((current.get("spec") or {}).get("nodeName"))
            if not bound or grace == 0:
                self._terminated.add(meta["uid"])
                if not meta.get("finalizers"):
                    return self.remove(resource, namespace, name, propagation)
                grace = 0
            return self._mark_deleting(resource, current, grace, propagation)
        if resource == "namespaces":
            return self._delete_namespace(current, propagation)
        if meta.get("finalizers"):
            return self._mark_deleting(resource, current, 0, propagation)
        return self.remove(resource, namespace, name, propagation)

    def _mark_deleting(
        self: ObjectStore,
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

        updated = self.mutate(resource, meta.get("namespace"), meta["name"], mark)
        if resource == "pods" and grace > 0:
            self._schedule(
                meta["uid"],
                grace,
                lambda: self.finish_pod_termination(
                    meta.get("namespace", ""), meta["name"], meta["uid"], propagation
                ),
            )
        return updated

    def _schedule(self: ObjectStore, uid: str, delay: float, fn: Any) -> None:
        old = self._timers.pop(uid, None)
        if old is not None:
            old.cancel()
        self._timers[uid] = asyncio.get_running_loop().call_later(delay, fn)

    def _pod_terminated(self: ObjectStore, pod: dict[str, Any]) -> bool:
        return pod["metadata"]["uid"] in self._terminated or not (pod.get("spec") or {}).get(
            "nodeName"
        )

    def finish_pod_termination(
        self: ObjectStore, namespace: str, name: str, uid: str, propagation: str | None = None
    ) -> None:
        """The pod's containers have stopped: remove it unless finalizers hold it."""
        timer = self._timers.pop(uid, None)
        if timer is not None:
            timer.cancel()
        pod = self.objects["pods"].get((namespace, name))
        if pod is None or pod["metadata"]["uid"] != uid:
            return
        self._terminated.add(uid)
        if not pod["metadata"].get("finalizers"):
            self.remove("pods", namespace, name, propagation)

    def remove(
        self: ObjectStore,
        resource: str,
        namespace: str | None,
        name: str,
        propagation: str | None = None,
    ) -> dict[str, Any]:
        """Remove an object now (DELETED event) and garbage-collect its dependents."""
        rtype = self.resource_type(resource)
        key = self._key(rtype, namespace, name)
        current = self.objects[resource].pop(key, None)
        if current is None:
            raise ApiError.not_found(resource, name)
        self._index_owners(resource, current, add=False)
        uid = current["metadata"]["uid"]
        self._uids.discard(uid)
        self._terminated.discard(uid)
        timer = self._timers.pop(uid, None)
        if timer is not None:
            timer.cancel()
        final = copy.copy(current)
        final["metadata"] = dict(current["metadata"])
        self._bump(final)
        self._record("DELETED", resource, final, current)
        if uid in self._dependents:
            if self.gc_delay > 0:
                asyncio.get_running_loop().call_later(
                    self.gc_delay, self._collect, uid, propagation
                )
            else:
                self._collect(uid, propagation)
        return final

    def _collect(self: ObjectStore, owner_uid: str, propagation: str | None) -> None:
        for resource, namespace, name in sorted(self._dependents.get(owner_uid, set())):
            obj = self.objects[resource].get((namespace, name))
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

                self.mutate(resource, namespace, name, strip)
            elif not obj["metadata"].get("deletionTimestamp") and not any(
                r.get("uid") in self._uids for r in refs
            ):
                self.delete(resource, namespace, name)

    def _delete_namespace(
        self: ObjectStore, current: dict[str, Any], propagation: str | None
    ) -> dict[str, Any]:
        name = current["metadata"]["name"]
        if not current["metadata"].get("deletionTimestamp"):
            from .store import now_rfc3339

            def mark(obj: dict[str, Any]) -> None:
                obj["metadata"]["deletionTimestamp"] = now_rfc3339()
                obj["metadata"]["deletionGracePeriodSeconds"] = 0
                obj["status"] = {"phase": "Terminating"}

            current = self.mutate("namespaces", None, name, mark)
        for resource, objects in self.objects.items():
            for ns, obj_name in [k for k in objects if k[0] == name]:
                self._terminated.add(objects[(ns, obj_name)]["metadata"]["uid"])
                if (ns, obj_name) in objects:
                    self.remove(resource, ns, obj_name)
        return self.remove("namespaces", None, name, propagation)

    def delete_collection(
        self: ObjectStore,
        resource: str,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        grace_period: int | None = None,
    ) -> list[dict[str, Any]]:
        items, _ = self.list(resource, namespace, label_selector, field_selector)
        deleted = []
        for obj in items:
            meta = obj["metadata"]
            try:
                deleted.append(
                    self.delete(
                        resource, meta.get("namespace"), meta["name"], grace_period=grace_period
                    )
                )
            except ApiError as exc:
                if exc.code != 404:  # already collected as a dependent
                    raise
        return deleted
