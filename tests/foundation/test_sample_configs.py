"""The sample configurations load and pass check-config; the z2jh values are well formed."""

from pathlib import Path

import pytest
import yaml

from lsst_spawner.cli import main

REPO = Path(__file__).resolve().parents[2]

SITE_ENV = {
    "JUPYTERHUB_CRYPT_KEY": "0" * 64,
    "OAUTH_CALLBACK_URL": "https://hub.example.org/hub/oauth_callback",
    "GITHUB_CLIENT_ID": "id",
    "GITHUB_CLIENT_SECRET": "secret",
    "LSST_GITHUB_ALLOWED_ORGS": "my-observatory",
    "CILOGON_CLIENT_ID": "cilogon:/client_id/1",
    "CILOGON_CLIENT_SECRET": "secret",
}


@pytest.mark.parametrize(
    ("site", "provider", "authenticator"),
    [
        ("github", "github", "LSSTGitHubOAuthenticator"),
        ("cilogon", "cilogon", "LSSTCILogonOAuthenticator"),
    ],
)
def test_sample_site_passes_check_config(
    site: str,
    provider: str,
    authenticator: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in SITE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LSST_AUTH_PROVIDER", provider)
    config_file = REPO / "sample_configs" / site / "jupyterhub_config.py"
    assert main(["check-config", "-f", str(config_file)]) == 0, capsys.readouterr()
    assert f"LSSTSpawner, {authenticator}" in capsys.readouterr().out


def test_z2jh_values_select_lsst_and_load_the_snippets() -> None:
    values = yaml.safe_load((REPO / "sample_configs" / "z2jh" / "values.yaml").read_text())
    assert values["hub"]["config"]["JupyterHub"]["spawner_class"] == "lsst"
    (code,) = values["hub"]["extraConfig"].values()
    compile(code, "extraConfig", "exec")
    assert "load_config_dir(c" in code


def _site_env(monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    for key, value in {**SITE_ENV, **extra}.items():
        monkeypatch.setenv(key, value)


def test_repository_snippets_read_a_static_menu_and_sizes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _site_env(
        monkeypatch,
        LSST_IMAGE_SOURCE="static",
        LSST_IMAGE_STATIC_BASE="registry.example.org/lab",
        LSST_IMAGE_STATIC_TAGS="recommended, w_2026_46 ,r28_0_1",
        LSST_LAB_SIZES='[{"name": "tiny", "cpu": "500m", "memory": "1Gi"}]',
        LSST_LAB_DEFAULT_SIZE="tiny",
    )
    config_file = str(REPO / "jupyterhub_config.py")
    assert main(["check-config", "-f", config_file]) == 0, capsys.readouterr()
    capsys.readouterr()
    assert main(["menu", "-f", config_file, "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert '"tag": "w_2026_46"' in out
    assert '"tag": "r28_0_1"' in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"LSST_IMAGE_SOURCE": "ftp"},
            "20-spawner.py: LSST_IMAGE_SOURCE must be registry or static",
        ),
        (
            {"LSST_IMAGE_SOURCE": "static"},
            "20-spawner.py: required environment variable LSST_IMAGE_STATIC_BASE is not set",
        ),
        ({"LSST_LAB_SIZES": "[{name: small}]"}, "30-lab.py: LSST_LAB_SIZES is not valid JSON"),
    ],
)
def test_bad_snippet_environment_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: dict[str, str],
    message: str,
) -> None:
    _site_env(monkeypatch, **extra)
    assert main(["check-config", "-f", str(REPO / "jupyterhub_config.py")]) == 1
    err = capsys.readouterr().err.strip()
    # One line per problem (a static menu without base and tags has two), no traceback.
    assert all(line.startswith(("lsst-spawner: ", "lsst_spawner: ")) for line in err.splitlines())
    assert message in err


def test_sizes_from_the_environment_are_checked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _site_env(monkeypatch, LSST_LAB_SIZES='[{"name": "small", "cpu": 1, "memory": "lots"}]')
    assert main(["check-config", "-f", str(REPO / "jupyterhub_config.py")]) == 1
    out = capsys.readouterr().out
    assert "LSSTSpawner.lab_sizes[0]" in out
    assert "LSSTSpawner.lab_default_size" in out  # 'medium' is not among the sizes
