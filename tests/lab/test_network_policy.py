"""Network policy that applies: z2jh's policies select the lab pod; the labs' own policy.

The lab pod is the one ``lsst-spawner render-pod`` prints (the spawn's own builders) for a
configuration carrying the labels Zero to JupyterHub gives KubeSpawner; z2jh's policies are
the chart's defaults (lsst_spawner.testing.kube.z2jh_network). Reachability is decided by
:func:`lsst_spawner.netpol.may_connect`, Kubernetes' NetworkPolicy semantics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from lsst_spawner.cli import main
from lsst_spawner.netpol import may_connect, policies_selecting, selector_matches
from lsst_spawner.testing.kube.authn import ADMIN_TOKEN
from lsst_spawner.testing.kube.z2jh_network import (
    z2jh_extra_labels,
    z2jh_hub_pod,
    z2jh_match_labels,
    z2jh_network_policies,
    z2jh_proxy_pod,
)

NAMESPACE = "jhub"
DIGEST = "sha256:" + "c" * 64
# What z2jh's jupyterhub_config.py sets for KubeSpawner (common_labels, extra_labels).
Z2JH_CONFIG = f"""
c.JupyterHub.spawner_class = "lsst"
c.KubeSpawner.namespace = {NAMESPACE!r}
c.KubeSpawner.common_labels = {{
    "app": "jupyterhub", "app.kubernetes.io/name": "jupyterhub",
    "release": "jupyterhub", "app.kubernetes.io/instance": "jupyterhub",
    "chart": "jupyterhub-4.2.0", "app.kubernetes.io/managed-by": "kubespawner",
}}
c.KubeSpawner.extra_labels = {z2jh_extra_labels()!r}
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
c.LSSTSpawner.static_image_tags = ["recommended", "w_2024_10"]
c.LSSTSpawner.static_image_digests = {{"recommended": "{DIGEST}", "w_2024_10": "{DIGEST}"}}
"""
IDENTITY = {"username": "vera", "uid": 4001, "gid": 4001, "groups": [{"name": "vera", "gid": 4001}]}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return [o for o in yaml.safe_load_all(capsys.readouterr().out) if o]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.py"
    path.write_text(Z2JH_CONFIG)
    return path


@pytest.fixture
def lab_pod(tmp_path: Path, config_file: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"identity": IDENTITY}))
    objects = _run(
        capsys, "render-pod", "-f", str(config_file), "--user", "vera", "--auth-state", str(auth)
    )
    (pod,) = [o for o in objects if o["kind"] == "Pod"]
    pod["status"] = {"podIP": "10.1.5.7"}
    return pod


OTHER_POD = {
    "metadata": {"name": "curious", "namespace": NAMESPACE, "labels": {"run": "curious"}},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    "status": {"podIP": "10.1.9.9"},
}


def test_z2jh_singleuser_policy_selects_the_lab_pod(lab_pod: Any) -> None:
    policies = z2jh_network_policies(NAMESPACE)
    selected = [p["metadata"]["name"] for p in policies_selecting(lab_pod, policies, "Ingress")]
    assert selected == ["singleuser"]
    # The chart's selector, the labels KubeSpawner gives the lab pod.
    assert selector_matches(
        {"matchLabels": z2jh_match_labels("singleuser-server")}, lab_pod["metadata"]["labels"]
    )


def test_hub_and_proxy_reach_the_lab_and_nothing_else_does(lab_pod: Any) -> None:
    policies = z2jh_network_policies(NAMESPACE)
    hub, proxy = z2jh_hub_pod(NAMESPACE), z2jh_proxy_pod(NAMESPACE)
    # The singleuser policy admits its named port, notebook-port: the lab container has it.
    assert may_connect(hub, lab_pod, 8888, policies=policies)
    assert may_connect(proxy, lab_pod, 8888, policies=policies)
    refused = may_connect(OTHER_POD, lab_pod, 8888, policies=policies)
    assert not refused
    assert "no ingress rule of jhub/singleuser" in refused.reason
    assert not may_connect(hub, lab_pod, 22, policies=policies)


def test_the_lab_reaches_the_hub_api_and_not_the_proxy_api(lab_pod: Any) -> None:
    policies = z2jh_network_policies(NAMESPACE)
    hub, proxy = z2jh_hub_pod(NAMESPACE), z2jh_proxy_pod(NAMESPACE)
    # The hub admits pods labelled network-access-hub: the lab has it from extra_labels.
    assert may_connect(lab_pod, hub, 8081, policies=policies)
    assert not may_connect(lab_pod, proxy, 8001, policies=policies)


def test_a_lab_without_z2jh_extra_labels_cannot_reach_the_hub(lab_pod: Any) -> None:
    """What a site loses if it drops singleuser.extraLabels: the lab cannot call the hub."""
    del lab_pod["metadata"]["labels"]["hub.jupyter.org/network-access-hub"]
    verdict = may_connect(
        lab_pod, z2jh_hub_pod(NAMESPACE), 8081, policies=z2jh_network_policies(NAMESPACE)
    )
    assert not verdict
    assert "jhub/hub" in verdict.reason


def test_a_policy_in_the_wrong_namespace_does_not_apply(lab_pod: Any) -> None:
    """z2jh#3952: policies created in another namespace leave the lab open to every pod."""
    misplaced = z2jh_network_policies("default")
    assert policies_selecting(lab_pod, misplaced, "Ingress") == []
    assert may_connect(OTHER_POD, lab_pod, 8888, policies=misplaced)
    assert not may_connect(OTHER_POD, lab_pod, 8888, policies=z2jh_network_policies(NAMESPACE))


def test_manifests_prints_a_valid_lab_policy_from_the_config(
    config_file: Path, lab_pod: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    (policy,) = _run(capsys, "manifests", "-f", str(config_file), "--no-internet")
    kubernetes_validate.validate(policy, "1.30", strict=True)
    assert policy["metadata"]["namespace"] == NAMESPACE
    hub = {
        **z2jh_hub_pod(NAMESPACE),
        "metadata": {"name": "hub-0", "namespace": NAMESPACE, "labels": {"component": "hub"}},
    }
    proxy = {
        **z2jh_proxy_pod(NAMESPACE),
        "metadata": {"name": "proxy-0", "namespace": NAMESPACE, "labels": {"component": "proxy"}},
    }
    assert may_connect(hub, lab_pod, 8888, policies=[policy])
    assert may_connect(proxy, lab_pod, 8888, policies=[policy])
    assert not may_connect(OTHER_POD, lab_pod, 8888, policies=[policy])
    assert not may_connect(hub, lab_pod, 9999, policies=[policy])
    # Egress by intent: the hub API and DNS yes, the internet no.
    assert may_connect(lab_pod, hub, 8081, policies=[policy])
    internet = {"metadata": {"name": "x", "namespace": "ext"}, "status": {"podIP": "8.8.8.8"}}
    assert not may_connect(lab_pod, internet, 443, policies=[policy])
    dns = {
        "metadata": {"name": "coredns", "namespace": "kube-system"},
        "status": {"podIP": "10.0.0.10"},
    }
    assert may_connect(lab_pod, dns, 53, policies=[policy], protocol="UDP")


def test_manifests_egress_intents(
    config_file: Path, lab_pod: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    (policy,) = _run(
        capsys, "manifests", "-f", str(config_file),
        "--allow-service", "data/app=butler:8080", "--hub-namespace", "hub-ns",
    )  # fmt: skip
    butler = {
        "metadata": {"name": "butler-0", "namespace": "data", "labels": {"app": "butler"}},
        "status": {"podIP": "10.2.0.4"},
    }
    data_ns = {"metadata": {"name": "data", "labels": {"kubernetes.io/metadata.name": "data"}}}
    assert may_connect(lab_pod, butler, 8080, policies=[policy], namespaces=[data_ns])
    assert not may_connect(lab_pod, butler, 8081, policies=[policy], namespaces=[data_ns])
    internet = {"metadata": {"name": "x", "namespace": "ext"}, "status": {"podIP": "1.1.1.1"}}
    assert may_connect(lab_pod, internet, 443, policies=[policy])
    metadata = {
        "metadata": {"name": "m", "namespace": "ext"},
        "status": {"podIP": "169.254.169.254"},
    }
    assert not may_connect(lab_pod, metadata, 80, policies=[policy])
    # A hub in another namespace is selected there, not in the labs' namespace.
    hub_ns = {"metadata": {"name": "hub-ns", "labels": {"kubernetes.io/metadata.name": "hub-ns"}}}
    hub_elsewhere = {
        **z2jh_hub_pod("hub-ns"),
        "metadata": {"name": "hub-0", "namespace": "hub-ns", "labels": {"component": "hub"}},
    }
    assert may_connect(hub_elsewhere, lab_pod, 8888, policies=[policy], namespaces=[hub_ns])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--allow-service", "data:8080"],
            "--allow-service takes NAMESPACE/KEY=VALUE[,...]:PORT, not 'data:8080'",
        ),
        (
            ["--allow-service", "data/app=x:99999"],
            "--allow-service port must be 1-65535, not 99999",
        ),
        (["--hub-label", "component"], "--hub-label takes KEY=VALUE, not 'component'"),
    ],
)
def test_manifests_rejects_bad_intents(
    config_file: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["manifests", "-f", str(config_file), *argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == f"lsst-spawner: {message}"


def _pod(name: str, labels: dict[str, str], ip: str = "10.3.0.1", ns: str = "a") -> Any:
    ports = [{"name": "web", "containerPort": 8080}]
    return {
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "x", "ports": ports}]},
        "status": {"podIP": ip},
    }


def _netpol(spec: dict[str, Any], ns: str = "a") -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": ns}, "spec": spec}


def test_selector_expressions() -> None:
    labels = {"tier": "web", "env": "prod"}
    assert selector_matches({}, labels)
    assert not selector_matches(None, labels)
    assert selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "db"]}]}, labels
    )
    assert not selector_matches(
        {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, labels
    )
    assert selector_matches(
        {"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, labels
    )
    assert not selector_matches({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, labels)
    with pytest.raises(ValueError, match="unknown label selector operator 'Gt'"):
        selector_matches({"matchExpressions": [{"key": "x", "operator": "Gt"}]}, labels)


def test_policy_types_default_and_egress_isolation() -> None:
    a, b = _pod("a", {"role": "a"}), _pod("b", {"role": "b"}, ip="10.3.0.2")
    # No policyTypes and no egress rules: Ingress only, so b's egress stays open.
    ingress_only = _netpol({"podSelector": {"matchLabels": {"role": "b"}}, "ingress": []})
    assert not may_connect(a, b, 8080, policies=[ingress_only])
    assert may_connect(b, a, 8080, policies=[ingress_only])
    # Egress rules given without policyTypes: Egress is implied too.
    egress = _netpol(
        {"podSelector": {"matchLabels": {"role": "a"}}, "egress": [{"ports": [{"port": 53}]}]}
    )
    assert not may_connect(a, b, 8080, policies=[egress])
    assert may_connect(a, b, 53, policies=[egress])


def test_ports_named_ranges_and_protocols() -> None:
    a, b = _pod("a", {"role": "a"}), _pod("b", {"role": "b"}, ip="10.3.0.2")
    policy = _netpol(
        {
            "podSelector": {"matchLabels": {"role": "b"}},
            "ingress": [
                {"ports": [{"port": "web"}]},
                {"ports": [{"port": 9000, "endPort": 9010}]},
                {"ports": [{"port": 53, "protocol": "UDP"}]},
            ],
        }
    )
    assert may_connect(a, b, 8080, policies=[policy])  # the named port, resolved on b
    assert may_connect(a, b, 9005, policies=[policy])
    assert not may_connect(a, b, 9011, policies=[policy])
    assert may_connect(a, b, 53, policies=[policy], protocol="UDP")
    assert not may_connect(a, b, 53, policies=[policy])


def test_peers_namespaces_and_ip_blocks() -> None:
    b = _pod("b", {"role": "b"}, ip="10.3.0.2")
    same_ns = _pod("a", {"role": "a"})
    other_ns = _pod("c", {"role": "a"}, ns="other", ip="10.4.0.1")
    namespaces = [{"metadata": {"name": "other", "labels": {"team": "x"}}}]
    pods_here = _netpol(
        {
            "podSelector": {},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "a"}}}]}],
        }
    )
    assert may_connect(same_ns, b, 1, policies=[pods_here])
    assert not may_connect(other_ns, b, 1, policies=[pods_here])  # podSelector alone: same ns
    by_namespace = _netpol(
        {
            "podSelector": {},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "x"}}}]}],
        }
    )
    assert may_connect(other_ns, b, 1, policies=[by_namespace], namespaces=namespaces)
    assert not may_connect(same_ns, b, 1, policies=[by_namespace], namespaces=namespaces)
    by_ip = _netpol(
        {
            "podSelector": {},
            "ingress": [
                {"from": [{"ipBlock": {"cidr": "10.4.0.0/16", "except": ["10.4.0.0/24"]}}]}
            ],
        }
    )
    assert not may_connect(other_ns, b, 1, policies=[by_ip])
    assert may_connect(_pod("d", {}, ip="10.4.1.1", ns="o"), b, 1, policies=[by_ip])


async def test_the_emulator_stores_network_policies_and_the_kit_evaluates_them(
    kube_api: Any, kubelet: Any, lab_pod: Any
) -> None:
    """z2jh's policies applied to the emulator, read back, and evaluated for a lab pod."""
    from kubernetes_asyncio import client

    async with kube_api.api_client(admin=True) as api:
        networking = client.NetworkingV1Api(api)
        for policy in z2jh_network_policies(kube_api.namespace):
            created = await networking.create_namespaced_network_policy(kube_api.namespace, policy)
            assert created.metadata.uid
        listed = await networking.list_namespaced_network_policy(kube_api.namespace)
        stored = [api.sanitize_for_serialization(p) for p in listed.items]
    assert sorted(p["metadata"]["name"] for p in stored) == ["hub", "proxy", "singleuser"]
    lab_pod["metadata"]["namespace"] = kube_api.namespace
    hub = z2jh_hub_pod(kube_api.namespace)
    assert may_connect(hub, lab_pod, 8888, policies=stored)
    other = {**OTHER_POD, "metadata": {**OTHER_POD["metadata"], "namespace": kube_api.namespace}}
    assert not may_connect(other, lab_pod, 8888, policies=stored)


async def test_network_policies_are_a_networking_group_resource(kube_api: Any) -> None:
    """Served under networking.k8s.io/v1 only; z2jh's hub Role cannot read them."""
    import aiohttp

    base = kube_api.emulator.url
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with aiohttp.ClientSession(headers=admin) as http:
        async with http.get(f"{base}/apis/networking.k8s.io/v1") as reply:
            names = [r["name"] for r in (await reply.json())["resources"]]
        assert names == ["networkpolicies"]
        core = f"{base}/api/v1/namespaces/{kube_api.namespace}/networkpolicies"
        async with http.get(core) as reply:
            assert reply.status == 404
    async with kube_api.api_client() as api:  # the hub, bound to z2jh's Role
        from kubernetes_asyncio import client
        from kubernetes_asyncio.client.exceptions import ApiException

        with pytest.raises(ApiException) as refused:
            await client.NetworkingV1Api(api).list_namespaced_network_policy(kube_api.namespace)
    assert refused.value.status == 403
    message = json.loads(refused.value.body)["message"]
    assert message.startswith("networkpolicies.networking.k8s.io is forbidden: User ")
    assert 'cannot list resource "networkpolicies" in API group "networking.k8s.io"' in message
