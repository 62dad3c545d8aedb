"""The hub's identity in the emulator: a service account bound to a Role (z2jh's by default).

The test kit's deployments (the ``kube_api`` fixture, the demo, the benchmarks,
``python -m lsst_spawner.testing.kube``) give the hub what the Zero to
JupyterHub chart gives it: the service account ``hub`` in the lab namespace,
bound by a RoleBinding to the Role ``hub`` with
:data:`~lsst_spawner.rbac.Z2JH_HUB_ROLE_RULES` (see its source there).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...rbac import Z2JH_HUB_ROLE_RULES

if TYPE_CHECKING:
    from .server import KubeEmulator

__all__ = [
    "HUB_ROLE_NAME",
    "HUB_SERVICE_ACCOUNT",
    "Z2JH_HUB_ROLE_RULES",
    "bind_hub",
    "hub_user_name",
    "write_hub_kubeconfig",
]

#: The names z2jh gives them by default.
HUB_SERVICE_ACCOUNT = "hub"
HUB_ROLE_NAME = "hub"


def hub_user_name(namespace: str) -> str:
    return f"system:serviceaccount:{namespace}:{HUB_SERVICE_ACCOUNT}"


def bind_hub(
    emulator: KubeEmulator,
    namespace: str,
    rules: Iterable[Mapping[str, Any]] = Z2JH_HUB_ROLE_RULES,
) -> str:
    """Bind the hub's service account in ``namespace`` to a Role of ``rules``; return its token.

    Safe from any thread (runs on the emulator's loop).
    """
    rules = [dict(rule) for rule in rules]
    return emulator.call(
        lambda: emulator.access.grant_role(
            namespace, HUB_ROLE_NAME, rules, service_account=(namespace, HUB_SERVICE_ACCOUNT)
        )
    )


def write_hub_kubeconfig(
    emulator: KubeEmulator,
    path: str | os.PathLike[str],
    namespace: str,
    rules: Iterable[Mapping[str, Any]] = Z2JH_HUB_ROLE_RULES,
) -> Path:
    """A kubeconfig for the hub, bound to a Role of ``rules`` (default: z2jh's hub Role)."""
    token = bind_hub(emulator, namespace, rules)
    return emulator.write_kubeconfig(path, namespace, token=token)
