"""Operator mode's prepull: the operator pulls onto the nodes, the hub reads what it published.

The operator runs as its own service account with the Role and ClusterRole of
``manifests --operator`` (the ClusterRole's ``list nodes`` and the Role's
``labtemplates/status`` patch are what this needs); the hub is bound to operator
mode's hub Role (no pods, no nodes: ``get`` on LabTemplates only).
"""

from __future__ import annotations

from typing import Any

import pytest
from kubespawner import clients
from traitlets.config import Config

from lsst_spawner.checks import spawner_settings
from lsst_spawner.crd.from_config import base_pod_for
from lsst_spawner.crd.template import SENTINEL_SERVER, SENTINEL_USER, template_from_settings
from lsst_spawner.images.prepull import PREPULL_LABELS
from lsst_spawner.offline import OfflineHub, OfflineServer, OfflineUser
from lsst_spawner.operator.prepull import PublishedPrepuller
from lsst_spawner.site import forget_sites
from lsst_spawner.spawner import LSSTSpawner
from lsst_spawner.testing.kube.nodes import FakeNode
from lsst_spawner.testing.oauth.identity import identity_for
from lsst_spawner.testing.waiting import wait_for_async

from .conftest import TEMPLATES, LabCluster, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BASE = "registry.example.org/sciplat-lab"
DIGESTS = {
    "recommended": "sha256:" + "1" * 64,
    "w_2026_45": "sha256:" + "2" * 64,
    "w_2026_44": "sha256:" + "3" * 64,
}


def hub_config(namespace: str) -> Config:
    c = Config()
    c.JupyterHub.spawner_class = "lsst"
    c.LSSTSpawner.namespace = namespace
    c.LSSTSpawner.lab_backend = "operator"
    c.LSSTSpawner.image_source = "static"
    c.LSSTSpawner.static_image_base = BASE
    c.LSSTSpawner.static_image_tags = list(DIGESTS)
    c.LSSTSpawner.static_image_digests = DIGESTS
    c.LSSTSpawner.image_alias_tags = []
    c.LSSTSpawner.image_menu_weeklies = 1
    c.LSSTSpawner.image_prepull_enabled = True
    c.LSSTSpawner.image_prepull_interval = 1
    c.LSSTSpawner.image_prepull_poll_interval = 0.2
    return c


def _pinned(tag: str) -> str:
    return f"{BASE}@{DIGESTS[tag]}"


def _published(lab_cluster: LabCluster) -> dict[str, Any]:
    template = lab_cluster.get(TEMPLATES, "lab") or {}
    prepull: dict[str, Any] = (template.get("status") or {}).get("prepull") or {}
    return prepull


def _everywhere(lab_cluster: LabCluster, *nodes: str) -> dict[str, Any] | None:
    """The published state once every one of ``nodes`` holds both radio images."""
    published = _published(lab_cluster)
    have = {node["name"]: set(node["images"]) for node in published.get("nodes") or []}
    wanted = {_pinned("recommended"), _pinned("w_2026_45")}
    if set(have) == set(nodes) and all(wanted <= images for images in have.values()):
        return published
    return None


async def _menu_when(spawner: LSSTSpawner, wanted: Any, what: str) -> Any:
    return await wait_for_async(
        spawner.get_menu, f"the hub's menu to show {what}", timeout=60, interval=0.2, until=wanted
    )


def _radio(menu: Any) -> list[tuple[str, str | None]]:
    return [(image.tag, image.presence) for image in menu.radio]


async def test_the_operator_prepulls_and_the_hub_reads_what_it_published(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    kubelet.pull_bytes_per_second = 2e9
    config = hub_config(lab_cluster.namespace)
    pod = await base_pod_for(config, SENTINEL_USER, SENTINEL_SERVER)
    template = template_from_settings(spawner_settings(config), pod, name="lab")
    assert template["spec"]["settings"]["image_prepull_enabled"] is True
    lab_cluster.create(TEMPLATES, template)
    clients.load_config.cache_clear()  # the spawner below loads the hub's kubeconfig
    lab_cluster.start_operator()

    published = wait_for(
        lambda: _everywhere(lab_cluster, "node-1", "node-2"),
        "the operator's published prepull state with both radio images on both nodes",
        log=lab_cluster.output,
    )
    assert _pinned("w_2026_44") not in str(published)  # a dropdown image: pulled nowhere
    assert (("node-1", f"{BASE}:w_2026_45@{DIGESTS['w_2026_45']}")) in kubelet.pulls

    user = OfflineUser("vera", {"identity": identity_for("vera").to_dict()})
    spawner = LSSTSpawner(config=config, user=user, hub=OfflineHub())
    spawner.server = OfflineServer(user)
    try:
        menu = await _menu_when(
            spawner,
            lambda m: _radio(m) == [("recommended", "all"), ("w_2026_45", "all")],
            "both radio images present on all nodes",
        )
        assert [(i.tag, i.presence) for i in menu.dropdown] == [("w_2026_44", "none")]
        follower = spawner.image_prepuller()
        assert isinstance(follower, PublishedPrepuller)
        assert set(follower.requests) == {"read labtemplate"}  # no nodes, no pods

        # A new node: the operator pulls onto it, publishes, and the hub's menu follows.
        lab_cluster.emulator.run(kubelet.add_node(FakeNode("node-3")))
        wait_for(
            lambda: _everywhere(lab_cluster, "node-1", "node-2", "node-3"),
            "node-3 with both radio images in the published state",
            log=lab_cluster.output,
        )
        await _menu_when(
            spawner,
            lambda m: (
                follower.state is not None
                and "node-3" in follower.state.node_names
                and _radio(m) == [("recommended", "all"), ("w_2026_45", "all")]
            ),
            "node-3 counted, the radio images on all three nodes",
        )
    finally:
        forget_sites()
    assert ("node-3", f"{BASE}:w_2026_45@{DIGESTS['w_2026_45']}") in kubelet.pulls
    selector = ",".join(f"{k}={v}" for k, v in PREPULL_LABELS.items())
    wait_for(
        lambda: (
            not lab_cluster.emulator.list_objects(
                "pods", lab_cluster.namespace, label_selector=selector
            )
        ),
        "no prepull pod left",
        log=lab_cluster.output,
    )
