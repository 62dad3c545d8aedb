"""RBAC and workload objects of operator mode (``lsst-spawner manifests --operator``).

The hub's Role in this mode names only LabServers, Secrets (create and delete: the
hub never reads one back) and Events; the operator's Role holds what building labs
needs, in the lab namespace, and its ClusterRole what kopf reads cluster-wide.
"""

from __future__ import annotations

from typing import Any

from .._version import __version__
from ..crd.models import GROUP
from ..rbac import (
    PREPULL_NODES_RULE,
    features_for_config,
    hub_role_for_config,
    operator_mode,
    role_manifest,
)
from .build import MENU_DB_URL_ENV

__all__ = [
    "DEFAULT_OPERATOR_IMAGE",
    "HUB_OPERATOR_ROLE_RULES",
    "MENU_DB_SECRET",
    "OPERATOR_CLUSTER_RULES",
    "OPERATOR_ROLE_RULES",
    "PEERING_NAME",
    "hub_role_for_mode",
    "kopf_peering_crd",
    "operator_manifests",
]

#: The kopf peering object the replicas share.
PEERING_NAME = "lsst-spawner"
#: The operator's image: any image with ``pip install lsst-spawner[operator]``.
DEFAULT_OPERATOR_IMAGE = f"lsst-spawner:{__version__}"

#: The Secret (key ``url``) the operator reads the lab menu database's URL from.
MENU_DB_SECRET = "lsst-spawner-menu-db"  # noqa: S105 - a Secret's name

#: The hub's Role in operator mode: no pods, no reading Secrets. ``get`` on LabTemplates
#: reads the prepull state the operator publishes in their status (docs/operator.md).
HUB_OPERATOR_ROLE_RULES: list[dict[str, list[str]]] = [
    {
        "apiGroups": [GROUP],
        "resources": ["labservers"],
        "verbs": ["get", "list", "watch", "create", "delete"],
    },
    {"apiGroups": [GROUP], "resources": ["labtemplates"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
]

#: The operator's Role in the lab namespace.
OPERATOR_ROLE_RULES: list[dict[str, list[str]]] = [
    {
        "apiGroups": [GROUP],
        "resources": ["labservers"],
        "verbs": ["get", "list", "watch", "patch", "update"],
    },
    {"apiGroups": [GROUP], "resources": ["labservers/status"], "verbs": ["get", "patch"]},
    {"apiGroups": [GROUP], "resources": ["labtemplates"], "verbs": ["get", "list", "watch"]},
    # The prepuller publishes what the nodes hold here, for the hub to read.
    {"apiGroups": [GROUP], "resources": ["labtemplates/status"], "verbs": ["patch"]},
    {
        "apiGroups": [""],
        "resources": ["pods", "secrets"],
        "verbs": ["get", "list", "watch", "create", "delete"],
    },
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "list", "watch", "create", "patch"],
    },
    {
        "apiGroups": ["kopf.dev"],
        "resources": ["kopfpeerings"],
        "verbs": ["get", "list", "watch", "patch"],
    },
]

#: What kopf reads cluster-wide (resource discovery, the namespaces it serves) and the nodes
#: the prepuller lists (cluster-scoped: no Role can grant them).
OPERATOR_CLUSTER_RULES: list[dict[str, list[str]]] = [
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["list", "watch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
    dict(PREPULL_NODES_RULE),
]


def _role(kind: str, name: str, namespace: str | None, rules: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {"app.kubernetes.io/part-of": "lsst-spawner"},
    }
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "rules": [dict(rule) for rule in rules],
    }


def _binding(
    kind: str, name: str, namespace: str | None, account: tuple[str, str]
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": f"{kind}Binding",
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account[1], "namespace": account[0]}],
    }


def kopf_peering_crd(
    kind: str = "KopfPeering", plural: str = "kopfpeerings", scope: str = "Namespaced"
) -> dict[str, Any]:
    """kopf's peering CRD (``kopf.dev/v1``): by default the namespaced ``KopfPeering``,
    which ``--peering`` needs; ``ClusterKopfPeering`` is the cluster-scoped one."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "scope": scope,
            "group": "kopf.dev",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def operator_manifests(
    *,
    namespace: str,
    hub_namespace: str,
    image: str,
    hub_service_account: str = "hub",
    replicas: int = 2,
) -> list[dict[str, Any]]:
    """The operator's ServiceAccount, Roles, bindings, peering and Deployment; the hub's Role.

    The CRDs (:func:`lsst_spawner.crd.build_crds`, :func:`kopf_peering_crd`) are
    applied first; the LabTemplate (``template-from-config``) after.
    """
    account = "lsst-spawner-operator"
    labels = {"app.kubernetes.io/name": account, "app.kubernetes.io/part-of": "lsst-spawner"}
    container = {
        "name": "operator",
        "image": image,
        "args": ["lsst-spawner", "operator", "--namespace", namespace, "--peering", PEERING_NAME],
        "ports": [{"name": "healthz", "containerPort": 8080}],
        # The lab menu database (for LabTemplates with spec.labMenu), from a Secret.
        "env": [
            {
                "name": MENU_DB_URL_ENV,
                "valueFrom": {
                    "secretKeyRef": {"name": MENU_DB_SECRET, "key": "url", "optional": True}
                },
            }
        ],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "healthz"},
            "initialDelaySeconds": 30,
            "periodSeconds": 30,
            "failureThreshold": 3,
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": namespace, "labels": labels},
        },
        _role("Role", account, namespace, OPERATOR_ROLE_RULES),
        _binding("Role", account, namespace, (namespace, account)),
        _role("ClusterRole", account, None, OPERATOR_CLUSTER_RULES),
        _binding("ClusterRole", account, None, (namespace, account)),
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfPeering",
            "metadata": {"name": PEERING_NAME, "namespace": namespace},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": account, "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": account,
                        "containers": [container],
                    },
                },
            },
        },
        _role("Role", "lsst-spawner-hub-operator-mode", namespace, HUB_OPERATOR_ROLE_RULES),
        _binding(
            "Role",
            "lsst-spawner-hub-operator-mode",
            namespace,
            (hub_namespace, hub_service_account),
        ),
    ]


def hub_role_for_mode(config: Any) -> dict[str, Any]:
    """The hub's minimal Role for ``config``: operator mode's (LabServers, no pods, no reading
    Secrets, whatever else the config turns on) with ``LSSTSpawner.lab_backend =
    "operator"``, else :func:`~lsst_spawner.rbac.hub_role_for_config`'s. What ``rbac``,
    ``doctor`` and ``check-config`` read."""
    if operator_mode(config):
        _, namespace = features_for_config(config)
        return role_manifest(HUB_OPERATOR_ROLE_RULES, namespace=namespace)
    return hub_role_for_config(config)
