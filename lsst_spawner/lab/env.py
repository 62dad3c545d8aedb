"""The lab's environment ConfigMap: the container's plain env, read through ``envFrom``.

KubeSpawner's pod reflector keeps every lab pod in the hub's memory, so plain env
variables (about forty per lab) live in the lab's ConfigMap instead of the pod, as
Nublado does it. An entry stays in the container's ``env`` only when ``envFrom``
cannot give the container the same value:

- it has ``valueFrom`` (a ``secretKeyRef``, ``fieldRef``, ...);
- its value contains ``$(`` or ``$$``: Kubernetes expands ``$(VAR)`` and
  unescapes ``$$`` in ``env`` values, never in ``envFrom`` data;
- its name is not both a valid ConfigMap key and a name the kubelet accepts from
  ``envFrom`` (older kubelets skip keys such as ``1X`` there, with only an event).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["belongs_in_config_map", "build_env_config_map", "split_env"]

#: A ConfigMap key that every kubelet also takes as an env variable name from ``envFrom``.
_CONFIG_MAP_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]{0,252}")


def belongs_in_config_map(entry: Mapping[str, Any]) -> bool:
    """Whether ``envFrom`` gives the container this ``env`` entry exactly as ``env`` does."""
    if entry.get("valueFrom") is not None:
        return False
    name = entry.get("name")
    if not isinstance(name, str) or not _CONFIG_MAP_ENV_NAME.fullmatch(name):
        return False
    if name == "." or name.startswith(".."):  # not ConfigMap keys
        return False
    value = entry.get("value")
    if value is None:
        return True
    return isinstance(value, str) and "$(" not in value and "$$" not in value


def split_env(entries: Iterable[Mapping[str, Any]]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Split a container's env into ConfigMap data and the entries that must stay in ``env``.

    A name given twice keeps its last entry, as in Kubernetes. The data is sorted
    by name; the kept entries keep their order.
    """
    data: dict[str, str] = {}
    kept: dict[str, dict[str, Any]] = {}
    for entry in entries:
        name = str(entry.get("name"))
        kept.pop(name, None)
        data.pop(name, None)
        if belongs_in_config_map(entry):
            data[name] = entry.get("value") or ""
        else:
            kept[name] = dict(entry)
    return dict(sorted(data.items())), list(kept.values())


def build_env_config_map(
    name: str, labels: Mapping[str, str], data: Mapping[str, str]
) -> dict[str, Any]:
    """Return the lab's immutable environment ConfigMap."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": dict(labels)},
        "immutable": True,
        "data": dict(data),
    }
