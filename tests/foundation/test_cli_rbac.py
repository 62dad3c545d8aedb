"""``lsst-spawner rbac``: the minimal Role for the configured features, as YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lsst_spawner.cli import main
from lsst_spawner.rbac import HubFeatures, required_rules


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str) -> tuple[int, str]:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text('c.JupyterHub.spawner_class = "lsst"\n' + config)
    code = main(["rbac", "-f", str(path)])
    return code, capsys.readouterr().out


def test_default_features(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(tmp_path, capsys, 'c.LSSTSpawner.namespace = "jhub"\n')
    assert code == 0
    assert "Zero to JupyterHub's hub Role grants all of it." in out
    role = yaml.safe_load(out)
    assert role["kind"] == "Role"
    assert role["apiVersion"] == "rbac.authorization.k8s.io/v1"
    assert role["metadata"] == {"name": "lsst-spawner-hub", "namespace": "jhub"}
    assert role["rules"] == required_rules(HubFeatures())
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete", "list", "watch"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete", "list"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]},
    ]


def test_configured_features_change_the_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(
        tmp_path,
        capsys,
        "c.KubeSpawner.events_enabled = False\n"
        "c.KubeSpawner.storage_pvc_ensure = True\n"
        "c.LSSTSpawner.services_enabled = True\n",
    )
    assert code == 0
    role = yaml.safe_load(out)
    assert "namespace" not in role["metadata"]
    resources = [rule["resources"] for rule in role["rules"]]
    assert resources == [["pods"], ["secrets"], ["persistentvolumeclaims"], ["services"]]
    assert role["rules"] == required_rules(HubFeatures(events=False, pvcs=True, services=True))


def test_internal_ssl_needs_services(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(tmp_path, capsys, "c.JupyterHub.internal_ssl = True\n")
    assert code == 0
    assert ["services"] in [rule["resources"] for rule in yaml.safe_load(out)["rules"]]


def test_a_missing_config_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rbac", "-f", "/nonexistent/jupyterhub_config.py"]) == 1
    assert "not found" in capsys.readouterr().err
