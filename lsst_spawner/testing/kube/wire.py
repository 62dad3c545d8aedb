"""Request decoding and response shaping: content types, dryRun, discovery entries.

Kept apart from the routing in :mod:`.api` so each rule reads on its own: which body
types are decoded (JSON, YAML, Kubernetes protobuf), which ``dryRun`` values are taken,
how a resource is listed in discovery, when an answer is a Table, and which OpenAPI
document an Accept header gets.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml
from aiohttp import web

from . import table
from .openapi import OPENAPI_V2_PROTOBUF, openapi_v2, openapi_v3
from .protobuf import KUBE_PROTOBUF, decode_object
from .resources import ResourceType
from .status import ApiError

__all__ = [
    "api_resource",
    "dry_run_requested",
    "json_response",
    "objects_response",
    "openapi_response",
    "read_body",
    "server_version",
]

_JSON = "application/json"
_YAML = "application/yaml"
_dumps = json.JSONEncoder(separators=(",", ":")).encode
_OPTIONS_KIND = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions"}


def server_version(kubernetes_version: str) -> dict[str, str]:
    """``/version`` for an emulator of ``kubernetes_version`` (``1.37``)."""
    major, minor = kubernetes_version.split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{major}.{minor}.0-lsst-spawner-emulator",
        "platform": "linux/amd64",
    }


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_dumps(body).encode(), status=status, content_type=_JSON, headers=headers
    )


async def read_body(request: web.Request, *, patch: bool = False) -> Any:
    """The request body, decoded by its Content-Type as the API server's serializers do.

    JSON (also when no type is given), YAML and Kubernetes protobuf are accepted;
    anything else is a 415, as from an API server. A patch body is JSON whatever
    its patch type (checked beforehand by :func:`check_patch_type`).
    """
    raw = await request.read()
    if not raw:
        return None
    media = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if patch:
        media = _JSON
    if media == KUBE_PROTOBUF:
        return decode_object(raw)
    if media not in ("", _JSON, _YAML):
        raise ApiError(
            415,
            "the body of the request was in an unknown format - accepted media types "
            f"include: {_JSON}, {_YAML}, {KUBE_PROTOBUF}",
        )
    try:
        return yaml.safe_load(raw) if media == _YAML else json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        what = "YAML" if media == _YAML else "JSON"
        raise ApiError.bad_request(f"the request body is not valid {what}: {exc}") from None


def dry_run_requested(values: list[str], verb: str) -> bool:
    """``dryRun=All`` (the only value an API server takes); 422 for any other value."""
    if not values:
        return False
    if all(v == "All" for v in values):
        return True
    kind = _OPTIONS_KIND.get(verb, "DeleteOptions")
    shown = ", ".join(f'"{v}"' for v in values)
    raise ApiError.invalid(
        f"{kind}.meta.k8s.io",
        "",
        [
            (
                "FieldValueNotSupported",
                "dryRun",
                f'Unsupported value: []string{{{shown}}}: supported values: "All"',
            )
        ],
    )


def api_resource(rtype: ResourceType) -> list[dict[str, Any]]:
    """A resource's entries in ``/api/v1`` discovery: itself, then its subresources."""
    entry: dict[str, Any] = {
        "name": rtype.resource_name,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    subs = [
        {
            "name": f"{rtype.resource_name}/{sub}",
            "singularName": "",
            "namespaced": rtype.namespaced,
            "kind": rtype.kind,
            "verbs": list(verbs),
        }
        for sub, verbs in rtype.subresources
    ]
    return [entry, *subs]


def openapi_response(
    request: web.Request,
    kubernetes_version: str,
    groups: dict[str, bytes] | None = None,
) -> web.Response | None:
    """``/openapi/v2`` (protobuf or JSON by Accept) and ``/openapi/v3[/api/v1]``.

    ``groups`` are more v3 documents by group-version (``apis/example.test/v1``), listed
    in the ``/openapi/v3`` index with their hashes: the custom resources' schemas.
    """
    path = request.path.rstrip("/")
    groups = groups or {}
    if path == "/openapi/v3" and groups:
        index = json.loads(openapi_v3(kubernetes_version)[0])
        for group_version, document in groups.items():
            digest = hashlib.sha512(document).hexdigest().upper()
            url = f"/openapi/v3/{group_version}?hash={digest}"
            index["paths"][group_version] = {"serverRelativeURL": url}
        return json_response(index)
    if path.startswith("/openapi/v3/") and path[len("/openapi/v3/") :] in groups:
        return web.Response(body=groups[path[len("/openapi/v3/") :]], content_type=_JSON)
    if path == "/openapi/v2":
        as_json, as_protobuf = openapi_v2(kubernetes_version)
        if OPENAPI_V2_PROTOBUF in request.headers.get("Accept", ""):
            # Asked for with "@v1.0", served as ".v1.0": Go's mime parser rejects the "@".
            served_as = OPENAPI_V2_PROTOBUF.replace("@", ".")
            return web.Response(body=as_protobuf, content_type=served_as)
        return web.Response(body=as_json, content_type=_JSON)
    if path in ("/openapi/v3", "/openapi/v3/api/v1"):
        index, document = openapi_v3(kubernetes_version)
        body = index if path == "/openapi/v3" else document
        return web.Response(body=body, content_type=_JSON)
    return None


def objects_response(
    request: web.Request, rtype: ResourceType, obj: dict[str, Any], status: int = 200
) -> web.Response:
    """A get/list/write answer, as a Table when the client's Accept asks for one."""
    version = table.negotiate(request.headers.get("Accept", ""))
    if version is None or (rtype.printer is None and rtype.plural not in table.PRINTED):
        return json_response(obj, status)
    items = obj["items"] if obj.get("kind", "").endswith("List") else [obj]
    rv = obj["metadata"].get("resourceVersion")
    body = table.to_table(
        rtype.plural,
        items,
        rv,
        version=version,
        include_object=request.query.get("includeObject"),
        printer=rtype.printer,
    )
    return json_response(body, status)
