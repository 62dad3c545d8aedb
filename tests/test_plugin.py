"""The pytest plugin sites get from the package: every documented fixture is registered."""

import pytest

FIXTURES = (
    "lsst_hub",
    "kube_api",
    "kubelet",
    "fake_github",
    "fake_cilogon",
    "registry",
    "token_registry",
)


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_is_provided_by_the_installed_plugin(
    name: str, pytestconfig: pytest.Config
) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("lsst_spawner")
    assert plugin is not None, "the pytest11 entry point 'lsst_spawner' is not registered"
    assert callable(getattr(plugin, name))


def test_registry_fixture_is_the_real_registry(registry) -> None:  # type: ignore[no-untyped-def]
    assert registry.host_port.startswith("127.0.0.1:")
    assert registry.digests  # images were pushed into it


@pytest.mark.parametrize("name", ["hub_app", "configured_mockhub_instance"])
def test_pytest_jupyterhub_fixtures_are_there_too(
    name: str, request: pytest.FixtureRequest
) -> None:
    """lsst_hub builds on pytest-jupyterhub, whose own plugin comes with lsst-spawner[test]."""
    defs = request._fixturemanager.getfixturedefs(name, request.node)
    assert defs, f"pytest-jupyterhub's {name} fixture is not registered"
    assert defs[-1].func.__module__ == "pytest_jupyterhub.jupyterhub_spawners"
