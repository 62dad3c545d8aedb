"""Operator mode under faults: spawn/stop cycles with 10 % transient API errors, a 20 s outage.

In-process hub spawners (``lab_backend = "operator"``, bound to operator mode's hub
Role) and the real operator as a process, both against the emulator with its faults;
the kubelet in stub mode. Figures are printed (``-s``) and recorded as properties; the
tests assert outcomes only. docs/reliability.md has the figures.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from typing import Any

import pytest

from lsst_spawner.testing.kube.fixtures import KubeHandle

from ..reliability.helpers import labs_through_outage, reachable, spawn_once, transient_faults
from .conftest import LABSERVERS, LabCluster, wait_for
from .test_hub_mode import install_template, make_spawner

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: 10 users x 20 cycles (``OPERATOR_CYCLES`` overrides the cycles per user).
USERS = 10
CYCLES = int(os.environ.get("OPERATOR_CYCLES", "20"))
#: A spawn ends (ready or failed) within its start timeout (90 s) plus a stop's budget.
SPAWN_DEADLINE = 90 + 60
OUTAGE = 20.0


def census(cluster: LabCluster) -> dict[str, list[str]]:
    """The LabServers, pods and Secrets of the namespace, by name."""
    return {
        kind: sorted(
            o["metadata"]["name"] for o in cluster.emulator.list_objects(kind, cluster.namespace)
        )
        for kind in (LABSERVERS, "pods", "secrets")
    }


def empty(cluster: LabCluster) -> bool:
    return not any(census(cluster).values())


async def test_spawn_stop_cycles_with_transient_faults_leave_nothing_behind(
    lab_cluster: LabCluster, kubelet: Any, record_property: Any
) -> None:
    kubelet.mode = "stub"
    await install_template(lab_cluster)
    operator = lab_cluster.start_operator()
    kube: KubeHandle = lab_cluster.kube
    transient_faults(kube, 0.10)
    outcomes = {"ready": 0, "failed": 0}
    failures: list[str] = []
    durations: list[float] = []

    async def user_cycles(index: int) -> None:
        name = f"cycle{index:02d}"
        for _ in range(CYCLES):
            spawner = make_spawner(lab_cluster, name, image="w_2026_46")
            seconds = await spawn_once(spawner, SPAWN_DEADLINE, outcomes, failures)
            if seconds is not None:
                durations.append(seconds)
            await asyncio.wait_for(spawner.stop(), SPAWN_DEADLINE)

    started = time.monotonic()
    await asyncio.gather(*(user_cycles(i) for i in range(USERS)))
    elapsed = time.monotonic() - started
    faults = kube.counters.faults_injected()
    kube.faults.clear()
    wait_for(lambda: empty(lab_cluster), f"nothing left (have {census(lab_cluster)})", 60)
    assert operator.running(), operator.output[-3000:]
    durations.sort()
    figures = {
        "cycles": USERS * CYCLES,
        "ready": outcomes["ready"],
        "failed": outcomes["failed"],
        "requests": kube.counters.total,
        "faults": faults,
        "pod_create_requests": kube.counters.get("create", "pods"),
        "spawn_p50_seconds": round(durations[len(durations) // 2], 2) if durations else None,
        "spawn_max_seconds": round(durations[-1], 2) if durations else None,
        "seconds": round(elapsed, 1),
    }
    for key, value in figures.items():
        record_property(key, value)
    print("operator cycle figures:", figures, "failures:", failures[:10])
    assert outcomes["ready"] + outcomes["failed"] == USERS * CYCLES
    assert faults > 0
    # No LabServer got a second pod: one PodCreated Event at most per LabServer (by uid;
    # each cycle's LabServer is a new object with the same name).
    created = Counter(
        event["involvedObject"].get("uid")
        for event in lab_cluster.emulator.list_objects("events", lab_cluster.namespace)
        if event["reason"] == "PodCreated"
    )
    assert created
    assert max(created.values()) == 1, created.most_common(3)
    assert len(created) >= outcomes["ready"] - 5  # a few Events may be lost to the faults


async def test_api_down_for_20s_in_operator_mode(
    lab_cluster: LabCluster, kubelet: Any, record_property: Any
) -> None:
    """Labs keep running and poll() says so; the operator re-watches and builds new labs."""
    kubelet.mode = "stub"
    await install_template(lab_cluster)
    operator = lab_cluster.start_operator()
    emulator = lab_cluster.emulator
    labs = [make_spawner(lab_cluster, f"run{i}", image="w_2026_46") for i in range(3)]
    urls = await asyncio.wait_for(asyncio.gather(*(lab.start() for lab in labs)), 120)
    for lab, url in zip(labs, urls, strict=True):
        lab.server.url = url

    emulator.run(emulator.down(OUTAGE))
    down_at = time.monotonic()
    late = make_spawner(lab_cluster, "late", image="w_2026_46")
    late_start = asyncio.ensure_future(late.start())
    checks = await labs_through_outage(labs, urls, down_at + OUTAGE - 2)

    await asyncio.wait({late_start}, timeout=150)
    assert late_start.done(), "the spawn started during the outage did not end"
    late_error = late_start.exception()
    late_seconds = round(time.monotonic() - down_at, 1)
    late_outcome = "ready" if late_error is None else f"failed: {late_error}"
    if late_error is not None:
        assert "retry budget" in str(late_error) or "Could not" in str(late_error), late_error

    after = make_spawner(lab_cluster, "after", image="w_2026_46")
    recovered_at = time.monotonic()
    assert await asyncio.wait_for(after.start(), 150)
    after_seconds = round(time.monotonic() - recovered_at, 1)
    assert all([await reachable(url) for url in urls])
    for spawner in [*labs, after, late]:
        await asyncio.wait_for(spawner.stop(), 90)
    wait_for(lambda: empty(lab_cluster), f"nothing left (have {census(lab_cluster)})", 60)
    assert operator.running()
    figures = {
        "outage_seconds": OUTAGE,
        "checks_during_outage": checks,
        "late_spawn": late_outcome,
        "late_spawn_ended_after_seconds": late_seconds,
        "first_spawn_after_outage_seconds": after_seconds,
        "refused_requests": emulator.counters.faults_injected("down"),
    }
    for key, value in figures.items():
        record_property(key, value)
    print("operator api-down figures:", figures)
