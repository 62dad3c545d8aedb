"""Golden outputs: the options form's HTML and the image menu's JSON; a change shows as a diff.

Regenerate with ``pytest tests/form --update-golden`` and review the diff of
``tests/form/golden/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from menu_fixture import make_catalog

from lsst_spawner.cli import main
from lsst_spawner.form.render import render_options_form
from lsst_spawner.testing.golden import normalize
from lsst_spawner.testing.registry.fixtures import RegistryFixture

Golden = Callable[[str, Any], None]

STATIC_MENU = """
c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
c.LSSTSpawner.static_image_tags = [
    "recommended", "w_2024_10", "w_2024_09", "w_2024_08", "r27_0_0", "d_2024_03_05",
    "exp_w_2024_10_nosudo", "w_2024_10-amd64",
]
c.LSSTSpawner.static_image_digests = {
    "recommended": "sha256:" + "a" * 64, "w_2024_10": "sha256:" + "a" * 64,
}
c.LSSTSpawner.image_recommended_tag = "recommended"
c.LSSTSpawner.image_menu_weeklies = 2
"""


@pytest.mark.parametrize(
    ("name", "catalog", "saved"),
    [
        ("form-defaults.html", {}, None),
        (
            "form-saved-choices.html",
            {},
            {"image": "w_2024_09", "size": "small", "enable_debug": True, "reset_user_env": True},
        ),
        ("form-menu-loading.html", {"complete": False}, None),
        ("form-hostile-tag.html", {"hostile": True}, {"image": "<b>x</b>", "size": "<i>"}),
    ],
)
def test_options_form_html(
    golden: Golden, name: str, catalog: dict[str, bool], saved: dict[str, Any] | None
) -> None:
    golden(name, render_options_form(make_catalog(**catalog), saved))


def menu_json(config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(config)
    assert main(["menu", "-f", str(path), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_static_menu_json(
    golden: Golden, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    golden("menu-static", menu_json(STATIC_MENU, tmp_path, capsys))


def test_registry_menu_json(
    golden: Golden,
    local_registry: RegistryFixture,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The menu of the real local registry (its digests are those of the pushed manifests)."""
    config = f"""
c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.image_source = "registry"
c.LSSTSpawner.registry_host = {local_registry.host_port!r}
c.LSSTSpawner.registry_repository = {local_registry.repository!r}
c.LSSTSpawner.registry_insecure_hosts = {local_registry.insecure!r}
c.LSSTSpawner.image_recommended_tag = "recommended"
"""
    data = menu_json(config, tmp_path, capsys)
    digests = {image["tag"]: image["digest"] for image in data["images"]}
    assert digests["recommended"] == local_registry.digests["recommended"]
    golden("menu-registry", normalize(data, {local_registry.host_port: "<registry>"}))
