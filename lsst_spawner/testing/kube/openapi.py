"""``/openapi/v2`` and ``/openapi/v3`` built from ``kubernetes-validate``'s schemas.

``kubernetes-validate`` ships each Kubernetes release's OpenAPI definitions rewritten
as JSON Schema (``type: [t, "null"]``, ``$ref: #/$defs/...``, ``oneOf`` for
int-or-string). Turning them back gives the definitions an API server serves, with
their ``x-kubernetes-*`` extensions (group-version-kind, patch strategy, list types),
which is what ``kubectl explain``, client-side validation and the field-validation
check need. The paths are written for the resources the emulator serves, each
operation with its group-version-kind and the query parameters the emulator honours,
so kubectl sees that ``fieldValidation`` and ``dryRun`` are supported.

kubectl up to 1.28 reads v2 (protobuf only, see :mod:`.protobuf`); later ones read v3
(JSON, one document per group-version, named in ``/openapi/v3`` with a hash).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.resources
import json
import re
from typing import Any

from .protobuf import encode_openapi_v2
from .resources import RESOURCES, ResourceType

__all__ = [
    "OPENAPI_V2_PROTOBUF",
    "custom_resources_v3",
    "newest_kubernetes_version",
    "openapi_v2",
    "openapi_v3",
]

OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
_CORE = "io.k8s.api.core.v1."
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_V3_REFS = "#/components/schemas/"
_SCHEMA_DIR = re.compile(r"^v(\d+)\.(\d+)\.\d+-local$")


def _schema_root() -> Any:
    return importlib.resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")


@functools.cache
def _versions() -> tuple[tuple[tuple[int, int], str], ...]:
    found = []
    for entry in _schema_root().iterdir():
        if match := _SCHEMA_DIR.match(entry.name):
            found.append(((int(match[1]), int(match[2])), entry.name))
    return tuple(sorted(found))


def newest_kubernetes_version() -> str:
    """The newest Kubernetes release kubernetes-validate has schemas for, e.g. ``1.37``."""
    (major, minor), _ = _versions()[-1]
    return f"{major}.{minor}"


@functools.cache
def _definitions(version: str) -> dict[str, Any]:
    major, minor = (int(p) for p in version.split(".")[:2])
    usable = [name for ver, name in _versions() if ver <= (major, minor)]
    if not usable:
        raise ValueError(f"kubernetes-validate has no schema for Kubernetes {version}")
    text = _schema_root().joinpath(usable[-1]).joinpath("_definitions.json").read_text()
    defs: dict[str, Any] = json.loads(text)["$defs"]
    return defs


def _convert(node: Any, ref_prefix: str, key: str = "") -> Any:
    """One JSON Schema node back to its OpenAPI form."""
    if isinstance(node, list):
        return [_convert(item, ref_prefix) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    alternatives = node.get("oneOf")
    if alternatives is not None:
        # int-or-string and Quantity: an OpenAPI string with the k8s format
        alternative_types = {t for alt in alternatives for t in _types(alt)}
        out["type"] = "string"
        if "integer" in alternative_types:
            out["format"] = "int-or-string"
    for name, value in node.items():
        if name == "oneOf":
            continue
        if name == "$ref":
            out["$ref"] = ref_prefix + value.rsplit("/", 1)[-1]
        elif name == "type":
            named = [t for t in _types(node) if t != "null"]
            if named:
                out["type"] = named[0]
        elif name == "enum" and key in ("apiVersion", "kind"):
            continue  # added by the JSON Schema conversion, not in the API's documents
        elif name == "properties":
            out["properties"] = {k: _convert(v, ref_prefix, k) for k, v in value.items()}
        else:
            out[name] = _convert(value, ref_prefix)
    if ref_prefix == _V3_REFS and "$ref" in out and len(out) > 1:
        # v3 documents wrap a reference with siblings (a description) in allOf, and
        # kubectl explain names the field's type from it ("<IntOrString>")
        out["allOf"] = [{"$ref": out.pop("$ref")}]
    return out


def _types(node: Any) -> list[str]:
    value = node.get("type", []) if isinstance(node, dict) else []
    return [value] if isinstance(value, str) else list(value)


def _closure(defs: dict[str, Any], roots: list[str]) -> list[str]:
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        pending.extend(re.findall(r'"\$ref": "#/\$defs/([^"]+)"', json.dumps(defs[name])))
    return sorted(seen)


def _gvk(rtype: ResourceType, suffix: str = "") -> dict[str, str]:
    group, _, version = rtype.api_version.rpartition("/")
    return {"group": group, "version": version, "kind": rtype.kind + suffix}


def _tag(rtype: ResourceType) -> str:
    """``core_v1``, ``exampleTest_v1``: the operation tags of an API server's document."""
    camel = _camel(rtype)
    version = rtype.api_version.rpartition("/")[2]
    return f"{camel[0].lower()}{camel[1 : -len(version)]}_{version}"


def _camel(rtype: ResourceType) -> str:
    group, _, version = rtype.api_version.rpartition("/")
    words = [w for w in re.split(r"[.-]", group) if w] or ["core"]
    return "".join(w.capitalize() for w in words) + version.capitalize()


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "type": "string", "description": description}


_DRY_RUN = _query(
    "dryRun",
    "When present, indicates that modifications should not be persisted. Valid values: All.",
)
_FIELD_MANAGER = _query("fieldManager", "A name associated with the actor making the changes.")
_FIELD_VALIDATION = _query(
    "fieldValidation",
    "How the server handles unknown or duplicate fields: Ignore, Warn (the default) or Strict.",
)
_LIST_QUERY = [
    _query("labelSelector", "A selector to restrict the list of returned objects by labels."),
    _query("fieldSelector", "A selector to restrict the list of returned objects by fields."),
    _query("resourceVersion", "The resource version to list or watch from."),
    _query("timeoutSeconds", "Timeout for the list/watch call."),
    _query("watch", "Watch for changes to the described resources."),
]
_WRITE_QUERY = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
_PATCH_TYPES = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
]


def _operation(
    rtype: ResourceType, action: str, method: str, ref: str, params: list[dict[str, Any]]
) -> dict[str, Any]:
    kind = rtype.kind
    patch_types = _PATCH_TYPES if rtype.strategic_merge else _PATCH_TYPES[:2]
    op = {
        "description": f"{action} {kind}",
        "operationId": f"{method}{_camel(rtype)}{kind}",
        "consumes": patch_types if action == "patch" else ["*/*"],
        "produces": ["application/json"],
        "parameters": params,
        "responses": {"200": {"description": "OK", "schema": {"$ref": ref}}},
        "tags": [_tag(rtype)],
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rtype),
    }
    return op


def _paths(
    prefix: str,
    rtypes: Any = None,
    root: str = "/api/v1",
    name_of: Any = lambda rtype, suffix="": _CORE + rtype.kind + suffix,
) -> dict[str, Any]:
    """Swagger-style path items for the resources (default: the core kinds) under ``root``."""
    paths: dict[str, Any] = {}
    status = prefix + _META + "Status"
    for rtype in RESOURCES.values() if rtypes is None else rtypes:
        ref = prefix + name_of(rtype)
        list_ref = prefix + name_of(rtype, "List")
        body = {"name": "body", "in": "body", "required": True, "schema": {"$ref": ref}}
        patch_body = {"name": "body", "in": "body", "required": True, "schema": {}}
        ns = "/namespaces/{namespace}" if rtype.namespaced else ""
        collection: dict[str, Any] = {
            "get": _operation(rtype, "list", "list", list_ref, _LIST_QUERY),
            "post": _operation(rtype, "post", "create", ref, [body, *_WRITE_QUERY]),
        }
        if "deletecollection" in rtype.verbs:
            collection["delete"] = _operation(
                rtype, "deletecollection", "deleteCollection", status, [*_LIST_QUERY, _DRY_RUN]
            )
        item: dict[str, Any] = {
            "get": _operation(rtype, "get", "read", ref, []),
            "put": _operation(rtype, "put", "replace", ref, [body, *_WRITE_QUERY]),
            "patch": _operation(rtype, "patch", "patch", ref, [patch_body, *_WRITE_QUERY]),
            "delete": _operation(rtype, "delete", "delete", status, [_DRY_RUN]),
        }
        path_params = [{"name": "name", "in": "path", "required": True, "type": "string"}]
        if rtype.namespaced:
            namespace = {"name": "namespace", "in": "path", "required": True, "type": "string"}
            collection["parameters"] = [namespace]
            path_params.append(namespace)
            paths[f"{root}/{rtype.resource_name}"] = {
                "get": _operation(rtype, "list", "listForAllNamespaces", list_ref, _LIST_QUERY)
            }
        item["parameters"] = path_params
        paths[f"{root}{ns}/{rtype.resource_name}"] = collection
        paths[f"{root}{ns}/{rtype.resource_name}/{{name}}"] = item
    return paths


def _roots() -> list[str]:
    kinds = [r.kind for r in RESOURCES.values()]
    return [_CORE + k for k in kinds] + [_CORE + k + "List" for k in kinds] + [_META + "Status"]


def _v2_json(version: str) -> dict[str, Any]:
    defs = _definitions(version)
    prefix = "#/definitions/"
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": f"v{version}.0"},
        "paths": _paths(prefix),
        "definitions": {n: _convert(defs[n], prefix) for n in _closure(defs, _roots())},
    }


@functools.cache
def openapi_v2(version: str) -> tuple[bytes, bytes]:
    """The Swagger 2.0 document for ``version``: (JSON, gnostic protobuf)."""
    doc = _v2_json(version)
    return json.dumps(doc, separators=(",", ":")).encode(), encode_openapi_v2(doc)


def _v3_operation(op: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in op.items() if k not in ("consumes", "produces", "parameters")}
    params = [p for p in op["parameters"] if p["in"] != "body"]
    out["parameters"] = [_v3_parameter(p) for p in params]
    body = next((p for p in op["parameters"] if p["in"] == "body"), None)
    if body is not None:
        media = op["consumes"] if op["consumes"] != ["*/*"] else ["application/json"]
        out["requestBody"] = {
            "required": True,
            "content": {m: {"schema": body["schema"]} for m in media},
        }
    out["responses"] = {
        code: {
            "description": r["description"],
            "content": {"application/json": {"schema": r["schema"]}},
        }
        for code, r in op["responses"].items()
    }
    return out


def _v3_parameter(param: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in param.items() if k != "type"}
    out["schema"] = {"type": param.get("type", "string"), "uniqueItems": True}
    return out


def _v3_paths(swagger_paths: dict[str, Any]) -> dict[str, Any]:
    paths = {}
    for path, item in swagger_paths.items():
        converted: dict[str, Any] = {}
        for method, value in item.items():
            if method == "parameters":
                converted["parameters"] = [_v3_parameter(p) for p in value]
            else:
                converted[method] = _v3_operation(copy.deepcopy(value))
        paths[path] = converted
    return paths


@functools.cache
def openapi_v3(version: str) -> tuple[bytes, bytes]:
    """(the ``/openapi/v3`` index, the ``api/v1`` document), both JSON."""
    defs = _definitions(version)
    prefix = _V3_REFS
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": f"v{version}.0"},
        "paths": _v3_paths(_paths(prefix)),
        "components": {"schemas": {n: _convert(defs[n], prefix) for n in _closure(defs, _roots())}},
    }
    document = json.dumps(doc, separators=(",", ":")).encode()
    digest = hashlib.sha512(document).hexdigest().upper()
    index = {"paths": {"api/v1": {"serverRelativeURL": f"/openapi/v3/api/v1?hash={digest}"}}}
    return json.dumps(index).encode(), document


_TYPE_META = {
    "apiVersion": {
        "type": "string",
        "description": "APIVersion defines the versioned schema of this representation of an "
        "object.",
    },
    "kind": {
        "type": "string",
        "description": "Kind is a string value representing the REST resource this object "
        "represents.",
    },
}


def custom_resources_v3(
    version: str, group_version: str, kinds: list[tuple[ResourceType, dict[str, Any]]]
) -> bytes:
    """The ``/openapi/v3/apis/<group>/<version>`` document of custom kinds and their schemas.

    As the API server publishes a CRD: the schema named ``<reversed group>.<version>.<Kind>``
    with ``x-kubernetes-group-version-kind``, ``apiVersion``/``kind``/``metadata`` added, a
    ``<Kind>List``, the paths with the operations and parameters the emulator honours.
    """
    defs = _definitions(version)
    group, _, gv_version = group_version.rpartition("/")

    def name_of(rtype: ResourceType, suffix: str = "") -> str:
        return ".".join(reversed(group.split("."))) + f".{gv_version}.{rtype.kind}{suffix}"

    meta_roots = [_META + "ObjectMeta", _META + "ListMeta", _META + "Status"]
    schemas = {n: _convert(defs[n], _V3_REFS) for n in _closure(defs, meta_roots)}
    for rtype, schema in kinds:
        shown = copy.deepcopy(schema)
        shown.setdefault("properties", {}).update(copy.deepcopy(_TYPE_META))
        shown["properties"]["metadata"] = {
            "description": "Standard object's metadata.",
            "allOf": [{"$ref": _V3_REFS + _META + "ObjectMeta"}],
        }
        shown["x-kubernetes-group-version-kind"] = [_gvk(rtype)]
        schemas[name_of(rtype)] = shown
        schemas[name_of(rtype, "List")] = {
            "description": f"{rtype.kind}List is a list of {rtype.kind}",
            "type": "object",
            "required": ["items"],
            "properties": {
                **copy.deepcopy(_TYPE_META),
                "items": {"type": "array", "items": {"$ref": _V3_REFS + name_of(rtype)}},
                "metadata": {"allOf": [{"$ref": _V3_REFS + _META + "ListMeta"}]},
            },
            "x-kubernetes-group-version-kind": [_gvk(rtype, "List")],
        }
    root = f"/apis/{group_version}"
    swagger = _paths(_V3_REFS, [r for r, _ in kinds], root, name_of)
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": _v3_paths(swagger),
        "components": {"schemas": schemas},
    }
    return json.dumps(doc, separators=(",", ":")).encode()
