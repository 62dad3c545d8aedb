"""The three patch formats of the Kubernetes API.

- JSON merge patch (RFC 7386): ``application/merge-patch+json``.
- Strategic merge patch: ``application/strategic-merge-patch+json``; like a
  merge patch, but lists with a merge key (containers by ``name``, volume
  mounts by ``mountPath``, ...) are merged element by element, and the
  ``$patch: delete|replace`` directives are honoured. The merge keys are the
  ones the core v1 types declare for the fields KubeSpawner and this project
  send; any other list is replaced, as for an atomic list.
- JSON patch (RFC 6902): ``application/json-patch+json``.
"""

from __future__ import annotations

import copy
from typing import Any

from .status import ApiError

__all__ = [
    "PATCH_TYPES",
    "apply_patch",
    "check_patch_type",
    "json_merge_patch",
    "json_patch",
    "strategic_merge_patch",
]

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)


def check_patch_type(content_type: str, *, strategic: bool = True) -> None:
    """415 for a patch type the server does not take, before any object is looked up.

    Server-side apply (``application/apply-patch+yaml``) is refused as an API server
    with the ServerSideApply feature off refuses it: the handler checks the type
    first, so a patch for an object that does not exist gets the 415 too. Custom
    resources (``strategic=False``) take no strategic merge patch.
    """
    accepted = PATCH_TYPES if strategic else (JSON_PATCH, MERGE_PATCH)
    if content_type not in accepted:
        raise ApiError(
            415,
            "the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join(accepted)}",
        )


# Field name -> merge key, from the patchMergeKey tags of the core v1 types.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "conditions": "type",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
# Primitive lists whose patch strategy is "merge" (set union).
_MERGED_PRIMITIVE_LISTS = {"finalizers"}


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: dicts merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def _merge_key_for(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return _MERGE_KEYS.get(field)


def _strategic_list(field: str, target: Any, patch: list[Any]) -> list[Any]:
    current = list(target) if isinstance(target, list) else []
    if field in _MERGED_PRIMITIVE_LISTS:
        return current + [v for v in patch if v not in current]
    key = _merge_key_for(field, patch + current)
    if key is None or not all(isinstance(i, dict) for i in patch):
        return copy.deepcopy(patch)
    if any(i.get("$patch") == "replace" for i in patch):
        return [copy.deepcopy(i) for i in patch if i.get("$patch") != "replace"]
    for item in patch:
        ident = item.get(key)
        index = next(
            (n for n, c in enumerate(current) if isinstance(c, dict) and c.get(key) == ident), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del current[index]
        elif index is None:
            current.append(strategic_merge_patch({}, item))
        else:
            current[index] = strategic_merge_patch(current[index], item)
    return current


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge patch for core v1 objects (see the module docstring)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key == "$retainKeys":
            continue  # ordering/retain hints: the emulator keeps list order as merged
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _strategic_list(key, result.get(key), value)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ApiError(422, f"invalid JSON pointer {path!r}", "Invalid")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, list):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc[part]
        else:
            raise KeyError(part)
    return doc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        parent.insert(len(parent) if last == "-" else int(last), value)
    else:
        parent[last] = value
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _resolve(doc, parts[:-1])
    last = parts[-1]
    value = parent[int(last)] if isinstance(parent, list) else parent[last]
    del parent[int(last) if isinstance(parent, list) else last]
    return value


def json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902 JSON patch; a failed ``test`` or missing path is a 422."""
    doc = copy.deepcopy(target)
    for op in operations:
        try:
            kind, parts = op["op"], _pointer(op["path"])
            if kind == "add":
                doc = _add(doc, parts, copy.deepcopy(op["value"]))
            elif kind == "remove":
                _remove(doc, parts)
            elif kind == "replace":
                _resolve(doc, parts)  # must exist
                if parts:
                    _remove(doc, parts)
                doc = _add(doc, parts, copy.deepcopy(op["value"]))
            elif kind in ("move", "copy"):
                source = _pointer(op["from"])
                value = _remove(doc, source) if kind == "move" else _resolve(doc, source)
                doc = _add(doc, parts, copy.deepcopy(value))
            elif kind == "test":
                if _resolve(doc, parts) != op["value"]:
                    raise ApiError(422, f"testing value {op['path']} failed", "Invalid")
            else:
                raise ApiError(422, f"unknown JSON patch operation {kind!r}", "Invalid")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(
                422, f"the server rejected our request due to an error in our request: {exc}"
            ) from exc
    return doc


def apply_patch(target: dict[str, Any], patch: Any, content_type: str) -> dict[str, Any]:
    """Apply a patch body of the given content type; 415 for apply patches."""
    check_patch_type(content_type)
    if content_type == JSON_PATCH:
        if not isinstance(patch, list):
            raise ApiError.bad_request("json patch must be a list of operations")
        return dict(json_patch(target, patch))
    if not isinstance(patch, dict):
        raise ApiError.bad_request("patch body must be a JSON object")
    if content_type == MERGE_PATCH:
        return dict(json_merge_patch(target, patch))
    return dict(strategic_merge_patch(target, patch))
