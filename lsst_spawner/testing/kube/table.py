"""``meta.k8s.io`` Table responses: the columns a 1.3x API server prints for each kind.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` on ``get``
and prints the server's rows, so these columns and cells follow the API server's
printers (``pkg/printers/internalversion``): the server always fills the wide
(priority 1) cells and kubectl hides them unless ``-o wide``.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from typing import Any

from .status import ApiError

__all__ = ["NAME_COLUMN", "PRINTED", "human_duration", "negotiate", "since", "to_table"]

Row = list[Any]
NAME_COLUMN = _NAME = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. Is required when creating "
    "resources, although some resources may allow a client to request the generation of "
    "an appropriate name automatically. Name is primarily intended for creation idempotence "
    "and configuration definition. Cannot be updated.",
}
_AGE = {
    "name": "Age",
    "type": "string",
    "description": "CreationTimestamp is a timestamp representing the server time when this "
    "object was created.",
}
_TABLE_VERSIONS = ("v1", "v1beta1")
_ACCEPTABLE = ("application/json", "application/*", "*/*", "")


def _column(name: str, description: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": kind, "format": ""}
    column["description"] = description
    if priority:
        column["priority"] = priority
    return column


def negotiate(accept: str) -> str | None:
    """The Table apiVersion to answer with, or None for the plain object (JSON).

    Media types are tried in the order given, as the API server does; an Accept
    header naming nothing the emulator can produce is a 406.
    """
    if not accept.strip():
        return None
    for entry in accept.split(","):
        parts = [p.strip() for p in entry.split(";")]
        media, params = parts[0].lower(), dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        if params.get("as") == "Table":
            if (
                media == "application/json"
                and params.get("g") == "meta.k8s.io"
                and params.get("v") in _TABLE_VERSIONS
            ):
                return f"meta.k8s.io/{params['v']}"
            continue
        if "as" in params:
            continue  # PartialObjectMetadata and other conversions: not served
        if media in _ACCEPTABLE:
            return None
    raise ApiError(
        406,
        "only the following media types are accepted: application/json, "
        "application/json;as=Table;v=v1;g=meta.k8s.io",
        "NotAcceptable",
    )


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def since(timestamp: str | None, now: float) -> str:
    """How long before ``now`` an RFC 3339 timestamp was, as kubectl's Age shows it."""
    if not timestamp:
        return "<unknown>"
    when = calendar.timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S"))
    return human_duration(now - when)


def _none(value: Any) -> Any:
    return value if value not in (None, "") else "<none>"


def _labels(selector: dict[str, str] | None) -> str:
    if not selector:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


# -- pods --------------------------------------------------------------------------------


def _pod_row(pod: dict[str, Any], now: float) -> Row:
    spec, status, meta = pod.get("spec") or {}, pod.get("status") or {}, pod["metadata"]
    restarts, ready, last_restart = 0, 0, ""
    reason = status.get("reason") or status.get("phase") or ""
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}

    def note_restart(container: dict[str, Any]) -> None:
        nonlocal restarts, last_restart
        restarts += int(container.get("restartCount") or 0)
        finished = ((container.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        if container.get("restartCount") and finished and finished > last_restart:
            last_restart = finished

    initializing = False
    init_specs = spec.get("initContainers") or []
    for index, container in enumerate(status.get("initContainerStatuses") or []):
        note_restart(container)
        state = container.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and terminated.get("exitCode") == 0:
            continue
        initializing = True
        if terminated is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode')}"
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        break
    if not initializing or conditions.get("Initialized") == "True":
        restarts, last_restart = 0, ""
        has_running = False
        for container in reversed(status.get("containerStatuses") or []):
            note_restart(container)
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                signal = terminated.get("signal")
                reason = f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode')}"
            elif container.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if "Ready" in conditions else "NotReady"
    if meta.get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    restarts_cell = str(restarts)
    if restarts and last_restart:
        restarts_cell = f"{restarts} ({since(last_restart, now)} ago)"
    ips = [p.get("ip") for p in status.get("podIPs") or []] or [status.get("podIP")]
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        passed = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
        gates_cell = f"{passed}/{len(gates)}"
    return [
        meta["name"],
        f"{ready}/{len(spec.get('containers') or [])}",
        reason,
        restarts_cell,
        since(meta.get("creationTimestamp"), now),
        _none(ips[0]),
        _none(spec.get("nodeName")),
        _none(status.get("nominatedNodeName")),
        gates_cell,
    ]


# -- services, PVCs, events and the simple kinds ------------------------------------------


def _external_ip(spec: dict[str, Any], status: dict[str, Any]) -> str:
    kind, external = spec.get("type") or "ClusterIP", spec.get("externalIPs") or []
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if kind == "LoadBalancer":
        ingress = [
            i.get("ip") or i.get("hostname")
            for i in (status.get("loadBalancer") or {}).get("ingress") or []
        ]
        found = [*ingress, *external]
        return ",".join(found) if found else "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def _service_row(svc: dict[str, Any], now: float) -> Row:
    spec = svc.get("spec") or {}
    ports = []
    for port in spec.get("ports") or []:
        protocol = port.get("protocol", "TCP")
        if port.get("nodePort"):
            ports.append(f"{port['port']}:{port['nodePort']}/{protocol}")
        else:
            ports.append(f"{port.get('port')}/{protocol}")
    cluster_ips = spec.get("clusterIPs") or [spec.get("clusterIP")]
    return [
        svc["metadata"]["name"],
        spec.get("type") or "ClusterIP",
        _none(cluster_ips[0]),
        _external_ip(spec, svc.get("status") or {}),
        ",".join(ports) or "<none>",
        since(svc["metadata"].get("creationTimestamp"), now),
        _labels(spec.get("selector")),
    ]


_ACCESS_MODES = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}


def _pvc_row(pvc: dict[str, Any], now: float) -> Row:
    spec, status, meta = pvc.get("spec") or {}, pvc.get("status") or {}, pvc["metadata"]
    phase = "Terminating" if meta.get("deletionTimestamp") else status.get("phase", "")
    capacity = modes = ""
    if spec.get("volumeName"):
        held = status.get("accessModes") or []
        modes = ",".join(short for mode, short in _ACCESS_MODES.items() if mode in held)
        capacity = str((status.get("capacity") or {}).get("storage", "0"))
    vac = status.get("currentVolumeAttributesClassName") or spec.get("volumeAttributesClassName")
    return [
        meta["name"],
        phase,
        spec.get("volumeName", ""),
        capacity,
        modes,
        spec.get("storageClassName") or "",
        vac or "<unset>",
        since(meta.get("creationTimestamp"), now),
        spec.get("volumeMode") or "<unset>",
    ]


def _event_row(event: dict[str, Any], now: float) -> Row:
    first = event.get("firstTimestamp") or event.get("eventTime")
    last = event.get("lastTimestamp") or first
    count = event.get("count") or 1
    if event.get("series"):
        last = event["series"].get("lastObservedTime") or last
        count = event["series"].get("count") or count
    involved = event.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    instance = source.get("host") or event.get("reportingInstance") or ""
    source_cell = f"{component}, {instance}" if component and instance else component
    return [
        since(last, now),
        event.get("type", ""),
        event.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        source_cell,
        str(event.get("message", "")).strip(),
        since(first, now),
        int(count),
        event["metadata"]["name"],
    ]


def _configmap_row(cm: dict[str, Any], now: float) -> Row:
    size = len(cm.get("data") or {}) + len(cm.get("binaryData") or {})
    return [cm["metadata"]["name"], size, since(cm["metadata"].get("creationTimestamp"), now)]


def _secret_row(secret: dict[str, Any], now: float) -> Row:
    meta = secret["metadata"]
    return [
        meta["name"],
        secret.get("type", "Opaque"),
        len(secret.get("data") or {}),
        since(meta.get("creationTimestamp"), now),
    ]


def _namespace_row(ns: dict[str, Any], now: float) -> Row:
    meta = ns["metadata"]
    phase = (ns.get("status") or {}).get("phase", "")
    return [meta["name"], phase, since(meta.get("creationTimestamp"), now)]


def _node_row(node: dict[str, Any], now: float) -> Row:
    meta, spec, status = node["metadata"], node.get("spec") or {}, node.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    state = (
        ["Unknown"] if ready is None else ["Ready" if ready.get("status") == "True" else "NotReady"]
    )
    if spec.get("unschedulable"):
        state.append("SchedulingDisabled")
    roles = set()
    for key, value in (meta.get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            roles.add(key.split("/", 1)[1])
        elif key == "kubernetes.io/role":
            roles.add(value)
    info = status.get("nodeInfo") or {}

    def address(kind: str) -> str:
        found = [a.get("address") for a in status.get("addresses") or [] if a.get("type") == kind]
        return str(found[0]) if found else "<none>"

    return [
        meta["name"],
        ",".join(state),
        ",".join(sorted(r for r in roles if r)) or "<none>",
        since(meta.get("creationTimestamp"), now),
        info.get("kubeletVersion", ""),
        address("InternalIP"),
        address("ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


_PRINTERS: dict[str, tuple[list[dict[str, Any]], Callable[[dict[str, Any], float], Row]]] = {
    "pods": (
        [
            _NAME,
            _column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
            _column("Status", "The aggregate status of the containers in this pod."),
            _column(
                "Restarts",
                "The number of times the containers in this pod have been restarted and when "
                "the last container in this pod has restarted.",
            ),
            _AGE,
            _column("IP", "podIP address allocated to the pod.", priority=1),
            _column("Node", "NodeName is a request to schedule this pod onto a node.", priority=1),
            _column("Nominated Node", "nominatedNodeName of the pod.", priority=1),
            _column("Readiness Gates", "The readiness gates of the pod.", priority=1),
        ],
        _pod_row,
    ),
    "services": (
        [
            _NAME,
            _column("Type", "type determines how the Service is exposed."),
            _column("Cluster-IP", "clusterIP is the IP address of the service."),
            _column("External-IP", "The external IPs of the service."),
            _column("Port(s)", "The ports that are exposed by this service."),
            _AGE,
            _column("Selector", "Route service traffic to pods with these labels.", priority=1),
        ],
        _service_row,
    ),
    "configmaps": (
        [_NAME, _column("Data", "Number of data entries.", "integer"), _AGE],
        _configmap_row,
    ),
    "secrets": (
        [
            _NAME,
            _column("Type", "The type of the secret."),
            _column("Data", "The number of entries in the secret.", "integer"),
            _AGE,
        ],
        _secret_row,
    ),
    "namespaces": (
        [_NAME, _column("Status", "The status of the namespace."), _AGE],
        _namespace_row,
    ),
    "nodes": (
        [
            _NAME,
            _column("Status", "The status of the node."),
            _column("Roles", "The roles of the node."),
            _AGE,
            _column("Version", "Kubelet Version reported by the node."),
            _column("Internal-IP", "List of addresses reachable to the node.", priority=1),
            _column("External-IP", "List of addresses reachable to the node.", priority=1),
            _column("OS-Image", "OS Image reported by the node.", priority=1),
            _column("Kernel-Version", "Kernel Version reported by the node.", priority=1),
            _column("Container-Runtime", "Container runtime version.", priority=1),
        ],
        _node_row,
    ),
    "persistentvolumeclaims": (
        [
            _NAME,
            _column("Status", "The phase of the claim."),
            _column("Volume", "The volume bound to the claim."),
            _column("Capacity", "The capacity of the bound volume."),
            _column("Access Modes", "The access modes of the bound volume."),
            _column("StorageClass", "The storage class of the claim."),
            _column("VolumeAttributesClass", "The volume attributes class of the claim."),
            _AGE,
            _column("VolumeMode", "The volume mode of the claim.", priority=1),
        ],
        _pvc_row,
    ),
    "events": (
        [
            _column("Last Seen", "The time at which the most recent occurrence was recorded."),
            _column("Type", "Type of this event (Normal, Warning)."),
            _column("Reason", "A short, machine understandable reason for the transition."),
            _column("Object", "The object that this event is about."),
            _column("Subobject", "The field of the object this event is about.", priority=1),
            _column("Source", "The component reporting this event.", priority=1),
            _column("Message", "A human-readable description of the status of this operation."),
            _column("First Seen", "The time at which the event was first recorded.", priority=1),
            _column("Count", "The number of times this event has occurred.", priority=1),
            {**_NAME, "priority": 1},
        ],
        _event_row,
    ),
}


PRINTED = frozenset(_PRINTERS)


def _row_object(obj: dict[str, Any], include: str, version: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": version, "metadata": obj["metadata"]}


def to_table(
    resource: str,
    items: list[dict[str, Any]],
    resource_version: str | None,
    *,
    version: str = "meta.k8s.io/v1",
    include_object: str | None = None,
    now: float | None = None,
    printer: Any = None,
) -> dict[str, Any]:
    """A Table of ``items`` (objects of ``resource``), as the API server builds it.

    ``printer`` is ``(columns, row function)`` for kinds this module does not know
    (a custom resource's printer columns).
    """
    include = include_object or "Metadata"
    if include not in ("None", "Metadata", "Object"):
        raise ApiError.bad_request(
            f'invalid value for includeObject: "{include}": supported values: "None", '
            '"Metadata", "Object"'
        )
    columns, print_row = printer or _PRINTERS[resource]
    when = time.time() if now is None else now
    rows = []
    for obj in items:
        row: dict[str, Any] = {"cells": print_row(obj, when)}
        if (embedded := _row_object(obj, include, version)) is not None:
            row["object"] = embedded
        rows.append(row)
    metadata = {"resourceVersion": resource_version} if resource_version else {}
    return {
        "kind": "Table",
        "apiVersion": version,
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    }
