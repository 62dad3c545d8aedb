"""The real operator polices LabServers with the admin-edited lab menu's current revision."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.menu import node_groups_by_name
from lsst_spawner.menu.model import NodeGroup
from lsst_spawner.menu.storage import MenuStore
from lsst_spawner.operator.build import MENU_DB_URL_ENV

from .conftest import TEMPLATES, LabCluster
from .site import IMAGE_BASE, declared_lab_server, site_config, template_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GPU_GROUP = {
    "name": "gpu",
    "node_selector": {"pool": "gpu"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "extended_resources": {"nvidia.com/gpu": 1},
    "max_cpu": "8",
    "max_memory": "64Gi",
}


def _profile(name: str, cpu: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "cpu_limit": cpu,
        "cpu_guarantee": "100m",
        "memory_limit": "4Gi",
        "memory_guarantee": "1Gi",
        **extra,
    }


def _menu(hidden: str = "w_2026_39") -> dict[str, Any]:
    """One weekly hidden; profiles small (default) and gpu (for gpu-users, on the gpu node
    group) instead of the template's sizes."""
    return {
        "image_policy": {"releases": 0, "weeklies": 2, "dailies": 0},
        "images": [
            {"tag": "w_2026_40", "default": True},
            {"tag": hidden, "state": "hidden"},
        ],
        "profiles": [
            _profile("small", "1", default=True),
            _profile("gpu", "4", node_group="gpu", groups=["gpu-users"]),
        ],
    }


def _variant(server: dict[str, Any], name: str, **spec: Any) -> dict[str, Any]:
    body = copy.deepcopy(server)
    body["metadata"] = {"name": name, "namespace": server["metadata"]["namespace"]}
    body["spec"]["secretRef"] = {"name": f"{name}-hub"}
    body["spec"]["user"] = {**body["spec"]["user"], "server": name}  # a pod name of its own
    body["spec"].update(spec)
    return body


def _rejected_reason(lab_cluster: LabCluster, name: str) -> tuple[str, str]:
    rejected = lab_cluster.wait_phase(name, "Rejected")
    (accepted,) = [c for c in rejected["status"]["conditions"] if c["type"] == "Accepted"]
    assert accepted["status"] == "False"
    event = lab_cluster.wait_event(name, accepted["reason"])
    assert event["type"] == "Warning"
    assert lab_cluster.owned("pods", name) == []
    return accepted["reason"], accepted["message"]


async def test_the_operator_polices_with_the_lab_menus_current_revision(
    lab_cluster: LabCluster, kubelet: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubelet.mode = "stub"
    db = f"sqlite:///{tmp_path / 'menu.sqlite'}"
    store = MenuStore(db, node_groups_by_name([NodeGroup.model_validate(GPU_GROUP)]))
    store.upgrade()
    first = store.save(_menu(), base=None, author="alice")
    config = site_config(lab_image_pull_grace=1)
    config.KubeSpawner.node_selector = {}
    config.LabMenu.db_url = db
    config.LabMenu.node_groups = [GPU_GROUP]
    config.LabMenu.revision_check_interval = 0
    template = await template_for(config)
    assert "db_url" not in str(template)
    assert db not in str(template)
    assert template["spec"]["labMenu"]["nodeGroups"] == [GPU_GROUP]
    template["metadata"]["namespace"] = lab_cluster.namespace
    lab_cluster.create(TEMPLATES, template)
    server = await declared_lab_server(config, "rra", "", {})  # the hub, reading the menu
    server["metadata"]["namespace"] = lab_cluster.namespace
    assert server["spec"]["size"] == "small"
    monkeypatch.setenv(MENU_DB_URL_ENV, db)
    lab_cluster.start_operator()

    gpu_groups = [*server["spec"]["identity"]["groups"], {"name": "gpu-users", "gid": 7001}]
    gpu_identity = {**server["spec"]["identity"], "groups": gpu_groups}
    cases = {
        "ok": {},
        "hidden": {"image": f"{IMAGE_BASE}:w_2026_39"},
        "template-only-size": {"size": "medium"},
        "gpu-not-visible": {"size": "gpu"},
        "gpu": {"size": "gpu", "identity": gpu_identity},
    }
    for name, spec in cases.items():
        lab_cluster.declare(_variant(server, name, **spec))

    lab_cluster.wait_phase("ok", "Running")
    (pod,) = lab_cluster.owned("pods", "ok")
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    assert limits["memory"] in ("4Gi", str(4 * 2**30))
    assert "nodeSelector" not in pod["spec"] or "pool" not in pod["spec"]["nodeSelector"]

    reason, message = _rejected_reason(lab_cluster, "hidden")
    assert reason == "ImageRejected"
    assert "w_2026_39 is no longer offered" in message
    assert _rejected_reason(lab_cluster, "template-only-size")[0] == "SizeRejected"
    reason, message = _rejected_reason(lab_cluster, "gpu-not-visible")
    assert reason == "SizeRejected"
    assert "size 'gpu' is not one of small" in message

    lab_cluster.wait_event("gpu", "PodCreated")
    (gpu_pod,) = lab_cluster.owned("pods", "gpu")
    assert gpu_pod["spec"]["nodeSelector"]["pool"] == "gpu"
    assert gpu_pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] in (1, "1")
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu_pod[
        "spec"
    ]["tolerations"]

    # An admin's new revision (w_2026_39 shown again) takes effect for the next LabServer,
    # without restarting the operator.
    store.save(_menu(hidden="r29"), base=first.number, author="alice", comment="show w_2026_39")
    lab_cluster.declare(_variant(server, "shown-now", image=f"{IMAGE_BASE}:w_2026_39"))
    lab_cluster.wait_phase("shown-now", "Running")
    assert lab_cluster.lab_server("hidden")["status"]["phase"] == "Rejected"  # not re-judged
    assert len(lab_cluster.operators) == 1
    assert lab_cluster.operators[0].process is not None
    assert lab_cluster.operators[0].process.poll() is None
    store.close()


async def test_a_template_with_a_lab_menu_and_no_database_url_rejects_every_lab(
    lab_cluster: LabCluster, kubelet: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: without the database the operator cannot know the menu, so nothing runs."""
    kubelet.mode = "stub"
    config = site_config(lab_image_pull_grace=1)
    config.KubeSpawner.node_selector = {}
    config.LabMenu.db_url = f"sqlite:///{tmp_path / 'menu.sqlite'}"
    config.LabMenu.node_groups = [GPU_GROUP]
    template = await template_for(config)
    template["metadata"]["namespace"] = lab_cluster.namespace
    lab_cluster.create(TEMPLATES, template)
    server = await declared_lab_server(config, "rra", "", {})
    server["metadata"]["namespace"] = lab_cluster.namespace
    monkeypatch.delenv(MENU_DB_URL_ENV, raising=False)
    lab_cluster.start_operator()
    lab_cluster.declare(server)
    reason, message = _rejected_reason(lab_cluster, server["metadata"]["name"])
    assert reason == "InvalidTemplate"
    assert MENU_DB_URL_ENV in message
