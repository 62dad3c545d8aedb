"""The operator when things go wrong: pull failures, restarts, two replicas, dead watches."""

from __future__ import annotations

import asyncio
import copy
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from .conftest import LABSERVERS, LabCluster, wait_for
from .test_operator import _setup

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _named(server: dict[str, Any], name: str) -> dict[str, Any]:
    """Another user's LabServer (pod names come from the username)."""
    body = copy.deepcopy(server)
    body["metadata"]["name"] = name
    body["spec"]["secretRef"]["name"] = f"{name}-hub"
    body["spec"]["user"]["name"] = body["spec"]["identity"]["username"] = name.removeprefix("lab-")
    return body


async def test_an_image_the_node_cannot_pull_fails_fast(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    kubelet.mode = "stub"
    # The node can pull only the init image (init containers run, and pull, first): the lab's
    # image is the one that fails.
    kubelet.images = {"registry.example/init:1.2.3"}
    server = await _setup(lab_cluster)  # lab_image_pull_grace = 1
    lab_cluster.start_operator()
    name = lab_cluster.declare(server)["metadata"]["name"]
    failed = lab_cluster.wait_phase(name, "Failed", timeout=90)
    assert "could not be used" in failed["status"]["message"]
    event = lab_cluster.wait_event(name, "ImagePullFailed")
    assert event["type"] == "Warning"
    assert "sciplat-lab" in event["message"]
    wait_for(
        lambda: lab_cluster.owned("pods", name) == [], "the pod deleted", log=lab_cluster.output
    )
    assert lab_cluster.owned("secrets", name) == []


async def test_an_operator_killed_mid_spawn_finishes_it_after_restarting(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    """Killed (SIGKILL) while it waits for the hub's Secret; the next one completes the spawn."""
    kubelet.mode = "stub"
    server = await _setup(lab_cluster)
    first = lab_cluster.start_operator(name="first")
    created = lab_cluster.create(LABSERVERS, server)
    name = created["metadata"]["name"]
    lab_cluster.wait_event(name, "Retried")  # it is waiting for the Secret
    first.kill()
    lab_cluster.declare_secret(created)
    assert lab_cluster.owned("pods", name) == []
    lab_cluster.start_operator(name="second")
    running = lab_cluster.wait_phase(name, "Running", timeout=90)
    assert len(lab_cluster.owned("pods", name)) == 1
    assert running["status"]["podAddress"]


async def test_two_replicas_create_each_pod_once(lab_cluster: LabCluster, kubelet: Any) -> None:
    """kopf peering: the higher priority works, the other stands by and takes over when it dies."""
    kubelet.mode = "stub"
    server = await _setup(lab_cluster)
    peering = ("--peering", "lsst-spawner", "--peering-lifetime", "5")
    high = lab_cluster.start_operator(*peering, "--priority", "20", name="high")

    def peers() -> dict[str, Any]:
        peering_object = lab_cluster.get("kopfpeerings.kopf.dev", "lsst-spawner") or {}
        return {k: v["priority"] for k, v in (peering_object.get("status") or {}).items()}

    wait_for(lambda: 20 in peers().values(), "high in the peering", 90, log=lab_cluster.output)
    low = lab_cluster.start_operator(*peering, "--priority", "10", name="low")
    wait_for(lambda: 10 in peers().values(), "low in the peering", 90, log=lab_cluster.output)
    names = [f"lab-user{i}" for i in range(4)]
    creates_before = lab_cluster.emulator.counters.get("create", "pods")
    for name in names[:2]:
        lab_cluster.declare(_named(server, name))
    for name in names[:2]:
        lab_cluster.wait_phase(name, "Running", timeout=90)
    assert "lab-user0" in high.output
    assert "lab-user0" not in low.output
    high.kill()  # the working replica dies; the other takes over once its entry expires
    for name in names[2:]:
        lab_cluster.declare(_named(server, name))
    for name in names[2:]:
        lab_cluster.wait_phase(name, "Running", timeout=150)
    assert "Resuming operations" in low.output
    for name in names:
        assert len(lab_cluster.owned("pods", name)) == 1
        assert [e["reason"] for e in lab_cluster.events(name)].count("PodCreated") == 1
    assert lab_cluster.emulator.counters.get("create", "pods") - creates_before == len(names)


def _health(port: int) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError as error:
        return 0, str(error)


async def test_liveness_fails_when_the_watches_freeze(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    await _setup(lab_cluster)
    operator = lab_cluster.start_operator()
    port = operator.liveness_port  # type: ignore[attr-defined]
    _, body = wait_for(
        lambda: (found := _health(port))[0] == 200 and found, "a healthy probe", timeout=90
    )
    assert "heartbeatAge" in json.dumps(body)
    # A dropped watch stream is re-watched: still healthy (kopf#1276's freeze would fail it).
    lab_cluster.emulator.run(lab_cluster.emulator.drop_watches())
    await asyncio.sleep(12)
    assert _health(port)[0] == 200, operator.output[-3000:]
    # A watch that hangs and delivers nothing (kopf#1276's freeze): the heartbeat Lease is
    # still renewed but never comes back through the watch, and the probe fails.
    lab_cluster.emulator.faults.latency(3600, verbs="watch", resources="leases")
    lab_cluster.emulator.run(lab_cluster.emulator.drop_watches())
    wait_for(
        lambda: _health(port)[0] == 500, "a failing probe", timeout=90, log=lambda: operator.output
    )
    assert operator.process is not None
    assert operator.process.poll() is None  # frozen, not crashed: only the probe can tell


@pytest.mark.parametrize("mode", ["process"])
async def test_a_lab_whose_site_secret_is_missing_fails_fast_naming_it(
    lab_cluster: LabCluster, kubelet: Any, mode: str
) -> None:
    """The kubelet holds the pod (CreateContainerConfigError); the operator fails the lab
    after lab_start_failure_grace, naming the Secret and key, and deletes its objects."""
    kubelet.mode = mode
    server = await _setup(
        lab_cluster,
        lab_start_failure_grace="1s",
        lab_extra_secrets=[
            {
                "key": "butler-token",
                "env": "BUTLER_TOKEN",
                "secret_key_ref": {"name": "site-butler", "key": "token"},
            }
        ],
    )
    lab_cluster.start_operator()
    name = lab_cluster.declare(server)["metadata"]["name"]
    failed = lab_cluster.wait_phase(name, "Failed", timeout=90)
    message = failed["status"]["message"]
    assert "the Secret site-butler (key token) it reads is missing" in message
    assert "[CreateContainerConfigError]" in message
    event = lab_cluster.wait_event(name, "StartFailed")
    assert event["type"] == "Warning"
    assert "site-butler" in event["message"]
    wait_for(
        lambda: lab_cluster.owned("pods", name) == [], "the pod deleted", log=lab_cluster.output
    )
    assert lab_cluster.owned("secrets", name) == []
