"""lsst-spawner menu export / menu import FILE: YAML round trips, validation, conflicts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lsst_spawner.cli import main
from lsst_spawner.menu.storage import MenuStore
from lsst_spawner.testing.registry.fixtures import RegistryFixture

CONFIG = """
c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
c.LSSTSpawner.static_image_tags = ["recommended", "w_2024_10", "w_2024_09"]
c.LSSTSpawner.image_menu_weeklies = 4
c.LSSTSpawner.lab_sizes = [
    {"name": "small", "cpu": 1, "memory": "4Gi"},
    {"name": "large", "cpu": 4, "memory": "16Gi"},
]
c.LSSTSpawner.lab_default_size = "small"
c.LabMenu.db_url = DB_URL
c.LabMenu.node_groups = [
    {"name": "gpu", "node_selector": {"pool": "gpu"},
     "extended_resources": {"nvidia.com/gpu": 1}, "max_cpu": "8", "max_memory": "64Gi"},
]
"""

GPU_PROFILE = {
    "name": "gpu",
    "cpu_limit": "8",
    "cpu_guarantee": "2",
    "memory_limit": "32Gi",
    "memory_guarantee": "8Gi",
    "node_group": "gpu",
    "groups": ["gpu-users"],
}


@pytest.fixture
def config_file(tmp_path: Path, menu_db_url: str) -> Path:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(f"DB_URL = {menu_db_url!r}\n" + CONFIG)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_of_an_empty_database_is_the_seed(
    config_file: Path, menu_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "-f", str(config_file), "menu", "export")
    assert code == 0
    assert out.startswith("# the database is empty: the menu seeded from the traitlets")
    data = yaml.safe_load(out)
    assert data["image_policy"]["weeklies"] == 4
    assert [(p["name"], p["cpu_limit"], p["default"]) for p in data["profiles"]] == [
        ("small", "1", True),
        ("large", "4", False),
    ]
    assert data["images"] == [
        {
            "tag": "recommended",
            "display_name": "",
            "description": "",
            "groups": [],
            "state": "shown",
            "redirect_to": None,
            "default": True,
        }
    ]
    store = MenuStore(menu_db_url)
    assert store.current_number() is None  # export wrote nothing
    store.close()


def test_round_trip(
    config_file: Path, tmp_path: Path, menu_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = tmp_path / "seed.yaml"
    assert run(capsys, "-f", str(config_file), "menu", "export", "-o", str(seed))[0] == 0
    data = yaml.safe_load(seed.read_text())
    data["profiles"].append(GPU_PROFILE)
    data["images"].append({"tag": "w_2024_09", "state": "hidden"})
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(data))
    code, out, _ = run(
        capsys,
        "-f",
        str(config_file),
        "menu",
        "import",
        str(edited),
        "--author",
        "ops",
        "--comment",
        "add gpu",
    )
    assert (code, out) == (0, "saved revision 1 by ops\n")

    exported = tmp_path / "exported.yaml"
    assert run(capsys, "-f", str(config_file), "menu", "export", "-o", str(exported))[0] == 0
    text = exported.read_text()
    assert text.startswith("# lab menu revision 1 by ops at ")
    assert "add gpu" in text.splitlines()[0]
    again = yaml.safe_load(text)
    assert again["profiles"][-1]["node_group"] == "gpu"
    assert again["images"][-1]["state"] == "hidden"

    # Re-importing the export changes nothing; exporting revision 1 gives the same menu.
    code, out, _ = run(capsys, "-f", str(config_file), "menu", "import", str(exported))
    assert (code, out) == (0, f"unchanged: {exported} is revision 1; nothing saved\n")
    code, out, _ = run(capsys, "-f", str(config_file), "menu", "export", "--revision", "1")
    assert yaml.safe_load(out) == again
    store = MenuStore(menu_db_url)
    assert store.current_number() == 1
    assert store.get(1).author == "ops"
    store.close()


def test_import_runs_the_save_validation(
    config_file: Path, tmp_path: Path, menu_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = tmp_path / "seed.yaml"
    run(capsys, "-f", str(config_file), "menu", "export", "-o", str(seed))
    data = yaml.safe_load(seed.read_text())
    data["profiles"][1]["default"] = True
    data["profiles"].append(dict(GPU_PROFILE, cpu_limit="16"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    code, _, err = run(capsys, "-f", str(config_file), "menu", "import", str(bad))
    assert code == 1
    assert f"{bad}: profiles[2].cpu_limit: 16 is more than node group 'gpu' allows (8)" in err
    assert f"{bad}: profiles[1].default: profiles[0] is already the default" in err
    assert "2 problem(s); nothing saved" in err
    store = MenuStore(menu_db_url)
    assert store.current_number() is None
    store.close()


def test_import_refuses_not_yaml_and_a_stale_base(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("profiles: [unclosed\n")
    code, _, err = run(capsys, "-f", str(config_file), "menu", "import", str(garbage))
    assert code == 1
    assert f"{garbage} is not YAML" in err
    code, _, err = run(capsys, "-f", str(config_file), "menu", "import", str(tmp_path / "no"))
    assert (code, "cannot read") == (1, err.split(": ", 2)[1][:11])
    seed = tmp_path / "seed.yaml"
    run(capsys, "-f", str(config_file), "menu", "export", "-o", str(seed))
    code, _, err = run(capsys, "-f", str(config_file), "menu", "import", str(seed), "--base", "3")
    assert code == 1
    assert "--base 3 is not the current revision (None); nothing saved" in err
    code, _, err = run(capsys, "-f", str(config_file), "menu", "export", "--revision", "7")
    assert (code, err) == (1, "lsst-spawner: there is no revision 7\n")


def test_invalid_node_groups_are_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        f"DB_URL = 'sqlite:///{tmp_path / 'x.sqlite'}'\n"
        + CONFIG.replace('"nvidia.com/gpu": 1', '"gpu": 1')
    )
    code, _, err = run(capsys, "-f", str(path), "menu", "export")
    assert code == 1
    assert "LabMenu.node_groups[0].extended_resources: 'gpu' is not an extended resource" in err


def test_plain_menu_command_still_prints_the_image_menu(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "-f", str(config_file), "menu")
    assert code == 0
    assert "w_2024_10" in out


@pytest.mark.integration
def test_import_checks_every_offered_image_in_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], local_registry: RegistryFixture
) -> None:
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        f"""
c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.image_source = "registry"
c.LSSTSpawner.registry_host = {local_registry.host_port!r}
c.LSSTSpawner.registry_repository = {local_registry.repository!r}
c.LSSTSpawner.registry_insecure_hosts = {local_registry.insecure!r}
c.LabMenu.db_url = {f"sqlite:///{tmp_path / 'menu.sqlite'}"!r}
"""
    )
    menu = {
        "images": [{"tag": "recommended", "default": True}, {"tag": "w_2099_01"}],
        "profiles": [{**GPU_PROFILE, "node_group": None, "groups": [], "default": True}],
    }
    menu_file = tmp_path / "menu.yaml"
    menu_file.write_text(yaml.safe_dump(menu))
    code, out, err = run(capsys, "menu", "-f", str(config), "import", str(menu_file))
    where = f"{local_registry.host_port}/{local_registry.repository}"
    assert code == 1, out
    assert f"images[1].tag: {where}:w_2099_01 does not exist" in err
    assert "nothing saved" in err

    menu["images"][1]["tag"] = "w_2024_04"  # pushed by the fixture
    menu_file.write_text(yaml.safe_dump(menu))
    code, out, err = run(capsys, "menu", "-f", str(config), "import", str(menu_file))
    assert code == 0, err
    assert "saved revision 1" in out
