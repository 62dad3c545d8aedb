"""Two operator replicas under kopf peering: only the higher priority handles LabServers."""

from __future__ import annotations

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
