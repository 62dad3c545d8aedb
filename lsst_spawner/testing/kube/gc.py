"""Deletion and garbage collection: grace periods, finalizers, ownerReferences, propagation.

:class:`GarbageCollector` is the emulator's API-server deletion path and its garbage
collector, in one place. It talks to the store only through the store's public
operations (``get``, ``list``, ``mutate``, ``discard``, ``objects``) and keeps its own
state: which objects depend on which owner uid, which uids are alive, which pods'
containers have stopped, and the pods' grace-period timers. Modelled on the API server
and ``kube-controller-manager``'s garbage collector:

- An object with finalizers gets a ``deletionTimestamp`` and stays until its
  finalizers are removed; no finalizer may be added meanwhile (the store checks).
- A pod bound to a node (``spec.nodeName``) with a grace period above zero gets
  ``deletionTimestamp`` and ``deletionGracePeriodSeconds``; it disappears when the
  kubelet reports its containers stopped, or when the grace period ends (the emulator
  then plays the kubelet's SIGKILL). An unbound pod, or a grace period of 0, goes at once.
- ``propagationPolicy``: ``Background`` (the default) removes the owner, then deletes
  each dependent whose owners are all gone; ``Foreground`` marks the owner with the
  ``foregroundDeletion`` finalizer, deletes its dependents, and lets it go once no
  dependent with ``blockOwnerDeletion`` is left; ``Orphan`` marks it with the
  ``orphan`` finalizer, strips the ownerReferences from its dependents, and lets it go.
- An owner counts as present when an object with its uid exists in the dependent's
  namespace (or is cluster-scoped); a dependent created with no present owner is
  collected, as the garbage collector collects dangling references.
- Deleting a namespace deletes everything in it, then the namespace.

With ``delay`` (the emulator's ``gc_delay``) the collector acts that many seconds
after the change that calls for it, as a controller would; by default at once.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .status import ApiError

if TYPE_CHECKING:
    from .store import ObjectStore

__all__ = ["FOREGROUND", "ORPHAN", "GarbageCollector"]

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
_POLICIES = ("Foreground", "Background", "Orphan")
Ident = tuple[str, str, str]  # (resource, namespace or "", name)


def _now(offset: float = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))


def _check_policy(propagation: str | None) -> None:
    if propagation is not None and propagation not in _POLICIES:
        supported = ", ".join(f'"{p}"' for p in _POLICIES)
        raise ApiError.invalid(
            "DeleteOptions.meta.k8s.io",
            "",
            [
                (
                    "FieldValueNotSupported",
                    "propagationPolicy",
                    f'Unsupported value: "{propagation}": supported values: {supported}',
                )
            ],
        )


def _check_preconditions(meta: dict[str, Any], preconditions: dict[str, Any] | None) -> None:
    for field in ("uid", "resourceVersion"):
        wanted = (preconditions or {}).get(field)
        if wanted and wanted != meta.get(field):
            raise ApiError(
                409,
                f"Precondition failed: {field} in precondition: {wanted}, {field} in object "
                f"meta: {meta.get(field)}",
                "Conflict",
            )


class GarbageCollector:
    """Deletes objects as the API server does and collects their dependents."""

    def __init__(self, store: ObjectStore, delay: float = 0.0) -> None:
        self.store = store
        self.delay = delay
        self._dependents: dict[str, set[Ident]] = {}  # owner uid -> dependents
        self._alive: dict[str, Ident] = {}  # uid -> (resource, namespace or "", name)
        self._terminated: set[str] = set()  # pods marked for deletion whose containers stopped
        self._timers: dict[str, asyncio.TimerHandle] = {}

    # -- what the store tells the collector ------------------------------------------------

    def track(self, resource: str, obj: dict[str, Any], prev: dict[str, Any] | None) -> None:
        """``obj`` was stored (replacing ``prev``): index its ownerReferences."""
        if prev is not None:
            self._index(resource, prev, add=False)
        self._index(resource, obj, add=True)
        meta = obj["metadata"]
        self._alive[meta["uid"]] = (resource, meta.get("namespace", ""), meta["name"])
        refs = meta.get("ownerReferences") or []
        if prev is None and refs and not self._owned(obj):
            self._deferred(lambda: self._collect_dangling(resource, obj))

    def untrack(self, resource: str, obj: dict[str, Any]) -> None:
        """``obj`` is gone from the store."""
        self._index(resource, obj, add=False)
        uid = obj["metadata"]["uid"]
        self._alive.pop(uid, None)
        self._terminated.discard(uid)
        self._cancel_timer(uid)
        for ref in obj["metadata"].get("ownerReferences") or []:
            owner_uid = str(ref.get("uid", ""))
            owner = self._find(owner_uid)
            if owner is not None and FOREGROUND in (owner[1]["metadata"].get("finalizers") or []):
                self._later(functools.partial(self._finish_foreground, owner_uid))

    def _index(self, resource: str, obj: dict[str, Any], add: bool) -> None:
        meta = obj["metadata"]
        ident = (resource, meta.get("namespace", ""), meta["name"])
        for ref in meta.get("ownerReferences") or []:
            uid = ref.get("uid", "")
            if add:
                self._dependents.setdefault(uid, set()).add(ident)
            elif uid in self._dependents:
                self._dependents[uid].discard(ident)
                if not self._dependents[uid]:
                    del self._dependents[uid]

    # -- the API server's delete -----------------------------------------------------------

    def delete(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        *,
        grace_period: int | None = None,
        propagation: str | None = None,
        preconditions: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Start deleting an object; return it as last seen (or as marked)."""
        _check_policy(propagation)
        current = self.store.get(resource, namespace, name)
        meta = current["metadata"]
        _check_preconditions(meta, preconditions)
        if resource == "namespaces":
            return self._delete_namespace(current)
        finalizer = {"Foreground": FOREGROUND, "Orphan": ORPHAN}.get(propagation or "")
        grace = 0
        if resource == "pods":
            default = (current.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            grace = default if grace_period is None else max(grace_period, 0)
            if not (current.get("spec") or {}).get("nodeName") or grace == 0:
                self._terminated.add(meta["uid"])
                grace = 0
        if not grace and not meta.get("finalizers") and finalizer is None:
            return self.remove(resource, namespace, name)
        marked = self._mark(resource, current, grace, finalizer)
        if finalizer is not None:
            self._later(lambda: self._propagate(resource, marked["metadata"]))
        return marked

    def preview(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        grace_period: int | None = None,
        preconditions: dict[str, Any] | None = None,
        propagation: str | None = None,
    ) -> dict[str, Any]:
        """``dryRun=All``: what :meth:`delete` would answer, with nothing changed."""
        _check_policy(propagation)
        current = self.store.get(resource, namespace, name)
        meta = current["metadata"]
        _check_preconditions(meta, preconditions)
        grace = 0
        if resource == "pods":
            default = (current.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            grace = default if grace_period is None else max(grace_period, 0)
            if not (current.get("spec") or {}).get("nodeName"):
                grace = 0
        finalizer = {"Foreground": FOREGROUND, "Orphan": ORPHAN}.get(propagation or "")
        if (
            not grace
            and not meta.get("finalizers")
            and finalizer is None
            and resource != "namespaces"
        ):
            return current
        marked = copy.deepcopy(current)
        if resource == "namespaces":
            marked["status"] = {"phase": "Terminating"}
        if finalizer is not None and finalizer not in (meta.get("finalizers") or []):
            marked["metadata"]["finalizers"] = [*(meta.get("finalizers") or []), finalizer]
        if not meta.get("deletionTimestamp"):
            marked["metadata"]["deletionTimestamp"] = _now(grace)
            marked["metadata"]["deletionGracePeriodSeconds"] = grace
        return marked

    def delete_collection(
        self,
        resource: str,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        grace_period: int | None = None,
        dry_run: bool = False,
    ) -> list[dict[str, Any]]:
        items, _ = self.store.list(resource, namespace, label_selector, field_selector)
        if dry_run:
            return [
                self.preview(resource, o["metadata"].get("namespace"), o["metadata"]["name"])
                for o in items
            ]
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

    def remove(self, resource: str, namespace: str | None, name: str) -> dict[str, Any]:
        """Remove an object now (DELETED event), then collect its dependents."""
        final = self.store.discard(resource, namespace, name)
        uid = final["metadata"]["uid"]
        if uid in self._dependents:
            self._later(lambda: self._collect_dependents(uid))
        return final

    def release(self, resource: str, obj: dict[str, Any]) -> None:
        """An update left ``obj`` deleting without finalizers: remove it if it may go."""
        meta = obj["metadata"]
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and (resource != "pods" or self.pod_terminated(obj))
        ):
            self.remove(resource, meta.get("namespace"), meta["name"])

    # -- pods ------------------------------------------------------------------------------

    def pod_terminated(self, pod: dict[str, Any]) -> bool:
        return pod["metadata"]["uid"] in self._terminated or not (pod.get("spec") or {}).get(
            "nodeName"
        )

    def finish_pod_termination(self, namespace: str, name: str, uid: str) -> None:
        """The pod's containers have stopped: remove it unless finalizers hold it."""
        self._cancel_timer(uid)
        pod = self.store.objects["pods"].get((namespace, name))
        if pod is None or pod["metadata"]["uid"] != uid:
            return
        self._terminated.add(uid)
        self.release("pods", pod)

    # -- marking ---------------------------------------------------------------------------

    def _mark(
        self, resource: str, current: dict[str, Any], grace: int, finalizer: str | None
    ) -> dict[str, Any]:
        meta = current["metadata"]
        previous = meta.get("deletionGracePeriodSeconds")
        shorter = previous is None or grace < previous
        needs_finalizer = finalizer is not None and finalizer not in (meta.get("finalizers") or [])
        if meta.get("deletionTimestamp") and not shorter and not needs_finalizer:
            return current  # already deleting with an equal or shorter grace period

        def mark(obj: dict[str, Any]) -> None:
            if not meta.get("deletionTimestamp") or shorter:
                obj["metadata"]["deletionTimestamp"] = _now(grace)
                obj["metadata"]["deletionGracePeriodSeconds"] = grace
            if needs_finalizer:
                obj["metadata"]["finalizers"] = [*(meta.get("finalizers") or []), finalizer]

        updated = self.store.mutate(resource, meta.get("namespace"), meta["name"], mark)
        if resource == "pods" and grace > 0 and (not meta.get("deletionTimestamp") or shorter):
            namespace, name, uid = meta.get("namespace", ""), meta["name"], meta["uid"]
            self._cancel_timer(uid)
            self._timers[uid] = asyncio.get_running_loop().call_later(
                grace, lambda: self.finish_pod_termination(namespace, name, uid)
            )
        return updated

    def _cancel_timer(self, uid: str) -> None:
        timer = self._timers.pop(uid, None)
        if timer is not None:
            timer.cancel()

    def _drop_finalizer(self, resource: str, meta: dict[str, Any], finalizer: str) -> None:
        obj = self.store.objects.get(resource, {}).get((meta.get("namespace", ""), meta["name"]))
        if obj is None or obj["metadata"]["uid"] != meta["uid"]:
            return
        if finalizer not in (obj["metadata"].get("finalizers") or []):
            return

        def drop(o: dict[str, Any]) -> None:
            left = [f for f in o["metadata"].get("finalizers") or [] if f != finalizer]
            if left:
                o["metadata"]["finalizers"] = left
            else:
                o["metadata"].pop("finalizers", None)

        self.release(
            resource, self.store.mutate(resource, meta.get("namespace"), meta["name"], drop)
        )

    # -- collection ------------------------------------------------------------------------

    def _later(self, fn: Callable[[], None]) -> None:
        if self.delay > 0:
            asyncio.get_running_loop().call_later(self.delay, fn)
        else:
            fn()

    def _deferred(self, fn: Callable[[], None]) -> None:
        """After the current write has answered (and its event gone out), as a controller."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a store used without a loop has no controllers
        if self.delay > 0:
            loop.call_later(self.delay, fn)
        else:
            loop.call_soon(fn)

    def _find(self, uid: str) -> tuple[str, dict[str, Any]] | None:
        where = self._alive.get(uid)
        if where is None:
            return None
        resource, namespace, name = where
        obj = self.store.objects.get(resource, {}).get((namespace, name))
        return (resource, obj) if obj is not None and obj["metadata"]["uid"] == uid else None

    def _owned(self, obj: dict[str, Any]) -> bool:
        """Whether some owner of ``obj`` is present (same namespace, or cluster-scoped)."""
        namespace = obj["metadata"].get("namespace", "")
        for ref in obj["metadata"].get("ownerReferences") or []:
            where = self._alive.get(ref.get("uid", ""))
            if where is not None and where[1] in ("", namespace):
                return True
        return False

    def _dependents_of(self, uid: str) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for resource, namespace, name in sorted(self._dependents.get(uid, set())):
            obj = self.store.objects.get(resource, {}).get((namespace, name))
            if obj is not None:
                found.append((resource, obj))
        return found

    def _collect_dependents(self, owner_uid: str) -> None:
        for resource, obj in self._dependents_of(owner_uid):
            if not obj["metadata"].get("deletionTimestamp") and not self._owned(obj):
                self._delete_quietly(resource, obj)

    def _collect_dangling(self, resource: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        current = self.store.objects.get(resource, {}).get(
            (meta.get("namespace", ""), meta["name"])
        )
        if (
            current is not None
            and current["metadata"]["uid"] == meta["uid"]
            and not current["metadata"].get("deletionTimestamp")
            and not self._owned(current)
        ):
            self._delete_quietly(resource, current)

    def _delete_quietly(self, resource: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        try:
            self.delete(resource, meta.get("namespace") or None, meta["name"])
        except ApiError as exc:
            if exc.code != 404:
                raise

    def _propagate(self, resource: str, meta: dict[str, Any]) -> None:
        """Orphan or foreground-delete the dependents of an owner marked for it."""
        uid = meta["uid"]
        if ORPHAN in (meta.get("finalizers") or []):
            for dep_resource, dep in self._dependents_of(uid):

                def strip(o: dict[str, Any]) -> None:
                    refs = [
                        r for r in o["metadata"].get("ownerReferences") or [] if r.get("uid") != uid
                    ]
                    if refs:
                        o["metadata"]["ownerReferences"] = refs
                    else:
                        o["metadata"].pop("ownerReferences", None)

                dep_meta = dep["metadata"]
                self.store.mutate(dep_resource, dep_meta.get("namespace"), dep_meta["name"], strip)
            self._drop_finalizer(resource, meta, ORPHAN)
        if FOREGROUND in (meta.get("finalizers") or []):
            for dep_resource, dep in self._dependents_of(uid):
                if not dep["metadata"].get("deletionTimestamp"):
                    self._delete_quietly(dep_resource, dep)
            self._finish_foreground(uid)

    def _finish_foreground(self, owner_uid: str) -> None:
        """Let a foreground-deleted owner go once no blocking dependent is left."""
        found = self._find(owner_uid)
        if found is None:
            return
        resource, owner = found
        if FOREGROUND not in (owner["metadata"].get("finalizers") or []):
            return
        for _, dep in self._dependents_of(owner_uid):
            for ref in dep["metadata"].get("ownerReferences") or []:
                if ref.get("uid") == owner_uid and ref.get("blockOwnerDeletion"):
                    return
        self._drop_finalizer(resource, owner["metadata"], FOREGROUND)

    # -- namespaces ------------------------------------------------------------------------

    def _delete_namespace(self, current: dict[str, Any]) -> dict[str, Any]:
        name = current["metadata"]["name"]
        if not current["metadata"].get("deletionTimestamp"):

            def mark(obj: dict[str, Any]) -> None:
                obj["metadata"]["deletionTimestamp"] = _now()
                obj["metadata"]["deletionGracePeriodSeconds"] = 0
                obj["status"] = {"phase": "Terminating"}

            current = self.store.mutate("namespaces", None, name, mark)
        for resource, objects in list(self.store.objects.items()):
            for key in [k for k in objects if k[0] == name]:
                obj = objects.get(key)
                if obj is not None:
                    self._terminated.add(obj["metadata"]["uid"])
                    self.remove(resource, key[0], key[1])
        return self.remove("namespaces", None, name)
