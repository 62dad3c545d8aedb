"""Auth flows against mock registries: Basic, Bearer, token caching, hostile realms, digests."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from lsst_spawner.images.registry import (
    MANIFEST_ACCEPT,
    RegistryClient,
    RegistryError,
    RegistryImageSource,
)
from lsst_spawner.images.registry_auth import RegistryAuthError, RegistryCredentials
from lsst_spawner.testing.recording_server import LocalHTTPServer, RecordedRequest, Reply

REPO = "lsst-sqre/sciplat-lab"
PASSWORD = "registry-SECRET-password"
CREDS = RegistryCredentials("bot", PASSWORD)
DIGESTS = {"w_2024_05": "sha256:" + "1" * 64, "recommended": "sha256:" + "1" * 64}


def _basic(credentials: RegistryCredentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


@dataclass
class MockRegistry:
    """A registry demanding Bearer (or Basic) auth; ``/token`` on the same server by default."""

    scheme: str = "bearer"
    realm: str | None = None
    scope: str | None = None
    expires_in: int = 300
    require_user: bool = True
    valid: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)
    server: LocalHTTPServer | None = None

    def challenge(self, request: RecordedRequest) -> str:
        if self.scheme == "basic":
            return 'Basic realm="registry"'
        realm = self.realm or f"{self.server.url}/token"  # type: ignore[union-attr]
        repo = request.path.split("/v2/", 1)[1].rsplit("/", 2)[0]
        scope = self.scope or f"repository:{repo}:pull"
        return f'Bearer realm="{realm}",service="mock",scope="{scope}"'

    def authorized(self, request: RecordedRequest) -> bool:
        header = request.headers.get("authorization", "")
        if self.scheme == "basic":
            return header == _basic(CREDS)
        return header.startswith("Bearer ") and header[7:] in self.valid

    def __call__(self, request: RecordedRequest) -> Reply:
        if request.path == "/token":
            if self.require_user and request.headers.get("authorization") != _basic(CREDS):
                return Reply(401, {}, b'{"details": "bad credentials"}')
            token = f"tok-{len(self.issued) + 1}-SECRET"
            self.issued.append(token)
            self.valid.add(token)
            body = {"token": token, "expires_in": self.expires_in}
            return Reply(200, {"Content-Type": "application/json"}, json.dumps(body).encode())
        if not self.authorized(request):
            return Reply(401, {"WWW-Authenticate": self.challenge(request)}, b"{}")
        if request.path.endswith("/tags/list"):
            return Reply(200, {}, json.dumps({"tags": [*DIGESTS, "d_2024_01_02"]}).encode())
        tag = request.path.rsplit("/", 1)[1]
        if request.method == "HEAD" and tag in DIGESTS:
            return Reply(200, {"Docker-Content-Digest": DIGESTS[tag]})
        return Reply(404)


@pytest.fixture
def mock() -> Iterator[MockRegistry]:
    registry = MockRegistry()
    with LocalHTTPServer(registry) as server:
        registry.server = server
        yield registry


@pytest.fixture
def hostile() -> Iterator[LocalHTTPServer]:
    """A realm on another address that records every request (and would hand out tokens)."""
    reply = Reply(200, {}, json.dumps({"token": "evil", "expires_in": 300}).encode())
    with LocalHTTPServer(lambda r: reply, host="127.0.0.2") as server:
        yield server


def _client(mock: MockRegistry, **kwargs: object) -> RegistryClient:
    assert mock.server is not None
    kwargs.setdefault("credentials", CREDS)
    kwargs.setdefault("insecure_registries", [mock.server.host_port])
    return RegistryClient(mock.server.host_port, **kwargs)  # type: ignore[arg-type]


def _requests(mock: MockRegistry) -> list[tuple[str, str, str]]:
    assert mock.server is not None
    return [
        (r.method, r.path, r.headers.get("authorization", "").split(" ")[0])
        for r in mock.server.requests
    ]


async def test_bearer_flow_fetches_one_token(mock: MockRegistry) -> None:
    client = _client(mock)
    source = RegistryImageSource(client, REPO)
    assert await source.list_tags() == [*DIGESTS, "d_2024_01_02"]
    assert await source.resolve_digests(["recommended", "w_2024_05"]) == DIGESTS
    tags = f"/v2/{REPO}/tags/list"
    manifests = f"/v2/{REPO}/manifests"
    assert _requests(mock) == [
        ("GET", tags, ""),
        ("GET", "/token", "Basic"),
        ("GET", tags, "Bearer"),
        ("HEAD", f"{manifests}/recommended", "Bearer"),
        ("HEAD", f"{manifests}/w_2024_05", "Bearer"),
    ]
    assert client.stats.requests == 5
    assert client.stats.token_requests == 1
    token_request = mock.server.requests[1]  # type: ignore[union-attr]
    assert token_request.query == {"service": ["mock"], "scope": [f"repository:{REPO}:pull"]}


async def test_anonymous_bearer_sends_no_authorization(mock: MockRegistry) -> None:
    mock.require_user = False
    client = _client(mock, credentials=None)
    assert "w_2024_05" in await client.list_tags(REPO)
    assert _requests(mock)[1] == ("GET", "/token", "")


async def test_scope_with_comma_reaches_token_server_intact(mock: MockRegistry) -> None:
    mock.scope = f"repository:{REPO}:pull,push"
    await _client(mock).list_tags(REPO)
    token_request = mock.server.requests[1]  # type: ignore[union-attr]
    assert token_request.query["scope"] == [f"repository:{REPO}:pull,push"]


async def test_token_cached_until_expiry(mock: MockRegistry) -> None:
    now = [0.0]
    mock.expires_in = 100
    client = _client(mock, clock=lambda: now[0])
    await client.list_tags(REPO)
    await client.list_tags(REPO)
    now[0] = 89.0
    await client.resolve_digests(REPO, ["w_2024_05"])
    assert mock.issued == ["tok-1-SECRET"]
    now[0] = 90.0  # 100 s lifetime minus a 10 s margin
    await client.list_tags(REPO)
    assert mock.issued == ["tok-1-SECRET", "tok-2-SECRET"]
    # The expired token was renewed before asking: no extra 401 round trip.
    statuses = [r[2] for r in _requests(mock)]
    assert statuses == ["", "Basic", "Bearer", "Bearer", "Bearer", "Basic", "Bearer"]
    assert client.stats.challenges == 1


async def test_token_per_scope(mock: MockRegistry) -> None:
    client = _client(mock)
    await client.list_tags(REPO)
    await client.list_tags("other/repo")
    # The first repository's token is not offered for the second one.
    assert _requests(mock)[3] == ("GET", "/v2/other/repo/tags/list", "")
    assert len(mock.issued) == 2
    await client.list_tags(REPO)
    await client.list_tags("other/repo")
    assert len(mock.issued) == 2
    assert {key[2] for key in client.tokens.cached_keys()} == {
        f"repository:{REPO}:pull",
        "repository:other/repo:pull",
    }


async def test_revoked_token_is_replaced_once(mock: MockRegistry) -> None:
    client = _client(mock)
    await client.list_tags(REPO)
    mock.valid.clear()
    assert "w_2024_05" in await client.list_tags(REPO)
    assert mock.issued == ["tok-1-SECRET", "tok-2-SECRET"]


async def test_registry_refusing_every_token(mock: MockRegistry) -> None:
    mock.authorized = lambda request: False  # type: ignore[method-assign]
    with pytest.raises(RegistryAuthError, match="refused the credentials") as info:
        await _client(mock).list_tags(REPO)
    assert "SECRET" not in str(info.value)
    assert len(mock.issued) == 1


async def test_token_endpoint_rejects_password(mock: MockRegistry) -> None:
    wrong = RegistryCredentials("bot", "wrong-SECRET")
    with pytest.raises(
        RegistryAuthError, match=r"token endpoint .*/token answered HTTP 401"
    ) as info:
        await _client(mock, credentials=wrong).list_tags(REPO)
    assert "SECRET" not in str(info.value)
    assert "SECRET" not in repr(info.value)


async def test_basic_flow_then_preemptive(mock: MockRegistry) -> None:
    mock.scheme = "basic"
    client = _client(mock)
    await client.list_tags(REPO)
    await client.resolve_digests(REPO, ["w_2024_05"])
    assert [r[2] for r in _requests(mock)] == ["", "Basic", "Basic"]


async def test_basic_without_credentials(mock: MockRegistry) -> None:
    mock.scheme = "basic"
    with pytest.raises(RegistryAuthError, match="none are configured"):
        await _client(mock, credentials=None).list_tags(REPO)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "without a challenge"),
        ('Negotiate abc==, Digest realm="x"', r"unsupported auth \(digest, negotiate\)"),
        ('Bearer realm="x" service="y"', "expected ','"),
        ('Bearer service="no-realm"', "not an http"),
    ],
)
async def test_unusable_challenges(header: str, message: str) -> None:
    headers = {"WWW-Authenticate": header} if header else {}
    with LocalHTTPServer(lambda r: Reply(401, headers)) as server:
        client = RegistryClient(
            server.host_port, credentials=CREDS, insecure_registries=[server.host_port]
        )
        with pytest.raises(RegistryAuthError, match=message):
            await client.list_tags(REPO)
        assert server.authorization_headers() == []


# --- hostile realms -------------------------------------------------------------


@pytest.mark.parametrize(
    "realm_form",
    [
        "{url}/token",  # another loopback address
        "{url}/token?service=x&account=bot",
        "http://bot:pw@{host_port}/token",
        "HTTP://{host_port}/token",
    ],
)
async def test_foreign_realm_receives_nothing(
    mock: MockRegistry, hostile: LocalHTTPServer, realm_form: str
) -> None:
    mock.realm = realm_form.format(url=hostile.url, host_port=hostile.host_port)
    # Even listed as insecure (so http is not the reason), it is not on the allowlist.
    client = _client(mock, insecure_registries=[mock.server.host_port, hostile.host_port])  # type: ignore[union-attr]
    with pytest.raises(RegistryAuthError, match=r"refusing|nothing was sent") as info:
        await client.list_tags(REPO)
    assert hostile.requests == []
    assert hostile.authorization_headers() == []
    # The registry itself never got credentials before naming a realm either.
    assert mock.server.authorization_headers() == []  # type: ignore[union-attr]
    assert PASSWORD not in str(info.value)


async def test_realm_on_same_ip_other_port_receives_nothing(mock: MockRegistry) -> None:
    reply = Reply(200, {}, b'{"token": "evil"}')
    with LocalHTTPServer(lambda r: reply) as other_port:
        mock.realm = f"{other_port.url}/token"
        client = _client(mock, insecure_registries=[mock.server.host_port, other_port.host_port])  # type: ignore[union-attr]
        with pytest.raises(RegistryAuthError, match="not the registry's own host"):
            await client.list_tags(REPO)
        assert other_port.requests == []


async def test_foreign_realm_refused_for_anonymous_client_too(
    mock: MockRegistry, hostile: LocalHTTPServer
) -> None:
    mock.realm = f"{hostile.url}/token"
    client = _client(
        mock, credentials=None, insecure_registries=[mock.server.host_port, hostile.host_port]
    )  # type: ignore[union-attr]
    with pytest.raises(RegistryAuthError, match="nothing was sent"):
        await client.list_tags(REPO)
    assert hostile.requests == []


async def test_allowlisted_realm_gets_credentials(mock: MockRegistry) -> None:
    # The positive control for the tests above: the same setup, allow-listed.
    realm_registry = MockRegistry()
    with LocalHTTPServer(realm_registry, host="127.0.0.2") as realm_server:
        mock.realm = f"{realm_server.url}/token"
        mock.valid = realm_registry.valid
        client = _client(
            mock,
            insecure_registries=[mock.server.host_port, realm_server.host_port],  # type: ignore[union-attr]
            realm_allowlist=[realm_server.host_port],
        )
        assert "w_2024_05" in await client.list_tags(REPO)
        assert realm_server.authorization_headers() == [_basic(CREDS)]


async def test_allowlisted_realm_over_http_needs_insecure_listing(mock: MockRegistry) -> None:
    with LocalHTTPServer(lambda r: Reply(200, {}, b'{"token": "t"}'), host="127.0.0.2") as realm:
        mock.realm = f"{realm.url}/token"
        client = _client(mock, realm_allowlist=[realm.host_port])
        with pytest.raises(RegistryAuthError, match="plain http"):
            await client.list_tags(REPO)
        assert realm.requests == []


async def test_realm_redirect_not_followed(mock: MockRegistry, hostile: LocalHTTPServer) -> None:
    mock.realm = f"{mock.server.url}/redirect"  # type: ignore[union-attr]
    original = mock.__call__

    def handle(request: RecordedRequest) -> Reply:
        if request.path == "/redirect":
            return Reply(307, {"Location": f"{hostile.url}/token"})
        return original(request)

    mock.server.handler = handle  # type: ignore[union-attr]
    with pytest.raises(RegistryAuthError, match="HTTP 307"):
        await _client(mock).list_tags(REPO)
    assert hostile.requests == []


# --- digests ---------------------------------------------------------------------


async def test_digests_only_for_requested_tags(mock: MockRegistry) -> None:
    client = _client(mock)
    result = await client.resolve_digests(
        REPO, ["w_2024_05", "missing", "w_2024_05", "bad/../tag", "recommended"]
    )
    assert result == DIGESTS
    heads = [r for r in mock.server.requests if r.method == "HEAD"]  # type: ignore[union-attr]
    assert sorted({r.path.rsplit("/", 1)[1] for r in heads}) == [
        "missing",
        "recommended",
        "w_2024_05",
    ]
    # One HEAD per distinct valid tag, plus the first one repeated after its challenge.
    assert len(heads) == 4
    for request in heads:
        for media_type in (
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json",
        ):
            assert media_type in request.headers["accept"]
    assert heads[0].headers["accept"] == MANIFEST_ACCEPT
    assert await client.resolve_digests(REPO, []) == {}


@pytest.mark.parametrize(
    "digest", [None, "", "sha256:short", "md5:" + "0" * 32, "sha256:" + "G" * 64]
)
async def test_unusable_digest_header(digest: str | None) -> None:
    headers = {"Docker-Content-Digest": digest} if digest is not None else {}
    with LocalHTTPServer(lambda r: Reply(200, headers)) as server:
        client = RegistryClient(server.host_port, insecure_registries=[server.host_port])
        with pytest.raises(RegistryError, match="no usable Docker-Content-Digest"):
            await client.resolve_digests(REPO, ["w_2024_05"])
