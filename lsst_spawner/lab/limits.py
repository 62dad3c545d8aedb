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


def _check_env_string(name: str, value: str, where: str) -> None:
    # A UTF-8 character is at most 4 bytes: most strings need no encoding to pass.
    if 4 * (len(name) + len(value)) + 2 <= MAX_ENV_STRING_BYTES:
        return
    size = env_string_bytes(name, value)
    if size > MAX_ENV_STRING_BYTES:
        raise LabSpecError(
            f"{where} variable {name} is {_kib(size)}, over the kernel's "
            f"{_kib(MAX_ENV_STRING_BYTES)} limit on one environment string: the lab "
            "could not start"
        )


def _check_data_size(obj: Mapping[str, Any], size: int) -> None:
    if size > MAX_OBJECT_DATA_BYTES:
        data = obj.get("data") or {}
        largest = sorted(data, key=lambda key: -len(data[key]))[:3]
        raise LabSpecError(
            f"the lab's {obj.get('kind')} {obj.get('metadata', {}).get('name')} would hold "
            f"{_kib(size)}, over Kubernetes' {_kib(MAX_OBJECT_DATA_BYTES)} limit (largest "
            f"keys: {', '.join(largest)})"
        )


def check_lab_object_limits(
    secret: Mapping[str, Any],
    pod: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    json_size: int | None = None,
) -> None:
    """Raise :class:`LabSpecError` if a lab object is over a Kubernetes or kernel limit.

    ``env`` maps the Secret's ``env.`` keys to their plain (not base64) values,
    the lab's env variables kept there. ``json_size``, when given, is the length
    of a JSON text that holds the pod (with other objects): when it is within
    the limit the pod is not serialized again to be measured.
    """
    where = f"the lab's environment (Secret {secret.get('metadata', {}).get('name')})"
    for key, value in (env or {}).items():
        _check_env_string(key.removeprefix("env."), value, where)
    body = pod.get("spec") or {}
    for container in [*(body.get("initContainers") or []), *(body.get("containers") or [])]:
        for entry in container.get("env") or ():
            if isinstance(entry.get("value"), str):
                where = f"container {container.get('name')}'s env"
                _check_env_string(str(entry.get("name")), entry["value"], where)
    # Secret data is base64: 3 bytes in 4 characters.
    _check_data_size(
        secret, sum(len(k) + len(v) * 3 // 4 for k, v in (secret.get("data") or {}).items())
    )
    if json_size is not None and json_size <= MAX_OBJECT_DATA_BYTES:
        return
    size = len(json.dumps(pod, separators=(",", ":")))
    if size > MAX_OBJECT_DATA_BYTES:
        raise LabSpecError(
            f"the lab's Pod would be {_kib(size)}, over the {_kib(MAX_OBJECT_DATA_BYTES)} limit"
        )
