"""Zero to JupyterHub's NetworkPolicies and pod labels, as the chart renders them by default.

Transcribed from the chart's ``templates/{hub,proxy,singleuser}/netpol.yaml``,
``_helpers-netpol.tpl`` and ``values.yaml`` (``networkPolicy`` defaults of ``hub``,
``proxy.chp`` and ``singleuser``; ``interNamespaceAccessLabels: ignore``), checked at the
chart's 2026-07 head (4.3.x line), where they have not changed since chart 1.0. The pod
labels are the chart's ``matchLabels`` (``component``, ``app``, ``release``) plus the
``hub.jupyter.org/network-access-*`` labels its hub and proxy Deployments add; a lab pod gets
``singleuser.extraLabels`` (``hub.jupyter.org/network-access-hub: "true"``) through
``KubeSpawner.extra_labels`` and the rest through ``KubeSpawner.common_labels``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Z2JH_CHART_SOURCE",
    "z2jh_extra_labels",
    "z2jh_hub_pod",
    "z2jh_match_labels",
    "z2jh_network_policies",
    "z2jh_proxy_pod",
]

Z2JH_CHART_SOURCE = "jupyterhub/zero-to-jupyterhub-k8s, jupyterhub/templates/*/netpol.yaml (4.3.x)"

_PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
_METADATA_IP = "169.254.169.254"


def z2jh_match_labels(component: str, release: str = "jupyterhub") -> dict[str, str]:
    """The chart's ``jupyterhub.matchLabels`` for a component (``app`` is the chart name)."""
    return {"component": component, "app": "jupyterhub", "release": release}


def z2jh_extra_labels() -> dict[str, str]:
    """``singleuser.extraLabels``' default, which z2jh passes as ``KubeSpawner.extra_labels``."""
    return {"hub.jupyter.org/network-access-hub": "true"}


def _egress_allow_rules(*, private_ips: bool, cloud_metadata: bool) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {
            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
            "to": [
                {"ipBlock": {"cidr": f"{_METADATA_IP}/32"}},
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                    }
                },
                *({"ipBlock": {"cidr": cidr}} for cidr in _PRIVATE),
            ],
        },
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [*_PRIVATE, f"{_METADATA_IP}/32"]}}]},
    ]
    if private_ips:
        rules.append({"to": [{"ipBlock": {"cidr": cidr}} for cidr in _PRIVATE]})
    if cloud_metadata:
        rules.append({"to": [{"ipBlock": {"cidr": f"{_METADATA_IP}/32"}}]})
    return rules


def _policy(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def z2jh_network_policies(namespace: str, release: str = "jupyterhub") -> list[dict[str, Any]]:
    """The hub, proxy and singleuser NetworkPolicies a default install creates in ``namespace``."""
    hub, proxy = z2jh_match_labels("hub", release), z2jh_match_labels("proxy", release)
    singleuser = z2jh_match_labels("singleuser-server", release)
    autohttps = z2jh_match_labels("autohttps", release)

    def peer(labels: dict[str, str]) -> dict[str, Any]:
        return {"podSelector": {"matchLabels": labels}}

    def access(label: str) -> dict[str, Any]:
        return peer({f"hub.jupyter.org/network-access-{label}": "true"})

    return [
        _policy(
            "hub",
            namespace,
            {
                "podSelector": {"matchLabels": hub},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"ports": [{"port": "http"}], "from": [access("hub")]}],
                "egress": [
                    {"to": [peer(proxy)], "ports": [{"port": 8001}]},
                    {"to": [peer(singleuser)], "ports": [{"port": 8888}]},
                    *_egress_allow_rules(private_ips=True, cloud_metadata=True),
                ],
            },
        ),
        _policy(
            "proxy",
            namespace,
            {
                "podSelector": {"matchLabels": proxy},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {"ports": [{"port": "http"}, {"port": "https"}]},
                    {"ports": [{"port": "http"}], "from": [access("proxy-http")]},
                    {"ports": [{"port": "api"}], "from": [access("proxy-api")]},
                ],
                "egress": [
                    {"to": [peer(hub)], "ports": [{"port": 8081}]},
                    {"to": [peer(singleuser)], "ports": [{"port": 8888}]},
                    *_egress_allow_rules(private_ips=True, cloud_metadata=True),
                ],
            },
        ),
        _policy(
            "singleuser",
            namespace,
            {
                "podSelector": {"matchLabels": singleuser},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"ports": [{"port": "notebook-port"}], "from": [access("singleuser")]}],
                "egress": [
                    {"to": [peer(hub)], "ports": [{"port": 8081}]},
                    {"to": [peer(proxy)], "ports": [{"port": 8000}]},
                    {"to": [peer(autohttps)], "ports": [{"port": 8080}, {"port": 8443}]},
                    *_egress_allow_rules(private_ips=False, cloud_metadata=False),
                ],
            },
        ),
    ]


def _pod(name: str, namespace: str, labels: dict[str, str], ports: dict[str, int], ip: str):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "containers": [
                {
                    "name": name.split("-")[0],
                    "image": "quay.io/jupyterhub/k8s-hub:4.2.0",
                    "ports": [{"name": n, "containerPort": p} for n, p in ports.items()],
                }
            ]
        },
        "status": {"podIP": ip},
    }


def z2jh_hub_pod(namespace: str, release: str = "jupyterhub", ip: str = "10.1.0.2"):
    """The hub pod as the chart's Deployment labels it."""
    labels = {
        **z2jh_match_labels("hub", release),
        "hub.jupyter.org/network-access-proxy-api": "true",
        "hub.jupyter.org/network-access-proxy-http": "true",
        "hub.jupyter.org/network-access-singleuser": "true",
    }
    return _pod("hub-0", namespace, labels, {"http": 8081}, ip)


def z2jh_proxy_pod(namespace: str, release: str = "jupyterhub", ip: str = "10.1.0.3"):
    """The proxy (configurable-http-proxy) pod as the chart's Deployment labels it."""
    labels = {
        **z2jh_match_labels("proxy", release),
        "hub.jupyter.org/network-access-hub": "true",
        "hub.jupyter.org/network-access-singleuser": "true",
    }
    return _pod("proxy-0", namespace, labels, {"http": 8000, "api": 8001}, ip)
