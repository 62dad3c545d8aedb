"""JupyterHub resolves lsst_spawner's classes through the installed package's entry points."""

from importlib.metadata import entry_points

import pytest
from jupyterhub.app import JupyterHub

from lsst_spawner.auth.cilogon import LSSTCILogonOAuthenticator
from lsst_spawner.auth.github import LSSTGitHubOAuthenticator
from lsst_spawner.spawner import LSSTSpawner


@pytest.mark.parametrize(
    ("group", "name", "cls"),
    [
        ("jupyterhub.spawners", "lsst", LSSTSpawner),
        ("jupyterhub.authenticators", "lsst-github", LSSTGitHubOAuthenticator),
        ("jupyterhub.authenticators", "lsst-cilogon", LSSTCILogonOAuthenticator),
    ],
)
def test_entry_point_is_installed(group: str, name: str, cls: type) -> None:
    (entry_point,) = [ep for ep in entry_points(group=group) if ep.name == name]
    assert entry_point.load() is cls


def test_jupyterhub_resolves_short_names() -> None:
    app = JupyterHub()
    app.spawner_class = "lsst"
    app.authenticator_class = "lsst-github"
    assert app.spawner_class is LSSTSpawner
    assert app.authenticator_class is LSSTGitHubOAuthenticator
    app.authenticator_class = "lsst-cilogon"
    assert app.authenticator_class is LSSTCILogonOAuthenticator


def test_console_script_is_installed() -> None:
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "lsst-spawner"]
    from lsst_spawner.cli import main

    assert script.load() is main
