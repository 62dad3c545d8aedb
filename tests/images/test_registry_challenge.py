"""WWW-Authenticate parsing and the realm rules that decide where credentials may go."""

from __future__ import annotations

import pytest

from lsst_spawner.images.registry_auth import (
    Challenge,
    ChallengeParseError,
    RealmPolicy,
    RegistryAuthError,
    parse_www_authenticate,
)

PARSE_CASES = [
    pytest.param(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:a/b:pull,push"',
        [
            Challenge(
                "bearer",
                {
                    "realm": "https://auth.docker.io/token",
                    "service": "registry.docker.io",
                    "scope": "repository:a/b:pull,push",
                },
            )
        ],
        id="docker-hub-scope-with-comma",
    ),
    pytest.param(
        r'Bearer realm="https://x.example/t",error="a \"quoted\", msg"',
        [Challenge("bearer", {"realm": "https://x.example/t", "error": 'a "quoted", msg'})],
        id="escaped-quotes-and-comma",
    ),
    pytest.param(
        'Basic realm="r1", Bearer realm="https://x.example/t", scope="s"',
        [
            Challenge("basic", {"realm": "r1"}),
            Challenge("bearer", {"realm": "https://x.example/t", "scope": "s"}),
        ],
        id="two-challenges",
    ),
    pytest.param(
        'Bearer  realm = "https://x.example" ,  service=svc ,',
        [Challenge("bearer", {"realm": "https://x.example", "service": "svc"})],
        id="whitespace-around-equals-and-commas",
    ),
    pytest.param(
        'BEARER Realm="x", SERVICE=y',
        [Challenge("bearer", {"realm": "x", "service": "y"})],
        id="case-insensitive-names",
    ),
    pytest.param("Negotiate abc123==", [Challenge("negotiate", {}, "abc123==")], id="token68"),
    pytest.param(
        'Negotiate abc=, Basic realm="r"',
        [Challenge("negotiate", {}, "abc="), Challenge("basic", {"realm": "r"})],
        id="token68-then-challenge",
    ),
    pytest.param("Basic", [Challenge("basic", {})], id="bare-scheme"),
    pytest.param(
        'Basic, Bearer realm="r"',
        [Challenge("basic", {}), Challenge("bearer", {"realm": "r"})],
        id="bare-scheme-then-challenge",
    ),
    pytest.param("", [], id="empty"),
    pytest.param(
        'Bearer realm=""',
        [Challenge("bearer", {"realm": ""})],
        id="empty-quoted-value",
    ),
]


@pytest.mark.parametrize(("header", "expected"), PARSE_CASES)
def test_parse_www_authenticate(header: str, expected: list[Challenge]) -> None:
    assert parse_www_authenticate(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        pytest.param('Bearer realm="unterminated', id="unterminated-quote"),
        pytest.param('Bearer realm="a",realm="https://evil.example/t"', id="repeated-realm"),
        pytest.param('Bearer realm="a" service="b"', id="missing-comma"),
        pytest.param("=x", id="no-scheme"),
        pytest.param("Bearer realm=,service=x", id="missing-value"),
        pytest.param('Bearer realm="a\\', id="trailing-backslash"),
    ],
)
def test_parse_rejects_malformed(header: str) -> None:
    with pytest.raises(ChallengeParseError):
        parse_www_authenticate(header)


def test_scope_with_comma_is_not_split() -> None:
    # The older LSST spawners split challenges on commas and lost ",push".
    (challenge,) = parse_www_authenticate('Bearer scope="repository:a/b:pull,push",realm="r"')
    assert challenge.params["scope"] == "repository:a/b:pull,push"
    assert challenge.params["realm"] == "r"
    assert set(challenge.params) == {"scope", "realm"}


ALLOWED = [
    ("ghcr.io", "https://ghcr.io/token", ()),
    ("registry-1.docker.io", "https://auth.docker.io/token", ()),
    ("us-docker.pkg.dev", "https://us-docker.pkg.dev/v2/token", ()),
    ("harbor.example.org", "https://harbor.example.org:443/service/token", ()),
    ("registry.example.org", "https://auth.example.org/token", ("auth.example.org",)),
    ("registry.example.org", "https://sso.example.org/token", ("*.example.org",)),
    ("127.0.0.1:5000", "https://127.0.0.1:5001/token", ("127.0.0.1:5001",)),
]


@pytest.mark.parametrize(("registry", "realm", "allowlist"), ALLOWED)
def test_realm_allowed(registry: str, realm: str, allowlist: tuple[str, ...]) -> None:
    policy = RealmPolicy(registry, allowlist)
    assert policy.check_realm(realm) == realm


REFUSED = [
    ("ghcr.io", "https://auth.docker.io/token", (), "not the registry's own host"),
    ("registry-1.docker.io", "https://evil.example/token", (), "not the registry's own host"),
    ("ghcr.io", "https://ghcr.io.evil.example/token", (), "not the registry's own host"),
    ("ghcr.io", "https://ghcr.io:8443/token", (), "not the registry's own host"),
    ("ghcr.io", "https://evil.example/token", ("*.ghcr.io",), "not the registry's own host"),
    ("registry.example.org", "https://example.org/t", ("*.example.org",), "not the registry"),
    ("registry.example.org", "https://evilexample.org/t", ("*.example.org",), "not the regist"),
    ("ghcr.io", "http://ghcr.io/token", (), "plain http"),
    ("ghcr.io", "https://user:pw@ghcr.io/token", (), "user info"),
    ("ghcr.io", "ftp://ghcr.io/token", (), "not an http(s) URL"),
    ("ghcr.io", "", (), "not an http(s) URL"),
    ("ghcr.io", "/token", (), "not an http(s) URL"),
    ("ghcr.io", "https://ghcr.io:99999/token", (), "invalid port"),
]


@pytest.mark.parametrize(("registry", "realm", "allowlist", "message"), REFUSED)
def test_realm_refused(registry: str, realm: str, allowlist: tuple[str, ...], message: str) -> None:
    policy = RealmPolicy(registry, allowlist)
    with pytest.raises(RegistryAuthError, match=r"refus|not|invalid|only https") as info:
        policy.check_realm(realm)
    assert message in str(info.value)
    assert "pw" not in str(info.value)


def test_refusal_message_hides_realm_query() -> None:
    policy = RealmPolicy("ghcr.io")
    with pytest.raises(RegistryAuthError) as info:
        policy.check_realm("https://evil.example/token?leak=SECRET-QUERY")
    assert "https://evil.example" in str(info.value)
    assert "SECRET-QUERY" not in str(info.value)


def test_http_realm_needs_insecure_listing() -> None:
    realm = "http://127.0.0.1:5001/token"
    with pytest.raises(RegistryAuthError, match="plain http"):
        RealmPolicy("127.0.0.1:5000", ("127.0.0.1:5001",)).check_realm(realm)
    policy = RealmPolicy("127.0.0.1:5000", ("127.0.0.1:5001",), ("127.0.0.1:5001",))
    assert policy.check_realm(realm) == realm
