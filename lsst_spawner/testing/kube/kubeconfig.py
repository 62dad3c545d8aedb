"""Kubeconfig files pointing at the emulator (plain HTTP on loopback)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

__all__ = ["kubeconfig_dict", "write_kubeconfig"]


def kubeconfig_dict(
    url: str, namespace: str = "default", name: str = "lsst-emulator"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": name, "user": {"token": "emulator-token"}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
        ],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(path: str | os.PathLike[str], url: str, namespace: str = "default") -> Path:
    """Write a kubeconfig for ``url`` to ``path`` (mode 0600) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(kubeconfig_dict(url, namespace), sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(target)
    return target
