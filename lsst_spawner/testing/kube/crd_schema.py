"""Custom resources' ``openAPIV3Schema``: structural checks, pruning, defaults, validation.

Modelled on ``k8s.io/apiextensions-apiserver``: a CRD's schema must be structural
(every specified field has a ``type``, no ``$ref``, no ``additionalProperties``
next to ``properties``, ``metadata`` restricting only ``name``/``generateName``);
an object of the kind is pruned of fields the schema does not specify (unless
``x-kubernetes-preserve-unknown-fields``), given its ``default`` values, then
validated. Validation is ``jsonschema``'s Draft 4 (the JSON-schema dialect
OpenAPI 3.0 takes ``exclusiveMinimum`` and ``integer`` from) with OpenAPI's
``nullable``, ``x-kubernetes-int-or-string``, the integer/number formats and
``x-kubernetes-list-type``; errors read as the API server words them.

What is not modelled is refused when a CRD is created, never silently accepted:
CEL rules (``x-kubernetes-validations``) and ``x-kubernetes-embedded-resource``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime
import ipaddress
import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema

__all__ = ["Cause", "apply_defaults", "prune", "schema_causes", "validate"]

Cause = tuple[str, str, str]  # (reason, field, message)

_TYPES = ("object", "array", "string", "integer", "number", "boolean")
_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
# Not part of a structural schema, or not modelled by the emulator: refused with a reason.
_FORBIDDEN = {
    "$ref": "$ref is not supported",
    "$schema": "$schema is not supported",
    "id": "id is not supported",
    "definitions": "definitions are not supported",
    "patternProperties": "patternProperties is not supported",
    "dependencies": "dependencies is not supported",
    "additionalItems": "additionalItems is not supported",
    "x-kubernetes-validations": "the emulator does not evaluate CEL validation rules "
    "(x-kubernetes-validations); a cluster would enforce them, so the CRD is refused",
    "x-kubernetes-embedded-resource": "the emulator does not model embedded resources "
    "(x-kubernetes-embedded-resource)",
}
# Inside allOf/anyOf/oneOf/not a structural schema only validates values.
_NOT_IN_JUNCTORS = (
    "type",
    "default",
    "nullable",
    "additionalProperties",
    "description",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
)
_LIST_TYPES = ("atomic", "set", "map")
_ROOT_FIELDS = ("apiVersion", "kind", "metadata")


# -- the CRD's schema ------------------------------------------------------------------


def schema_causes(schema: Any, where: str) -> list[Cause]:
    """What makes ``schema`` (a version's ``openAPIV3Schema``) unacceptable."""
    if not isinstance(schema, dict):
        return [("FieldValueRequired", where, "Required value: schemas are required")]
    causes = list(_node_causes(schema, where, root=True, in_junctor=False))
    if schema.get("type") != "object":
        causes.append(
            (
                "FieldValueInvalid",
                f"{where}.type",
                f"Invalid value: {json.dumps(schema.get('type', ''))}: must be object at the root",
            )
        )
    metadata = (schema.get("properties") or {}).get("metadata")
    if isinstance(metadata, dict):
        allowed = {"name", "generateName"}
        extra = set(metadata) - {"type", "properties", "description"}
        if extra or set(metadata.get("properties") or {}) - allowed:
            causes.append(
                (
                    "FieldValueForbidden",
                    f"{where}.properties[metadata]",
                    "Forbidden: must not specify anything other than name and generateName, "
                    "but metadata is implicitly specified",
                )
            )
    for field in ("apiVersion", "kind"):
        node = (schema.get("properties") or {}).get(field)
        if isinstance(node, dict) and node.get("type") not in (None, "string"):
            causes.append(
                (
                    "FieldValueInvalid",
                    f"{where}.properties[{field}].type",
                    f"Invalid value: {json.dumps(node.get('type'))}: must be string",
                )
            )
    if not causes:
        causes.extend(_default_causes(schema, where))
    return causes


def _node_causes(node: Any, where: str, *, root: bool, in_junctor: bool) -> Iterator[Cause]:
    if not isinstance(node, dict):
        yield ("FieldValueInvalid", where, "Invalid value: must be a schema object")
        return
    for key, reason in _FORBIDDEN.items():
        if key in node:
            yield ("FieldValueForbidden", f"{where}.{key}", f"Forbidden: {reason}")
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    int_or_string = node.get("x-kubernetes-int-or-string")
    for flag, value in (
        ("x-kubernetes-preserve-unknown-fields", preserve),
        ("x-kubernetes-int-or-string", int_or_string),
    ):
        if value is not None and value is not True:
            yield ("FieldValueInvalid", f"{where}.{flag}", f"Invalid value: {value}: must be true")
    kind = node.get("type")
    if in_junctor:
        for key in _NOT_IN_JUNCTORS:
            if key in node:
                yield (
                    "FieldValueForbidden",
                    f"{where}.{key}",
                    "Forbidden: must be empty to be structural",
                )
    elif kind is None and not root and not preserve and not int_or_string:
        yield (
            "FieldValueRequired",
            f"{where}.type",
            "Required value: must not be empty for specified object fields",
        )
    if kind is not None and kind not in _TYPES:
        supported = ", ".join(f'"{t}"' for t in _TYPES)
        yield (
            "FieldValueNotSupported",
            f"{where}.type",
            f"Unsupported value: {json.dumps(kind)}: supported values: {supported}",
        )
    if int_or_string and kind is not None:
        yield (
            "FieldValueForbidden",
            f"{where}.type",
            "Forbidden: must be empty if x-kubernetes-int-or-string is true",
        )
    properties = node.get("properties")
    additional = node.get("additionalProperties")
    if properties is not None and additional is not None:
        yield (
            "FieldValueForbidden",
            f"{where}.additionalProperties",
            "Forbidden: additionalProperties and properties are mutual exclusive",
        )
    if additional is False:
        yield (
            "FieldValueForbidden",
            f"{where}.additionalProperties",
            "Forbidden: additionalProperties cannot be set to false",
        )
    if (properties is not None or isinstance(additional, dict)) and kind not in (None, "object"):
        yield (
            "FieldValueInvalid",
            f"{where}.type",
            f"Invalid value: {json.dumps(kind)}: must be object if properties are specified",
        )
    if isinstance(properties, dict):
        for name, child in properties.items():
            yield from _node_causes(
                child, f"{where}.properties[{name}]", root=False, in_junctor=in_junctor
            )
    elif properties is not None:
        yield ("FieldValueInvalid", f"{where}.properties", "Invalid value: must be an object")
    if isinstance(additional, dict):
        yield from _node_causes(
            additional, f"{where}.additionalProperties", root=False, in_junctor=in_junctor
        )
    items = node.get("items")
    if isinstance(items, list):
        yield (
            "FieldValueForbidden",
            f"{where}.items",
            "Forbidden: items must be a schema object and not an array",
        )
    elif items is not None:
        yield from _node_causes(items, f"{where}.items", root=False, in_junctor=in_junctor)
    if kind == "array" and items is None and not in_junctor:
        yield ("FieldValueRequired", f"{where}.items", "Required value: must be specified")
    for junctor in _JUNCTORS:
        if junctor not in node:
            continue
        branches = [node[junctor]] if junctor == "not" else node[junctor]
        if not isinstance(branches, list):
            yield ("FieldValueInvalid", f"{where}.{junctor}", "Invalid value: must be a list")
            continue
        for index, branch in enumerate(branches):
            at = f"{where}.{junctor}" if junctor == "not" else f"{where}.{junctor}[{index}]"
            yield from _node_causes(branch, at, root=False, in_junctor=True)
    yield from _list_type_causes(node, where)


def _list_type_causes(node: dict[str, Any], where: str) -> Iterator[Cause]:
    list_type = node.get("x-kubernetes-list-type")
    if list_type is None:
        if "x-kubernetes-list-map-keys" in node:
            yield (
                "FieldValueForbidden",
                f"{where}.x-kubernetes-list-map-keys",
                "Forbidden: must be empty if x-kubernetes-list-type is not map",
            )
        return
    if list_type not in _LIST_TYPES:
        supported = ", ".join(f'"{t}"' for t in _LIST_TYPES)
        yield (
            "FieldValueNotSupported",
            f"{where}.x-kubernetes-list-type",
            f"Unsupported value: {json.dumps(list_type)}: supported values: {supported}",
        )
    if node.get("type") != "array":
        yield (
            "FieldValueInvalid",
            f"{where}.type",
            "Invalid value: must be array if x-kubernetes-list-type is specified",
        )
    items: dict[str, Any] = node["items"] if isinstance(node.get("items"), dict) else {}
    keys = node.get("x-kubernetes-list-map-keys")
    if list_type == "map":
        if not keys or not isinstance(keys, list):
            yield (
                "FieldValueRequired",
                f"{where}.x-kubernetes-list-map-keys",
                "Required value: must not be empty if x-kubernetes-list-type is map",
            )
        elif items.get("type") != "object":
            yield (
                "FieldValueInvalid",
                f"{where}.items.type",
                "Invalid value: must be object if x-kubernetes-list-type is map",
            )
        else:
            for key in keys:
                if key not in (items.get("properties") or {}):
                    yield (
                        "FieldValueRequired",
                        f"{where}.items.properties[{key}]",
                        "Required value: entries for all x-kubernetes-list-map-keys are required",
                    )
    elif list_type == "set" and items.get("type") in ("object", "array"):
        yield (
            "FieldValueInvalid",
            f"{where}.items.type",
            "Invalid value: must be a scalar type if x-kubernetes-list-type is set",
        )


def _default_causes(schema: dict[str, Any], where: str) -> Iterator[Cause]:
    """Each ``default`` must survive pruning and validate against its own node."""
    for at, node in _walk(schema, where):
        if "default" not in node:
            continue
        value = copy.deepcopy(node["default"])
        pruned = prune(value, node, root=False)
        if pruned:
            yield (
                "FieldValueInvalid",
                f"{at}.default",
                f"Invalid value: {json.dumps(node['default'])}: must not have unknown fields "
                f"({', '.join(pruned)})",
            )
            continue
        for _, field, message in validate(value, node):
            yield ("FieldValueInvalid", f"{at}.default{_suffix(field)}", message)


def _suffix(field: str) -> str:
    return "" if field == "<root>" else f".{field}"


def _walk(node: dict[str, Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield where, node
    for name, child in (node.get("properties") or {}).items():
        yield from _walk(child, f"{where}.properties[{name}]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{where}.additionalProperties")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{where}.items")


# -- objects: pruning and defaults -------------------------------------------------------


def prune(obj: Any, schema: dict[str, Any], *, root: bool = True, at: str = "") -> list[str]:
    """Drop the fields ``schema`` does not specify; return their paths (``spec.x``)."""
    dropped: list[str] = []
    _prune(obj, schema, root, at, dropped)
    return dropped


def _prune(obj: Any, node: dict[str, Any], root: bool, at: str, dropped: list[str]) -> None:
    if node.get("x-kubernetes-int-or-string"):
        return
    if isinstance(obj, dict):
        properties = node.get("properties") or {}
        additional = node.get("additionalProperties")
        for key in list(obj):
            path = f"{at}.{key}" if at else key
            if root and key in _ROOT_FIELDS:
                continue
            if key in properties:
                _prune(obj[key], properties[key], False, path, dropped)
            elif isinstance(additional, dict):
                _prune(obj[key], additional, False, path, dropped)
            elif additional is True or node.get("x-kubernetes-preserve-unknown-fields"):
                continue
            else:
                del obj[key]
                dropped.append(path)
    elif isinstance(obj, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(obj):
            _prune(item, node["items"], False, f"{at}[{index}]", dropped)


def apply_defaults(obj: Any, node: dict[str, Any]) -> None:
    """Fill in ``default`` values of fields missing (or null and not nullable) in ``obj``."""
    if isinstance(obj, dict):
        properties = node.get("properties") or {}
        for key, child in properties.items():
            missing = key not in obj or (obj[key] is None and not child.get("nullable"))
            if missing and "default" in child:
                obj[key] = copy.deepcopy(child["default"])
            if key in obj:
                apply_defaults(obj[key], child)
        additional = node.get("additionalProperties")
        if isinstance(additional, dict):
            for key in obj:
                if key not in properties:
                    apply_defaults(obj[key], additional)
    elif isinstance(obj, list) and isinstance(node.get("items"), dict):
        for item in obj:
            apply_defaults(item, node["items"])


# -- validation --------------------------------------------------------------------------


_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_FLOAT32_MAX = 3.4028234663852886e38
_FORMATS = jsonschema.FormatChecker(formats=())


def _format(
    name: str, types: tuple[type, ...]
) -> Callable[[Callable[[Any], bool]], Callable[[Any], bool]]:
    def register(fn: Callable[[Any], bool]) -> Callable[[Any], bool]:
        def check(value: Any) -> bool:
            if not isinstance(value, types) or isinstance(value, bool):
                return True  # formats only constrain values of their type
            return bool(fn(value))

        _FORMATS.checks(name)(check)
        return fn

    return register


def _in_range(low: int, high: int) -> Callable[[Any], bool]:
    return lambda value: bool(low <= value <= high)


for _name, (_low, _high) in _INT_RANGES.items():
    _format(_name, (int,))(_in_range(_low, _high))
_format("float", (int, float))(lambda v: abs(v) <= _FLOAT32_MAX)
_format("double", (int, float))(lambda v: True)


@_format("byte", (str,))
def _is_byte(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


@_format("date-time", (str,))
def _is_date_time(value: str) -> bool:
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in value or "t" in value


@_format("date", (str,))
def _is_date(value: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)) and _is_date_time(value + "T00:00:00Z")


@_format("uuid", (str,))
def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


def _address(kind: Any) -> Any:
    def check(value: str) -> bool:
        try:
            kind(value)
        except ValueError:
            return False
        return True

    return check


_format("ipv4", (str,))(_address(ipaddress.IPv4Address))
_format("ipv6", (str,))(_address(ipaddress.IPv6Address))
_format("cidr", (str,))(_address(ipaddress.ip_network))
_format("hostname", (str,))(
    lambda v: (
        bool(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", v))
        and len(v) <= 253
    )
)


def _nullable(check: Any) -> Any:
    def wrapped(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        if instance is None and schema.get("nullable"):
            return
        yield from check(validator, value, instance, schema) or ()

    return wrapped


def _int_or_string(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
    if value and (isinstance(instance, bool) or not isinstance(instance, int | str)):
        yield jsonschema.ValidationError(
            "must be an integer or a string", validator="x-kubernetes-int-or-string"
        )


def _list_type(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
    if not isinstance(instance, list) or value not in ("set", "map"):
        return
    keys = schema.get("x-kubernetes-list-map-keys") or []
    seen: list[Any] = []
    for index, item in enumerate(instance):
        ident = [item.get(k) for k in keys] if value == "map" and isinstance(item, dict) else item
        if ident in seen:
            yield jsonschema.ValidationError(
                json.dumps(ident if value == "set" else dict(zip(keys, ident, strict=True))),
                validator="x-kubernetes-list-type",
                path=[index],
            )
        seen.append(ident)


_Draft4 = jsonschema.validators.Draft4Validator
_KubeValidator = jsonschema.validators.extend(
    _Draft4,
    validators={
        **{key: _nullable(fn) for key, fn in _Draft4.VALIDATORS.items()},
        "x-kubernetes-int-or-string": _int_or_string,
        "x-kubernetes-list-type": _list_type,
    },
)


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _cause(error: jsonschema.ValidationError) -> list[Cause]:
    """One jsonschema error in the API server's words (apiextensions' field errors)."""
    where, kind, value = _path(error.absolute_path), error.validator, error.validator_value
    instance = error.instance
    shown = json.dumps(instance)
    invalid = f"Invalid value: {shown}: {where} in body"
    if kind == "required":
        return [
            (
                "FieldValueRequired",
                f"{where}.{name}" if where != "<root>" else name,
                "Required value",
            )
            for name in value
            if isinstance(instance, dict) and name not in instance
        ]
    if kind == "type":
        expected = value if isinstance(value, str) else "/".join(value)
        got = _type_name(instance)
        return [
            (
                "FieldValueTypeInvalid",
                where,
                f'Invalid value: "{got}": {where} in body must be of type {expected}: "{got}"',
            )
        ]
    if kind == "enum":
        supported = ", ".join(json.dumps(v) for v in value)
        return [
            (
                "FieldValueNotSupported",
                where,
                f"Unsupported value: {shown}: supported values: {supported}",
            )
        ]
    if kind == "maxLength":
        return [("FieldValueTooLong", where, f"Too long: may not be more than {value} bytes")]
    if kind == "maxItems":
        return [
            (
                "FieldValueTooMany",
                where,
                f"Too many: {len(instance)}: must have at most {value} items",
            )
        ]
    if kind == "x-kubernetes-list-type":
        return [("FieldValueDuplicate", where, f"Duplicate value: {error.message}")]
    messages = {
        "minLength": f"should be at least {value} chars long",
        "minItems": f"should have at least {value} items",
        "pattern": f"should match '{value}'",
        "multipleOf": f"should be a multiple of {value}",
        "maxProperties": f"should have at most {value} properties",
        "minProperties": f"should have at least {value} properties",
        "uniqueItems": "shouldn't contain duplicates",
        "format": f"must be of type {value}: {shown}",
        "x-kubernetes-int-or-string": "must be of type integer or string",
    }
    if kind in ("maximum", "minimum"):
        exclusive = error.schema.get(
            "exclusiveMaximum" if kind == "maximum" else "exclusiveMinimum"
        )
        relation = "less than" if kind == "maximum" else "greater than"
        text = (
            f"should be {relation} {value}"
            if exclusive
            else f"should be {relation} or equal to {value}"
        )
        return [("FieldValueInvalid", where, f"{invalid} {text}")]
    if kind in messages:
        return [("FieldValueInvalid", where, f"{invalid} {messages[kind]}")]
    return [("FieldValueInvalid", where, f"Invalid value: {shown}: {error.message}")]


def validate(obj: Any, schema: dict[str, Any]) -> list[Cause]:
    """The causes ``obj`` fails ``schema`` with (``metadata`` beyond the schema's name and
    generateName rules is checked against ObjectMeta elsewhere)."""
    checker = _KubeValidator(schema, format_checker=_FORMATS)
    causes: list[Cause] = []
    for error in sorted(checker.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        for cause in _cause(error):
            if cause not in causes:
                causes.append(cause)
    return causes
