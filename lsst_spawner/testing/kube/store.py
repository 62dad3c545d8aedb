"""The in-memory object store: resourceVersions, watch history; deletion and GC in gc.py.

All methods run on the emulator's event loop (single-threaded), so there are
no locks. Stored objects are never mutated in place: every change stores a
fresh dict, which lets watch history and in-flight responses share them
without copying.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import itertools
import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .gc import GarbageCollector
from .patch import apply_patch
from .rbac import RBAC_RESOURCES
from .resources import NETWORKING_RESOURCES, RESOURCES, ResourceType, apply_create_defaults
from .selectors import Matcher, parse_field_selector, parse_label_selector
from .status import ApiError
from .validation import Validator, check_name, check_path_segment_name

__all__ = ["Change", "ObjectStore", "Watcher", "now_rfc3339"]

Key = tuple[str, str]  # (namespace or "", name)
#: Every kind the store keeps: core v1 and the RBAC group's (served under /apis/...).
ALL_RESOURCES: dict[str, ResourceType] = {**RESOURCES, **RBAC_RESOURCES, **NETWORKING_RESOURCES}

_POD_MUTABLE_SPEC = {"activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"}
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def _qualified_kind(rtype: ResourceType) -> str:
    """The kind as 422s name it: ``Pod``, ``Role.rbac.authorization.k8s.io``."""
    return f"{rtype.kind}.{rtype.group}" if rtype.group else rtype.kind


def now_rfc3339(when: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if when is None else when))


class Change(NamedTuple):
    """One entry of the change log, as sent to watchers and in-process listeners."""

    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: str
    namespace: str
    obj: dict[str, Any]
    prev: dict[str, Any] | None
    #: When the change was made (``time.monotonic()``): a watch lag counts from it.
    at: float = 0.0


@dataclass(eq=False)
class Watcher:
    resource: str
    namespace: str | None
    labels: Matcher | None
    fields: Matcher | None
    queue: asyncio.Queue[Change | None] = field(default_factory=asyncio.Queue)

    def matches(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        return (self.labels is None or self.labels(obj)) and (
            self.fields is None or self.fields(obj)
        )

    def translate(self, change: Change) -> str | None:
        """The event type this watcher sees, honouring selector transitions."""
        now, before = self.matches(change.obj), self.matches(change.prev)
        if change.type == "DELETED":
            return "DELETED" if now else None
        if now and not before:
            return "ADDED"
        if before and not now:
            return "DELETED"
        return change.type if now else None


class ObjectStore:
    def __init__(
        self,
        validator: Validator | None = None,
        *,
        history_limit: int = 100_000,
        gc_delay: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.validator = validator or Validator()
        #: The kinds served: the built-in ones, and custom resources while their CRD exists.
        self.resources: dict[str, ResourceType] = dict(ALL_RESOURCES)
        self.objects: dict[str, dict[Key, dict[str, Any]]] = {r: {} for r in ALL_RESOURCES}
        self.rv = 0
        self.history: deque[Change] = deque()
        self.history_limit = history_limit
        self.compacted_rv = 0
        self.watchers: dict[str, set[Watcher]] = {r: set() for r in ALL_RESOURCES}
        self.listeners: list[Callable[[Change], None]] = []
        self._random = random.Random(seed)
        self._cluster_ips = (f"10.96.{n // 254}.{n % 254 + 1}" for n in itertools.count(1))
        #: Deletion (grace periods, finalizers, propagation) and ownerReference collection.
        self.gc = GarbageCollector(self, gc_delay)

    # -- helpers ------------------------------------------------------------------------

    def resource_type(self, resource: str) -> ResourceType:
        try:
            return self.resources[resource]
        except KeyError:
            raise ApiError(404, "the server could not find the requested resource") from None

    def register_resource(self, rtype: ResourceType) -> None:
        """Serve a kind (a custom resource, keyed ``<plural>.<group>``), or replace its type."""
        self.resources[rtype.plural] = rtype
        self.objects.setdefault(rtype.plural, {})
        self.watchers.setdefault(rtype.plural, set())

    def unregister_resource(self, resource: str) -> None:
        """Stop serving a kind: its objects go (without events) and its watches end."""
        self.resources.pop(resource, None)
        for obj in self.objects.pop(resource, {}).values():
            self.gc.untrack(resource, obj)
        for watcher in self.watchers.pop(resource, set()):
            watcher.queue.put_nowait(None)

    def _key(self, rtype: ResourceType, namespace: str | None, name: str) -> Key:
        return (namespace or "", name) if rtype.namespaced else ("", name)

    def _record(self, kind: str, resource: str, obj: dict[str, Any], prev: Any) -> Change:
        namespace = obj["metadata"].get("namespace", "")
        change = Change(self.rv, kind, resource, namespace, obj, prev, time.monotonic())
        self.history.append(change)
        if len(self.history) > self.history_limit:
            self.compacted_rv = self.history.popleft().rv
        for watcher in self.watchers.get(resource, ()):
            if watcher.namespace is None or watcher.namespace == change.namespace:
                watcher.queue.put_nowait(change)
        for listener in self.listeners:
            listener(change)
        return change

    def _bump(self, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def _store(self, resource: str, obj: dict[str, Any], prev: dict[str, Any] | None) -> None:
        meta = obj["metadata"]
        self.objects[resource][(meta.get("namespace", ""), meta["name"])] = obj
        self.gc.track(resource, obj, prev)

    def discard(self, resource: str, namespace: str | None, name: str) -> dict[str, Any]:
        """Take an object out now (a DELETED event), nothing more: the collector's primitive."""
        rtype = self.resource_type(resource)
        current = self.objects[resource].pop(self._key(rtype, namespace, name), None)
        if current is None:
            raise ApiError.not_found(resource, name)
        final = copy.copy(current)
        final["metadata"] = dict(current["metadata"])
        self._bump(final)
        self._record("DELETED", resource, final, current)
        self.gc.untrack(resource, current)
        return final

    # -- deletion (see gc.py) ------------------------------------------------------------

    def delete(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        *,
        grace_period: int | None = None,
        propagation: str | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Start deleting an object; return the object as last seen (or as marked)."""
        if dry_run:
            return self.gc.preview(
                resource, namespace, name, grace_period, preconditions, propagation
            )
        return self.gc.delete(
            resource,
            namespace,
            name,
            grace_period=grace_period,
            propagation=propagation,
            preconditions=preconditions,
        )

    def remove(self, resource: str, namespace: str | None, name: str) -> dict[str, Any]:
        """Remove an object now (DELETED event) and garbage-collect its dependents."""
        return self.gc.remove(resource, namespace, name)

    def finish_pod_termination(self, namespace: str, name: str, uid: str) -> None:
        """The kubelet has stopped the pod's containers: let it go."""
        self.gc.finish_pod_termination(namespace, name, uid)

    def delete_collection(
        self,
        resource: str,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        grace_period: int | None = None,
        dry_run: bool = False,
    ) -> builtins.list[dict[str, Any]]:
        return self.gc.delete_collection(
            resource, namespace, label_selector, field_selector, grace_period, dry_run
        )

    # -- reads --------------------------------------------------------------------------

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any]:
        rtype = self.resource_type(resource)
        obj = self.objects[resource].get(self._key(rtype, namespace, name))
        if obj is None:
            raise ApiError.not_found(resource, name)
        return obj

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        self.resource_type(resource)
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, resource)
        items = [
            obj
            for (ns, _), obj in sorted(self.objects[resource].items())
            if (namespace is None or ns == namespace)
            and (labels is None or labels(obj))
            and (fields is None or fields(obj))
        ]
        return items, self.rv

    def watch(
        self,
        resource: str,
        namespace: str | None,
        resource_version: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[Watcher, builtins.list[tuple[str, dict[str, Any]]]]:
        """Register a watcher; return it with the events it must send first.

        Raises ApiError(410) when ``resource_version`` is older than the
        retained history, as the API server does once etcd has compacted.
        """
        self.resource_type(resource)
        watcher = Watcher(
            resource,
            namespace,
            parse_label_selector(label_selector),
            parse_field_selector(field_selector, resource),
        )
        initial: builtins.list[tuple[str, dict[str, Any]]] = []
        if resource_version in (None, "", "0"):
            items, _ = self.list(resource, namespace, label_selector, field_selector)
            initial = [("ADDED", obj) for obj in items]
        else:
            try:
                since = int(resource_version)
            except ValueError:
                raise ApiError.bad_request(
                    f'invalid resource version "{resource_version}"'
                ) from None
            if since < self.compacted_rv:
                raise ApiError(
                    410,
                    f"too old resource version: {since} ({self.compacted_rv + 1})",
                    "Expired",
                )
            for change in self.history:
                if (
                    change.rv > since
                    and change.resource == resource
                    and (namespace is None or change.namespace == namespace)
                ):
                    kind = watcher.translate(change)
                    if kind:
                        initial.append((kind, change.obj))
        self.watchers[resource].add(watcher)
        return watcher, initial

    def unwatch(self, watcher: Watcher) -> None:
        self.watchers.get(watcher.resource, set()).discard(watcher)

    def close_watches(self) -> None:
        for watchers in self.watchers.values():
            for watcher in watchers:
                watcher.queue.put_nowait(None)
            watchers.clear()

    # -- writes -------------------------------------------------------------------------

    def create(
        self,
        resource: str,
        namespace: str | None,
        body: dict[str, Any],
        *,
        field_validation: str | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], builtins.list[str]]:
        rtype = self.resource_type(resource)
        if not isinstance(body, dict):
            raise ApiError.bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        self._check_type_meta(rtype, obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError.bad_request("metadata must be an object")
        if rtype.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise ApiError.bad_request(
                    "the namespace of the provided object does not match the namespace "
                    "sent on the request"
                )
            meta["namespace"] = namespace
            ns = self.objects["namespaces"].get(("", namespace or ""))
            if ns is None:
                raise ApiError.not_found("namespaces", namespace or "")
            if ns["metadata"].get("deletionTimestamp"):
                raise ApiError(
                    403,
                    f'{resource} "{meta.get("name", "")}" is forbidden: unable '
                    f"to create new content in namespace {namespace} because it is "
                    "being terminated",
                    "Forbidden",
                )
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError.invalid(
                    _qualified_kind(rtype),
                    "",
                    [
                        (
                            "FieldValueRequired",
                            "metadata.name",
                            "Required value: name or generateName is required",
                        )
                    ],
                )
            suffix = "".join(self._random.choice(_NAME_CHARS) for _ in range(5))
            meta["name"] = meta["generateName"] + suffix
        if rtype.path_segment_name:
            cause = check_path_segment_name(meta["name"])
        else:
            cause = check_name(rtype.kind, meta["name"], label=rtype.label_name)
        if cause:
            raise ApiError.invalid(_qualified_kind(rtype), meta["name"], [cause])
        if self._key(rtype, namespace, meta["name"]) in self.objects[resource]:
            raise ApiError.already_exists(resource, meta["name"])
        for server_field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(server_field, None)
        meta["uid"] = str(uuid.UUID(int=self._random.getrandbits(128), version=4))
        meta["creationTimestamp"] = now_rfc3339()
        if "spec" in obj or rtype.hooks is not None:  # custom resources always have one
            meta["generation"] = 1
        if resource == "secrets" and "stringData" in obj:
            self._fold_string_data(obj)
        warnings = self.validator.check(obj, field_validation) if rtype.openapi else []
        if rtype.hooks is not None:
            warnings += rtype.hooks.admit(obj, None, field_validation)
        apply_create_defaults(resource, obj, lambda: next(self._cluster_ips))
        if dry_run:
            return obj, warnings
        self._bump(obj)
        self._store(resource, obj, None)
        self._record("ADDED", resource, obj, None)
        return obj, warnings

    def replace(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        body: dict[str, Any],
        *,
        subresource: str | None = None,
        field_validation: str | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], builtins.list[str]]:
        rtype = self.resource_type(resource)
        current = self.get(resource, namespace, name)
        if not isinstance(body, dict):
            raise ApiError.bad_request("the request body must be a JSON object")
        new = copy.deepcopy(body)
        self._check_type_meta(rtype, new)
        meta = new.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise ApiError.bad_request("the name of the object does not match the name on the URL")
        wanted = meta.get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise ApiError.conflict(resource, name)
        return self._commit_update(rtype, current, new, subresource, field_validation, dry_run)

    def patch(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        patch: Any,
        content_type: str,
        *,
        subresource: str | None = None,
        field_validation: str | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], builtins.list[str]]:
        rtype = self.resource_type(resource)
        current = self.get(resource, namespace, name)
        new = apply_patch(copy.deepcopy(current), patch, content_type)
        wanted = (new.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise ApiError.conflict(resource, name)
        return self._commit_update(rtype, current, new, subresource, field_validation, dry_run)

    def mutate(
        self, resource: str, namespace: str | None, name: str, fn: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Change an object in-process (used by the kubelet); no validation, no faults."""
        current = self.get(resource, namespace, name)
        new = copy.deepcopy(current)
        fn(new)
        self._bump(new)
        self._store(resource, new, current)
        self._record("MODIFIED", resource, new, current)
        return new

    def _commit_update(
        self,
        rtype: ResourceType,
        current: dict[str, Any],
        new: dict[str, Any],
        subresource: str | None,
        field_validation: str | None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], builtins.list[str]]:
        resource, name = rtype.plural, current["metadata"]["name"]
        if rtype.kind.endswith("RoleBinding") and new.get("roleRef") != current.get("roleRef"):
            raise ApiError.invalid(
                f"{rtype.kind}.{rtype.api_version.split('/')[0]}",
                name,
                [("FieldValueInvalid", "roleRef", "Invalid value: cannot change roleRef")],
            )
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(current)
            new["status"] = status
        elif subresource is not None:
            raise ApiError(404, "the server could not find the requested resource")
        elif rtype.status_subresource:
            new["status"] = copy.deepcopy(current.get("status"))
            if new["status"] is None:
                new.pop("status")
        meta, old_meta = new.setdefault("metadata", {}), current["metadata"]
        for fixed in (
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if fixed in old_meta:
                meta[fixed] = old_meta[fixed]
            else:
                meta.pop(fixed, None)
        if resource == "pods" and subresource is None:
            self._check_pod_update(current, new)
        if resource == "secrets" and "stringData" in new:
            self._fold_string_data(new)
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise ApiError.invalid(
                    _qualified_kind(rtype),
                    name,
                    [
                        (
                            "FieldValueForbidden",
                            "metadata.finalizers",
                            "Forbidden: no new finalizers can be added if the object is being "
                            "deleted, found new finalizers []string{"
                            + ", ".join(f'"{f}"' for f in sorted(added))
                            + "}",
                        )
                    ],
                )
        warnings = self.validator.check(new, field_validation) if rtype.openapi else []
        if rtype.hooks is not None:
            warnings += rtype.hooks.admit(new, current, field_validation)
            changed = rtype.hooks.generation_changed(current, new)
        else:
            changed = "spec" in new and new.get("spec") != current.get("spec")
        if changed:
            meta["generation"] = old_meta.get("generation", 0) + 1
        if dry_run:  # everything checked, nothing stored: the object as it would be
            meta["resourceVersion"] = old_meta["resourceVersion"]
            return new, warnings
        self._bump(new)
        self._store(resource, new, current)
        self._record("MODIFIED", resource, new, current)
        if old_meta.get("deletionTimestamp"):
            self.gc.release(resource, new)  # its last finalizer may have gone
        return new, warnings

    @staticmethod
    def _check_type_meta(rtype: ResourceType, obj: dict[str, Any]) -> None:
        if obj.setdefault("apiVersion", rtype.api_version) != rtype.api_version:
            raise ApiError.bad_request(
                f"the API version in the data ({obj['apiVersion']}) does not match the expected "
                f"API version ({rtype.api_version})"
            )
        if obj.setdefault("kind", rtype.kind) != rtype.kind:
            raise ApiError.bad_request(
                f"the kind in the data ({obj['kind']}) does not match the expected kind "
                f"({rtype.kind})"
            )

    @staticmethod
    def _fold_string_data(obj: dict[str, Any]) -> None:
        import base64

        data = obj.setdefault("data", {}) or {}
        for key, value in (obj.pop("stringData") or {}).items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data

    @staticmethod
    def _check_pod_update(current: dict[str, Any], new: dict[str, Any]) -> None:
        old_spec, new_spec = current.get("spec") or {}, copy.deepcopy(new.get("spec") or {})
        for group in ("containers", "initContainers"):
            for old_c, new_c in zip(
                old_spec.get(group) or [], new_spec.get(group) or [], strict=False
            ):
                new_c["image"] = old_c.get("image")
        for key in _POD_MUTABLE_SPEC:
            new_spec.pop(key, None)
        old_cmp = {k: v for k, v in old_spec.items() if k not in _POD_MUTABLE_SPEC}
        if new_spec != old_cmp:
            raise ApiError.invalid(
                "Pod",
                current["metadata"]["name"],
                [
                    (
                        "FieldValueForbidden",
                        "spec",
                        "Forbidden: pod updates may not change fields other than "
                        "`spec.containers[*]."
                        "image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, "
                        "`spec.tolerations` (only additions to existing tolerations), "
                        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
                        "previously negative)",
                    )
                ],
            )
