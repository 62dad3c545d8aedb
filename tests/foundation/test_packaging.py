"""The wheel operators install holds the templates, py.typed and the entry points."""

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_contents(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
         str(REPO), "-w", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("lsst_spawner-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "lsst_spawner/py.typed",
        "lsst_spawner/form/templates/options.html.j2",
        "lsst_spawner/form/templates/options_dropdown.html.j2",
        "lsst_spawner/spawner.py",
        "lsst_spawner/testing/kube/server.py",
    ):
        assert required in names, f"{required} is missing from {wheel.name}"
    assert not any(name.startswith(("tests/", "docs/", "benchmarks/")) for name in names)
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    for line in (
        "lsst = lsst_spawner.spawner:LSSTSpawner",
        "lsst-github = lsst_spawner.auth.github:LSSTGitHubOAuthenticator",
        "lsst-cilogon = lsst_spawner.auth.cilogon:LSSTCILogonOAuthenticator",
        "lsst-spawner = lsst_spawner.cli:main",
        "lsst_spawner = lsst_spawner.testing.plugin",
    ):
        assert line in text
