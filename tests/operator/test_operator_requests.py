"""The operator's requests per lab: one pod and one Secret create, however late its watch is.

kopf waits ``settings.persistence.consistency_timeout`` (5 s) for its own patch of a
LabServer to come back through the watch; when the watch is later than that (a loaded API
server or operator), it takes the last event it has (the handler's own status patch,
without kopf's "handled" annotation) for a LabServer not yet handled and runs the create
handler again. At N=1,000 in ``benchmarks/operator_storm.py`` that was 20 % of the labs.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import LABSERVERS, LabCluster, wait_for
from .test_operator import _setup
from .test_operator_reliability import _named

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Longer than kopf's consistency timeout (5 s): each LabServer's events come that late.
WATCH_LAG = 6.0


async def test_a_late_watch_makes_one_pod_and_one_secret_per_lab(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    """Three LabServers declared at once while their watch runs 6 s late: kopf calls the create
    handler again for each, which creates nothing more (no create kept on its 409), says
    Accepted once and writes the status once. The LabServers are deleted before the counts
    are read: their deletion comes through the same late watch, after kopf's second call."""
    kubelet.mode = "stub"
    server = await _setup(lab_cluster)
    operator = lab_cluster.start_operator()
    counters = lab_cluster.emulator.counters
    lab_cluster.emulator.faults.watch_lag(WATCH_LAG, LABSERVERS)
    pods, secrets = counters.get("create", "pods"), counters.get("create", "secrets")
    patches = counters.get("patch", f"{LABSERVERS}/status")
    names = [f"lab-late{i}" for i in range(3)]
    for name in names:
        lab_cluster.declare(_named(server, name))  # the hub's Secrets: not through the API
    running = [lab_cluster.wait_phase(name, "Running", timeout=120) for name in names]
    for lab in running:  # the hub's progress: both steps, from one status patch
        steps = [(e["progress"], e["message"].split()[0]) for e in lab["status"]["events"]]
        assert steps[:2] == [(20, "Accepted:"), (40, "Created")], steps
    store = lab_cluster.emulator.store
    for name in names:
        lab_cluster.emulator.call(lambda n=name: store.delete(LABSERVERS, lab_cluster.namespace, n))
    for name in names:
        wait_for(
            lambda n=name: lab_cluster.lab_server(n) is None,
            f"{name} gone",
            120,
            log=lab_cluster.output,
        )
    status_patches = counters.get("patch", f"{LABSERVERS}/status") - patches
    assert counters.get("create", "pods") - pods == len(names)
    assert counters.get("create", "secrets") - secrets == len(names)  # the labs' Secrets
    # Starting (accepted and created), the pod's Pending, Running: 6 each before the fix.
    assert status_patches <= 3 * len(names)
    for name in names:
        reasons = [e["reason"] for e in lab_cluster.events(name)]
        assert reasons.count("Accepted") == 1, reasons
        assert reasons.count("PodCreated") == 1, reasons
    output = operator.output
    assert output.count("Accepted labserver") == len(names), output[-4000:]
    assert output.count("created already (kopf ran its handler again)") >= len(names)
