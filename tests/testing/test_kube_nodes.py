"""The emulator's nodes: Node objects, image pulls recorded in status.images, scheduling rules."""

from __future__ import annotations

import json
import re

import pytest
from kubernetes_asyncio import client

from lsst_spawner.rbac import Z2JH_HUB_ROLE_RULES
from lsst_spawner.testing.kube.nodes import FakeNode, NodeImage

from .test_kube_kubelet import lab_pod, reasons, running, wait_for

REPO = "registry.example/lab"
DIGEST = "sha256:" + "a" * 64


async def _node(kube_api, name: str) -> dict:
    async with kube_api.api_client() as api:
        reply = await client.CoreV1Api(api).read_node(name, _preload_content=False)
        return json.loads(await reply.read())


async def test_nodes_register_with_labels_taints_conditions_and_images(kube_api, kubelet) -> None:
    images = [NodeImage([f"{REPO}@sha256:{i:064x}", f"{REPO}:t{i}"], 1000 + i) for i in range(60)]
    kubelet.emulator.run(kubelet.stop())
    kubelet.nodes = [
        FakeNode(
            "gpu-1",
            labels={"pool": "gpu"},
            taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}],
            images=images,
        )
    ]
    kubelet.emulator.run(kubelet.start())
    node = await _node(kube_api, "gpu-1")
    assert node["metadata"]["labels"]["pool"] == "gpu"
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "gpu-1"
    assert node["spec"]["taints"] == [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"
    listed = node["status"]["images"]
    # The kubelet's nodeStatusMaxImages (50): the largest first, the rest left out.
    assert len(listed) == 50
    assert [i["sizeBytes"] for i in listed] == sorted(
        (1000 + i for i in range(10, 60)), reverse=True
    )
    assert listed[0]["names"] == [f"{REPO}@sha256:{59:064x}", f"{REPO}:t59"]


async def test_a_pull_takes_time_by_size_and_is_recorded_then_the_image_is_present(
    kube_api, kubelet
) -> None:
    kubelet.mode = "stub"
    kubelet.nodes = [FakeNode("only")]
    image = f"{REPO}:w_2026_01@{DIGEST}"
    kubelet.image_sizes = {f"{REPO}:w_2026_01": 3_000_000_000}
    kubelet.pull_bytes_per_second = 10e9  # 0.3 s for this image
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_pod(kube_api.namespace, lab_pod("first", None, image=image))
        await wait_for(lambda: running(kube_api, "first"))
        await v1.create_namespaced_pod(kube_api.namespace, lab_pod("second", None, image=image))
        await wait_for(lambda: running(kube_api, "second"))
    events = await kube_api.list("events")
    pulled = [e["message"] for e in events if e["reason"] == "Pulled"]
    first = next(m for m in pulled if "Successfully pulled" in m)
    seconds = float(re.search(r"in ([0-9.]+)s", first).group(1))
    assert seconds >= 0.3  # a lower bound: the pull slept for size / rate
    assert "Image size: 3000000000 bytes." in first
    assert f'Container image "{image}" already present on machine' in pulled
    assert "Pulling" not in await reasons(kube_api, "second")
    node = await _node(kube_api, "only")
    assert node["status"]["images"] == [
        {"names": [f"{REPO}@{DIGEST}", f"{REPO}:w_2026_01"], "sizeBytes": 3_000_000_000}
    ]
    assert kubelet.pulls == [("only", image)]


async def test_a_new_node_joins_and_takes_the_pod_that_waited_for_it(kube_api, kubelet) -> None:
    kubelet.mode = "stub"
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        body = lab_pod("gpu-lab", None)
        body["spec"]["nodeSelector"] = {"pool": "gpu"}
        await v1.create_namespaced_pod(kube_api.namespace, body)
        await wait_for(lambda: _has(kube_api, "gpu-lab", "FailedScheduling"))
        kubelet.emulator.run(kubelet.add_node(FakeNode("gpu-9", labels={"pool": "gpu"})))
        pod = await wait_for(lambda: running(kube_api, "gpu-lab"))
        assert pod["spec"]["nodeName"] == "gpu-9"
        nodes = json.loads(await (await v1.list_node(_preload_content=False)).read())
    assert {n["metadata"]["name"] for n in nodes["items"]} == {"node-1", "node-2", "gpu-9"}
    with pytest.raises(ValueError, match="already registered"):
        kubelet.emulator.run(kubelet.add_node("gpu-9"))


async def _has(kube_api, name: str, reason: str) -> bool:
    return reason in await reasons(kube_api, name)


async def test_a_pod_with_node_name_runs_there_without_the_scheduler(kube_api, kubelet) -> None:
    kubelet.mode = "stub"
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        body = lab_pod("pinned", None)
        body["spec"]["nodeName"] = "node-2"
        await v1.create_namespaced_pod(kube_api.namespace, body)
        pod = await wait_for(lambda: running(kube_api, "pinned"))
    assert pod["spec"]["nodeName"] == "node-2"
    assert "Scheduled" not in await reasons(kube_api, "pinned")


async def test_taints_and_preferred_affinity_decide_the_node(kube_api, kubelet) -> None:
    kubelet.mode = "stub"
    kubelet.nodes = [
        FakeNode("tainted", taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]),
        FakeNode("soft", taints=[{"key": "spot", "value": "y", "effect": "PreferNoSchedule"}]),
        FakeNode("plain"),
    ]
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        # The preferred node has a NoSchedule taint the pod does not tolerate: never there.
        body = lab_pod("a", None)
        body["spec"]["affinity"] = _prefer(["tainted"])
        await v1.create_namespaced_pod(kube_api.namespace, body)
        assert (await wait_for(lambda: running(kube_api, "a")))["spec"]["nodeName"] != "tainted"
        # Tolerated, the preference wins.
        body = lab_pod("b", None)
        body["spec"]["affinity"] = _prefer(["tainted"])
        body["spec"]["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
        await v1.create_namespaced_pod(kube_api.namespace, body)
        assert (await wait_for(lambda: running(kube_api, "b")))["spec"]["nodeName"] == "tainted"
        # A PreferNoSchedule taint is still schedulable, when preferred.
        body = lab_pod("c", None)
        body["spec"]["affinity"] = _prefer(["soft"])
        await v1.create_namespaced_pod(kube_api.namespace, body)
        assert (await wait_for(lambda: running(kube_api, "c")))["spec"]["nodeName"] == "soft"


def _prefer(nodes: list[str]) -> dict:
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": nodes}]}
    return {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": term}]
        }
    }


@pytest.mark.parametrize("kube_role", [[dict(rule) for rule in Z2JH_HUB_ROLE_RULES]])
async def test_z2jh_hub_role_cannot_list_nodes(kube_api, kubelet) -> None:
    async with kube_api.api_client() as api:
        with pytest.raises(client.ApiException) as denied:
            await client.CoreV1Api(api).list_node()
    assert denied.value.status == 403
    assert json.loads(denied.value.body)["message"] == (
        f'nodes is forbidden: User "{kube_api.hub_user}" cannot list resource "nodes" in API '
        'group "" at the cluster scope'
    )
