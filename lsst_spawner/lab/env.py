"""The lab's environment Secret: the container's plain env, read through ``envFrom``.

KubeSpawner's pod reflector keeps every lab pod in the hub's memory, so plain env
variables (about forty per lab) live in an object of their own instead of the pod,
as Nublado does it. That object is a Secret (``<pod>-env``), not a ConfigMap: the
Zero to JupyterHub hub Role grants Secrets but not ConfigMaps. It is a Secret of
its own, apart from the lab's ``<pod>-secret``, because ``envFrom`` turns *every*
key of its source into a variable (Kubernetes 1.32+ accepts any key as a name), so
the NSS files, git credentials and file-only site secrets would become env
variables. An entry stays in the container's ``env`` only when ``envFrom``
cannot give the container the same value:

- it has ``valueFrom`` (a ``secretKeyRef``, ``fieldRef``, ...);
- its value contains ``$(`` or ``$$``: Kubernetes expands ``$(VAR)`` and
  unescapes ``$$`` in ``env`` values, never in ``envFrom`` data;
- its name is not both a valid Secret key and a name the kubelet accepts from
  ``envFrom`` (older kubelets skip keys such as ``1X`` there, with only an event).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["belongs_in_env_secret", "build_env_secret", "split_env"]

#: A Secret key that every kubelet also takes as an env variable name from ``envFrom``.
_ENV_KEY = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]{0,252}")


def belongs_in_env_secret(entry: Mapping[str, Any]) -> bool:
    """Whether ``envFrom`` gives the container this ``env`` entry exactly as ``env`` does."""
    if entry.get("valueFrom") is not None:
        return False
    name = entry.get("name")
    if not isinstance(name, str) or not _ENV_KEY.fullmatch(name):
        return False
    if name == "." or name.startswith(".."):  # not Secret keys
        return False
    value = entry.get("value")
    if value is None:
        return True
    return isinstance(value, str) and "$(" not in value and "$$" not in value


def split_env(entries: Iterable[Mapping[str, Any]]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Split a container's env into the env Secret's data and the entries that stay in ``env``.

    A name given twice keeps its last entry, as in Kubernetes. The data is sorted
    by name; the kept entries keep their order.
    """
    data: dict[str, str] = {}
    kept: dict[str, dict[str, Any]] = {}
    for entry in entries:
        name = str(entry.get("name"))
        kept.pop(name, None)
        data.pop(name, None)
        if belongs_in_env_secret(entry):
            data[name] = entry.get("value") or ""
        else:
            kept[name] = dict(entry)
    return dict(sorted(data.items())), list(kept.values())


def build_env_secret(
    name: str, labels: Mapping[str, str], data: Mapping[str, str]
) -> dict[str, Any]:
    """Return the lab's immutable environment Secret (``data`` are the plain values)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": dict(labels)},
        "type": "Opaque",
        "immutable": True,
        "data": {
            key: base64.b64encode(value.encode()).decode("ascii") for key, value in data.items()
        },
    }
