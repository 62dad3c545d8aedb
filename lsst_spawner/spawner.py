"""LSSTSpawner: KubeSpawner for the science platform. Traits and hooks only; work is delegated."""

from __future__ import annotations

from kubespawner import KubeSpawner

from .config import CheckedConfigurable
from .lab.traits import LabTraits

__all__ = ["LSSTSpawner"]


class LSSTSpawner(LabTraits, CheckedConfigurable, KubeSpawner):  # type: ignore[misc]
    """Spawns science platform labs on Kubernetes as the user's own POSIX identity.

    Its own traits come from mixins, one per capability, listed before
    ``CheckedConfigurable`` in the bases; each is documented in the trait
    reference and checked by ``lsst-spawner check-config``.
    """

    # --- image menu, options form and user options ---------------------------
    # (lsst_spawner.images, lsst_spawner.form)

    # --- lab objects: identity, NSS files, secrets, volumes, sizes -----------
    # (lsst_spawner.lab)

    # --- Kubernetes I/O, progress and cleanup ---------------------------------
    # (lsst_spawner.kube)
