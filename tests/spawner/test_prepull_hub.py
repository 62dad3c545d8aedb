"""The prepull e2e through JupyterHub: a new node joins, its images are pulled, the form's
image goes from "Slower to start" to a radio choice, and nothing is left running.

JupyterHub runs in process (``lsst_hub``) with LSSTSpawner and prepull on against the
emulator (the hub bound to z2jh's Role plus the ClusterRole rule ``list nodes``); the
process kubelet runs the prepull pods. A user logs in and reads the options form as a
browser would.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from lsst_spawner.images.prepull import PREPULL_LABELS
from lsst_spawner.rbac import PREPULL_NODES_RULE, Z2JH_HUB_ROLE_RULES
from lsst_spawner.testing.hub.fixtures import InProcessHub
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.kube.nodes import FakeNode, grant_hub_cluster_rules
from lsst_spawner.testing.waiting import wait_for_async

pytestmark = pytest.mark.integration

BASE = "registry.example.org/sciplat-lab"
DIGESTS = {
    "recommended": "sha256:" + "1" * 64,
    "w_2026_45": "sha256:" + "2" * 64,
    "w_2026_44": "sha256:" + "3" * 64,
}


@pytest.fixture
def kube_role() -> list[dict[str, Any]]:
    return [dict(rule) for rule in Z2JH_HUB_ROLE_RULES]


CONFIG = {
    "LSSTSpawner": {
        "image_source": "static",
        "static_image_base": BASE,
        "static_image_tags": list(DIGESTS),
        "static_image_digests": DIGESTS,
        "image_alias_tags": [],
        "image_menu_weeklies": 1,
        "image_prepull_enabled": True,
        "image_prepull_interval": 1,
        "image_prepull_poll_interval": 0.2,
    }
}


def radio_tags(html: str) -> list[str]:
    return re.findall(r'name="image_list" id="image-\d+" value="([^"]+)"', html)


def slower_tags(html: str) -> list[str]:
    group = re.search(r'<optgroup label="Slower to start">(.*?)</optgroup>', html, re.S)
    return re.findall(r'value="([^"]+)"', group.group(1)) if group else []


def ready_everywhere(html: str) -> bool:
    return "w_2026_45" in radio_tags(html) and slower_tags(html) == ["w_2026_44"]


async def form_when(browser: aiohttp.ClientSession, hub: InProcessHub, wanted: Any) -> str:
    async def form() -> str:
        async with browser.get(f"{hub.url}/spawn") as response:
            return await response.text()

    html: str = await wait_for_async(
        form, "the form to show it", timeout=60, interval=0.3, until=wanted
    )
    return html


async def test_a_new_node_joins_and_the_form_follows(
    lsst_hub: Any, kube_api: KubeHandle, kubelet: Any
) -> None:
    assert kube_api.emulator is not None
    grant_hub_cluster_rules(kube_api.emulator, kube_api.namespace, [PREPULL_NODES_RULE])
    kubelet.pull_bytes_per_second = 2e9  # 1 s per 2 GB image: the "slower" form is seen
    hub = await lsst_hub(config=CONFIG, kubelet_mode="process")
    async with await hub.login("vera") as browser:
        # Marked (once the nodes were listed and have it): a radio choice, and the
        # image on no node under "Slower to start".
        html = await form_when(browser, hub, ready_everywhere)
        assert radio_tags(html) == ["recommended", "w_2026_45"]

        kube_api.emulator.run(kubelet.add_node(FakeNode("node-3")))
        html = await form_when(browser, hub, lambda h: "w_2026_45" in slower_tags(h))
        assert "w_2026_45" not in radio_tags(html)
        html = await form_when(browser, hub, ready_everywhere)
        assert radio_tags(html) == ["recommended", "w_2026_45"]
    assert ("node-3", f"{BASE}:w_2026_45@{DIGESTS['w_2026_45']}") in kubelet.pulls
    selector = ",".join(f"{k}={v}" for k, v in PREPULL_LABELS.items())
    await wait_for_async(
        lambda: kube_api.list("pods", label_selector=selector),
        "the prepull pods to go",
        timeout=30,
        interval=0.2,
        until=lambda pods: not pods,
    )
    assert not any(rt.name.startswith("prepull-") for rt in kubelet.pods.values())
