"""Docker config JSON credentials: formats, host keys, and secrets kept out of text."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from lsst_spawner.images.registry import RegistryClient
from lsst_spawner.images.registry_auth import (
    BearerToken,
    CredentialsFileError,
    RegistryAuthError,
    RegistryCredentials,
    TokenCache,
    credentials_for_host,
    load_docker_config,
    normalize_registry_host,
)

SECRET = "pa:ss-W0rd-secret"


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _auth_raw(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


def test_dockerconfigjson_auth_field(tmp_path: Path) -> None:
    path = _write(tmp_path, {"auths": {"ghcr.io": {"auth": _auth("bot", SECRET)}}})
    table = load_docker_config(path)
    # The password may itself contain ":"; only the first one separates.
    assert table == {"ghcr.io": RegistryCredentials("bot", SECRET)}


def test_username_password_fields(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {"auths": {"https://harbor.example.org": {"username": "u", "password": SECRET}}},
    )
    assert load_docker_config(path) == {"harbor.example.org": RegistryCredentials("u", SECRET)}


def test_legacy_dockercfg_flat_format(tmp_path: Path) -> None:
    path = _write(tmp_path, {"quay.io": {"auth": _auth("q", SECRET), "email": "x@y"}})
    assert load_docker_config(path) == {"quay.io": RegistryCredentials("q", SECRET)}


@pytest.mark.parametrize(
    "key",
    ["https://index.docker.io/v1/", "docker.io", "index.docker.io", "registry-1.docker.io"],
)
def test_docker_hub_keys(tmp_path: Path, key: str) -> None:
    path = _write(tmp_path, {"auths": {key: {"auth": _auth("hub", SECRET)}}})
    table = load_docker_config(path)
    for host in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        assert credentials_for_host(table, host) == RegistryCredentials("hub", SECRET)
    assert credentials_for_host(table, "ghcr.io") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("GHCR.IO", "ghcr.io"),
        ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
        ("registry.example.org:8443", "registry.example.org:8443"),
        ("docker.io:5000", "docker.io:5000"),
    ],
)
def test_normalize_registry_host(value: str, expected: str) -> None:
    assert normalize_registry_host(value) == expected


def test_entries_without_password_are_ignored(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {"auths": {"a.example": {"identitytoken": "x"}}, "credsStore": "desktop"},
    )
    assert load_docker_config(path) == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"auths": {"h": {"auth": "%%%not-base64"}}}, "not base64"),
        ({"auths": {"h": {"auth": _auth_raw(b"no-colon-secret")}}}, "user:password"),
        ({"auths": {"h": {"username": "u"}}}, "both"),
        ({"auths": {"h": "string"}}, "not an object"),
        ({"auths": []}, "not an object"),
        ([], "not a JSON object"),
    ],
)
def test_malformed_files(tmp_path: Path, data: object, message: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(CredentialsFileError, match=message) as info:
        load_docker_config(path)
    assert SECRET not in str(info.value)
    assert "no-colon" not in str(info.value)


def test_unreadable_and_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(CredentialsFileError, match="cannot read"):
        load_docker_config(tmp_path / "missing.json")
    path = tmp_path / "bad.json"
    path.write_text('{"auths": {"h": {"password": "' + SECRET)
    with pytest.raises(CredentialsFileError, match="not valid JSON") as info:
        load_docker_config(path)
    assert SECRET not in str(info.value)


def test_reprs_hide_secrets() -> None:
    credentials = RegistryCredentials("bot", SECRET)
    token = BearerToken("tok-SECRET-value", 12.0)
    assert SECRET not in repr(credentials)
    assert SECRET not in str(credentials)
    assert "bot" in repr(credentials)
    assert "tok-SECRET-value" not in repr(token)
    cache = TokenCache()
    cache.put(("r", "s", "scope"), token)
    assert "tok-SECRET-value" not in repr(cache)
    client = RegistryClient("ghcr.io", credentials=credentials)
    assert SECRET not in repr(client)
    assert SECRET not in repr(vars(client).get("policy"))


def test_client_rereads_changed_file(tmp_path: Path) -> None:
    path = _write(tmp_path, {"auths": {"ghcr.io": {"auth": _auth("one", "p1")}}})
    client = RegistryClient("ghcr.io", credentials_file=path)
    assert client.credentials() == RegistryCredentials("one", "p1")
    path.write_text(json.dumps({"auths": {"ghcr.io": {"auth": _auth("second", "p2")}}}))
    assert client.credentials() == RegistryCredentials("second", "p2")
    path.unlink()
    with pytest.raises(RegistryAuthError, match="cannot read"):
        client.credentials()


def test_token_lifetime_and_cache_expiry() -> None:
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    token = BearerToken.from_response({"token": "t1", "expires_in": 300}, now[0])
    assert token.expires_at == pytest.approx(1000 + 300 - 10)
    key = ("https://r.example/token", "svc", "repository:a:pull")
    cache.put(key, token)
    assert cache.get(key) is token
    assert cache.get(("https://r.example/token", "svc", "repository:b:pull")) is None
    now[0] = 1289.0
    assert cache.get(key) is token
    now[0] = 1290.0
    assert cache.get(key) is None
    assert cache.cached_keys() == []


@pytest.mark.parametrize(
    ("payload", "lifetime"),
    [
        ({"access_token": "t"}, 60 - 6),
        ({"token": "t", "expires_in": "soon"}, 60 - 6),
        ({"token": "t", "expires_in": -5}, 60 - 6),
        ({"token": "t", "expires_in": 10**9}, 86400 - 10),
    ],
)
def test_token_lifetime_defaults(payload: dict[str, object], lifetime: float) -> None:
    assert BearerToken.from_response(payload, 0.0).expires_at == pytest.approx(lifetime)


@pytest.mark.parametrize(
    "payload",
    [[], {}, {"token": ""}, {"token": 5}, {"token": "a b"}, {"token": "a\r\nX-Injected: 1"}],
)
def test_token_reply_rejected(payload: object) -> None:
    with pytest.raises(RegistryAuthError, match="token"):
        BearerToken.from_response(payload, 0.0)
