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
