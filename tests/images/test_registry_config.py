"""RegistrySourceTraits: defaults, checks naming the trait, and the source they build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from traitlets import TraitError

from lsst_spawner.config import ConfigProblem
from lsst_spawner.images.registry_config import RegistrySourceTraits

TRAITS = [
    "registry_host",
    "registry_repository",
    "registry_credentials_file",
    "registry_insecure_hosts",
    "registry_realm_allowlist",
    "registry_request_timeout",
    "registry_connect_timeout",
    "registry_page_size",
    "registry_max_pages",
]


def test_defaults_work_and_are_documented() -> None:
    traits = RegistrySourceTraits()
    assert traits.config_problems() == []
    source = traits.make_registry_source()
    assert source.image_base == "ghcr.io/lsst-sqre/sciplat-lab"
    assert source.client.base_url == "https://ghcr.io"
    assert set(TRAITS) <= set(traits.trait_names(config=True))
    for name in TRAITS:
        help_text = traits.trait_metadata(name, "help")
        assert help_text, name
        assert len(help_text) > 40, name


def test_docker_hub() -> None:
    source = RegistrySourceTraits(
        registry_host="docker.io", registry_repository="lsstsqre/sciplat-lab"
    ).make_registry_source()
    assert source.image_base == "docker.io/lsstsqre/sciplat-lab"
    assert source.client.base_url == "https://registry-1.docker.io"
    assert source.client.policy.realm_host_allowed("auth.docker.io")


def test_values_reach_the_client() -> None:
    client = RegistrySourceTraits(
        registry_host="127.0.0.1:5000",
        registry_insecure_hosts=["127.0.0.1:5000"],
        registry_request_timeout="1m30s",
        registry_connect_timeout=2,
        registry_page_size=50,
        registry_max_pages=7,
        registry_realm_allowlist=["*.example.org"],
    ).make_registry_client()
    assert client.base_url == "http://127.0.0.1:5000"
    assert client.timeout.total == 90
    assert client.timeout.connect == 2
    assert (client.page_size, client.max_pages) == (50, 7)
    assert client.policy.realm_host_allowed("auth.example.org")


@pytest.mark.parametrize(
    ("settings", "where", "message"),
    [
        ({"registry_host": "https://ghcr.io"}, "LSSTSpawner.registry_host", "host[:port]"),
        ({"registry_host": "ghcr.io/lsst"}, "LSSTSpawner.registry_host", "host[:port]"),
        ({"registry_repository": "Lsst/Lab"}, "LSSTSpawner.registry_repository", "not a repo"),
        ({"registry_repository": "a/../b"}, "LSSTSpawner.registry_repository", "not a repo"),
        (
            {"registry_insecure_hosts": ["ok:5000", "http://x"]},
            "LSSTSpawner.registry_insecure_hosts[1]",
            "host[:port]",
        ),
        (
            {"registry_realm_allowlist": ["*"]},
            "LSSTSpawner.registry_realm_allowlist[0]",
            "*.domain",
        ),
        (
            {"registry_realm_allowlist": ["https://auth.example/"]},
            "LSSTSpawner.registry_realm_allowlist[0]",
            "*.domain",
        ),
        (
            {"registry_connect_timeout": "30s"},
            "LSSTSpawner.registry_connect_timeout",
            "registry_request_timeout",
        ),
        (
            {"registry_credentials_file": "relative.json"},
            "LSSTSpawner.registry_credentials_file",
            "absolute",
        ),
        (
            {"registry_credentials_file": "/nonexistent/config.json"},
            "LSSTSpawner.registry_credentials_file",
            "cannot read",
        ),
    ],
)
def test_problems_name_the_trait(settings: dict[str, object], where: str, message: str) -> None:
    problems = RegistrySourceTraits(**settings).config_problems()
    assert len(problems) == 1, problems
    assert problems[0].where == where
    assert message in problems[0].message


def test_bad_credentials_file_problem_hides_secret(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"auths": {"ghcr.io": {"username": "u-SECRET"}}}))
    problems = RegistrySourceTraits(registry_credentials_file=str(path)).config_problems()
    assert [p.where for p in problems] == ["LSSTSpawner.registry_credentials_file"]
    assert "both 'username' and 'password'" in problems[0].message


def test_config_problems_cooperate() -> None:
    class Base(RegistrySourceTraits):
        def config_problems(self) -> list[ConfigProblem]:
            return [*super().config_problems(), ConfigProblem("LSSTSpawner.other", "x")]

    problems = Base(registry_host="bad host").config_problems()
    assert [p.where for p in problems] == ["LSSTSpawner.registry_host", "LSSTSpawner.other"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("registry_request_timeout", "soon"),
        ("registry_request_timeout", 0),
        ("registry_page_size", 0),
        ("registry_max_pages", -1),
    ],
)
def test_invalid_values_rejected_at_assignment(name: str, value: object) -> None:
    with pytest.raises(TraitError):
        RegistrySourceTraits(**{name: value})
