"""A LabServer's spec edited with kubectl while its pod runs: refused, reported, pod untouched."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import LabCluster, wait_for
from .test_operator import _setup
from .test_operator_hostile import _kubectl

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def kube_tls() -> bool:
    """kubectl sends its bearer token only over https."""
    return True


def _condition(server: Any, kind: str) -> dict[str, Any] | None:
    conditions = (server.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), None)


def _wait_condition(lab_cluster: LabCluster, name: str, reason: str) -> Any:
    return wait_for(
        lambda: (
            server
            if (found := _condition(server := lab_cluster.lab_server(name), "SpecApplied"))
            and found["reason"] == reason
            else None
        ),
        f"SpecApplied {reason} on {name}",
        log=lab_cluster.output,
    )


async def test_a_spec_edited_with_kubectl_is_refused_and_the_running_pod_left_alone(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    kubelet.mode = "stub"
    server = await _setup(lab_cluster)
    lab_cluster.start_operator()
    created = lab_cluster.declare(server)
    name = created["metadata"]["name"]
    running = lab_cluster.wait_phase(name, "Running")
    (pod,) = lab_cluster.owned("pods", name)
    assert running["status"]["acceptedSpec"].startswith("sha256:")

    original = {"size": server["spec"]["size"], "image": server["spec"]["image"]}
    edit = {"spec": {"size": "large", "image": "registry.example/sciplat-lab:r29"}}
    _kubectl(lab_cluster, "patch", "labserver", name, "--type=merge", "-p", json.dumps(edit))
    edited = _wait_condition(lab_cluster, name, "RestartRequired")
    refused = _condition(edited, "SpecApplied")
    assert refused is not None
    assert refused["status"] == "False"
    assert "spec.image, spec.size changed (generation 2)" in refused["message"]
    assert "keeps the spec of generation 1" in refused["message"]
    assert refused["observedGeneration"] == 2
    assert edited["metadata"]["generation"] == 2
    assert edited["status"]["observedGeneration"] == 2  # seen, and the condition says how
    accepted = _condition(edited, "Accepted")
    assert accepted is not None
    assert accepted["observedGeneration"] == 1
    assert edited["status"]["phase"] == "Running"
    event = lab_cluster.wait_event(name, "SpecChangeRefused")
    assert event["type"] == "Warning"
    assert event["message"] == refused["message"]
    (same,) = lab_cluster.owned("pods", name)
    assert same["metadata"]["uid"] == pod["metadata"]["uid"]
    assert same["spec"] == pod["spec"]

    # kubectl shows it too.
    described = _kubectl(lab_cluster, "get", "labserver", name, "-o", "json")
    assert "RestartRequired" in described
    events = _kubectl(
        lab_cluster, "get", "events", "--field-selector", f"involvedObject.name={name}"
    )
    assert "SpecChangeRefused" in events

    # Edited back to the accepted spec: applied again (it is what the lab runs).
    _kubectl(
        lab_cluster,
        "patch",
        "labserver",
        name,
        "--type=merge",
        "-p",
        json.dumps({"spec": original}),
    )
    restored = _wait_condition(lab_cluster, name, "SpecRestored")
    applied = _condition(restored, "SpecApplied")
    assert applied is not None
    assert applied["status"] == "True"
    assert restored["status"]["phase"] == "Running"
    lab_cluster.wait_event(name, "SpecRestored")
    (still,) = lab_cluster.owned("pods", name)
    assert still["metadata"]["uid"] == pod["metadata"]["uid"]
