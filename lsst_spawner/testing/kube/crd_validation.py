"""Custom resources validated against their CRD's schema, in the API server's words.

``jsonschema``'s Draft 4 validator (the JSON-schema dialect OpenAPI 3.0 takes
``exclusiveMinimum`` and ``integer`` from) extended with OpenAPI's ``nullable``,
``x-kubernetes-int-or-string``, the integer/number/string formats Kubernetes checks and
``x-kubernetes-list-type`` uniqueness; each error becomes the field error apiextensions
reports (``spec.size: Invalid value: "string": spec.size in body must be of type
integer: "string"``, ``Unsupported value``, ``Required value``, ``Too long``, ...).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import jsonschema

__all__ = ["Cause", "validate"]

Cause = tuple[str, str, str]  # (reason, field, message)

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
