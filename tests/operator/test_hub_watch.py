"""The hub in operator mode follows its LabServers through one watch, not a GET per spawn."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lsst_spawner import operator_mode
from lsst_spawner.kube.labserver_reflector import LABSERVER_REFLECTOR_KIND, LabServerReflector
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


async def test_a_waiting_spawn_looks_at_its_lab_server_only_when_it_changes(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    """A spawn waiting for the operator is woken by its LabServer's changes in the hub's
    watch: in 6 s without a change it looks at most twice (its first look and the 5 s
    recheck), where the half-second poll looked twelve times; the operator's status
    writes then wake it, and it ends."""
    kubelet.mode = "stub"
    await install_template(lab_cluster)
    spawner = make_spawner(lab_cluster, "wakes", image="w_2026_46")
    backend = spawner.operator_backend
    assert backend is not None
    looks = 0
    look = backend.cached

    async def counted() -> Any:
        nonlocal looks
        looks += 1
        return await look()

    backend.cached = counted  # type: ignore[method-assign]
    start = asyncio.ensure_future(spawner.start())
    await wait_for_async(
        lambda: looks, "the spawn's first look", timeout=60, interval=0.1, until=bool
    )
    first = looks
    await asyncio.sleep(6)
    assert not start.done()
    assert looks - first <= 2, f"{looks - first} looks at an unchanged LabServer in 6 s"

    lab_cluster.start_operator()
    url = await asyncio.wait_for(start, 120)
    assert url.startswith("http://127.")
    await spawner.stop()
    assert await spawner.poll() == 0


async def test_the_watch_alone_wakes_a_start_and_a_stop_from_an_empty_first_list(
    lab_cluster: LabCluster, kubelet: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the 5 s recheck turned off, the hub's watch alone must wake the waits. Its
    first list found no LabServer ({}), which traitlets does not report as a change: the
    dict was left unwatched and every wait ran to its recheck (an N=1,000 stop phase took
    83 s instead of 26 s); here such a start and stop never ended."""
    monkeypatch.setattr(operator_mode, "_RECHECK_SECONDS", 3600.0)
    kubelet.mode = "stub"
    await install_template(lab_cluster)
    lab_cluster.start_operator()
    spawner = make_spawner(lab_cluster, "woken", image="w_2026_46")
    reflector = await spawner._start_reflector(
        LABSERVER_REFLECTOR_KIND, LabServerReflector, replace=True
    )
    assert reflector.resources == {}  # a namespace without LabServers yet
    url = await asyncio.wait_for(spawner.start(), 120)
    assert url.startswith("http://127.")
    await asyncio.wait_for(spawner.stop(), 120)
    assert lab_cluster.lab_server("lab-woken") is None
