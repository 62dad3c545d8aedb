"""lsst-spawner: the CLI frame and check-config."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from traitlets.config import Config

from lsst_spawner.checks import check_config
from lsst_spawner.cli import main
from lsst_spawner.config import load_config_dir

SPAWNER = "tests.foundation.checked_classes.SampleSpawner"


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(f"c.JupyterHub.spawner_class = {SPAWNER!r}\n{body}")
    return path


def test_clean_config_exits_0_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "c.SampleSpawner.refresh_interval = '1h30m'\n")
    assert main(["check-config", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == f"OK: {path}: no problems (SampleSpawner)"


def test_every_problem_is_listed_with_the_trait_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        tmp_path,
        "c.SampleSpawner.refresh_interval = 'soon'\n"
        "c.SampleSpawner.default_size = 'huge'\n"
        "c.SampleSpawner.size_nmes = ['x']\n"
        "c.SampleSpawner.namespace = 'labs'\n",  # a KubeSpawner trait: fine, not reported
    )
    assert main(["-f", str(path), "check-config"]) == 1
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith("SampleSpawner.default_size: 'huge' is not one of size_names")
    assert lines[1].startswith("SampleSpawner.refresh_interval: ")
    assert "cannot parse duration 'soon'" in lines[1]
    assert lines[2] == "SampleSpawner.size_nmes: unknown option (did you mean size_names?)"
    assert "3 problem(s)" in captured.err


def test_lazy_config_values_are_applied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(
        tmp_path,
        "c.SampleSpawner.size_names.append('huge')\nc.SampleSpawner.default_size = 'huge'\n",
    )
    assert main(["check-config", "-f", str(path)]) == 0, capsys.readouterr().out


def test_unresolvable_spawner_class_is_a_problem(capsys: pytest.CaptureFixture[str]) -> None:
    config = Config()
    config.JupyterHub.spawner_class = "no_such_module.Spawner"
    problems, checked = check_config(config)
    assert checked == []
    assert [p.where for p in problems] == ["JupyterHub.spawner_class"]
    assert "cannot import 'no_such_module.Spawner'" in problems[0].message


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "-f", str(tmp_path / "nope.py")]) == 1
    assert "not found" in capsys.readouterr().err


def test_missing_variable_in_a_snippet_is_reported_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snippets = tmp_path / "conf.d"
    snippets.mkdir()
    (snippets / "10-x.py").write_text(
        "from lsst_spawner.config import require_env\nrequire_env('LSST_TEST_NOT_SET')\n"
    )
    path = write_config(
        tmp_path,
        f"from lsst_spawner.config import load_config_dir\nload_config_dir(c, {str(snippets)!r})\n",
    )
    assert main(["check-config", "-f", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "lsst-spawner: lsst_spawner: configuration error in 10-x.py: "
        "required environment variable LSST_TEST_NOT_SET is not set"
    )


def test_check_config_reports_problems_even_when_snippets_would_stop_the_hub(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snippets = tmp_path / "conf.d"
    snippets.mkdir()
    (snippets / "20-spawner.py").write_text(
        f"c.JupyterHub.spawner_class = {SPAWNER!r}\nc.SampleSpawner.default_size = 'huge'\n"
    )
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        f"from lsst_spawner.config import load_config_dir\nload_config_dir(c, {str(snippets)!r})\n"
    )
    assert main(["check-config", "-f", str(path)]) == 1
    assert capsys.readouterr().out.startswith("SampleSpawner.default_size: 'huge'")


def test_hub_start_stops_with_every_problem(tmp_path: Path) -> None:
    (tmp_path / "20-spawner.py").write_text(
        f"c.JupyterHub.spawner_class = {SPAWNER!r}\n"
        "c.SampleSpawner.default_size = 'huge'\nc.SampleSpawner.refresh_interval = -5\n"
    )
    with pytest.raises(SystemExit) as info:
        load_config_dir(Config(), tmp_path)
    message = str(info.value.code)
    assert message.startswith("lsst_spawner: 2 configuration problem(s):")
    assert "SampleSpawner.default_size" in message
    assert "SampleSpawner.refresh_interval" in message


def test_console_script_runs(tmp_path: Path) -> None:
    path = write_config(tmp_path, "")
    script = Path(sys.executable).with_name("lsst-spawner")
    result = subprocess.run(
        [str(script), "check-config", "-f", str(path)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: ")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("lsst-spawner ")


def test_config_file_syntax_error_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "jupyterhub_config.py"
    config_file.write_text("c.JupyterHub.spawner_class = 'lsst'\nc.LSSTSpawner.cmd = [\n")
    assert main(["check-config", "-f", str(config_file)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lsst-spawner: {config_file}:")
    assert ": syntax error: " in err
    assert "Traceback" not in err
    assert "\n" not in err
