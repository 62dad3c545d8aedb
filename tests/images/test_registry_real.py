"""The client against a real registry (Debian's docker-registry, distribution 2.8)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from lsst_spawner.images.registry import RegistryImageSource
from lsst_spawner.images.registry_auth import RegistryAuthError, RegistryCredentials
from lsst_spawner.images.registry_config import RegistrySourceTraits
from lsst_spawner.images.sources import ImageSource
from lsst_spawner.testing.recording_server import LocalHTTPServer, Reply
from lsst_spawner.testing.registry import LocalRegistry, TokenServer
from lsst_spawner.testing.registry.fixtures import SAMPLE_ALIASES, SAMPLE_TAGS, RegistryFixture

pytestmark = pytest.mark.integration


async def test_anonymous_tags_and_digests(local_registry: RegistryFixture) -> None:
    client = local_registry.client()
    source = RegistryImageSource(client, local_registry.repository)
    assert isinstance(source, ImageSource)
    assert source.image_base == f"{local_registry.host_port}/lsst-sqre/sciplat-lab"
    tags = await source.list_tags()
    assert sorted(tags) == sorted([*SAMPLE_TAGS, *SAMPLE_ALIASES])
    # distribution 2.8 ignores n: one page, no Link.
    assert client.stats.tag_pages == 1
    digests = await source.resolve_digests(["recommended", "r23_0_1", "w_2024_05", "nope"])
    assert digests == {
        t: local_registry.digests[t] for t in ("recommended", "r23_0_1", "w_2024_05")
    }
    assert digests["recommended"] == digests["w_2024_05"] != digests["r23_0_1"]
    assert client.stats.digest_requests == 4
    assert client.stats.requests == 5


async def test_empty_and_missing_repositories(local_registry: RegistryFixture) -> None:
    client = local_registry.client()
    with pytest.raises(Exception, match="not found"):
        await client.list_tags("no/such-repo")


async def test_token_auth(token_registry: RegistryFixture) -> None:
    client = token_registry.client()
    assert sorted(await client.list_tags(token_registry.repository)) == sorted(
        [*SAMPLE_TAGS, *SAMPLE_ALIASES]
    )
    digests = await client.resolve_digests(token_registry.repository, ["recommended"])
    assert digests == {"recommended": token_registry.digests["w_2024_05"]}
    # 401, token, retry, HEAD with the cached token.
    assert (client.stats.requests, client.stats.token_requests) == (4, 1)
    assert token_registry.token_server is not None
    last = token_registry.token_server.requests[-1]
    assert last.query["scope"] == [f"repository:{token_registry.repository}:pull"]


async def test_token_auth_wrong_password(token_registry: RegistryFixture) -> None:
    wrong = RegistryCredentials("alice", "not-the-SECRET")
    client = token_registry.client(credentials=wrong)
    with pytest.raises(RegistryAuthError, match="HTTP 401") as info:
        await client.list_tags(token_registry.repository)
    assert "SECRET" not in str(info.value)


async def test_token_auth_without_allowlisted_realm(token_registry: RegistryFixture) -> None:
    assert token_registry.token_server is not None
    before = len(token_registry.token_server.requests)
    client = token_registry.client(realm_allowlist=[])
    with pytest.raises(RegistryAuthError, match="nothing was sent"):
        await client.list_tags(token_registry.repository)
    assert len(token_registry.token_server.requests) == before


@pytest.fixture
def hostile_realm_registry() -> Iterator[tuple[LocalRegistry, LocalHTTPServer]]:
    """A real token-auth registry whose challenges name a recording realm on 127.0.0.2."""
    token_server = TokenServer(users={"alice": "pw"})
    reply = Reply(200, {}, json.dumps({"token": "evil"}).encode())
    with LocalHTTPServer(lambda r: reply, host="127.0.0.2") as hostile:
        registry = LocalRegistry(token_server=token_server, realm=f"{hostile.url}/token")
        try:
            yield registry.start(), hostile
        finally:
            registry.stop()
            token_server.close()


async def test_real_registry_naming_hostile_realm(
    hostile_realm_registry: tuple[LocalRegistry, LocalHTTPServer],
) -> None:
    registry, hostile = hostile_realm_registry
    client = RegistryImageSource(
        RegistrySourceTraits(
            registry_host=registry.host_port,
            registry_insecure_hosts=[registry.host_port, hostile.host_port],
        ).make_registry_client(),
        "lsst-sqre/sciplat-lab",
    )
    with pytest.raises(RegistryAuthError, match="nothing was sent"):
        await client.list_tags()
    assert hostile.requests == []


async def test_traits_build_a_working_source(
    token_registry: RegistryFixture,
    tmp_path: object,
) -> None:
    import base64
    from pathlib import Path

    assert token_registry.token_server is not None
    assert token_registry.credentials is not None
    creds = token_registry.credentials
    auth = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    path = Path(str(tmp_path)) / "dockerconfig.json"
    path.write_text(json.dumps({"auths": {f"http://{token_registry.host_port}": {"auth": auth}}}))
    traits = RegistrySourceTraits(
        registry_host=token_registry.host_port,
        registry_repository=token_registry.repository,
        registry_credentials_file=str(path),
        registry_insecure_hosts=token_registry.insecure,
        registry_realm_allowlist=[token_registry.token_server.server.host_port],
        registry_request_timeout="5s",
    )
    assert traits.config_problems() == []
    source = traits.make_registry_source()
    assert "recommended" in await source.list_tags()


def test_missing_binary_fails_never_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    from lsst_spawner.testing.registry import RegistryUnavailableError, find_registry_binary
    from lsst_spawner.testing.registry import fixtures as registry_fixtures

    monkeypatch.setenv("LSST_SPAWNER_REGISTRY_BINARY", "/nonexistent/docker-registry")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RegistryUnavailableError, match="apt-get install -y docker-registry"):
        find_registry_binary()
    with pytest.raises(pytest.fail.Exception, match="real registry unavailable"):
        registry_fixtures._start(None)
