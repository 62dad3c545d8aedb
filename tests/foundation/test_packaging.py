"""The wheel operators install holds the templates, py.typed and the entry points."""

import configparser
import re
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

from packaging.version import Version

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
    # One version string: setup.cfg's is the wheel's, the installed package's and the docs'.
    assert wheel.name.split("-")[1] == _setup_cfg_version()
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


def _setup_cfg_version() -> str:
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    return parser["metadata"]["version"]


def test_one_version_string() -> None:
    import lsst_spawner
    from lsst_spawner import __version__

    assert lsst_spawner.__version__ == __version__ == version("lsst-spawner")
    # PEP 440 normalises 0.1.0.dev0 and 0.1.0dev0 alike.
    assert Version(__version__) == Version(_setup_cfg_version())
    # The docs take it from the package; none of them spells out an installable version.
    pinned = re.compile(r"lsst[-_]spawner\s*==\s*\d")
    for page in (REPO / "docs").glob("*.md"):
        assert not pinned.search(page.read_text()), f"{page.name} pins a version by hand"
    assert "release = __version__" in (REPO / "docs" / "conf.py").read_text()


def test_z2jh_dockerfile_is_pinned_and_installs_the_wheel() -> None:
    text = (REPO / "sample_configs" / "z2jh" / "Dockerfile").read_text()
    (base,) = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert re.fullmatch(r"quay\.io/jupyterhub/k8s-hub:\d+\.\d+\.\d+", base), base
    assert "pip install --no-cache-dir /tmp/wheels/lsst_spawner-*.whl" in text
    assert "COPY jupyterhub_config.d /usr/local/etc/lsst-spawner/config.d" in text
    values = (REPO / "sample_configs" / "z2jh" / "values.yaml").read_text()
    assert "LSST_SPAWNER_CONFIG_DIR: /usr/local/etc/lsst-spawner/config.d" in values
