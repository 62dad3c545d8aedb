"""The lab container's environment: literal in the pod, long values by reference to the Secret.

A lab has one object besides its pod, its Secret (the Zero to JupyterHub hub
Role grants Secrets, not ConfigMaps), so a spawn writes one object more than
KubeSpawner. The Secret cannot be read with ``envFrom``: that turns *every* key
of its source into a variable, so the NSS files, the git credentials and
file-only site secrets would be in every process's environment. So each
variable is an ``env`` entry of the container.

KubeSpawner's pod reflector keeps every lab pod in the hub's memory, parsed.
There a ``valueFrom.secretKeyRef`` entry costs about 450 bytes more than a
short literal one (measured on the golden pods: 727 against 285 bytes per
variable), so a plain value stays literal unless it is longer than
:data:`INLINE_MAX` characters (``EXTERNAL_GROUPS`` of a user in many groups, a
long site value); such a value is the Secret's key ``env.<NAME>``, read by a
``secretKeyRef``. A value is never moved when a reference could not give the
container the same value:

- the entry has ``valueFrom`` already (a ``secretKeyRef``, ``fieldRef``, ...);
- its value contains ``$(`` or ``$$``: Kubernetes expands ``$(VAR)`` and
  unescapes ``$$`` in ``value``, never in a referenced key's data;
- its name cannot be part of a Secret key (``[-._a-zA-Z0-9]``).

Order matters for ``$(VAR)``: Kubernetes expands a reference only to a variable
defined *earlier* in ``env``. The plain variables come first, sorted by name
(their values refer to nothing), then the other entries in the order they were
given, so a ``$(VAR)`` value sees every plain variable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ENV_KEY_PREFIX", "INLINE_MAX", "env_key", "is_plain", "place_env"]

#: Prefix of the lab Secret's keys that hold env values (``env.EXTERNAL_GROUPS``).
ENV_KEY_PREFIX = "env."
#: Longest plain value kept literal in the pod; longer ones are read from the Secret.
INLINE_MAX = 512
#: A Secret key (the API server's rule).
_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")


def env_key(name: str) -> str:
    """The lab Secret's key for the value of the env variable ``name``."""
    return ENV_KEY_PREFIX + name


def is_plain(entry: Mapping[str, Any]) -> bool:
    """Whether a ``secretKeyRef`` to ``env.<name>`` would give the container this entry exactly."""
    if entry.get("valueFrom") is not None:
        return False
    name = entry.get("name")
    if not isinstance(name, str) or not name or not _KEY.fullmatch(env_key(name)):
        return False
    value = entry.get("value")
    if value is None:
        return True
    return isinstance(value, str) and "$(" not in value and "$$" not in value


def place_env(
    entries: Iterable[Mapping[str, Any]], secret_name: str
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The Secret's ``env.`` data and the container's ``env`` for ``entries``.

    A name given twice keeps its last entry, as in Kubernetes. The plain
    entries come first, sorted by name, each literal or (over
    :data:`INLINE_MAX` characters) a ``secretKeyRef`` to ``secret_name``; the
    others follow in their order.
    """
    plain: dict[str, str] = {}
    kept: dict[str, dict[str, Any]] = {}
    for entry in entries:
        name = str(entry.get("name"))
        kept.pop(name, None)
        plain.pop(name, None)
        if is_plain(entry):
            plain[name] = entry.get("value") or ""
        else:
            kept[name] = dict(entry)
    data: dict[str, str] = {}
    env: list[dict[str, Any]] = []
    for name, value in sorted(plain.items()):
        if len(value) <= INLINE_MAX:
            env.append({"name": name, "value": value})
            continue
        data[env_key(name)] = value
        ref = {"name": secret_name, "key": env_key(name)}
        env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
    return data, [*env, *kept.values()]
