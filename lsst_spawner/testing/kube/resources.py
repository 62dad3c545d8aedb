"""The core v1 resource types the emulator serves, and their server-side defaults."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = ["RESOURCES", "ResourceType", "apply_create_defaults", "event_name"]

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    plural: str
    kind: str
    namespaced: bool = True
    status_subresource: bool = False
    # Namespaces (and services) take RFC 1123 labels; the rest take subdomains.
    label_name: bool = False
    # Deleting returns the object (graceful kinds) rather than a Status.
    returns_object_on_delete: bool = False
    # "v1" for the core group, "<group>/v1" for the others (served under /apis/<group>/v1).
    api_version: str = "v1"
    # RBAC objects take path segment names ("system:discovery"), not DNS names.
    path_segment_name: bool = False
    # Discovery, as a 1.3x API server lists these kinds.
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = _ALL_VERBS
    # Subresources served (discovery lists them as "<plural>/<sub>") with their verbs.
    subresources: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()


_STATUS = ("status", ("get", "patch", "update"))


RESOURCES: dict[str, ResourceType] = {
    r.plural: r
    for r in (
        ResourceType(
            "namespaces",
            "Namespace",
            namespaced=False,
            status_subresource=True,
            label_name=True,
            returns_object_on_delete=True,
            short_names=("ns",),
            verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
            subresources=(("finalize", ("update",)), _STATUS),
        ),
        ResourceType(
            "pods",
            "Pod",
            status_subresource=True,
            returns_object_on_delete=True,
            short_names=("po",),
            categories=("all",),
            subresources=(
                ("attach", ("create", "get")),
                ("exec", ("create", "get")),
                ("log", ("get",)),
                ("portforward", ("create", "get")),
                _STATUS,
            ),
        ),
        ResourceType(
            "nodes",
            "Node",
            namespaced=False,
            status_subresource=True,
            short_names=("no",),
            subresources=(_STATUS,),
        ),
        ResourceType("configmaps", "ConfigMap", short_names=("cm",)),
        ResourceType("secrets", "Secret"),
        ResourceType(
            "services",
            "Service",
            status_subresource=True,
            label_name=True,
            short_names=("svc",),
            categories=("all",),
            subresources=(_STATUS,),
        ),
        ResourceType("events", "Event", short_names=("ev",)),
        ResourceType(
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            status_subresource=True,
            short_names=("pvc",),
            subresources=(_STATUS,),
        ),
    )
}


def event_name(involved_name: str, when: float | None = None) -> str:
    """An Event's name as client-go's recorder makes it: ``<object>.<hex nanoseconds>``.

    Names in one namespace then sort in the order the events happened, which is the
    order a cluster lists them in (etcd returns keys sorted).
    """
    global _last_event_nanos
    nanos = time.time_ns() if when is None else int(when * 1_000_000_000)
    if when is None:  # two events in one clock tick still get distinct, ordered names
        nanos = _last_event_nanos = max(nanos, _last_event_nanos + 1)
    return f"{involved_name}.{nanos:x}"


_last_event_nanos = 0


def _image_pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    return "Always" if ":" not in tail or tail.endswith(":latest") else "IfNotPresent"


def _qos_class(spec: dict[str, Any]) -> str:
    containers = spec.get("containers") or []
    resources = [c.get("resources") or {} for c in containers]
    if all(not r.get("requests") and not r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        for res in ("cpu", "memory"):
            if res not in limits or requests.get(res, limits[res]) != limits[res]:
                return "Burstable"
    return "Guaranteed"


def apply_create_defaults(resource: str, obj: dict[str, Any], next_cluster_ip: Any) -> None:
    """Fill in the defaults the API server's strategies add on create (a useful subset)."""
    if resource == "pods":
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
        spec.setdefault("securityContext", {})
        spec.setdefault("enableServiceLinks", True)
        for group in ("initContainers", "containers"):
            for container in spec.get(group) or []:
                container.setdefault("imagePullPolicy", _image_pull_policy(container["image"]))
                container.setdefault("terminationMessagePath", "/dev/termination-log")
                container.setdefault("terminationMessagePolicy", "File")
                container.setdefault("resources", {})
                for port in container.get("ports") or []:
                    port.setdefault("protocol", "TCP")
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}
    elif resource == "namespaces":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj["status"] = {"phase": "Active"}
    elif resource == "secrets":
        obj.setdefault("type", "Opaque")
    elif resource == "services":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("clusterIP") != "None":
            spec["clusterIP"] = next_cluster_ip()
            spec["clusterIPs"] = [spec["clusterIP"]]
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        obj["status"] = {"loadBalancer": {}}
    elif resource == "persistentvolumeclaims":
        # Modelled as a dynamic provisioner with immediate binding.
        spec = obj.setdefault("spec", {})
        spec.setdefault("volumeMode", "Filesystem")
        spec.setdefault("storageClassName", "standard")
        spec.setdefault("volumeName", f"pvc-{obj['metadata']['uid']}")
        obj["status"] = {
            "phase": "Bound",
            "accessModes": spec.get("accessModes", []),
            "capacity": (spec.get("resources") or {}).get("requests", {}),
        }
    elif resource == "events":
        # The API serializes these even when unset; KubeSpawner indexes them directly.
        obj.setdefault("eventTime", None)
        obj.setdefault("firstTimestamp", None)
        obj.setdefault("lastTimestamp", None)
        obj.setdefault("count", 1)
        obj.setdefault("type", "Normal")
        obj.setdefault("reportingComponent", "")
        obj.setdefault("reportingInstance", "")


NETWORKING_GROUP = "networking.k8s.io"

#: networking.k8s.io/v1 kinds the emulator stores (and enforces nothing with: it has no
#: network plugin; :func:`lsst_spawner.netpol.may_connect` answers what they allow).
NETWORKING_RESOURCES: dict[str, ResourceType] = {
    "networkpolicies": ResourceType(
        "networkpolicies", "NetworkPolicy", api_version=f"{NETWORKING_GROUP}/v1"
    )
}
