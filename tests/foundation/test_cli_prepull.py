"""``lsst-spawner prepull-status``, ``doctor``'s prepull table, and the ClusterRole that
``rbac`` prints and ``check-config`` names for prepull."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lsst_spawner.cli import main
from lsst_spawner.rbac import PREPULL_NODES_RULE, Z2JH_HUB_ROLE_RULES
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.kube.nodes import FakeNode, NodeImage, grant_hub_cluster_rules

BASE = "registry.example.org/sciplat-lab"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


@pytest.fixture
def kube_role() -> list[dict[str, Any]]:
    return [dict(rule) for rule in Z2JH_HUB_ROLE_RULES]


def write_config(tmp_path: Path, namespace: str, extra: str = "") -> str:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        f"""
c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.namespace = {namespace!r}
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = {BASE!r}
c.LSSTSpawner.static_image_tags = ["recommended", "w_2026_45", "w_2026_44"]
c.LSSTSpawner.static_image_digests = {{"recommended": {D1!r}, "w_2026_45": {D2!r}}}
c.LSSTSpawner.image_alias_tags = []
c.LSSTSpawner.image_menu_weeklies = 1
c.KubeSpawner.node_selector = {{"pool": "lab"}}
{extra}
"""
    )
    return str(path)


@pytest.fixture
def lab_nodes(kube_api: KubeHandle, kubelet: Any) -> Any:
    kubelet.emulator.run(kubelet.stop())
    lab = {"pool": "lab"}
    kubelet.nodes = [
        FakeNode(
            "lab-1", labels=lab, images=[NodeImage([f"{BASE}@{D1}", f"{BASE}:recommended"], 9)]
        ),
        FakeNode("lab-2", labels=lab, images=[NodeImage([f"{BASE}@{D1}", f"{BASE}@{D2}"], 9)]),
        FakeNode(
            "lab-full",
            labels=lab,
            images=[NodeImage([f"{BASE}@sha256:{i:064x}"], 1) for i in range(50)],
        ),
    ]
    kubelet.emulator.run(kubelet.start())
    return kubelet


def test_the_table_of_images_and_nodes(
    tmp_path: Path, kube_api: KubeHandle, lab_nodes: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    grant_hub_cluster_rules(kube_api.emulator, kube_api.namespace, [PREPULL_NODES_RULE])
    config = write_config(tmp_path, kube_api.namespace)
    code = main(["prepull-status", "-f", config, "--kubeconfig", str(kube_api.kubeconfig)])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert lines[:3] == [
        "IMAGE        PRESENT  lab-1  lab-2  lab-full",
        "recommended  some     yes    yes    -",
        "w_2026_45    some     -      yes    -",
    ]
    assert "note: node lab-full lists exactly 50 images" in out
    assert "nodeStatusMaxImages" in out
    assert "not eligible for labs: node-1, node-2" in out  # the fixture's nodes: no pool label


def test_without_the_cluster_role_it_names_the_rule(
    tmp_path: Path, kube_api: KubeHandle, lab_nodes: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, kube_api.namespace)
    code = main(["prepull-status", "-f", config, "--kubeconfig", str(kube_api.kubeconfig)])
    out = capsys.readouterr().out
    assert code == 1
    assert 'PROBLEM: prepull: nodes is forbidden: User "system:serviceaccount:' in out
    assert '{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}' in out


def test_doctor_includes_the_table_and_counts_it_only_with_prepull_on(
    tmp_path: Path, kube_api: KubeHandle, lab_nodes: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["doctor", "--kubeconfig", str(kube_api.kubeconfig), "-f"]
    off = write_config(tmp_path, kube_api.namespace)
    assert main([*args, off]) == 0  # z2jh's Role cannot list nodes: fine with prepull off
    assert "prepull: off (LSSTSpawner.image_prepull_enabled)" in capsys.readouterr().out
    on = write_config(tmp_path, kube_api.namespace, "c.LSSTSpawner.image_prepull_enabled = True")
    assert main([*args, on]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM: prepull: nodes is forbidden" in out
    grant_hub_cluster_rules(kube_api.emulator, kube_api.namespace, [PREPULL_NODES_RULE])
    code = main([*args, on])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ok: prepull: the hub can list the nodes" in out
    assert "recommended  some     yes    yes    -" in out


def test_rbac_prints_the_cluster_role_with_prepull_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "jhub", "c.LSSTSpawner.image_prepull_enabled = True")
    assert main(["rbac", "-f", config]) == 0
    role, cluster_role = yaml.safe_load_all(capsys.readouterr().out)
    assert role["kind"] == "Role"
    pods = next(rule for rule in role["rules"] if rule["resources"] == ["pods"])
    assert "get" in pods["verbs"]  # the prepuller reads each pull's pod
    assert cluster_role == {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "lsst-spawner-hub"},
        "rules": [PREPULL_NODES_RULE],
    }
    config = write_config(tmp_path, "jhub")
    assert main(["rbac", "-f", config]) == 0
    assert len(list(yaml.safe_load_all(capsys.readouterr().out))) == 1


def test_check_config_warns_about_the_nodes_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "jhub", "c.LSSTSpawner.image_prepull_enabled = True")
    assert main(["check-config", "-f", config]) == 0
    err = capsys.readouterr().err
    assert "warning: LSSTSpawner.image_prepull_enabled: the prepuller lists nodes" in err
    assert '{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}' in err
    assert main(["check-config", "-f", write_config(tmp_path, "jhub")]) == 0
    assert "image_prepull_enabled" not in capsys.readouterr().err


def test_in_operator_mode_rbac_and_check_config_ask_the_hub_for_no_nodes_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """There the operator prepulls: the hub's Role is operator mode's, with no ClusterRole."""
    from lsst_spawner.operator.manifests import HUB_OPERATOR_ROLE_RULES

    config = write_config(
        tmp_path,
        "jhub",
        'c.LSSTSpawner.image_prepull_enabled = True\nc.LSSTSpawner.lab_backend = "operator"',
    )
    assert main(["rbac", "-f", config]) == 0
    (role,) = yaml.safe_load_all(capsys.readouterr().out)
    assert role["kind"] == "Role"
    assert role["metadata"] == {"name": "lsst-spawner-hub", "namespace": "jhub"}
    assert role["rules"] == HUB_OPERATOR_ROLE_RULES
    assert not any("pods" in rule["resources"] for rule in role["rules"])
    assert main(["check-config", "-f", config]) == 0
    assert "the prepuller lists nodes" not in capsys.readouterr().err
