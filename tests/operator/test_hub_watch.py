"""The hub in operator mode follows its LabServers through one watch, not a GET per spawn."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lsst_spawner.testing.waiting import wait_for_async

from .conftest import LabCluster
from .test_hub_mode import install_template, make_spawner

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def test_waiting_spawns_read_their_lab_servers_from_one_watch(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    """Five spawns wait 6 s for an operator that is not there yet: at the old half-second
    poll that was about 60 GETs of LabServers; through the watch it is one per spawn at
    most (a LabServer the watch has not delivered yet is read once)."""
    kubelet.mode = "stub"
    await install_template(lab_cluster)
    spawners = [make_spawner(lab_cluster, f"watch{i}", image="w_2026_46") for i in range(5)]
    starts = [asyncio.ensure_future(s.start()) for s in spawners]
    counters = lab_cluster.kube.counters
    resource = "labservers.lab.lsst-spawner.io"
    await wait_for_async(
        lambda: counters.get("create", resource),
        f"the {len(spawners)} LabServers to be created",
        timeout=60,
        interval=0.1,
        until=lambda created: created >= len(spawners),
    )
    gets = counters.get("get", resource)
    await asyncio.sleep(6)
    assert not any(start.done() for start in starts)
    assert counters.get("get", resource) - gets <= len(spawners)
    assert counters.get("watch", resource) >= 1

    lab_cluster.start_operator()
    urls = await asyncio.wait_for(asyncio.gather(*starts), 120)
    assert all(url.startswith("http://127.") for url in urls)
    for spawner in spawners:
        assert await spawner.poll() is None
        await spawner.stop()
        assert await spawner.poll() == 0
