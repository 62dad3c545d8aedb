"""The Kubernetes API down for 20 s while labs run, and a spawn started during the outage.

In-process spawners against the emulator, kubelet in stub mode (it answers on
each pod's IP; the kubelet and the labs keep running while the API is down,
as on a cluster whose control plane is unavailable).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from lsst_spawner.testing.kube.fixtures import KubeHandle

from .helpers import (
    labs_through_outage,
    make_spawner,
    no_lab_objects,
    reachable,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

OUTAGE = 20.0
RUNNING = 3


async def test_api_down_while_labs_run(
    kube_api: KubeHandle, stub_kubelet: Any, record_property: Any
) -> None:
    emulator = kube_api.emulator
    assert emulator is not None
    labs = [make_spawner(kube_api, f"run{i}") for i in range(RUNNING)]
    urls = await asyncio.wait_for(asyncio.gather(*(lab.start() for lab in labs)), 60)
    assert all([await reachable(url) for url in urls])
    for lab, url in zip(labs, urls, strict=True):
        lab.server.url = url  # what the hub records after start; poll() compares with it

    emulator.run(emulator.down(OUTAGE))
    down_at = time.monotonic()

    # A spawn started during the outage: it completes after it, or fails
    # (its 20 s retry budget spent) with a message naming the API error.
    late = make_spawner(kube_api, "late")
    late_start = asyncio.ensure_future(late.start())

    # During the outage the labs answer on their pod IPs and the hub's poll
    # (the reflector's last known state) still reports them running.
    checks = await labs_through_outage(labs, urls, down_at + OUTAGE - 2)

    await asyncio.wait({late_start}, timeout=90)
    assert late_start.done(), "the spawn started during the outage did not end within its timeout"
    late_error = late_start.exception()
    late_seconds = round(time.monotonic() - down_at, 1)
    if late_error is None:
        late_outcome = "ready"
        assert await reachable(late_start.result())
    else:
        late_outcome = f"failed: {late_error}"
        assert "retry budget" in str(late_error) or "Could not" in str(late_error), late_error
    print("late spawn:", late_outcome, "after", late_seconds, "s")

    # The reflectors recover: a new lab starts (its pod must be seen Running
    # through the pod reflector's watch) and stops (seen gone).
    after = make_spawner(kube_api, "after")
    recovered_at = time.monotonic()
    url = await asyncio.wait_for(after.start(), 90)
    seconds_to_spawn_after = round(time.monotonic() - recovered_at, 1)
    assert await reachable(url)
    assert all([await reachable(url) for url in urls])
    for spawner in [*labs, after, late]:
        await asyncio.wait_for(spawner.stop(now=True), 60)
    await no_lab_objects(kube_api)

    figures = {
        "outage_seconds": OUTAGE,
        "reachability_checks_during_outage": checks,
        "late_spawn": late_outcome,
        "late_spawn_ended_after_seconds": late_seconds,
        "first_spawn_after_outage_seconds": seconds_to_spawn_after,
        "refused_requests": emulator.counters.faults_injected("down"),
    }
    for key, value in figures.items():
        record_property(key, value)
    print("api-down figures:", figures)
