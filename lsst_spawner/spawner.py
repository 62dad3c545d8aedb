"""LSSTSpawner: KubeSpawner for the science platform. Traits and hooks only; work is delegated."""

from __future__ import annotations

from kubespawner import KubeSpawner

from .config import CheckedConfigurable

__all__ = ["LSSTSpawner"]


class LSSTSpawner(CheckedConfigurable, KubeSpawner):  # type: ignore[misc]
    """Spawns science platform labs on Kubernetes as the user's own POSIX identity."""
