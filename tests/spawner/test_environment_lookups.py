"""KubeSpawner's shared client stops per-request proxy/netrc lookups only when they find nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from lsst_spawner.kube import skip_unused_environment_lookups

API_SERVER = "https://10.96.0.1:443"
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No proxy variables, and NETRC pointing at a file that does not exist yet."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    return netrc


def write_netrc(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


async def make_api() -> client.CoreV1Api:
    configuration = client.Configuration(host=API_SERVER)
    return client.CoreV1Api(client.ApiClient(configuration))


def trusts_environment(api: client.CoreV1Api) -> bool:
    trust: bool = api.api_client.rest_client.pool_manager.trust_env
    return trust


async def test_lookups_that_find_nothing_are_turned_off(clean_environment: Path) -> None:
    api = await make_api()
    assert trusts_environment(api)
    assert skip_unused_environment_lookups(api) is True
    assert not trusts_environment(api)
    assert skip_unused_environment_lookups(api) is None, "looked at once"
    await api.api_client.close()


async def test_a_proxy_for_the_api_server_keeps_them(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.org:3128")
    api = await make_api()
    assert skip_unused_environment_lookups(api) is False
    assert trusts_environment(api)
    await api.api_client.close()


async def test_a_proxy_the_api_server_bypasses_does_not(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.org:3128")
    monkeypatch.setenv("NO_PROXY", "10.96.0.1,.cluster.local")
    api = await make_api()
    assert skip_unused_environment_lookups(api) is True
    assert not trusts_environment(api)
    await api.api_client.close()


async def test_netrc_credentials_for_the_api_server_keep_them(clean_environment: Path) -> None:
    write_netrc(clean_environment, "machine 10.96.0.1 login hub password s3cret\n")
    api = await make_api()
    assert skip_unused_environment_lookups(api) is False
    assert trusts_environment(api)
    await api.api_client.close()


async def test_netrc_for_other_hosts_does_not(clean_environment: Path) -> None:
    write_netrc(clean_environment, "machine github.com login someone password x\n")
    api = await make_api()
    assert skip_unused_environment_lookups(api) is True
    await api.api_client.close()


def test_anything_else_is_left_alone() -> None:
    assert skip_unused_environment_lookups(object()) is None


def _session_trusts(spawner: Any) -> bool:
    trust: bool = spawner.api.api_client.rest_client.pool_manager.trust_env
    return trust


@pytest.mark.parametrize(("skip", "expected_trust"), [(True, False), (False, True)])
async def test_lsst_spawner_applies_it_unless_told_not_to(
    clean_environment: Path, tmp_path: Path, skip: bool, expected_trust: bool
) -> None:
    from traitlets.config import Config

    from lsst_spawner.commands import _offline_kubernetes_client
    from lsst_spawner.offline import OfflineHub, OfflineUser
    from lsst_spawner.spawner import LSSTSpawner

    c = Config()
    c.LSSTSpawner.image_source = "static"
    c.LSSTSpawner.static_image_base = "registry.example.org/sciplat-lab"
    c.LSSTSpawner.static_image_tags = ["recommended"]
    c.LSSTSpawner.kubernetes_skip_environment_lookups = skip
    with _offline_kubernetes_client(str(tmp_path)):
        spawner = LSSTSpawner(config=c, user=OfflineUser("rra", None), hub=OfflineHub())
        assert _session_trusts(spawner) is expected_trust


async def test_a_closed_client_is_forgotten(clean_environment: Path) -> None:
    """Sessions looked at are remembered weakly, not by ``id()``: a closed session's id
    may be reused by the next one, which must still be looked at (it once was not, in a
    test run where a later test's client got an earlier one's id)."""
    import gc
    import weakref
    from types import SimpleNamespace

    import aiohttp

    from lsst_spawner.kube import retries as kube

    # An empty netrc file: a missing one makes aiohttp log a warning whose exception
    # (kept by pytest's log capture) would keep the frames, and the session, alive.
    write_netrc(clean_environment, "")
    remembered_before = len(list(kube._LOOKED_AT))  # other tests' live clients
    session = aiohttp.ClientSession()
    session._trust_env = True  # as kubernetes_asyncio makes it
    api = SimpleNamespace(
        api_client=SimpleNamespace(
            rest_client=SimpleNamespace(pool_manager=session),
            configuration=SimpleNamespace(host=API_SERVER),
        )
    )
    assert skip_unused_environment_lookups(api) is True
    assert skip_unused_environment_lookups(api) is None, "looked at once"
    gone = weakref.ref(session)
    await session.close()
    del api, session
    gc.collect()
    assert gone() is None, "the module must not keep a closed session alive"
    remembered = list(kube._LOOKED_AT)
    assert len(remembered) <= remembered_before, "nor anything that stands for it"
    assert all(isinstance(item, aiohttp.ClientSession) for item in remembered)
