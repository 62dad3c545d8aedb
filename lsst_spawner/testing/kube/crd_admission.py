"""Admission of CustomResourceDefinitions, as apiextensions-apiserver validates them.

Names (``<plural>.<group>``, a group with a dot and not one the emulator serves itself,
``*.k8s.io`` only with the approval annotation, DNS labels, kinds), scope, one served
storage version (conversion is not modelled), no ``scale`` subresource or selectable
fields, a structural schema (:mod:`.crd_schema`), printer columns, immutable fields, and
names another CRD of the group holds. An accepted CRD is Established at once and gets the
cleanup finalizer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .crd_schema import Cause, schema_causes
from .crd_table import check_json_path
from .status import ApiError
from .validation import check_name

if TYPE_CHECKING:
    from .store import ObjectStore

__all__ = ["BUILT_IN_GROUPS", "CLEANUP_FINALIZER", "CRDS", "CrdHooks", "invalid"]

APIEXTENSIONS_GROUP = "apiextensions.k8s.io"
CRDS = "customresourcedefinitions"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
APPROVAL_ANNOTATION = "api-approved.kubernetes.io"
_COLUMN_TYPES = ("integer", "number", "string", "boolean", "date")
_COLUMN_FORMATS = ("int32", "int64", "float", "double", "byte", "date", "date-time", "password")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
#: Groups the emulator serves itself: a CRD may not define kinds in them.
BUILT_IN_GROUPS = frozenset(
    {
        "",
        APIEXTENSIONS_GROUP,
        "coordination.k8s.io",
        "rbac.authorization.k8s.io",
        "authorization.k8s.io",
        "networking.k8s.io",
    }
)


def invalid(kind: str, name: str, causes: list[Cause]) -> ApiError:
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


class CrdHooks:
    """Admission of CustomResourceDefinitions themselves."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

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
            raise invalid(f"CustomResourceDefinition.{APIEXTENSIONS_GROUP}", name, causes)
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
        for other in self.store.objects[CRDS].values():
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
