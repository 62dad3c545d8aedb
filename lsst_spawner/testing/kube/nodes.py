"""The emulator's nodes: ``Node`` objects as a kubelet registers them, and the scheduler's rules.

A :class:`FakeNode` is registered by the process kubelet as a v1 ``Node``
(cluster-scoped) with its labels, taints, a ``Ready`` condition, capacity and
``status.images``. The images list is what a real kubelet reports: each entry
has the image's ``names`` (``repo@sha256:...`` and ``repo:tag``) and
``sizeBytes``, sorted by size, largest first, and capped at
``nodeStatusMaxImages`` (50 unless the kubelet is configured otherwise): a node
with more images than that reports only the 50 largest.

The scheduling helpers follow kube-scheduler: ``nodeSelector``, required and
preferred node affinity (``In``, ``NotIn``, ``Exists``, ``DoesNotExist``, ``Gt``,
``Lt``), taints with ``NoSchedule``/``NoExecute`` effects that the pod must
tolerate (``PreferNoSchedule`` only lowers a node's score), and
``spec.unschedulable``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...images.prepull import tolerates

__all__ = [
    "DEFAULT_MAX_IMAGES",
    "FakeNode",
    "NodeImage",
    "affinity_score",
    "fits_node",
    "grant_hub_cluster_rules",
    "image_digest",
    "node_body",
    "node_has_image",
    "record_image",
    "status_images",
]

#: The kubelet's default ``nodeStatusMaxImages``.
DEFAULT_MAX_IMAGES = 50


@dataclass
class NodeImage:
    """An image on a node, as ``status.images`` lists it."""

    names: list[str]
    size_bytes: int

    def as_status(self) -> dict[str, Any]:
        return {"names": list(self.names), "sizeBytes": self.size_bytes}


@dataclass
class FakeNode:
    """A node of the emulator; see the module's docstring."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    max_pods: int = 110
    #: ``spec.taints``: ``{"key", "value", "effect"}`` dicts.
    taints: list[dict[str, str]] = field(default_factory=list)
    #: Images already on the node when it registers.
    images: list[NodeImage] = field(default_factory=list)
    #: The kubelet's ``nodeStatusMaxImages``: how many images ``status.images`` lists.
    max_images: int = DEFAULT_MAX_IMAGES
    unschedulable: bool = False


def node_body(node: FakeNode, now: str) -> dict[str, Any]:
    """The ``Node`` object a kubelet registers for ``node``."""
    labels = {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        **node.labels,
    }
    spec: dict[str, Any] = {}
    if node.taints:
        spec["taints"] = [dict(t) for t in node.taints]
    if node.unschedulable:
        spec["unschedulable"] = True
    capacity = {"cpu": "8", "memory": "32Gi", "pods": str(node.max_pods)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name, "labels": labels},
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": node.name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": hashlib.sha256(node.name.encode()).hexdigest()[:36],
                "containerRuntimeVersion": "containerd://1.7.0",
                "kernelVersion": "6.1.0",
                "kubeProxyVersion": "v1.30.0",
                "kubeletVersion": "v1.30.0",
                "machineID": hashlib.sha256(node.name.encode()).hexdigest()[:32],
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "systemUUID": hashlib.sha256(node.name.encode()).hexdigest()[:36],
            },
            "images": status_images(node),
        },
    }


def status_images(node: FakeNode) -> list[dict[str, Any]]:
    """``status.images``: largest first, at most ``node.max_images`` (the kubelet's rule)."""
    ordered = sorted(node.images, key=lambda image: -image.size_bytes)
    return [image.as_status() for image in ordered[: node.max_images]]


def image_digest(reference: str, known: str = "") -> str:
    """The digest a node records for ``reference``: its own ``@sha256:``, else ``known``,
    else one derived from the name (the process kubelet has no image to hash)."""
    if "@" in reference:
        return reference.rsplit("@", 1)[1]
    return known or "sha256:" + hashlib.sha256(reference.encode()).hexdigest()


def _names(reference: str, digest: str) -> list[str]:
    rest = reference.split("@", 1)[0]
    tail = rest.rsplit("/", 1)[-1]
    repository = rest.rsplit(":", 1)[0] if ":" in tail else rest
    names = [f"{repository}@{digest}"]
    if ":" in tail:
        names.append(rest)
    return names


def node_has_image(node: FakeNode, reference: str) -> bool:
    """Whether ``reference`` (``repo:tag``, ``repo@digest`` or both) is on the node.

    A reference with a digest matches by digest, as the runtime resolves it.
    """
    if "@" in reference:
        repository = reference.split("@", 1)[0]
        tail = repository.rsplit("/", 1)[-1]
        if ":" in tail:
            repository = repository.rsplit(":", 1)[0]
        wanted = f"{repository}@{reference.rsplit('@', 1)[1]}"
    else:
        wanted = reference
    return any(wanted in image.names for image in node.images)


def record_image(node: FakeNode, reference: str, size_bytes: int, digest: str) -> None:
    """Put ``reference`` on the node (merging names with an image of the same digest)."""
    names = _names(reference, digest)
    for image in node.images:
        if names[0] in image.names:
            image.names.extend(n for n in names if n not in image.names)
            return
    node.images.append(NodeImage(names, size_bytes))


def _expression_matches(labels: Mapping[str, str], expression: Mapping[str, Any]) -> bool:
    key, operator = expression.get("key", ""), expression.get("operator", "")
    values = list(expression.get("values") or [])
    value = labels.get(key)
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and values:
        try:
            have, bound = int(value), int(values[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def _term_matches(node: Mapping[str, Any], term: Mapping[str, Any]) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    name = (node.get("metadata") or {}).get("name", "")
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term matches nothing
    return all(_expression_matches(labels, e) for e in expressions) and all(
        _expression_matches({"metadata.name": name}, f) for f in fields
    )


def _node_affinity(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return ((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}


def fits_node(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """Whether the scheduler may put ``pod`` on ``node`` (selector, affinity, taints)."""
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    node_spec = node.get("spec") or {}
    if node_spec.get("unschedulable"):
        return False
    selector = spec.get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return False
    required = _node_affinity(pod).get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms")
    if terms is not None and not any(_term_matches(node, term) for term in terms):
        return False
    tolerations = spec.get("tolerations") or []
    return all(
        tolerates(tolerations, taint)
        for taint in node_spec.get("taints") or []
        if taint.get("effect") in ("NoSchedule", "NoExecute")
    )


def affinity_score(pod: Mapping[str, Any], node: Mapping[str, Any]) -> int:
    """The node's score from the pod's preferred node affinity, less untolerated soft taints."""
    score = 0
    preferred = _node_affinity(pod).get("preferredDuringSchedulingIgnoredDuringExecution") or []
    for item in preferred:
        if _term_matches(node, item.get("preference") or {}):
            score += int(item.get("weight") or 0)
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") == "PreferNoSchedule" and not tolerates(tolerations, taint):
            score -= 1
    return score


def grant_hub_cluster_rules(
    emulator: Any, namespace: str, rules: list[dict[str, Any]], name: str = "lsst-spawner-hub"
) -> None:
    """Bind the hub's service account in ``namespace`` to a ClusterRole of ``rules``
    (such as the prepuller's ``list nodes``, which no namespaced Role can grant)."""
    from .hub_role import HUB_SERVICE_ACCOUNT
    from .rbac import RBAC_GROUP

    role = {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [dict(rule) for rule in rules],
    }
    binding = {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{name}-{namespace}"},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
        "subjects": [
            {"kind": "ServiceAccount", "name": HUB_SERVICE_ACCOUNT, "namespace": namespace}
        ],
    }

    def grant() -> None:
        emulator.access.set_object("clusterroles", None, role)
        emulator.access.set_object("clusterrolebindings", None, binding)

    emulator.call(grant)
