"""``apiextensions.k8s.io/v1`` CustomResourceDefinitions, the kinds they define, and Leases.

:class:`CustomResources` is the emulator's apiextensions server: a CRD is validated
as the API server validates one (names, versions, a structural schema, printer
columns; see :mod:`.crd_schema`), gets its ``NamesAccepted``/``Established``
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
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .crd_schema import Cause, apply_defaults, prune, schema_causes, validate
from .crd_table import check_json_path, crd_printer
from .openapi import custom_resources_v3
from .resources import ResourceType
from .status import ApiError
from .validation import check_name

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
CRDS = "customresourcedefinitions"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
APPROVAL_ANNOTATION = "api-approved.kubernetes.io"
_STATUS = ("status", ("get", "patch", "update"))
_COLUMN_TYPES = ("integer", "number", "string", "boolean", "date")
_COLUMN_FORMATS = ("int32", "int64", "float", "double", "byte", "date", "date-time", "password")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
#: Groups the emulator serves itself: a CRD may not define kinds in them.
BUILT_IN_GROUPS = frozenset(
    {
        "",
        APIEXTENSIONS_GROUP,
        COORDINATION_GROUP,
        "rbac.authorization.k8s.io",
        "authorization.k8s.io",
        "networking.k8s.io",
    }
)

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


def _invalid(kind: str, name: str, causes: list[Cause]) -> ApiError:
    return ApiError.invalid(kind, name, causes)


def _label_cause(field: str, value: Any, *, dns1035: bool = False) -> Cause | None:
    if not isinstance(value, str) or not value:
        return ("FieldValueRequired", field, "Required value")
    if dns1035 and not _DNS_1035.match(value):
        return (
            "FieldValueInvalid",
            field,
            f'Invalid value: "{value}": a DNS-1035 label must consist of lower case '
            "alphanumeric characters or '-', start with an alphabetic character, and end "
            "with an alphanumeric character",
        )
    cause = check_name("", value, label=True)
    return None if cause is None else ("FieldValueInvalid", field, cause[2])


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
            raise _invalid(f"{self.kind}.{self.group}", name, causes)
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


class _CrdHooks:
    """Admission of CustomResourceDefinitions themselves."""

    def __init__(self, controller: CustomResources) -> None:
        self.controller = controller

    def admit(
        self, obj: dict[str, Any], old: dict[str, Any] | None, field_validation: str | None
    ) -> list[str]:
        name = obj["metadata"].get("name", "")
        spec = obj.setdefault("spec", {})
        names = spec.setdefault("names", {})
        if isinstance(names.get("kind"), str):
            names.setdefault("listKind", f"{names['kind']}List")
            names.setdefault("singular", names["kind"].lower())
        spec.setdefault("conversion", {"strategy": "None"})
        causes = self._causes(obj, old)
        if causes:
            raise _invalid(f"CustomResourceDefinition.{APIEXTENSIONS_GROUP}", name, causes)
        if old is None:
            finalizers = obj["metadata"].setdefault("finalizers", [])
            if CLEANUP_FINALIZER not in finalizers:
                finalizers.append(CLEANUP_FINALIZER)
            obj["status"] = _established_status(obj)
        else:  # names may grow (short names, categories): accepted at once
            obj.setdefault("status", {})["acceptedNames"] = _established_status(obj)[
                "acceptedNames"
            ]
        return []

    def generation_changed(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        return bool(old.get("spec") != new.get("spec"))

    def _causes(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
        spec, meta = obj["spec"], obj["metadata"]
        names, group = spec.get("names") or {}, spec.get("group")
        causes: list[Cause] = []
        if not isinstance(group, str) or "." not in group:
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.group",
                    f"Invalid value: {json.dumps(group)}: should be a domain with at least one dot",
                )
            )
        elif group in BUILT_IN_GROUPS:
            causes.append(
                (
                    "FieldValueForbidden",
                    "spec.group",
                    f'Forbidden: "{group}" is served by the API server itself',
                )
            )
        elif (
            group.endswith((".k8s.io", ".kubernetes.io")) or group in ("k8s.io", "kubernetes.io")
        ) and not (meta.get("annotations") or {}).get(APPROVAL_ANNOTATION):
            causes.append(
                (
                    "FieldValueRequired",
                    f"metadata.annotations[{APPROVAL_ANNOTATION}]",
                    "Required value: protected groups must have approval annotation "
                    f'"{APPROVAL_ANNOTATION}", see https://github.com/kubernetes/enhancements/'
                    "pull/1111",
                )
            )
        for field in ("plural", "singular"):
            if (cause := _label_cause(f"spec.names.{field}", names.get(field))) is not None:
                causes.append(cause)
        for field in ("kind", "listKind"):
            value = names.get(field)
            if not isinstance(value, str) or not value:
                causes.append(("FieldValueRequired", f"spec.names.{field}", "Required value"))
            elif cause := _label_cause(f"spec.names.{field}", value.lower(), dns1035=True):
                causes.append(cause)
        if names.get("kind") and names.get("kind") == names.get("listKind"):
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.names.listKind",
                    f'Invalid value: "{names["listKind"]}": kind and listKind may not be the same',
                )
            )
        for index, short in enumerate(names.get("shortNames") or []):
            if (cause := _label_cause(f"spec.names.shortNames[{index}]", short)) is not None:
                causes.append(cause)
        expected = f"{names.get('plural')}.{group}"
        if meta.get("name") != expected:
            causes.append(
                (
                    "FieldValueInvalid",
                    "metadata.name",
                    f'Invalid value: "{meta.get("name")}": must be spec.names.plural+"."+'
                    "spec.group",
                )
            )
        if spec.get("scope") not in ("Namespaced", "Cluster"):
            causes.append(
                (
                    "FieldValueNotSupported",
                    "spec.scope",
                    f"Unsupported value: {json.dumps(spec.get('scope'))}: supported values: "
                    '"Cluster", "Namespaced"',
                )
            )
        if spec.get("preserveUnknownFields"):
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.preserveUnknownFields",
                    "Invalid value: true: must be false",
                )
            )
        if (spec.get("conversion") or {}).get("strategy", "None") != "None":
            causes.append(
                (
                    "FieldValueForbidden",
                    "spec.conversion.strategy",
                    "Forbidden: the emulator does not model conversion webhooks",
                )
            )
        causes.extend(self._version_causes(spec.get("versions")))
        causes.extend(self._conflicts(obj))
        if old is not None:
            causes.extend(_immutable_causes(old["spec"], spec))
        return causes

    def _version_causes(self, versions: Any) -> list[Cause]:
        if not isinstance(versions, list) or not versions:
            return [
                (
                    "FieldValueRequired",
                    "spec.versions",
                    "Required value: must have exactly one version",
                )
            ]
        if len(versions) > 1:
            return [
                (
                    "FieldValueForbidden",
                    "spec.versions",
                    "Forbidden: the emulator serves one version per CRD (conversion between "
                    "versions is not modelled)",
                )
            ]
        version, where = versions[0], "spec.versions[0]"
        causes: list[Cause] = []
        if (cause := _label_cause(f"{where}.name", version.get("name"), dns1035=True)) is not None:
            causes.append(cause)
        if not version.get("storage") or not version.get("served"):
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.versions",
                    "Invalid value: must have exactly one version marked as storage version, "
                    "and the emulator's one version must be served",
                )
            )
        subresources = version.get("subresources") or {}
        for sub in subresources:
            if sub != "status":
                causes.append(
                    (
                        "FieldValueForbidden",
                        f"{where}.subresources.{sub}",
                        f"Forbidden: the emulator does not model the {sub} subresource",
                    )
                )
        if version.get("selectableFields"):
            causes.append(
                (
                    "FieldValueForbidden",
                    f"{where}.selectableFields",
                    "Forbidden: the emulator does not model selectable fields",
                )
            )
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        causes.extend(schema_causes(schema, f"{where}.schema.openAPIV3Schema"))
        for index, column in enumerate(version.get("additionalPrinterColumns") or []):
            causes.extend(_column_causes(column, f"{where}.additionalPrinterColumns[{index}]"))
        return causes

    def _conflicts(self, obj: dict[str, Any]) -> list[Cause]:
        """Another CRD of the group using this kind or a short name: refused (stricter than a
        cluster, which accepts the CRD but leaves it without ``NamesAccepted``)."""
        spec, causes = obj["spec"], []
        names = spec.get("names") or {}
        for other in self.controller.store.objects[CRDS].values():
            if other["metadata"]["name"] == obj["metadata"]["name"]:
                continue
            other_spec = other.get("spec") or {}
            if other_spec.get("group") != spec.get("group"):
                continue
            other_names = other_spec.get("names") or {}
            if other_names.get("kind") == names.get("kind"):
                causes.append(
                    (
                        "FieldValueInvalid",
                        "spec.names.kind",
                        f'Invalid value: "{names.get("kind")}": is already in use',
                    )
                )
            taken = set(other_names.get("shortNames") or []) | {other_names.get("plural")}
            for short in names.get("shortNames") or []:
                if short in taken:
                    causes.append(
                        (
                            "FieldValueInvalid",
                            "spec.names.shortNames",
                            f'Invalid value: "{short}": is already in use',
                        )
                    )
        return causes


def _column_causes(column: Any, where: str) -> list[Cause]:
    if not isinstance(column, dict):
        return [("FieldValueInvalid", where, "Invalid value: must be an object")]
    causes: list[Cause] = []
    if not column.get("name"):
        causes.append(("FieldValueRequired", f"{where}.name", "Required value"))
    if column.get("type") not in _COLUMN_TYPES:
        supported = ", ".join(f'"{t}"' for t in _COLUMN_TYPES)
        causes.append(
            (
                "FieldValueNotSupported",
                f"{where}.type",
                f"Unsupported value: {json.dumps(column.get('type'))}: supported values: "
                + supported,
            )
        )
    if column.get("format") and column["format"] not in _COLUMN_FORMATS:
        supported = ", ".join(f'"{t}"' for t in _COLUMN_FORMATS)
        causes.append(
            (
                "FieldValueNotSupported",
                f"{where}.format",
                f"Unsupported value: {json.dumps(column['format'])}: supported values: {supported}",
            )
        )
    if (problem := check_json_path(column.get("jsonPath"))) is not None:
        causes.append(
            (
                "FieldValueInvalid",
                f"{where}.jsonPath",
                f"Invalid value: {json.dumps(column.get('jsonPath'))}: {problem}",
            )
        )
    return causes


def _immutable_causes(old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    checks: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("spec.group", lambda s: s.get("group")),
        ("spec.scope", lambda s: s.get("scope")),
        ("spec.names.kind", lambda s: (s.get("names") or {}).get("kind")),
        ("spec.names.listKind", lambda s: (s.get("names") or {}).get("listKind")),
        ("spec.versions[0].name", lambda s: ((s.get("versions") or [{}])[0]).get("name")),
    ]
    for field, read in checks:
        if read(old) != read(new):
            causes.append(
                (
                    "FieldValueInvalid",
                    field,
                    f"Invalid value: {json.dumps(read(new))}: field is immutable",
                )
            )
    return causes


def _established_status(crd: dict[str, Any]) -> dict[str, Any]:
    spec = crd["spec"]
    names = {
        k: v
        for k, v in spec["names"].items()
        if k in ("plural", "singular", "kind", "listKind", "shortNames", "categories")
    }
    now = crd["metadata"]["creationTimestamp"]
    return {
        "acceptedNames": names,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now,
            },
        ],
        "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
    }


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
                hooks=_CrdHooks(self),
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
