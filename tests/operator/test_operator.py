"""The real operator, as a process, against the emulator and a process kubelet."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import LABSERVERS, TEMPLATES, LabCluster, decoded, wait_for
from .site import declared_lab_server, site_config, template_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def _setup(lab_cluster: LabCluster, **lsst: Any) -> dict[str, Any]:
    """The site's LabTemplate in the cluster; returns the LabServer the hub would declare."""
    config = site_config(lab_image_pull_grace=1, **lsst)
    config.KubeSpawner.node_selector = {}  # the emulator's nodes have no such label
    template = await template_for(config)
    template["metadata"]["namespace"] = lab_cluster.namespace
    lab_cluster.create(TEMPLATES, template)
    server = await declared_lab_server(config, "rra", "", {})
    server["metadata"]["namespace"] = lab_cluster.namespace
    return server


async def test_a_lab_server_becomes_a_running_lab_and_is_cleaned_up(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    kubelet.mode = "stub"
    server = await _setup(lab_cluster)
    operator = lab_cluster.start_operator()
    created = lab_cluster.declare(server, api_token="hubtoken-abc", git="gho_gittoken")
    name = created["metadata"]["name"]
    running = lab_cluster.wait_phase(name, "Running")
    status = running["status"]
    assert status["podAddress"]
    assert [e["progress"] for e in status["events"]] == sorted(
        e["progress"] for e in status["events"]
    )
    assert status["events"][-1]["progress"] == 100
    pods = lab_cluster.owned("pods", name)
    assert [p["metadata"]["name"] for p in pods] == [status["podName"]]
    (owner,) = pods[0]["metadata"]["ownerReferences"]
    assert owner["uid"] == created["metadata"]["uid"]
    assert owner["controller"] is True
    secrets = lab_cluster.owned("secrets", name)
    assert secrets
    values = [decoded(s) for s in secrets]
    assert any("hubtoken-abc" in v.values() for v in values)  # the lab's Secret has the token
    assert "hubtoken-abc" not in str(pods[0])
    for reason in ("Accepted", "PodCreated", "PodReady"):
        event = lab_cluster.wait_event(name, reason)
        assert event["type"] == "Normal"
    assert "lab.lsst-spawner.io/cleanup" in running["metadata"]["finalizers"]
    (lab_secret,) = {v["secret"]["secretName"] for v in pods[0]["spec"]["volumes"] if "secret" in v}
    counters = lab_cluster.emulator.counters
    lists = [counters.get("list", kind) for kind in ("pods", "secrets")]

    lab_cluster.emulator.call(
        lambda: lab_cluster.emulator.store.delete(LABSERVERS, lab_cluster.namespace, name)
    )
    wait_for(
        lambda: lab_cluster.lab_server(name) is None, "the LabServer gone", log=lab_cluster.output
    )
    assert lab_cluster.owned("pods", name) == []
    assert lab_cluster.owned("secrets", name) == []
    assert lab_cluster.get("secrets", server["spec"]["secretRef"]["name"]) is None
    deleted = lab_cluster.wait_event(name, "Deleted")
    assert f"Pod/{status['podName']}" in deleted["message"]
    assert f"Secret/{lab_secret}" in deleted["message"]
    # Found by name (the status' pod, its volumes' Secrets), not by label-selected lists.
    assert [counters.get("list", kind) for kind in ("pods", "secrets")] == lists

    # A graceful stop leaves no task of ours running (the template's image menu refresh was,
    # and kopf waited 5 s for it before it exited).
    assert operator.stop() == 0
    assert "Still running at shutdown" not in operator.output
    assert "Activity '_register.<locals>.cleanup' succeeded" in operator.output
