"""Conversion between ``kubernetes_asyncio`` models and the wire-format dicts the builders use."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from kubernetes_asyncio import client

__all__ = ["dict_to_model", "model_to_dict"]

_LIST = re.compile(r"list\[(.+)\]")
_DICT = re.compile(r"dict\(([^,]+), (.+)\)")
_PRIMITIVES = {"str", "int", "float", "bool", "object", "date", "datetime"}


def model_to_dict(obj: Any) -> Any:
    """Return ``obj`` (a model, list, dict or primitive) in wire format, dropping ``None``."""
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, list | tuple):
        return [model_to_dict(item) for item in obj]
    if isinstance(obj, dict):
        return {key: model_to_dict(value) for key, value in obj.items()}
    result = {}
    for attribute, wire in obj.attribute_map.items():
        value = getattr(obj, attribute)
        if value is not None:
            result[wire] = model_to_dict(value)
    return result


def dict_to_model(data: Any, type_name: str) -> Any:
    """Build the ``kubernetes_asyncio`` model ``type_name`` (``"V1Pod"``) from wire format."""
    if data is None:
        return None
    return _converter(type_name)(data)


@functools.cache
def _converter(type_name: str) -> Callable[[Any], Any]:
    """The function that builds ``type_name`` from wire format (made once per type name).

    ``openapi_types`` are parsed here, not per value: this runs for every pod spawned.
    """
    if match := _LIST.fullmatch(type_name):
        item_name = match.group(1)
        return lambda data: [dict_to_model(item, item_name) for item in data]
    if match := _DICT.fullmatch(type_name):
        value_name = match.group(2)
        return lambda data: {key: dict_to_model(value, value_name) for key, value in data.items()}
    if type_name in _PRIMITIVES:
        return _identity
    klass = getattr(client, type_name)
    fields = tuple(
        (attribute, wire, klass.openapi_types[attribute])
        for attribute, wire in klass.attribute_map.items()
    )

    def build(data: Any) -> Any:
        return klass(
            **{
                attribute: dict_to_model(data[wire], sub_type)
                for attribute, wire, sub_type in fields
                if wire in data
            }
        )

    return build


def _identity(data: Any) -> Any:
    return data
