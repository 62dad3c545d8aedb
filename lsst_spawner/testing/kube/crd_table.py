"""``additionalPrinterColumns``: a CRD's Table columns and the JSONPath that fills them.

The API server's CRD table convertor prints ``Name`` then the CRD's columns (or
``Age`` alone when it lists none); a ``date`` column shows how long ago its
timestamp was, as ``Age`` does. JSONPath is the subset CRDs use: ``.a.b``,
``[n]``, ``[*]``, ``['key.with.dots']`` and ``[?(@.type=="Ready")]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .table import NAME_COLUMN, since

__all__ = ["check_json_path", "crd_printer", "evaluate"]

Row = list[Any]
_DEFAULT_COLUMNS = [
    {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
        "description": "Custom resource definition column (in JSONPath format): "
        ".metadata.creationTimestamp",
    }
]
_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_-]+)"""
    r"""|\[(?P<index>-?\d+|\*)\]"""
    r"""|\[['"](?P<quoted>[^'"]+)['"]\]"""
    r"""|\[\?\(@\.(?P<fkey>[A-Za-z0-9_.-]+)\s*==\s*(?P<fval>"[^"]*"|'[^']*'|[-\w.]+)\)\]"""
)


def _tokens(path: str) -> list[re.Match[str]] | None:
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            return None
        tokens.append(match)
        pos = match.end()
    return tokens or None


def check_json_path(path: Any) -> str | None:
    """Why ``path`` is not a JSONPath the emulator evaluates, or None."""
    if not isinstance(path, str) or not path.startswith("."):
        return "must be a simple json path starting with ."
    if _tokens(path) is None:
        return "must be a simple json path: .field, [n], [*], ['key'] or [?(@.f==\"v\")]"
    return None


def evaluate(obj: Any, path: str) -> list[Any]:
    """The values ``path`` selects in ``obj`` (several for ``[*]`` and filters)."""
    values = [obj]
    for token in _tokens(path) or []:
        found: list[Any] = []
        for value in values:
            if token["field"] is not None or token["quoted"] is not None:
                key = token["field"] or token["quoted"]
                if isinstance(value, dict) and key in value:
                    found.append(value[key])
            elif token["index"] is not None and isinstance(value, list):
                if token["index"] == "*":
                    found.extend(value)
                elif -len(value) <= int(token["index"]) < len(value):
                    found.append(value[int(token["index"])])
            elif token["fkey"] is not None and isinstance(value, list):
                wanted = token["fval"].strip("'\"")
                for item in value:
                    got = evaluate(item, "." + token["fkey"])
                    if got and str(got[0]) == wanted:
                        found.append(item)
        values = found
    return values


def _cell(obj: dict[str, Any], column: dict[str, Any], now: float) -> Any:
    values = [v for v in evaluate(obj, column["jsonPath"]) if v is not None]
    if not values:
        return None
    kind = column.get("type")
    value = values[0] if len(values) == 1 else values
    if kind == "date" and isinstance(value, str):
        return since(value, now)
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def crd_printer(
    columns: list[dict[str, Any]] | None,
) -> tuple[list[dict[str, Any]], Callable[[dict[str, Any], float], Row]]:
    """(column definitions, row printer) for a CRD version's ``additionalPrinterColumns``."""
    specified = list(columns) if columns else _DEFAULT_COLUMNS
    definitions = [NAME_COLUMN] + [
        {
            "name": c["name"],
            "type": c["type"],
            "format": c.get("format", ""),
            "description": c.get("description")
            or f"Custom resource definition column (in JSONPath format): {c['jsonPath']}",
            "priority": int(c.get("priority") or 0),
        }
        for c in specified
    ]

    def row(obj: dict[str, Any], now: float) -> Row:
        return [obj["metadata"]["name"], *(_cell(obj, c, now) for c in specified)]

    return definitions, row
