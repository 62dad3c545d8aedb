"""CustomResourceDefinitions generated from the pydantic models.

Kubernetes wants a *structural* ``openAPIV3Schema``: every node has a ``type``
(or ``x-kubernetes-preserve-unknown-fields`` / ``x-kubernetes-int-or-string``),
no ``$ref``, no ``anyOf`` giving the type, no ``null`` defaults. Pydantic's JSON
Schema is turned into that here: references are inlined, ``X | None`` becomes
``nullable: true``, free-form dicts keep their unknown fields. ``LabTemplate``'s
``spec.settings`` takes its schema from the traits (:mod:`lsst_spawner.crd.settings`).
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from .models import GROUP, VERSION, LabServer, LabTemplate
from .settings import settings_schema

__all__ = ["build_crds", "lab_server_crd", "lab_template_crd", "structural_schema"]

_KEPT = {
    "type",
    "properties",
    "items",
    "required",
    "enum",
    "format",
    "description",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "maxItems",
    "pattern",
    "additionalProperties",
    "default",
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
}


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural ``openAPIV3Schema`` of ``model`` (wire names, every ``$ref`` inlined)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    definitions = raw.pop("$defs", {})
    return _convert(raw, definitions)


def _convert(node: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = definitions[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, definitions)
    node = dict(node)
    if "anyOf" in node:
        options = node.pop("anyOf")
        kept = [option for option in options if option.get("type") != "null"]
        if len(kept) != 1:
            raise ValueError(f"cannot make a structural schema of anyOf {options}")
        inner = _convert(kept[0], definitions)
        inner.update({k: v for k, v in node.items() if k in ("description", "default")})
        if len(kept) < len(options):
            inner["nullable"] = True
        if inner.get("default", 0) is None:
            del inner["default"]
        return inner
    if "const" in node:
        node["enum"] = [node.pop("const")]
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: _convert(sub, definitions) for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, definitions)
        elif key == "additionalProperties":
            # Structural schemas allow no boolean here; pydantic's ``false`` (extra="forbid")
            # is the API server's pruning of unknown fields.
            if isinstance(value, dict) and value:
                out[key] = _convert(value, definitions)
        elif key in _KEPT:
            out[key] = copy.deepcopy(value)
    if (
        out.get("type") == "object"
        and "properties" not in out
        and "additionalProperties" not in out
    ):
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "default" in out and (out["default"] is None or out["default"] == {}):
        del out["default"]
    if "type" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _crd(
    kind: str,
    plural: str,
    short_names: tuple[str, ...],
    schema: dict[str, Any],
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "lsst-spawner"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": list(short_names),
                "categories": ["lsst-spawner"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


def _resource_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = structural_schema(model)
    properties = schema["properties"]
    properties["metadata"] = {"type": "object"}
    for name in ("apiVersion", "kind"):
        properties[name] = {"type": "string"}
    schema["required"] = [name for name in schema.get("required", []) if name == "spec"]
    return schema


def lab_server_crd() -> dict[str, Any]:
    """The LabServer CRD: spec from :class:`~lsst_spawner.crd.models.LabServerSpec`.

    ``spec`` keeps unknown fields so that the operator sees, rejects and reports
    a resource carrying fields it does not allow (pod fields a creator tried to
    add), instead of the API server pruning them silently.
    """
    schema = _resource_schema(LabServer)
    schema["properties"]["spec"]["x-kubernetes-preserve-unknown-fields"] = True
    # kopf keeps its handlers' progress under status too (besides annotations): kept.
    schema["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] = True
    columns = [
        {"name": "User", "type": "string", "jsonPath": ".spec.user.name"},
        {"name": "Server", "type": "string", "jsonPath": ".spec.user.server"},
        {"name": "Image", "type": "string", "jsonPath": ".spec.image"},
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd("LabServer", LabServer.plural, LabServer.short_names, schema, columns)


def lab_template_crd() -> dict[str, Any]:
    """The LabTemplate CRD: ``spec.settings`` typed from the traits, ``spec.podTemplate`` free."""
    schema = _resource_schema(LabTemplate)
    spec = schema["properties"]["spec"]
    spec["properties"]["settings"] = settings_schema()
    schema["properties"]["status"] = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    columns = [
        {
            "name": "Image source",
            "type": "string",
            "jsonPath": ".spec.settings.image_source",
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd("LabTemplate", LabTemplate.plural, LabTemplate.short_names, schema, columns)


def build_crds() -> list[dict[str, Any]]:
    """Both CRDs, in the order to apply them."""
    return [lab_template_crd(), lab_server_crd()]
