"""check-config warns about KubeSpawner settings a lab ignores (z2jh sets several of them)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from traitlets.config import Config

from lsst_spawner.checks import validate_config_or_exit
from lsst_spawner.cli import main

BASE = """
c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
c.LSSTSpawner.static_image_tags = ["recommended", "w_2024_10"]
"""
# What z2jh's jupyterhub_config.py sets from its default values.
Z2JH = """
c.KubeSpawner.uid = 1000
c.KubeSpawner.fs_gid = 100
c.KubeSpawner.image = "quay.io/jupyterhub/k8s-singleuser-sample:4.2.0"
c.KubeSpawner.profile_list = [{"display_name": "Small", "kubespawner_override": {"cpu_limit": 1}}]
c.KubeSpawner.volumes = [
    {"name": "home", "persistentVolumeClaim": {"claimName": "claim-{username}"}}
]
c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
"""


def _check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    config_file = tmp_path / "jupyterhub_config.py"
    config_file.write_text(BASE + text)
    code = main(["check-config", "-f", str(config_file)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_z2jh_defaults_are_warned_about_each_with_its_trait(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _check(tmp_path, Z2JH, capsys)
    assert code == 0, out + err  # warnings, not problems: a stock z2jh hub still starts
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    where = sorted(line.split(": ")[1] for line in warnings)
    assert where == [
        "KubeSpawner.fs_gid",
        "KubeSpawner.image",
        "KubeSpawner.profile_list",
        "KubeSpawner.uid",
        "KubeSpawner.volume_mounts[0]",
    ]
    assert "LSSTSpawner.lab_fs_group decides" in err
    assert "the options form: the image menu and LSSTSpawner.lab_sizes decides" in err
    assert (
        "mounts a volume at /home/jovyan, but the lab's HOME is /home/{unescaped_username}" in err
    )
    assert "5 warning(s) above" in out


@pytest.mark.parametrize("path", ["/home/{unescaped_username}", "/home/{username}", "/home"])
def test_a_home_volume_at_the_labs_home_is_not_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str
) -> None:
    mounts = f"""
c.KubeSpawner.volumes = [{{"name": "home", "emptyDir": {{}}}}]
c.KubeSpawner.volume_mounts = [{{"name": "home", "mountPath": "{path}"}}]
"""
    code, out, err = _check(tmp_path, mounts, capsys)
    assert code == 0, out + err
    assert "warning" not in err
    assert "warning" not in out


def test_a_plain_configuration_has_no_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _check(tmp_path, "", capsys)
    assert (code, err) == (0, "")
    assert out.startswith("OK: ")
    assert "warning" not in out


def test_hub_start_logs_the_warnings_and_starts(caplog: pytest.LogCaptureFixture) -> None:
    config = Config()
    exec(BASE + Z2JH, {"c": config})  # noqa: S102 - a config file's body
    with caplog.at_level(logging.WARNING, logger="lsst_spawner"):
        validate_config_or_exit(config)  # does not raise SystemExit
    messages = [r.getMessage() for r in caplog.records]
    assert any("configuration warning: KubeSpawner.uid: is set (1000)" in m for m in messages)
    assert len(messages) == 5
