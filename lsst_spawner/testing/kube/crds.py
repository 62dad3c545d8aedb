"""``apiextensions.k8s.io/v1`` CustomResourceDefinitions, the kinds they define, and Leases.

:class:`CustomResources` is the emulator's apiextensions server: a CRD is validated
as the API server validates one (:mod:`.crd_admission`: names, versions, a structural
schema, printer columns), gets its ``NamesAccepted``/``Established``
conditions and the ``customresourcecleanup`` finalizer, and from then on its kind is
served (:mod:`.apis` routes ``/apis/<group>/<version>``). Objects of the kind are
pruned, defaulted and validated against the schema; with a ``status`` subresource the
main endpoint ignores status and ``/status`` changes only status; ``generation``
moves on any change outside ``metadata`` (and ``status`` when it is a subresource).
Deleting a CRD deletes its objects (their finalizers hold it) and then the kind.

Refused rather than accepted half-modelled: more than one version (conversion),
conversion webhooks, the ``scale`` subresource, ``selectableFields``, CEL rules.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .crd_admission import CLEANUP_FINALIZER, CRDS, CrdHooks, invalid
from .crd_schema import apply_defaults, prune, validate
from .crd_table import crd_printer
from .openapi import custom_resources_v3
from .resources import ResourceType
from .status import ApiError

if TYPE_CHECKING:
    from .store import Change, ObjectStore

__all__ = [
    "APIEXTENSIONS_GROUP",
    "CLEANUP_FINALIZER",
    "COORDINATION_GROUP",
    "CustomResources",
]

APIEXTENSIONS_GROUP = "apiextensions.k8s.io"
COORDINATION_GROUP = "coordination.k8s.io"
_STATUS = ("status", ("get", "patch", "update"))

LEASES = ResourceType(
    "leases",
    "Lease",
    api_version=f"{COORDINATION_GROUP}/v1",
    printer=crd_printer(
        [
            {"name": "Holder", "type": "string", "jsonPath": ".spec.holderIdentity"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ]
    ),
)


def crd_key(spec: dict[str, Any]) -> str:
    """The store key of the kind a CRD spec defines: ``<plural>.<group>``."""
    return f"{(spec.get('names') or {}).get('plural')}.{spec.get('group')}"


class _CustomResourceHooks:
    """Admission of one custom kind: prune, default, validate against its CRD's schema."""

    def __init__(
        self, controller: CustomResources, crd_name: str, rtype: ResourceType, schema: Any
    ) -> None:
        self.controller, self.crd_name, self.schema = controller, crd_name, schema
        self.kind, self.group = rtype.kind, rtype.group
        self.status_subresource = rtype.status_subresource

    def admit(
        self, obj: dict[str, Any], old: dict[str, Any] | None, field_validation: str | None
    ) -> list[str]:
        if old is None and self.controller.terminating(self.crd_name):
            raise ApiError(
                405, "create not allowed while custom resource definition is terminating"
            )
        if old is None and self.status_subresource:
            obj.pop("status", None)  # create cannot set status
        unknown = prune(obj, self.schema)
        apply_defaults(obj, self.schema)
        meta_causes, meta_unknown = self.controller.store.validator.check_metadata(obj)
        causes = meta_causes + validate(obj, self.schema)
        name = obj["metadata"].get("name", "")
        if causes:
            raise invalid(f"{self.kind}.{self.group}", name, causes)
        unknown = [f"metadata.{path}" for path in meta_unknown] + unknown
        if unknown and field_validation == "Strict":
            fields = ", ".join(f'unknown field "{path}"' for path in unknown)
            version = obj.get("apiVersion", "").rpartition("/")[2]
            raise ApiError.bad_request(
                f'{self.kind} in version "{version}" cannot be handled as a {self.kind}: '
                f"strict decoding error: {fields}"
            )
        if field_validation == "Ignore":
            return []
        return [f'unknown field "{path}"' for path in unknown]

    def generation_changed(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        skipped = {"metadata", "status"} if self.status_subresource else {"metadata"}

        def body(obj: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in obj.items() if k not in skipped}

        return body(old) != body(new)


class CustomResources:
    """Serves the kinds CustomResourceDefinitions define, and Leases, from one store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        store.register_resource(
            ResourceType(
                CRDS,
                "CustomResourceDefinition",
                namespaced=False,
                status_subresource=True,
                api_version=f"{APIEXTENSIONS_GROUP}/v1",
                short_names=("crd", "crds"),
                categories=("api-extensions",),
                subresources=(_STATUS,),
                hooks=CrdHooks(store),
                printer=crd_printer(
                    [
                        {
                            "name": "Created At",
                            "type": "string",
                            "jsonPath": ".metadata.creationTimestamp",
                        }
                    ]
                ),
            )
        )
        store.register_resource(LEASES)
        self._kinds: dict[str, str] = {}  # CRD name -> store key of its kind
        self._cleaning: set[str] = set()
        store.listeners.append(self._changed)

    def terminating(self, crd_name: str) -> bool:
        crd = self.store.objects[CRDS].get(("", crd_name))
        return crd is None or bool(crd["metadata"].get("deletionTimestamp"))

    def resource_type(self, crd: dict[str, Any]) -> ResourceType:
        """The kind ``crd`` defines, as the store serves it."""
        spec = crd["spec"]
        names, version = spec["names"], spec["versions"][0]
        status = "status" in (version.get("subresources") or {})
        rtype = ResourceType(
            crd_key(spec),
            names["kind"],
            namespaced=spec["scope"] == "Namespaced",
            status_subresource=status,
            api_version=f"{spec['group']}/{version['name']}",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=(_STATUS,) if status else (),
            url_name=names["plural"],
            singular_name=names.get("singular", ""),
            openapi=False,
            strategic_merge=False,
            printer=crd_printer(version.get("additionalPrinterColumns")),
        )
        schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
        hooks = _CustomResourceHooks(self, crd["metadata"]["name"], rtype, schema)
        return dataclasses.replace(rtype, hooks=hooks)

    def openapi_documents(self, kubernetes_version: str) -> dict[str, bytes]:
        """``/openapi/v3`` documents of the custom kinds, by ``apis/<group>/<version>``."""
        kinds: dict[str, list[tuple[ResourceType, dict[str, Any]]]] = {}
        for rtype in self.store.resources.values():
            if isinstance(rtype.hooks, _CustomResourceHooks):
                kinds.setdefault(rtype.api_version, []).append((rtype, rtype.hooks.schema))
        return {
            f"apis/{gv}": custom_resources_v3(kubernetes_version, gv, found)
            for gv, found in sorted(kinds.items())
        }

    # -- the apiextensions controllers ---------------------------------------------------

    def _changed(self, change: Change) -> None:
        if change.resource == CRDS:
            name = change.obj["metadata"]["name"]
            if change.type == "DELETED":
                key = self._kinds.pop(name, None)
                if key is not None:
                    self.store.unregister_resource(key)
                self._cleaning.discard(name)
                return
            self._kinds[name] = crd_key(change.obj["spec"])
            self.store.register_resource(self.resource_type(change.obj))
            if change.obj["metadata"].get("deletionTimestamp") and name not in self._cleaning:
                self._cleaning.add(name)
                self._soon(lambda: self._clean_up(name))
        elif change.type == "DELETED" and self._cleaning:
            for name, key in list(self._kinds.items()):
                if key == change.resource and name in self._cleaning:
                    self._soon(lambda name=name: self._release(name))  # type: ignore[misc]

    @staticmethod
    def _soon(fn: Callable[[], None]) -> None:
        # Not from inside the store's change notification: other listeners see changes in order.
        try:
            asyncio.get_running_loop().call_soon(fn)
        except RuntimeError:
            fn()

    def _clean_up(self, crd_name: str) -> None:
        key = self._kinds.get(crd_name)
        if key is None:
            return
        for (namespace, name), _ in list(self.store.objects.get(key, {}).items()):
            try:
                self.store.delete(key, namespace or None, name)
            except ApiError as exc:
                if exc.code != 404:
                    raise
        self._release(crd_name)

    def _release(self, crd_name: str) -> None:
        """Drop the cleanup finalizer once the kind has no objects left."""
        key = self._kinds.get(crd_name)
        crd = self.store.objects[CRDS].get(("", crd_name))
        if crd is None or key is None or self.store.objects.get(key):
            return
        finalizers = [f for f in crd["metadata"].get("finalizers") or [] if f != CLEANUP_FINALIZER]
        patch = {"metadata": {"finalizers": finalizers or None}}
        self.store.patch(CRDS, None, crd_name, patch, "application/merge-patch+json")
