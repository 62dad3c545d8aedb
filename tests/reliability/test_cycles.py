"""200 spawn/stop cycles with 10 % transient faults: every spawn ends cleanly, nothing orphaned."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from lsst_spawner.testing.kube.fixtures import KubeHandle

from .helpers import EMPTY, lab_census, make_spawner, spawn_once, transient_faults

pytestmark = [pytest.mark.slow, pytest.mark.integration]

USERS = 10
CYCLES = 20
#: A spawn must end (ready or failed) within its start timeout plus the stop's budget.
SPAWN_DEADLINE = 60 + 30


async def test_spawn_stop_cycles_with_transient_faults(
    kube_api: KubeHandle, stub_kubelet: Any, record_property: Any
) -> None:
    transient_faults(kube_api, 0.10)
    outcomes: dict[str, int] = {"ready": 0, "failed": 0}
    failures: list[str] = []

    async def user_cycles(index: int) -> None:
        name = f"cycle{index:02d}"
        for _ in range(CYCLES):
            spawner = make_spawner(kube_api, name)
            await spawn_once(spawner, SPAWN_DEADLINE, outcomes, failures)
            await asyncio.wait_for(spawner.stop(now=True), SPAWN_DEADLINE)

    started = time.monotonic()
    await asyncio.gather(*(user_cycles(i) for i in range(USERS)))
    elapsed = time.monotonic() - started

    # The faults end; objects the kubelet is still tearing down go away.
    kube_api.faults.clear()
    for _ in range(100):
        if lab_census(kube_api) == EMPTY:
            break
        await asyncio.sleep(0.1)
    counters = kube_api.counters
    figures = {
        "cycles": USERS * CYCLES,
        "ready": outcomes["ready"],
        "failed": outcomes["failed"],
        "requests": counters.total,
        "faults": counters.faults_injected(),
        "errors": counters.faults_injected("error"),
        "resets": counters.faults_injected("reset"),
        "seconds": round(elapsed, 1),
    }
    for key, value in figures.items():
        record_property(key, value)
    print("cycle figures:", figures, "failures:", failures[:10])
    assert outcomes["ready"] + outcomes["failed"] == USERS * CYCLES
    assert lab_census(kube_api) == EMPTY
    assert counters.faults_injected() > 0
