"""Size limits a lab's objects must fit, checked before anything is sent to Kubernetes.

Two limits make a spawn fail late, at the API server or at exec, with a message
the user never sees:

- Linux refuses to ``exec`` a program one of whose environment strings
  (``NAME=value`` and its NUL) is longer than 128 KiB (``MAX_ARG_STRLEN``);
- the API server refuses a Secret or ConfigMap whose data is over 1 MiB.

:func:`check_lab_object_limits` refuses such objects while they are built, with
the variable or object named; ``check-config`` applies the environment limit to
``LSSTSpawner.lab_env``.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Mapping
from typing import Any

from .errors import LabSpecError

__all__ = [
    "MAX_ENV_STRING_BYTES",
    "MAX_OBJECT_DATA_BYTES",
    "check_lab_object_limits",
    "env_string_bytes",
]

#: Longest environment string the kernel passes to a program: 128 KiB with the NUL.
MAX_ENV_STRING_BYTES = 128 * 1024
#: Most data a Secret or ConfigMap may hold (the API server's limit); also our limit for the Pod.
MAX_OBJECT_DATA_BYTES = 1024 * 1024


def env_string_bytes(name: str, value: str) -> int:
    """Bytes the kernel counts for one environment variable: ``NAME=value`` and a NUL."""
    return (
        len(name.encode("utf-8", "surrogatepass")) + len(value.encode("utf-8", "surrogatepass")) + 2
    )


def _kib(amount: int) -> str:
    return f"{amount / 1024:.1f} KiB"


def _check_env(entries: Any, where: str) -> None:
    for entry in entries or ():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("value"), str):
            continue
        size = env_string_bytes(str(entry.get("name")), entry["value"])
        if size > MAX_ENV_STRING_BYTES:
            raise LabSpecError(
                f"{where} variable {entry.get('name')} is {_kib(size)}, over the kernel's "
                f"{_kib(MAX_ENV_STRING_BYTES)} limit on one environment string: the lab "
                "could not start"
            )


def _data_bytes(obj: Mapping[str, Any]) -> int:
    total = 0
    for key, value in (obj.get("data") or {}).items():
        raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else b""
        if obj.get("kind") == "Secret":  # data values are base64; the limit counts the bytes
            with contextlib.suppress(ValueError):
                raw = base64.b64decode(raw)
        total += len(key) + len(raw)
    for key, value in (obj.get("binaryData") or {}).items():
        total += len(key) + len(str(value)) * 3 // 4
    return total


def check_lab_object_limits(
    config_map: Mapping[str, Any], secret: Mapping[str, Any], pod: Mapping[str, Any]
) -> None:
    """Raise :class:`LabSpecError` if a lab object is over a Kubernetes or kernel limit."""
    _check_env(
        [{"name": key, "value": value} for key, value in (config_map.get("data") or {}).items()],
        f"the lab's environment (ConfigMap {config_map.get('metadata', {}).get('name')})",
    )
    body = pod.get("spec") or {}
    for container in [*(body.get("initContainers") or []), *(body.get("containers") or [])]:
        _check_env(container.get("env"), f"container {container.get('name')}'s env")
    for obj in (config_map, secret):
        size = _data_bytes(obj)
        if size > MAX_OBJECT_DATA_BYTES:
            raise LabSpecError(
                f"the lab's {obj.get('kind')} {obj.get('metadata', {}).get('name')} would hold "
                f"{_kib(size)}, over Kubernetes' {_kib(MAX_OBJECT_DATA_BYTES)} limit"
            )
    size = len(json.dumps(pod, separators=(",", ":")))
    if size > MAX_OBJECT_DATA_BYTES:
        raise LabSpecError(
            f"the lab's Pod would be {_kib(size)}, over the {_kib(MAX_OBJECT_DATA_BYTES)} limit"
        )
