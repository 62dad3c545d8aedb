"""The prepuller against the emulator: pulls onto every eligible node, the menu's radio rule,
a node joining, failures and timeouts, RBAC, and nothing left behind."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from kubespawner import clients

from lsst_spawner.images.prepull import PREPULL_LABELS
from lsst_spawner.offline import OfflineHub, OfflineServer, OfflineUser
from lsst_spawner.rbac import PREPULL_NODES_RULE, Z2JH_HUB_ROLE_RULES
from lsst_spawner.spawner import LSSTSpawner
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.kube.nodes import FakeNode, grant_hub_cluster_rules
from lsst_spawner.testing.oauth.identity import identity_for
from lsst_spawner.testing.waiting import wait_for_async

from .test_lifecycle import spawner_config

BASE = "registry.example.org/sciplat-lab"
D_RECOMMENDED = "sha256:" + "1" * 64
D_45 = "sha256:" + "2" * 64
D_44 = "sha256:" + "3" * 64


@pytest.fixture
def kube_role() -> list[dict[str, Any]]:
    return [dict(rule) for rule in Z2JH_HUB_ROLE_RULES]


@pytest.fixture
def nodes(kube_api: KubeHandle, kubelet: Any) -> Any:
    """The process kubelet (prepull pods run /bin/true); the hub may list nodes."""
    grant_hub_cluster_rules(kube_api.emulator, kube_api.namespace, [PREPULL_NODES_RULE])
    kubelet.pull_bytes_per_second = 4e9  # a 2 GB image takes 0.5 s
    clients.load_config.cache_clear()
    yield kubelet
    clients.load_config.cache_clear()


def make_spawner(kube_api: KubeHandle, **traits: Any) -> LSSTSpawner:
    config = spawner_config(kube_api.namespace)
    config.LSSTSpawner.static_image_tags = ["recommended", "w_2026_45", "w_2026_44"]
    config.LSSTSpawner.static_image_digests = {
        "recommended": D_RECOMMENDED,
        "w_2026_45": D_45,
        "w_2026_44": D_44,
    }
    config.LSSTSpawner.image_menu_weeklies = 1
    config.LSSTSpawner.image_alias_tags = []
    config.LSSTSpawner.image_prepull_enabled = True
    config.LSSTSpawner.image_prepull_interval = 1
    config.LSSTSpawner.image_prepull_poll_interval = 0.1
    for name, value in traits.items():
        setattr(config.LSSTSpawner, name, value)
    user = OfflineUser("rra", {"identity": identity_for("rra").to_dict()})
    spawner = LSSTSpawner(config=config, user=user, hub=OfflineHub())
    spawner.server = OfflineServer(user)
    spawner.api_token = "prepull-test-token"
    return spawner


async def until(check: Callable[[], Any], limit: float = 30.0) -> Any:
    what = f"{getattr(check, '__qualname__', check)}() to be true"
    return await wait_for_async(check, what, timeout=limit, interval=0.05)


def radio_tags(html: str) -> list[str]:
    return re.findall(r'name="image_list" id="image-\d+" value="([^"]+)"', html)


def slower_tags(html: str) -> list[str]:
    group = re.search(r'<optgroup label="Slower to start">(.*?)</optgroup>', html, re.S)
    return re.findall(r'value="([^"]+)"', group.group(1)) if group else []


class PodWatch:
    """Records, from the store, the most prepull pods one node had at once."""

    def __init__(self, kubelet: Any) -> None:
        self.store = kubelet.store
        self.most: dict[str, int] = {}
        self.created = 0
        self.store.listeners.append(self.seen)

    def seen(self, change: Any) -> None:
        if change.resource != "pods":
            return
        labels = change.obj["metadata"].get("labels") or {}
        if (
            labels.get("app.kubernetes.io/component")
            != PREPULL_LABELS["app.kubernetes.io/component"]
        ):
            return
        self.created += change.type == "ADDED"
        count: dict[str, int] = {}
        for pod in self.store.objects["pods"].values():
            if (pod["metadata"].get("labels") or {}) == PREPULL_LABELS:
                node = pod["spec"]["nodeName"]
                count[node] = count.get(node, 0) + 1
        for node, n in count.items():
            self.most[node] = max(self.most.get(node, 0), n)


async def prepull_pods(kube_api: KubeHandle) -> list[dict[str, Any]]:
    selector = ",".join(f"{k}={v}" for k, v in PREPULL_LABELS.items())
    return await kube_api.list("pods", label_selector=selector)


async def test_a_new_node_gets_the_images_and_the_menu_follows(
    kube_api: KubeHandle, nodes: Any
) -> None:
    """The prepull e2e: a new node joins, its images are pulled, the menu changes from
    "slower to start" to a radio choice, and nothing is left running."""
    watch = PodWatch(nodes)
    spawner = make_spawner(kube_api)
    prepuller = spawner.image_prepuller()
    assert prepuller is not None

    def everywhere() -> bool:
        state = prepuller.state
        return (
            state is not None
            and len(state.nodes) == 2
            and all(f"{BASE}@{D_45}" in node.names for node in state.nodes)
            and all(f"{BASE}@{D_RECOMMENDED}" in node.names for node in state.nodes)
        )

    await until(everywhere)
    html = await spawner.render_options_form()
    assert radio_tags(html) == ["recommended", "w_2026_45"]
    assert slower_tags(html) == ["w_2026_44"]  # the dropdown: on no node

    nodes.emulator.run(nodes.add_node(FakeNode("node-3")))
    html = await until(lambda: _form_if(spawner, lambda h: "w_2026_45" in slower_tags(h)), limit=30)
    assert radio_tags(html) == ["recommended"]  # the default stays first, whatever its presence
    image = (await spawner.get_menu()).find("w_2026_45")
    assert image is not None
    assert image.presence == "some"
    assert image.present_on == ("node-1", "node-2")

    html = await until(lambda: _form_if(spawner, lambda h: "w_2026_45" in radio_tags(h)))
    assert slower_tags(html) == ["w_2026_44"]
    assert ("node-3", f"{BASE}:w_2026_45@{D_45}") in nodes.pulls
    assert ("node-3", f"{BASE}:recommended@{D_RECOMMENDED}") in nodes.pulls
    # Never more than one pull at a time on a node, every pod gone, none running.
    assert watch.most
    assert max(watch.most.values()) == 1
    assert watch.created == 6  # two images onto three nodes
    await until(lambda: _none_left(kube_api, nodes))
    await prepuller.close()


async def _form_if(spawner: LSSTSpawner, wanted: Callable[[str], bool]) -> str | None:
    html = await spawner.render_options_form()
    return html if wanted(html) else None


async def _none_left(kube_api: KubeHandle, kubelet: Any) -> bool:
    return not await prepull_pods(kube_api) and not any(
        rt.name.startswith("prepull-") for rt in kubelet.pods.values()
    )


async def test_an_image_on_some_nodes_gets_a_preferred_affinity(
    kube_api: KubeHandle, nodes: Any
) -> None:
    nodes.images = lambda image: "w_2026_45" not in image or image.endswith("never")
    nodes.emulator.run(nodes.stop())
    nodes.nodes = [FakeNode("node-1"), FakeNode("node-2")]
    nodes.emulator.run(nodes.start())
    # w_2026_45 is already on node-2 only, and cannot be pulled (the registry lost it).
    from lsst_spawner.testing.kube.nodes import record_image

    record_image(nodes.nodes[1], f"{BASE}:w_2026_45@{D_45}", 10, D_45)
    nodes.emulator.call(lambda: nodes._report_images(nodes.nodes[1]))
    spawner = make_spawner(kube_api)
    prepuller = spawner.image_prepuller()
    assert prepuller is not None
    await until(lambda: prepuller.state is not None and prepuller.rounds >= 2)
    image = (await spawner.get_menu()).find("w_2026_45")
    assert image is not None
    assert (image.presence, image.present_on, image.choice) == ("some", ("node-2",), "dropdown")
    spawner.user_options = {"image": "w_2026_45"}
    spawner.lab_options_fresh = True
    objects = await spawner.render_lab_objects()
    pod = next(o for o in objects if o["kind"] == "Pod")
    preferred = pod["spec"]["affinity"]["nodeAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert preferred[-1] == {
        "weight": 100,
        "preference": {
            "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-2"]}]
        },
    }
    await until(lambda: _none_left(kube_api, nodes))
    await prepuller.close()


async def test_a_failed_pull_and_a_pull_that_times_out_leave_nothing(
    kube_api: KubeHandle, nodes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    nodes.images = lambda image: "w_2026_45" not in image  # not in the registry
    nodes.image_sizes = {f"{BASE}:recommended": 10**15}  # never arrives in time
    caplog.set_level(logging.INFO)
    spawner = make_spawner(kube_api, image_prepull_timeout=1.0, image_prepull_failure_backoff=3600)
    prepuller = spawner.image_prepuller()
    assert prepuller is not None

    recommended, weekly = f"{BASE}:recommended@{D_RECOMMENDED}", f"{BASE}:w_2026_45@{D_45}"
    await until(lambda: len(prepuller._failed) == 4)
    assert set(prepuller._failed) == {
        (node, image) for node in ("node-1", "node-2") for image in (recommended, weekly)
    }
    text = caplog.text
    for node in ("node-1", "node-2"):
        assert f"Prepulling {recommended} onto {node} timed out" in text
        reason = "(ErrImagePull|ImagePullBackOff)"
        assert re.search(rf"Prepulling {re.escape(weekly)} onto {node} failed \({reason}:", text)
    await until(lambda: _none_left(kube_api, nodes))
    creates = prepuller.requests.get("create pod", 0)
    await asyncio.sleep(2.5)  # two more rounds: the failures are not retried
    assert prepuller.requests.get("create pod", 0) == creates == 4
    await prepuller.close()


async def test_without_the_cluster_role_the_menu_stays_as_it_was(
    kube_api: KubeHandle, kubelet: Any, caplog: pytest.LogCaptureFixture
) -> None:
    clients.load_config.cache_clear()
    spawner = make_spawner(kube_api)
    prepuller = spawner.image_prepuller()
    assert prepuller is not None
    await until(lambda: "Image prepull round failed" in caplog.text)
    assert "nodes is forbidden" in caplog.text
    assert 'cannot list resource "nodes"' in caplog.text
    assert prepuller.state is None
    menu = await spawner.get_menu()
    assert all(image.presence is None for image in menu.images)
    assert "w_2026_45" in radio_tags(await spawner.render_options_form())
    await prepuller.close()
    clients.load_config.cache_clear()


async def test_leftover_prepull_pods_of_a_previous_hub_are_deleted(
    kube_api: KubeHandle, nodes: Any
) -> None:
    from kubernetes_asyncio import client

    from lsst_spawner.images.model import MenuImage, TagKind
    from lsst_spawner.images.prepull import prepull_pod

    nodes.images = set()  # nothing can be pulled: the leftover stays pending
    leftover = prepull_pod(MenuImage("old", TagKind.WEEKLY, "Old", f"{BASE}:old", D_44), "node-1")
    async with kube_api.api_client() as api:
        await client.CoreV1Api(api).create_namespaced_pod(kube_api.namespace, leftover)
    spawner = make_spawner(kube_api, image_prepull_failure_backoff=3600)
    prepuller = spawner.image_prepuller()
    assert prepuller is not None
    await until(lambda: prepuller.requests.get("list prepull pods") == 1)
    await until(lambda: _none_left(kube_api, nodes))
    await prepuller.close()


async def test_prepull_is_off_by_default_and_needs_no_nodes_rule(kube_api: KubeHandle) -> None:
    config = spawner_config(kube_api.namespace)
    user = OfflineUser("rra", {"identity": identity_for("rra").to_dict()})
    spawner = LSSTSpawner(config=config, user=user, hub=OfflineHub())
    assert spawner.image_prepull_enabled is False
    assert spawner.image_prepuller() is None


async def test_a_node_listing_exactly_50_images_is_warned_about_once(
    kube_api: KubeHandle, nodes: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from lsst_spawner.testing.kube.nodes import NodeImage

    full = [NodeImage([f"other.example/i@sha256:{i:064x}"], 10**9 + i) for i in range(60)]
    nodes.emulator.run(nodes.add_node(FakeNode("full", images=full)))
    nodes.emulator.run(nodes.add_node(FakeNode("roomy", images=full[:40])))
    spawner = make_spawner(kube_api)
    prepuller = spawner.image_prepuller()
    assert prepuller is not None
    await until(lambda: prepuller.requests.get("list nodes", 0) >= 3, limit=60)
    warnings = [r.getMessage() for r in caplog.records if "nodeStatusMaxImages" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("Node full lists exactly 50 images")
    assert "Raise nodeStatusMaxImages in the kubelet configuration" in warnings[0]
    await prepuller.close()
    await until(lambda: _none_left(kube_api, nodes))


async def test_prepull_pods_run_in_runc_and_leave_nothing(
    kube_api: KubeHandle, oci_kubelet: Any, local_registry: Any
) -> None:
    """The OCI kubelet: each prepull pod's image comes from the real registry, its
    /bin/true runs in runc as uid 65534 and exits, and the pod is deleted."""
    import uuid

    from lsst_spawner.testing.kube.images import publish_image

    grant_hub_cluster_rules(kube_api.emulator, kube_api.namespace, [PREPULL_NODES_RULE])
    clients.load_config.cache_clear()
    repository = f"prepull/lab-{uuid.uuid4().hex[:8]}"
    digests = {}
    for tag in ("recommended", "w_2026_45", "w_2026_44"):
        reference = await publish_image(
            local_registry.registry.url, repository, tag, env={"TAG": tag}
        )
        digests[tag] = reference.rsplit("@", 1)[1]
    base = f"{local_registry.host_port}/{repository}"
    watch = PodWatch(oci_kubelet)
    finished: list[dict[str, Any]] = []

    def seen(change: Any) -> None:
        labels = change.obj["metadata"].get("labels") or {}
        phase = (change.obj.get("status") or {}).get("phase")
        if change.resource == "pods" and labels == PREPULL_LABELS and phase == "Succeeded":
            finished.append(change.obj)

    oci_kubelet.store.listeners.append(seen)
    spawner = make_spawner(
        kube_api,
        static_image_base=base,
        static_image_digests=digests,
        image_prepull_poll_interval=0.05,
    )
    prepuller = spawner.image_prepuller()
    assert prepuller is not None

    def everywhere() -> bool:
        state = prepuller.state
        names = [f"{base}@{digests[t]}" for t in ("recommended", "w_2026_45")]
        return state is not None and all(n in node.names for node in state.nodes for n in names)

    await until(everywhere, limit=90)
    await until(lambda: _none_left(kube_api, oci_kubelet))
    await prepuller.close()
    assert watch.created == 4
    assert max(watch.most.values()) == 1
    # The containers ran /bin/true (in runc, as the pod's unprivileged user) and exited 0.
    assert len({pod["metadata"]["name"] for pod in finished}) == 4
    for pod in finished:
        (status,) = pod["status"]["containerStatuses"]
        assert status["state"]["terminated"]["exitCode"] == 0
