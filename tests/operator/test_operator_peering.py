"""Two operator replicas under kopf peering: only the higher priority handles LabServers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from lsst_spawner.operator.manifests import PEERING_NAME

from .conftest import LabCluster, wait_for
from .test_operator import _setup
from .test_operator_reliability import _named

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PEERING = ("--peering", PEERING_NAME, "--peering-lifetime", "5")


def _peers(cluster: LabCluster) -> dict[str, int]:
    peering = cluster.get("kopfpeerings.kopf.dev", PEERING_NAME) or {}
    return {k: v["priority"] for k, v in (peering.get("status") or {}).items()}


async def test_a_running_replica_pauses_when_a_higher_one_joins(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    """The lower replica runs first and works; once the higher joins, only the higher works."""
    kubelet.mode = "stub"
    server = await _setup(lab_cluster)
    low = lab_cluster.start_operator(*PEERING, "--priority", "10", name="low")
    wait_for(lambda: 10 in _peers(lab_cluster).values(), "low in the peering", 90)
    lab_cluster.declare(_named(server, "lab-early"))
    lab_cluster.wait_phase("lab-early", "Running", timeout=90)
    assert "lab-early" in low.output  # alone, it works

    high = lab_cluster.start_operator(*PEERING, "--priority", "20", name="high")
    wait_for(
        lambda: "Pausing operations" in low.output,
        "the low replica to pause",
        90,
        log=lab_cluster.output,
    )
    names = [f"lab-user{i}" for i in range(3)]
    for name in names:
        lab_cluster.declare(_named(server, name))
    for name in names:
        lab_cluster.wait_phase(name, "Running", timeout=90)
        assert name in high.output
        assert name not in low.output, low.output[-3000:]
        assert [e["reason"] for e in lab_cluster.events(name)].count("Accepted") == 1


async def test_two_replicas_run_a_storm_creating_each_pod_once(
    lab_cluster: LabCluster, kubelet: Any, record_property: Any
) -> None:
    """40 LabServers declared at once with two peered replicas: 40 pods, one each."""
    kubelet.mode = "stub"
    server = await _setup(lab_cluster)
    high = lab_cluster.start_operator(*PEERING, "--priority", "20", name="high")
    low = lab_cluster.start_operator(*PEERING, "--priority", "10", name="low")
    wait_for(lambda: sorted(_peers(lab_cluster).values()) == [10, 20], "both peered", 90)
    counters = lab_cluster.emulator.counters
    creates_before = counters.get("create", "pods")
    names = [f"lab-storm{i:02d}" for i in range(40)]
    started = time.monotonic()
    for name in names:
        lab_cluster.declare(_named(server, name))
    for name in names:
        lab_cluster.wait_phase(name, "Running", timeout=180)
    seconds = round(time.monotonic() - started, 1)
    for name in names:
        assert len(lab_cluster.owned("pods", name)) == 1
        reasons = [e["reason"] for e in lab_cluster.events(name)]
        assert reasons.count("PodCreated") == 1, reasons
        assert reasons.count("Accepted") == 1, reasons
        assert name not in low.output
    assert counters.get("create", "pods") - creates_before == len(names)
    accepted = high.output.count("Accepted labserver")
    assert accepted == len(names)
    record_property("labs", len(names))
    record_property("seconds_to_all_running", seconds)
    print(f"two replicas: {len(names)} LabServers running in {seconds}s, all by the higher one")


async def test_replicas_started_together_only_the_higher_works_then_the_lower_takes_over(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    """The lower replica starts paused (kopf pre-activates the pause with ``--peering``) and
    stays so without logging "Pausing operations": it only logs a switch from working."""
    kubelet.mode = "stub"
    server = await _setup(lab_cluster)
    low = lab_cluster.start_operator(*PEERING, "--priority", "10", name="low")
    high = lab_cluster.start_operator(*PEERING, "--priority", "20", name="high")
    wait_for(lambda: sorted(_peers(lab_cluster).values()) == [10, 20], "both peered", 90)
    for name in ("lab-first0", "lab-first1"):
        lab_cluster.declare(_named(server, name))
    for name in ("lab-first0", "lab-first1"):
        lab_cluster.wait_phase(name, "Running", timeout=90)
        assert name in high.output
        assert name not in low.output, low.output[-3000:]
    high.kill()  # SIGKILL: its peering entry lingers until its 5 s lifetime ends
    lab_cluster.declare(_named(server, "lab-later"))
    lab_cluster.wait_phase("lab-later", "Running", timeout=150)
    assert "lab-later" in low.output
    assert "Resuming operations" in low.output
    assert [e["reason"] for e in lab_cluster.events("lab-later")].count("PodCreated") == 1
