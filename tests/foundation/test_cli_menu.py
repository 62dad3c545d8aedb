"""lsst-spawner menu: the menu users would see now, as text or JSON."""

import json
from pathlib import Path

import pytest

from lsst_spawner.cli import main

DIGEST = "sha256:" + "a" * 64

CONFIG = f"""
c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
c.LSSTSpawner.static_image_tags = [
    "recommended", "w_2024_10", "w_2024_09", "w_2024_08", "r27_0_0", "d_2024_03_05",
    "w_2024_10-amd64",
]
c.LSSTSpawner.static_image_digests = {{"recommended": "{DIGEST}", "w_2024_10": "{DIGEST}"}}
c.LSSTSpawner.image_recommended_tag = "recommended"
c.LSSTSpawner.image_menu_weeklies = 2
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(CONFIG)
    return path


def test_menu_json(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["menu", "-f", str(config_file), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["image_base"] == "ghcr.io/lsst-sqre/sciplat-lab"
    by_tag = {image["tag"]: image for image in data["images"]}
    assert by_tag["recommended"] == {
        "tag": "recommended",
        "kind": "alias",
        "display_name": "Recommended (Weekly 2024_10)",
        "digest": DIGEST,
        "choice": "radio",
        "recommended": True,
    }
    assert by_tag["w_2024_08"]["choice"] == "dropdown"
    assert "w_2024_10-amd64" not in by_tag  # architecture tags are hidden
    assert data["images"][0]["tag"] == "recommended"


def test_menu_text(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["menu", "-f", str(config_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["CHOICE", "TAG", "KIND", "NAME", "DIGEST"]
    assert lines[1].split()[:3] == ["radio*", "recommended", "alias"]
    assert lines[1].endswith(DIGEST)
    assert lines[-1] == "6 image(s); * marks the recommended image"


def test_menu_refuses_a_faulty_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(CONFIG + "c.LSSTSpawner.static_image_tags = ['ok', '\"><script>']\n")
    assert main(["menu", "-f", str(path)]) == 1
    assert "run `lsst-spawner check-config`" in capsys.readouterr().err
