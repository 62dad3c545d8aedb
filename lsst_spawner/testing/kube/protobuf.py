"""The protobuf wire format, for the two places kubectl speaks it.

- kubectl 1.32+ sends ``application/vnd.kubernetes.protobuf`` bodies for ``create
  configmap|secret|namespace``, and does not fall back to JSON when refused with a 415:
  :func:`decode_object` reads the Kubernetes envelope (``k8s\\0`` + ``runtime.Unknown``)
  and the ConfigMap, Secret and Namespace messages of ``k8s.io/api/core/v1/generated.proto``;
  ``kubectl auth can-i`` likewise sends its SelfSubjectAccessReview and
  SelfSubjectRulesReview (``k8s.io/api/authorization/v1``) as protobuf.
- kubectl fetches ``/openapi/v2`` as the gnostic ``openapi.v2.Document`` message only
  (``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``):
  :func:`encode_openapi_v2` writes it from the JSON document.

Only the fields those messages need are modelled; an unknown field number in a body is
skipped, as protobuf decoders do.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

from .status import ApiError

__all__ = ["KUBE_PROTOBUF", "decode_object", "encode_openapi_v2"]

KUBE_PROTOBUF = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

# -- wire primitives -------------------------------------------------------------------


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs: an int for varints, bytes for length-delimited."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
            yield number, value
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated length-delimited field")
            yield number, data[pos : pos + length]
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _str_field(number: int, value: str) -> bytes:
    return _bytes_field(number, value.encode()) if value else b""


def _bool_field(number: int, value: bool) -> bytes:
    return _varint(number << 3) + b"\x01" if value else b""


def _int_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value) if value else b""


# -- Kubernetes objects (decode) -----------------------------------------------------------


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise ValueError("expected a string")
    return value.decode()


def _map_entry(value: int | bytes) -> tuple[str, bytes]:
    if not isinstance(value, bytes):
        raise ValueError("expected a map entry")
    key, item = "", b""
    for number, part in _fields(value):
        if number == 1:
            key = _text(part)
        elif number == 2 and isinstance(part, bytes):
            item = part
    return key, item


def _owner_reference(value: int | bytes) -> dict[str, Any]:
    names = {1: "kind", 3: "name", 4: "uid", 5: "apiVersion"}
    ref: dict[str, Any] = {}
    for number, part in _fields(value if isinstance(value, bytes) else b""):
        if number in names:
            ref[names[number]] = _text(part)
        elif number == 6:
            ref["controller"] = bool(part)
        elif number == 7:
            ref["blockOwnerDeletion"] = bool(part)
    return ref


def _object_meta(data: int | bytes) -> dict[str, Any]:
    strings = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    meta: dict[str, Any] = {}
    for number, value in _fields(data if isinstance(data, bytes) else b""):
        if number in strings:
            # Go writes every string field, empty ones too; JSON omits them.
            if text := _text(value):
                meta[strings[number]] = text
        elif number in (11, 12):
            key, item = _map_entry(value)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = item.decode()
        elif number == 13:
            meta.setdefault("ownerReferences", []).append(_owner_reference(value))
        elif number == 14:
            meta.setdefault("finalizers", []).append(_text(value))
        # selfLink, generation, timestamps, managedFields: the server sets or drops them
    return meta


def _configmap(data: bytes, obj: dict[str, Any]) -> None:
    for number, value in _fields(data):
        if number == 2:
            key, item = _map_entry(value)
            obj.setdefault("data", {})[key] = item.decode()
        elif number == 3:
            key, item = _map_entry(value)
            obj.setdefault("binaryData", {})[key] = base64.b64encode(item).decode()
        elif number == 4:
            obj["immutable"] = bool(value)


def _secret(data: bytes, obj: dict[str, Any]) -> None:
    for number, value in _fields(data):
        if number == 2:
            key, item = _map_entry(value)
            obj.setdefault("data", {})[key] = base64.b64encode(item).decode()
        elif number == 3 and (kind := _text(value)):
            obj["type"] = kind
        elif number == 4:
            key, item = _map_entry(value)
            obj.setdefault("stringData", {})[key] = item.decode()
        elif number == 5:
            obj["immutable"] = bool(value)


def _namespace(data: bytes, obj: dict[str, Any]) -> None:
    for number, value in _fields(data):
        if number == 2 and isinstance(value, bytes):
            finalizers = [_text(v) for n, v in _fields(value) if n == 1]
            obj["spec"] = {"finalizers": finalizers} if finalizers else {}


def _strings(data: int | bytes, names: dict[int, str]) -> dict[str, str]:
    """A message of plain string fields, by field number."""
    out: dict[str, str] = {}
    if isinstance(data, bytes):
        for number, value in _fields(data):
            if number in names:
                out[names[number]] = _text(value)
    return out


# k8s.io/api/authorization/v1/generated.proto
_RESOURCE_ATTRIBUTES = {
    1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"
}  # fmt: skip
_NON_RESOURCE_ATTRIBUTES = {1: "path", 2: "verb"}


def _access_review(data: bytes, obj: dict[str, Any]) -> None:
    """SelfSubjectAccessReview: spec (2) = resourceAttributes (1) | nonResourceAttributes (2)."""
    spec: dict[str, Any] = {}
    for number, value in _fields(data):
        if number == 2 and isinstance(value, bytes):
            for sub, part in _fields(value):
                if sub == 1:
                    spec["resourceAttributes"] = _strings(part, _RESOURCE_ATTRIBUTES)
                elif sub == 2:
                    spec["nonResourceAttributes"] = _strings(part, _NON_RESOURCE_ATTRIBUTES)
    obj["spec"] = spec


def _rules_review(data: bytes, obj: dict[str, Any]) -> None:
    """SelfSubjectRulesReview: spec (2) = namespace (1)."""
    for number, value in _fields(data):
        if number == 2:
            obj["spec"] = _strings(value, {1: "namespace"})


# kubectl 1.32+ sends these kinds as protobuf (`create configmap|secret|namespace`,
# `auth can-i`), and does not fall back to JSON on a 415.
_KINDS = {
    "ConfigMap": _configmap,
    "Secret": _secret,
    "Namespace": _namespace,
    "SelfSubjectAccessReview": _access_review,
    "SelfSubjectRulesReview": _rules_review,
}


def decode_object(body: bytes) -> dict[str, Any]:
    """A Kubernetes protobuf body as the JSON object it stands for.

    Raises a 415 for kinds the emulator has no protobuf schema for, and a 400 for
    a body that is not a Kubernetes protobuf envelope.
    """
    if not body.startswith(_MAGIC):
        raise ApiError.bad_request(
            "the body of the request is not a Kubernetes protobuf object: it does not "
            "start with the k8s\\x00 prefix"
        )
    try:
        api_version = kind = ""
        raw = b""
        for number, value in _fields(body[len(_MAGIC) :]):
            if number == 1 and isinstance(value, bytes):
                for sub, part in _fields(value):
                    if sub == 1:
                        api_version = _text(part)
                    elif sub == 2:
                        kind = _text(part)
            elif number == 2 and isinstance(value, bytes):
                raw = value
        decode = _KINDS.get(kind)
        if decode is None:
            raise ApiError(
                415,
                f"the emulator decodes protobuf bodies only for {', '.join(sorted(_KINDS))}, "
                f"not {kind or 'an object without a kind'}: send application/json",
            )
        obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {}}
        for number, value in _fields(raw):
            if number == 1:
                obj["metadata"] = _object_meta(value)
        decode(raw, obj)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError.bad_request(f"the protobuf body could not be decoded: {exc}") from None
    return obj


# -- OpenAPI v2 (encode, gnostic openapi.v2.Document) --------------------------------------


def _any(value: Any) -> bytes:
    # openapi.v2.Any{yaml = 2}: gnostic keeps vendor extensions as YAML; JSON is YAML.
    return _str_field(2, json.dumps(value, separators=(",", ":")))


def _named(number: int, name: str, value: bytes) -> bytes:
    return _bytes_field(number, _str_field(1, name) + _bytes_field(2, value))


def _extensions(number: int, node: dict[str, Any]) -> bytes:
    return b"".join(
        _named(number, key, _any(value)) for key, value in node.items() if key.startswith("x-")
    )


def _schema(node: dict[str, Any]) -> bytes:
    out = _str_field(1, node.get("$ref", ""))
    out += _str_field(2, node.get("format", ""))
    out += _str_field(4, node.get("description", ""))
    out += b"".join(_str_field(19, r) for r in node.get("required") or [])
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out += _bytes_field(21, _bytes_field(1, _schema(extra)))
    elif isinstance(extra, bool):
        out += _bytes_field(21, _varint(2 << 3) + (b"\x01" if extra else b"\x00"))
    if node.get("type"):
        out += _bytes_field(22, _str_field(1, node["type"]))
    if isinstance(node.get("items"), dict):
        out += _bytes_field(23, _bytes_field(1, _schema(node["items"])))
    out += b"".join(_bytes_field(24, _schema(s)) for s in node.get("allOf") or [])
    if node.get("properties"):
        props = b"".join(_named(1, k, _schema(v)) for k, v in node["properties"].items())
        out += _bytes_field(25, props)
    return out + _extensions(31, node)


def _parameter(param: dict[str, Any]) -> bytes:
    if "$ref" in param:
        return _bytes_field(2, _str_field(1, param["$ref"]))
    where = param.get("in", "query")
    if where == "body":
        body = _str_field(1, param.get("description", "")) + _str_field(2, param["name"])
        body += _str_field(3, "body") + _bool_field(4, bool(param.get("required")))
        body += _bytes_field(5, _schema(param.get("schema") or {}))
        return _bytes_field(1, _bytes_field(1, body))
    # Query (3) and path (4) sub-schemas share their first fields:
    # required 1, in 2, description 3, name 4; type is 6 for query, 5 for path.
    sub = _bool_field(1, bool(param.get("required"))) + _str_field(2, where)
    sub += _str_field(3, param.get("description", "")) + _str_field(4, param["name"])
    sub += _str_field(6 if where == "query" else 5, param.get("type", "string"))
    choice = 3 if where == "query" else 4
    return _bytes_field(1, _bytes_field(2, _bytes_field(choice, sub)))


def _operation(op: dict[str, Any]) -> bytes:
    out = b"".join(_str_field(1, t) for t in op.get("tags") or [])
    out += _str_field(3, op.get("description", "")) + _str_field(5, op.get("operationId", ""))
    out += b"".join(_str_field(6, p) for p in op.get("produces") or [])
    out += b"".join(_str_field(7, c) for c in op.get("consumes") or [])
    out += b"".join(_bytes_field(8, _parameter(p)) for p in op.get("parameters") or [])
    responses = b""
    for code, response in (op.get("responses") or {}).items():
        value = _str_field(1, response.get("description", ""))
        if response.get("schema"):
            value += _bytes_field(2, _bytes_field(1, _schema(response["schema"])))
        responses += _named(1, code, _bytes_field(1, value))
    out += _bytes_field(9, responses)
    return out + _extensions(13, op)


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "patch": 8}


def _path_item(item: dict[str, Any]) -> bytes:
    out = b"".join(
        _bytes_field(number, _operation(item[method]))
        for method, number in _METHODS.items()
        if method in item
    )
    return out + b"".join(_bytes_field(9, _parameter(p)) for p in item.get("parameters") or [])


def encode_openapi_v2(doc: dict[str, Any]) -> bytes:
    """Encode a Swagger 2.0 document (as JSON) as gnostic's ``openapi.v2.Document``."""
    info = doc.get("info") or {}
    out = _str_field(1, doc.get("swagger", "2.0"))
    out += _bytes_field(2, _str_field(1, info.get("title", "")) + _str_field(2, info["version"]))
    paths = b"".join(_named(2, p, _path_item(item)) for p, item in doc["paths"].items())
    out += _bytes_field(8, paths)
    definitions = b"".join(_named(1, k, _schema(v)) for k, v in doc["definitions"].items())
    return out + _bytes_field(9, definitions)
