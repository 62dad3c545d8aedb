"""Service names inside OCI pods: an ``/etc/hosts`` the kubelet writes, and service variables.

There is no kube-proxy and no cluster DNS here, and cluster IPs are not routed.
So a Service resolves to the loopback address of a running pod its selector
matches (ready pods first), under the names cluster DNS would answer:
``name``, ``name.namespace``, ``name.namespace.svc`` and
``name.namespace.svc.cluster.local`` (the short name only in the Service's
namespace). Headless services and services with a cluster IP resolve alike;
the ports are the pods' own, so a Service whose ``targetPort`` differs from its
``port`` is reachable only on the target port. The pod's own name resolves to
its own address. A Service without a running pod behind it has no entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .store import ObjectStore

__all__ = ["hosts_file", "service_addresses", "service_env"]

DOMAIN = "cluster.local"


def _matches(selector: Mapping[str, str], pod: Mapping[str, Any]) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def service_addresses(store: ObjectStore) -> dict[tuple[str, str], str]:
    """``(namespace, service) -> address`` of a running pod behind it."""
    pods_by_ns: dict[str, list[dict[str, Any]]] = {}
    for (namespace, _), pod in store.objects["pods"].items():
        status = pod.get("status") or {}
        if status.get("podIP") and not pod["metadata"].get("deletionTimestamp"):
            pods_by_ns.setdefault(namespace, []).append(pod)
    found: dict[tuple[str, str], str] = {}
    for (namespace, name), service in store.objects["services"].items():
        selector = (service.get("spec") or {}).get("selector") or {}
        behind = [p for p in pods_by_ns.get(namespace, []) if _matches(selector, p)]

        def ready(pod: Mapping[str, Any]) -> bool:
            conditions = pod["status"].get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        behind.sort(key=lambda p: (not ready(p), p["metadata"]["name"]))
        if behind:
            found[(namespace, name)] = behind[0]["status"]["podIP"]
    return found


def hosts_file(store: ObjectStore, namespace: str, pod_name: str, pod_ip: str) -> str:
    """The ``/etc/hosts`` of a pod in ``namespace``."""
    lines = [
        "# Kubernetes-managed hosts file (the lsst_spawner OCI kubelet).",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{pod_ip}\t{pod_name}",
    ]
    for (ns, name), address in sorted(service_addresses(store).items()):
        names = [f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.{DOMAIN}"]
        if ns == namespace:
            names.insert(0, name)
        lines.append(f"{address}\t{' '.join(names)}")
    return "\n".join(lines) + "\n"


def service_env(store: ObjectStore, namespace: str, api_host: str, api_port: int) -> dict[str, str]:
    """The Docker-links-style variables of the API server and the namespace's services."""
    env = _links("KUBERNETES", api_host, api_port, "https")
    addresses = service_addresses(store)
    for (ns, name), service in store.objects["services"].items():
        ports = (service.get("spec") or {}).get("ports") or []
        address = addresses.get((ns, name))
        if ns != namespace or not ports or address is None:
            continue
        prefix = name.upper().replace("-", "_")
        first = ports[0]
        env.update(_links(prefix, address, int(first.get("targetPort") or first["port"]), None))
        for port in ports:
            if port.get("name"):
                key = f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"
                env[key] = str(port.get("targetPort") or port["port"])
    return env


def _links(prefix: str, host: str, port: int, port_name: str | None) -> dict[str, str]:
    tcp = f"{prefix}_PORT_{port}_TCP"
    env = {
        f"{prefix}_SERVICE_HOST": host,
        f"{prefix}_SERVICE_PORT": str(port),
        f"{prefix}_PORT": f"tcp://{host}:{port}",
        tcp: f"tcp://{host}:{port}",
        f"{tcp}_PROTO": "tcp",
        f"{tcp}_PORT": str(port),
        f"{tcp}_ADDR": host,
    }
    if port_name:
        env[f"{prefix}_SERVICE_PORT_{port_name.upper()}"] = str(port)
    return env
