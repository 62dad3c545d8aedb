"""Label and field selectors, parsed once and matched against plain dicts.

Label selectors support ``=``, ``==``, ``!=``, ``in``, ``notin``, ``key`` and
``!key``. Field selectors support ``=``, ``==`` and ``!=`` on the fields the
real API server indexes for each resource; any other field is rejected with
the same 400 error a cluster returns, so a typo is not silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .status import ApiError

__all__ = ["FIELD_SELECTABLE", "parse_field_selector", "parse_label_selector"]

Matcher = Callable[[dict[str, Any]], bool]

_COMMON = {"metadata.name", "metadata.namespace"}

# Fields the API server accepts in fieldSelector, per resource (Kubernetes 1.30).
FIELD_SELECTABLE: dict[str, set[str]] = {
    "namespaces": _COMMON | {"status.phase"},
    "pods": _COMMON
    | {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    "events": _COMMON
    | {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    "secrets": _COMMON | {"type"},
    "configmaps": _COMMON,
    "services": _COMMON,
    "persistentvolumeclaims": _COMMON,
}

_KEY_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_SET_RE = re.compile(r"^\s*([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_terms(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    terms: list[str] = []
    depth = 0
    current: list[str] = []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [t.strip() for t in terms if t.strip()]


def _label_term(term: str) -> Matcher:
    if m := _SET_RE.match(term):
        key, op, raw = m.group(1), m.group(2), m.group(3)
        values = {v.strip() for v in raw.split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (part.strip() for part in term.split(op, 1))
            if not _KEY_RE.match(key):
                break
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    else:
        negate = term.startswith("!")
        key = term[1:].strip() if negate else term
        if _KEY_RE.match(key):
            if negate:
                return lambda labels: key not in labels
            return lambda labels: key in labels
    raise ApiError.bad_request(f"unable to parse requirement: invalid label selector {term!r}")


def parse_label_selector(selector: str | None) -> Matcher | None:
    """Return a matcher on an object, or None when the selector is empty."""
    if not selector:
        return None
    terms = [_label_term(t) for t in _split_terms(selector)]

    def match(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(term(labels) for term in terms)

    return match


def _field_value(obj: dict[str, Any], path: str) -> str:
    if path == "source":  # events index source.component under "source"
        return str((obj.get("source") or {}).get("component", ""))
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_field_selector(selector: str | None, resource: str) -> Matcher | None:
    """Return a matcher, or None; 400 for a field the resource does not index."""
    if not selector:
        return None
    allowed = FIELD_SELECTABLE.get(resource, _COMMON)
    terms: list[tuple[str, bool, str]] = []
    for term in _split_terms(selector):
        for op in ("!=", "==", "="):
            if op in term:
                field, value = (part.strip() for part in term.split(op, 1))
                break
        else:
            raise ApiError.bad_request(f"invalid selector: '{selector}'; can't understand '{term}'")
        if field not in allowed:
            raise ApiError.bad_request(f'field label not supported: "{field}"')
        terms.append((field, op == "!=", value))

    def match(obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, f) == v) != negate for f, negate, v in terms)

    return match
