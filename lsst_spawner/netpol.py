"""NetworkPolicy semantics and the labs' own NetworkPolicy, as pure functions.

:func:`may_connect` answers "may pod A open a connection to pod B on port P" the way
Kubernetes' NetworkPolicy semantics define it (a network plugin that enforces them would
decide the same): a pod is isolated for ingress (egress) when a policy *in its namespace*
selects it with that policy type; an isolated pod takes only what some selecting policy's
rules allow; traffic needs both the source's egress and the destination's ingress.
:func:`build_lab_network_policy` is the policy ``lsst-spawner manifests`` prints for sites
that do not use Zero to JupyterHub's.

Nothing here does I/O; pods, namespaces and policies are plain wire-format dicts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Connection",
    "EgressIntents",
    "build_lab_network_policy",
    "may_connect",
    "policies_selecting",
    "selector_matches",
]

Obj = Mapping[str, Any]


def _labels(obj: Obj) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _namespace(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "default")


def selector_matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector (``matchLabels`` and ``matchExpressions``) against ``labels``.

    An empty selector matches everything; an absent one (``None``) matches nothing, as in
    a NetworkPolicy peer where the field is left out.
    """
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = set(expression.get("values") or [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise ValueError(f"unknown label selector operator {operator!r}")
    return True


def _policy_types(policy: Obj) -> set[str]:
    spec = policy.get("spec") or {}
    declared = spec.get("policyTypes")
    if declared:
        return set(declared)
    # The API server's default: Ingress always, Egress when egress rules are given.
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def policies_selecting(pod: Obj, policies: Iterable[Obj], direction: str) -> list[Obj]:
    """The policies that isolate ``pod`` for ``direction`` (``Ingress`` or ``Egress``).

    Only a policy in the pod's own namespace can select it: one created in another
    namespace (z2jh#3952) leaves the pod open, which is what this makes visible.
    """
    return [
        p
        for p in policies
        if _namespace(p) == _namespace(pod)
        and direction in _policy_types(p)
        and selector_matches((p.get("spec") or {}).get("podSelector") or {}, _labels(pod))
    ]


def _named_port(pod: Obj, name: str) -> int | None:
    for group in ("containers", "initContainers"):
        for container in (pod.get("spec") or {}).get(group) or []:
            for port in container.get("ports") or []:
                if port.get("name") == name:
                    return int(port["containerPort"])
    return None


def _port_allowed(rule_ports: Sequence[Obj] | None, port: int, protocol: str, target: Obj) -> bool:
    """Do a rule's ``ports`` admit ``port``; named ports resolve against ``target``'s."""
    if not rule_ports:
        return True
    for entry in rule_ports:
        if (entry.get("protocol") or "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str) and not wanted.isdigit():
            resolved = _named_port(target, wanted)
            if resolved == port:
                return True
            continue
        first, last = int(wanted), int(entry.get("endPort") or wanted)
        if first <= port <= last:
            return True
    return False


def _peer_matches(
    peer: Obj, policy: Obj, other: Obj, namespaces: Mapping[str, Obj], other_ip: str | None
) -> bool:
    if "ipBlock" in peer:
        if other_ip is None:
            return False
        block = peer["ipBlock"]
        address = ipaddress.ip_address(other_ip)
        if address not in ipaddress.ip_network(block["cidr"], strict=False):
            return False
        return not any(
            address in ipaddress.ip_network(e, strict=False) for e in block.get("except") or []
        )
    pod_selector, ns_selector = peer.get("podSelector"), peer.get("namespaceSelector")
    if ns_selector is None:
        in_namespace = _namespace(other) == _namespace(policy)
    else:
        namespace = namespaces.get(_namespace(other)) or {}
        in_namespace = selector_matches(ns_selector, _labels(namespace))
    if not in_namespace:
        return False
    return pod_selector is None or selector_matches(pod_selector, _labels(other))


def _allowed_by(
    policies: Sequence[Obj],
    rules_key: str,
    peers_key: str,
    other: Obj,
    port: int,
    protocol: str,
    port_target: Obj,
    namespaces: Mapping[str, Obj],
    other_ip: str | None,
) -> bool:
    for policy in policies:
        for rule in (policy.get("spec") or {}).get(rules_key) or []:
            if not _port_allowed(rule.get("ports"), port, protocol, port_target):
                continue
            peers = rule.get(peers_key)
            if not peers or any(
                _peer_matches(peer, policy, other, namespaces, other_ip) for peer in peers
            ):
                return True
    return False


@dataclass(frozen=True)
class Connection:
    """The verdict of :func:`may_connect`, with the reason when it is refused."""

    allowed: bool
    reason: str
    egress_policies: tuple[str, ...] = field(default=())
    ingress_policies: tuple[str, ...] = field(default=())

    def __bool__(self) -> bool:
        return self.allowed


def _names(policies: Iterable[Obj]) -> tuple[str, ...]:
    return tuple(f"{_namespace(p)}/{p['metadata']['name']}" for p in policies)


def may_connect(
    source: Obj,
    destination: Obj,
    port: int,
    *,
    policies: Iterable[Obj],
    namespaces: Iterable[Obj] = (),
    protocol: str = "TCP",
) -> Connection:
    """May ``source`` connect to ``destination`` on ``port`` under ``policies``?

    ``namespaces`` are the Namespace objects whose labels namespace selectors match;
    a namespace not given has no labels. Pod IPs (``status.podIP``) are used for
    ``ipBlock`` peers.
    """
    policies = list(policies)
    by_name = {str(n["metadata"]["name"]): n for n in namespaces}
    source_ip = (source.get("status") or {}).get("podIP")
    destination_ip = (destination.get("status") or {}).get("podIP")
    egress = policies_selecting(source, policies, "Egress")
    ingress = policies_selecting(destination, policies, "Ingress")
    names = {"egress_policies": _names(egress), "ingress_policies": _names(ingress)}
    source_name = f"{_namespace(source)}/{source['metadata']['name']}"
    destination_name = f"{_namespace(destination)}/{destination['metadata']['name']}"
    if egress and not _allowed_by(
        egress, "egress", "to", destination, port, protocol, destination, by_name, destination_ip
    ):
        return Connection(
            False,
            f"no egress rule of {', '.join(names['egress_policies'])} lets {source_name} reach"
            f" {destination_name} on {protocol} {port}",
            **names,
        )
    if ingress and not _allowed_by(
        ingress, "ingress", "from", source, port, protocol, destination, by_name, source_ip
    ):
        return Connection(
            False,
            f"no ingress rule of {', '.join(names['ingress_policies'])} lets {source_name} into"
            f" {destination_name} on {protocol} {port}",
            **names,
        )
    return Connection(True, "allowed", **names)


@dataclass(frozen=True)
class EgressIntents:
    """What a lab may reach, named by intent rather than by address.

    ``services`` are in-cluster destinations as ``(namespace, pod labels, port)``.
    """

    dns: bool = True
    hub_api: bool = True
    internet: bool = True
    services: tuple[tuple[str, Mapping[str, str], int], ...] = ()


#: Private and link-local ranges: "the internet" excludes them (and the cloud metadata
#: address 169.254.169.254 with them).
_NOT_INTERNET = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")


def build_lab_network_policy(
    *,
    name: str,
    namespace: str,
    lab_labels: Mapping[str, str],
    lab_port: int,
    hub_labels: Mapping[str, str],
    proxy_labels: Mapping[str, str],
    hub_api_port: int,
    egress: EgressIntents,
    hub_namespace: str | None = None,
) -> dict[str, Any]:
    """The labs' NetworkPolicy: ingress from the hub and the proxy only, on the lab's port.

    ``hub_namespace`` is where the hub and the proxy run when it is not the labs' namespace.
    """

    def hub_side(labels: Mapping[str, str]) -> dict[str, Any]:
        peer: dict[str, Any] = {"podSelector": {"matchLabels": dict(labels)}}
        if hub_namespace and hub_namespace != namespace:
            peer["namespaceSelector"] = {
                "matchLabels": {"kubernetes.io/metadata.name": hub_namespace}
            }
        return peer

    rules: list[dict[str, Any]] = []
    if egress.dns:
        rules.append(
            {
                "to": [{"namespaceSelector": {}, "podSelector": {}}],
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            }
        )
    if egress.hub_api:
        rules.append(
            {
                "to": [hub_side(hub_labels)],
                "ports": [{"port": hub_api_port, "protocol": "TCP"}],
            }
        )
    for service_namespace, labels, port in egress.services:
        rules.append(
            {
                "to": [
                    {
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": service_namespace}
                        },
                        "podSelector": {"matchLabels": dict(labels)},
                    }
                ],
                "ports": [{"port": port, "protocol": "TCP"}],
            }
        )
    if egress.internet:
        rules.append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(_NOT_INTERNET)}}]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "podSelector": {"matchLabels": dict(lab_labels)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [hub_side(hub_labels), hub_side(proxy_labels)],
                    "ports": [{"port": lab_port, "protocol": "TCP"}],
                }
            ],
            "egress": rules,
        },
    }
