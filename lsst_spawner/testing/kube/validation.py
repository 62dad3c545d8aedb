"""Admission checks: the Kubernetes OpenAPI schema plus the rules it cannot express.

The schema comes from ``kubernetes-validate`` (offline copies of the official
OpenAPI documents). Validators are compiled once per kind and version, so a
check costs under a millisecond instead of the ~7 ms ``kubernetes_validate.validate``
spends reloading the schema on every call.

Unknown fields follow the API server's ``fieldValidation`` parameter: ``Strict``
rejects them (400), ``Warn`` (the server default) drops them and returns a
``Warning`` header, ``Ignore`` drops them silently.
"""

from __future__ import annotations

import base64
import binascii
import functools
import importlib.resources
import json
import re
from typing import Any

import jsonschema
from referencing import Registry, Resource

from .openapi import newest_kubernetes_version
from .rbac import rbac_object_causes
from .status import ApiError

__all__ = ["Validator", "check_name", "check_path_segment_name"]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def check_name(kind: str, name: str, *, label: bool) -> tuple[str, str, str] | None:
    """A cause triple if ``name`` is not a valid DNS label/subdomain, else None."""
    limit, pattern = (63, _DNS_LABEL) if label else (253, _DNS_SUBDOMAIN)
    if len(name) > limit:
        return (
            "FieldValueInvalid",
            "metadata.name",
            f"Invalid value: {name!r}: must be no more than {limit} characters",
        )
    if not pattern.match(name):
        what = "RFC 1123 label" if label else "RFC 1123 subdomain"
        return (
            "FieldValueInvalid",
            "metadata.name",
            f"Invalid value: {name!r}: a lowercase "
            f"{what} must consist of lower case alphanumeric characters, '-' or '.'",
        )
    return None


def check_path_segment_name(name: str) -> tuple[str, str, str] | None:
    """A cause triple if ``name`` cannot be a path segment (the rule for RBAC names)."""
    if name in (".", ".."):
        return (
            "FieldValueInvalid",
            "metadata.name",
            f"Invalid value: {name!r}: may not be {name!r}",
        )
    for bad in ("/", "%"):
        if bad in name:
            return (
                "FieldValueInvalid",
                "metadata.name",
                f"Invalid value: {name!r}: may not contain {bad!r}",
            )
    return None


@functools.cache
def _compiled(kind: str, version: str) -> jsonschema.protocols.Validator | None:
    try:
        major, minor = (int(p) for p in version.split(".")[:2])
    except ValueError as exc:
        raise ValueError(f"kubernetes version must look like 1.30, not {version!r}") from exc
    root = importlib.resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
    available = sorted(
        (tuple(int(p) for p in d.name[1:].split("-")[0].split(".")[:2]), d.name)
        for d in root.iterdir()
        if d.name.endswith("-local-strict")
    )
    usable = [name for ver, name in available if ver <= (major, minor)]
    if not usable:
        raise ValueError(f"kubernetes-validate has no schema for Kubernetes {version}")
    directory = root.joinpath(usable[-1])
    schema_file = directory.joinpath(f"{kind.lower()}-v1.json")
    if not schema_file.is_file():
        return None
    schema = json.loads(schema_file.read_text())
    definitions = json.loads(directory.joinpath("_definitions.json").read_text())
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _field_path(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Validator:
    """Checks an object of a core v1 kind before it is stored."""

    def __init__(self, kubernetes_version: str | None = None, *, schema: bool = True) -> None:
        self.kubernetes_version = kubernetes_version or newest_kubernetes_version()
        self.schema = schema
        if schema:
            _compiled("Pod", self.kubernetes_version)  # fail early on an unsupported version

    def check(self, obj: dict[str, Any], field_validation: str | None) -> list[str]:
        """Raise ApiError for an invalid object; return warnings; drop unknown fields."""
        kind = obj.get("kind", "")
        name = obj.get("metadata", {}).get("name", "")
        causes: list[tuple[str, str, str]] = []
        unknown: list[tuple[dict[str, Any], str, str]] = []
        # Schema files are named "<kind>-v1.json" (core) or "<kind>-<group's first label>-v1.json".
        api_version = str(obj.get("apiVersion", "v1"))
        schema_kind = kind if "/" not in api_version else f"{kind}-{api_version.split('.')[0]}"
        validator = _compiled(schema_kind, self.kubernetes_version) if self.schema else None
        if validator is not None:
            for error in validator.iter_errors(obj):
                where = _field_path(error.absolute_path)
                if error.validator == "additionalProperties" and isinstance(error.instance, dict):
                    known = set(error.schema.get("properties", {}))
                    for key in sorted(set(error.instance) - known):
                        unknown.append((error.instance, key, f"{where}.{key}" if where else key))
                    continue
                reason = (
                    "FieldValueRequired" if error.validator == "required" else ("FieldValueInvalid")
                )
                causes.append((reason, where or "<root>", error.message))
        causes.extend(self._semantic(kind, obj))
        causes.extend(rbac_object_causes(obj))
        if causes:
            # Kinds outside the core group are named with it ("Role.rbac.authorization.k8s.io").
            group = api_version.split("/")[0] if "/" in api_version else ""
            raise ApiError.invalid(f"{kind}.{group}" if group else kind, name, causes)
        if unknown and field_validation == "Strict":
            fields = ", ".join(f'unknown field "{path}"' for _, _, path in unknown)
            raise ApiError.bad_request(
                f'{kind} in version "v1" cannot be handled as a {kind}: strict decoding error: '
                f"{fields}"
            )
        for container, key, _ in unknown:
            container.pop(key, None)
        if field_validation == "Ignore":
            return []
        return [f'unknown field "{path}"' for _, _, path in unknown]

    def check_metadata(self, obj: dict[str, Any]) -> tuple[list[tuple[str, str, str]], list[str]]:
        """A custom resource's ``metadata`` against ObjectMeta: (causes, unknown fields dropped)."""
        meta = obj.get("metadata")
        validator = _compiled("ObjectMeta-meta", self.kubernetes_version) if self.schema else None
        if validator is None or not isinstance(meta, dict):
            return [], []
        causes, unknown = [], []
        for error in validator.iter_errors(meta):
            where = _field_path(["metadata", *error.absolute_path])
            if error.validator == "additionalProperties" and isinstance(error.instance, dict):
                for key in sorted(set(error.instance) - set(error.schema.get("properties", {}))):
                    error.instance.pop(key, None)
                    unknown.append(f"{where[len('metadata.') :]}.{key}".lstrip("."))
                continue
            reason = "FieldValueRequired" if error.validator == "required" else "FieldValueInvalid"
            causes.append((reason, where, error.message))
        return causes, unknown

    def _semantic(self, kind: str, obj: dict[str, Any]) -> list[tuple[str, str, str]]:
        causes: list[tuple[str, str, str]] = []
        if kind == "Pod":
            spec = obj.get("spec") or {}
            for group in ("initContainers", "containers"):
                for index, container in enumerate(spec.get(group) or []):
                    if not container.get("image"):
                        causes.append(
                            ("FieldValueRequired", f"spec.{group}[{index}].image", "Required value")
                        )
            names = [c.get("name") for c in spec.get("containers") or []]
            if len(names) != len(set(names)):
                causes.append(("FieldValueDuplicate", "spec.containers", "Duplicate value"))
            causes += _init_container_causes(spec, set(names))
            volumes = {v.get("name") for v in spec.get("volumes") or []}
            for group in ("initContainers", "containers"):
                for index, container in enumerate(spec.get(group) or []):
                    for n, mount in enumerate(container.get("volumeMounts") or []):
                        if mount.get("name") not in volumes:
                            causes.append(
                                (
                                    "FieldValueNotFound",
                                    f"spec.{group}[{index}].volumeMounts[{n}].name",
                                    f"Not found: {mount.get('name')!r}",
                                )
                            )
        elif kind in ("ConfigMap", "Secret"):
            for field in ("data", "binaryData", "stringData"):
                for key in obj.get(field) or {}:
                    if not _CONFIG_KEY.match(key):
                        causes.append(
                            (
                                "FieldValueInvalid",
                                f"{field}[{key}]",
                                f"Invalid value: {key!r}: a valid config key must consist "
                                "of alphanumeric characters, '-', '_' or '.'",
                            )
                        )
            if kind == "Secret":
                for key, value in (obj.get("data") or {}).items():
                    try:
                        base64.b64decode(value, validate=True)
                    except (binascii.Error, ValueError, TypeError):
                        causes.append(
                            (
                                "FieldValueInvalid",
                                f"data[{key}]",
                                "Invalid value: illegal base64 data",
                            )
                        )
        return causes


def _init_container_causes(spec: dict[str, Any], app_names: set[Any]) -> list[tuple[str, str, str]]:
    """As the API server's validateInitContainers: names unique among all containers, and
    no probes or lifecycle hooks (sidecars, restartPolicy Always, are not modelled)."""
    causes: list[tuple[str, str, str]] = []
    seen = set(app_names)
    for index, container in enumerate(spec.get("initContainers") or []):
        where = f"spec.initContainers[{index}]"
        name = container.get("name")
        if name in seen:
            causes.append(("FieldValueDuplicate", f"{where}.name", f'Duplicate value: "{name}"'))
        seen.add(name)
        if container.get("restartPolicy") is not None:
            causes.append(
                (
                    "FieldValueForbidden",
                    f"{where}.restartPolicy",
                    "Forbidden: sidecar init containers are not supported by this emulator",
                )
            )
        for field in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
            if field in container:
                causes.append(
                    (
                        "FieldValueForbidden",
                        f"{where}.{field}",
                        "Forbidden: may not be set for init containers without "
                        "restartPolicy=Always",
                    )
                )
    return causes
