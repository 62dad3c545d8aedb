"""Hostile LabServers created directly with kubectl: each rejected, with a Warning Event, no pod."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from typing import Any

import pytest

from .conftest import LabCluster
from .test_operator import _setup

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVIL_IMAGE = "evil.example/miner:latest"
CASES: dict[str, tuple[str, Any, str]] = {
    "unlisted-image": ("spec.image", EVIL_IMAGE, "ImageRejected"),
    "uid-zero": ("spec.identity.uid", 0, "IdentityRejected"),
    "no-gid": ("spec.identity.gid", None, "IdentityRejected"),
    "privileged": ("spec.securityContext", {"privileged": True}, "ForbiddenFields"),
    "host-path": ("spec.volumes", [{"name": "r", "hostPath": {"path": "/"}}], "ForbiddenFields"),
    "missing-template": ("spec.templateRef.name", "no-such-template", "MissingTemplate"),
    "foreign-namespace": ("spec.templateRef.namespace", "kube-system", "ForeignNamespace"),
    "huge-size": ("spec.size", "huge", "SizeRejected"),
}


@pytest.fixture
def kube_tls() -> bool:
    """kubectl sends its bearer token only over https."""
    return True


def _kubectl(lab_cluster: LabCluster, *args: str, stdin: str | None = None) -> str:
    binary = shutil.which("kubectl")
    assert binary, "kubectl is not installed"
    result = subprocess.run(
        [
            binary,
            f"--kubeconfig={lab_cluster.kube.admin_kubeconfig}",
            "-n",
            lab_cluster.namespace,
            *args,
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _hostile(server: dict[str, Any], case: str) -> dict[str, Any]:
    path, value, _ = CASES[case]
    body = copy.deepcopy(server)
    body["metadata"] = {"name": f"evil-{case}"}
    body["spec"]["secretRef"] = {"name": f"evil-{case}-hub"}
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return body


async def test_hostile_lab_servers_created_with_kubectl_are_rejected(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    kubelet.mode = "stub"
    server = await _setup(lab_cluster)
    lab_cluster.start_operator()
    for case in CASES:
        _kubectl(lab_cluster, "create", "-f", "-", stdin=json.dumps(_hostile(server, case)))
        created = lab_cluster.lab_server(f"evil-{case}")
        lab_cluster.declare_secret(created)  # the attacker's own token Secret, to get past it
    for case, (_, _, reason) in CASES.items():
        name = f"evil-{case}"
        rejected = lab_cluster.wait_phase(name, "Rejected")
        (accepted,) = [c for c in rejected["status"]["conditions"] if c["type"] == "Accepted"]
        assert accepted["status"] == "False"
        assert accepted["reason"] == reason
        event = lab_cluster.wait_event(name, reason)
        assert event["type"] == "Warning"
        assert rejected["status"]["message"] == event["message"]
    # kubectl shows the audit trail and the phase.
    table = _kubectl(lab_cluster, "get", "labservers")
    assert "evil-unlisted-image" in table
    assert "Rejected" in table
    assert EVIL_IMAGE in table
    events = _kubectl(
        lab_cluster, "get", "events", "--field-selector", "involvedObject.name=evil-unlisted-image"
    )
    assert "ImageRejected" in events
    # No pod and no lab Secret for any of them, and no pod at all.
    assert lab_cluster.emulator.list_objects("pods", lab_cluster.namespace) == []
    for case in CASES:
        assert lab_cluster.owned("secrets", f"evil-{case}") == []
