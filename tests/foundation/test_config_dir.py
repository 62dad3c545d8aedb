"""Ordered jupyterhub_config.d snippets, loaded by jupyterhub_config.py and load_config_dir."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from lsst_spawner.config import CONFIG_DIR_ENV, ConfigError, load_config_dir

REPO = Path(__file__).resolve().parents[2]

SNIPPETS = {
    # Written out of order on purpose; lexical order is 02-a, 10-b, 30-c.
    "30-c.py": "order.append('30-c')\nc.Spawner.cmd = [prefix, middle]\n",
    "02-a.py": "order = ['02-a']\nprefix = 'from-a'\n",
    "10-b.py": "order.append('10-b')\nmiddle = prefix + '+b'\nc.Spawner.notebook_dir = middle\n",
    "README.md": "not python; must be ignored\n",
}


@pytest.fixture
def snippet_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "conf.d"
    directory.mkdir()
    for name, text in SNIPPETS.items():
        (directory / name).write_text(text)
    return directory


def _load_hub_config_file(env: dict[str, str]) -> Config:
    old = os.environ.copy()
    os.environ.update(env)
    try:
        return PyFileConfigLoader("jupyterhub_config.py", path=str(REPO)).load_config()
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_load_config_dir_runs_snippets_in_lexical_order_in_one_namespace(snippet_dir: Path) -> None:
    c = Config()
    namespace: dict[str, object] = {}
    ran = load_config_dir(c, snippet_dir, namespace=namespace, validate=False)
    assert [p.name for p in ran] == ["02-a.py", "10-b.py", "30-c.py"]
    assert namespace["order"] == ["02-a", "10-b", "30-c"]
    assert c.Spawner.cmd == ["from-a", "from-a+b"]
    assert c.Spawner.notebook_dir == "from-a+b"


def test_jupyterhub_config_py_loads_the_directory_from_the_environment(snippet_dir: Path) -> None:
    config = _load_hub_config_file({CONFIG_DIR_ENV: str(snippet_dir)})
    assert config.Spawner.cmd == ["from-a", "from-a+b"]
    assert config.Spawner.notebook_dir == "from-a+b"


def test_relative_config_dir_is_taken_from_the_working_directory(
    snippet_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(snippet_dir.parent)
    config = _load_hub_config_file({CONFIG_DIR_ENV: snippet_dir.name})
    assert config.Spawner.cmd == ["from-a", "from-a+b"]
    c = Config()
    load_config_dir(c, snippet_dir.name, validate=False)
    assert c.Spawner.notebook_dir == "from-a+b"


def test_each_snippet_sees_its_own_file(tmp_path: Path) -> None:
    (tmp_path / "01-x.py").write_text("files = [__file__]\n")
    (tmp_path / "02-y.py").write_text("files.append(__file__)\nc.Spawner.args = files\n")
    c = Config()
    load_config_dir(c, tmp_path, validate=False)
    assert c.Spawner.args == [str(tmp_path / "01-x.py"), str(tmp_path / "02-y.py")]


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does-not-exist.*does not exist"):
        load_config_dir(Config(), tmp_path / "does-not-exist")


def test_a_snippet_error_points_at_the_snippet(tmp_path: Path) -> None:
    (tmp_path / "05-broken.py").write_text("x = 1\nundefined_name\n")
    with pytest.raises(NameError) as info:
        load_config_dir(Config(), tmp_path, validate=False)
    frames = [code.co_filename for code in _frames(info.value.__traceback__)]
    assert str(tmp_path / "05-broken.py") in frames


def _frames(tb):  # type: ignore[no-untyped-def]
    while tb is not None:
        yield tb.tb_frame.f_code
        tb = tb.tb_next


def test_missing_required_variable_is_one_line_in_load_config_dir(tmp_path: Path) -> None:
    (tmp_path / "10-needs.py").write_text(
        "from lsst_spawner.config import require_env\nrequire_env('LSST_TEST_UNSET_VARIABLE')\n"
    )
    with pytest.raises(SystemExit) as info:
        load_config_dir(Config(), tmp_path)
    message = str(info.value.code)
    assert message == (
        "lsst_spawner: configuration error in 10-needs.py: "
        "required environment variable LSST_TEST_UNSET_VARIABLE is not set"
    )


def _hub_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "LSST_"))}
    env.update(
        {
            "JUPYTERHUB_CRYPT_KEY": "0" * 64,
            "OAUTH_CALLBACK_URL": "http://127.0.0.1:8000/hub/oauth_callback",
            "GITHUB_CLIENT_ID": "id",
            "GITHUB_CLIENT_SECRET": "secret",
            "LSST_GITHUB_ALLOWED_ORGS": "lsst-sqre",
        }
    )
    for key, value in overrides.items():
        if value:
            env[key] = value
        else:
            env.pop(key, None)
    return env


@pytest.mark.parametrize(
    ("unset", "expected"),
    [
        (
            "JUPYTERHUB_CRYPT_KEY",
            "lsst_spawner: configuration error in 00-preamble.py: required environment variable "
            "JUPYTERHUB_CRYPT_KEY is not set (encrypts auth_state; generate one with: "
            "openssl rand -hex 32)",
        ),
        (
            "GITHUB_CLIENT_SECRET",
            "lsst_spawner: configuration error in 10-authenticator.py: required environment "
            "variable GITHUB_CLIENT_SECRET is not set",
        ),
    ],
)
def test_real_jupyterhub_stops_with_one_line_naming_the_missing_variable(
    tmp_path: Path, unset: str, expected: str
) -> None:
    """A real `jupyterhub` process, with the repository's own config, exits with one line."""
    result = subprocess.run(
        [sys.executable, "-m", "jupyterhub", "-f", str(REPO / "jupyterhub_config.py")],
        cwd=tmp_path,
        env=_hub_env(**{unset: ""}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == expected
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_provider_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jupyterhub", "-f", str(REPO / "jupyterhub_config.py")],
        cwd=tmp_path,
        env=_hub_env(LSST_AUTH_PROVIDER="facebook"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "lsst_spawner: configuration error in 10-authenticator.py: "
        "LSST_AUTH_PROVIDER must be github or cilogon, not 'facebook'"
    )


def test_every_missing_variable_is_named_in_one_run(tmp_path: Path) -> None:
    """Two snippets, three missing variables: one start names all three, one line each."""
    (tmp_path / "10-a.py").write_text(
        "from lsst_spawner.config import require_env\n"
        "port = int(require_env('LSST_TEST_UNSET_A'))\n"  # "" stand-in: ValueError, not shown
        "require_env('LSST_TEST_UNSET_B')\n"
    )
    (tmp_path / "20-b.py").write_text(
        "from lsst_spawner.config import require_env\nrequire_env('LSST_TEST_UNSET_C', 'why')\n"
    )
    with pytest.raises(SystemExit) as info:
        load_config_dir(Config(), tmp_path)
    assert str(info.value.code).splitlines() == [
        "lsst_spawner: configuration error in 10-a.py: "
        "required environment variable LSST_TEST_UNSET_A is not set",
        "lsst_spawner: configuration error in 20-b.py: "
        "required environment variable LSST_TEST_UNSET_C is not set (why)",
    ]


def test_missing_variables_and_a_config_error_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "10-a.py").write_text(
        "from lsst_spawner.config import ConfigError\nraise ConfigError('bad value of X')\n"
    )
    (tmp_path / "20-b.py").write_text(
        "from lsst_spawner.config import require_env\nrequire_env('LSST_TEST_UNSET_D')\n"
    )
    with pytest.raises(SystemExit) as info:
        load_config_dir(Config(), tmp_path)
    assert str(info.value.code).splitlines() == [
        "lsst_spawner: configuration error in 10-a.py: bad value of X",
        "lsst_spawner: configuration error in 20-b.py: "
        "required environment variable LSST_TEST_UNSET_D is not set",
    ]


def test_require_env_outside_load_config_dir_still_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    from lsst_spawner.config import MissingEnvironmentVariable, require_env

    monkeypatch.delenv("LSST_TEST_UNSET_E", raising=False)
    with pytest.raises(MissingEnvironmentVariable, match="LSST_TEST_UNSET_E"):
        require_env("LSST_TEST_UNSET_E")


def test_a_snippet_syntax_error_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    snippet = tmp_path / "40-typo.py"
    snippet.write_text("c.LSSTSpawner.lab_sizes = [\n    {'name': 'small'}\nx = (\n")
    with pytest.raises(SystemExit) as info:
        load_config_dir(Config(), tmp_path)
    message = str(info.value.code)
    assert message.startswith(f"lsst_spawner: {snippet}:")
    assert ": syntax error: " in message
    assert "\n" not in message


def test_real_jupyterhub_names_every_missing_variable_at_once(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jupyterhub", "-f", str(REPO / "jupyterhub_config.py")],
        cwd=tmp_path,
        env=_hub_env(JUPYTERHUB_CRYPT_KEY="", GITHUB_CLIENT_ID="", GITHUB_CLIENT_SECRET=""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert [line.split("required environment variable ")[1].split()[0] for line in lines] == [
        "JUPYTERHUB_CRYPT_KEY",
        "GITHUB_CLIENT_ID",
        "GITHUB_CLIENT_SECRET",
    ]
    assert "Traceback" not in result.stdout + result.stderr


def _snippet_config(env: dict[str, str], before: str = "") -> Config:
    """The repository's snippets loaded with ``env``, after ``before`` ran on the config."""
    c = Config()
    exec(before, {"c": c})  # noqa: S102 - what z2jh's own configuration did earlier
    old = os.environ.copy()
    os.environ.clear()
    os.environ.update(env)
    try:
        load_config_dir(c, REPO / "jupyterhub_config.d", validate=False)
    finally:
        os.environ.clear()
        os.environ.update(old)
    return c


def test_github_snippet_denies_by_default(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        _snippet_config(_hub_env(LSST_GITHUB_ALLOWED_ORGS=""))
    assert str(info.value.code) == (
        "lsst_spawner: configuration error in 10-authenticator.py: no GitHub user may log in: "
        "set LSST_GITHUB_ALLOWED_ORGS (comma-separated organizations) or "
        "LSST_GITHUB_ALLOW_ALL=true (every GitHub user gets a lab)"
    )


def test_github_snippet_allows_all_only_when_asked() -> None:
    orgs = _snippet_config(_hub_env())
    assert orgs.LSSTGitHubOAuthenticator.allowed_organizations == {"lsst-sqre"}
    assert "allow_all" not in orgs.LSSTGitHubOAuthenticator
    everyone = _snippet_config(_hub_env(LSST_GITHUB_ALLOWED_ORGS="", LSST_GITHUB_ALLOW_ALL="true"))
    assert everyone.LSSTGitHubOAuthenticator.allow_all is True
    with pytest.raises(SystemExit, match="LSST_GITHUB_ALLOW_ALL must be true or false"):
        _snippet_config(_hub_env(LSST_GITHUB_ALLOW_ALL="sure"))


def test_preamble_keeps_the_hub_settings_z2jh_made() -> None:
    z2jh = (
        "c.JupyterHub.db_url = 'postgresql://hub@db/jupyterhub'\n"
        "c.JupyterHub.bind_url = 'http://:8081'\n"
    )
    kept = _snippet_config(_hub_env(), before=z2jh)
    assert kept.JupyterHub.db_url == "postgresql://hub@db/jupyterhub"
    assert kept.JupyterHub.bind_url == "http://:8081"
    given = _snippet_config(
        _hub_env(LSST_HUB_DB_URL="sqlite:///other.sqlite", LSST_HUB_BIND_URL="http://:9000"),
        before=z2jh,
    )
    assert given.JupyterHub.db_url == "sqlite:///other.sqlite"
    assert given.JupyterHub.bind_url == "http://:9000"
    assert "db_url" not in _snippet_config(_hub_env()).JupyterHub
