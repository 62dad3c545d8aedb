"""Tag listing against mock registries: every pagination case and odd payloads.

The real registry (distribution 2.8) ignores ``n`` and never sends ``Link``, so
these cases are served by a small recording HTTP server on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from lsst_spawner.images.registry import RegistryClient, RegistryError
from lsst_spawner.testing.recording_server import LocalHTTPServer, RecordedRequest, Reply

REPO = "lsst-sqre/sciplat-lab"
TAGS = [f"w_2024_{week:02d}" for week in range(1, 8)]


def _json(payload: object, link: str | None = None) -> Reply:
    headers = {"Content-Type": "application/json"}
    if link is not None:
        headers["Link"] = link
    return Reply(200, headers, json.dumps(payload).encode())


def paging_handler(link: Callable[[str], str]) -> Callable[[RecordedRequest], Reply]:
    """A registry honouring ``n`` and ``last``; ``link(query)`` formats the Link header."""

    def handle(request: RecordedRequest) -> Reply:
        assert request.path == f"/v2/{REPO}/tags/list"
        n = int(request.query.get("n", ["1000"])[0])
        last = request.query.get("last", [""])[0]
        start = TAGS.index(last) + 1 if last else 0
        page = TAGS[start : start + n]
        more = start + n < len(TAGS)
        next_link = link(f"n={n}&last={page[-1]}") if more else None
        return _json({"name": REPO, "tags": page}, next_link)

    return handle


@pytest.fixture
def foreign() -> Iterator[LocalHTTPServer]:
    """Another host that must receive nothing."""
    with LocalHTTPServer(lambda r: _json({"tags": ["evil"]}), host="127.0.0.2") as server:
        yield server


def _client(server: LocalHTTPServer, **kwargs: object) -> RegistryClient:
    return RegistryClient(server.host_port, insecure_registries=[server.host_port], **kwargs)  # type: ignore[arg-type]


async def test_relative_link_pages_with_n() -> None:
    handler = paging_handler(lambda q: f'</v2/{REPO}/tags/list?{q}>; rel="next"')
    with LocalHTTPServer(handler) as server:
        client = _client(server, page_size=3)
        assert await client.list_tags(REPO) == TAGS
    assert [r.query["n"] for r in server.requests] == [["3"]] * 3
    assert client.stats.tag_pages == 3 == client.stats.requests


async def test_absolute_link_on_same_host() -> None:
    holder: dict[str, str] = {}
    handler = paging_handler(lambda q: f'<{holder["url"]}/v2/{REPO}/tags/list?{q}>; rel="next"')
    with LocalHTTPServer(handler) as server:
        holder["url"] = server.url
        assert await _client(server, page_size=2).list_tags(REPO) == TAGS
    assert len(server.requests) == 4


async def test_link_with_other_params_and_several_relations() -> None:
    handler = paging_handler(
        lambda q: (
            f'<https://docs.example/>; rel="help", </v2/{REPO}/tags/list?{q}>; '
            'title="more"; rel="next last"'
        )
    )
    with LocalHTTPServer(handler) as server:
        assert await _client(server, page_size=4).list_tags(REPO) == TAGS


async def test_link_to_foreign_host_refused(foreign: LocalHTTPServer) -> None:
    handler = paging_handler(lambda q: f'<{foreign.url}/v2/{REPO}/tags/list?{q}>; rel="next"')
    with (
        LocalHTTPServer(handler) as server,
        pytest.raises(RegistryError, match="another scheme or host") as info,
    ):
        await _client(server, page_size=3).list_tags(REPO)
    assert foreign.requests == []
    assert "127.0.0.2" in str(info.value)


async def test_link_to_same_ip_other_port_refused(foreign: LocalHTTPServer) -> None:
    with LocalHTTPServer(lambda r: _json({})) as other:
        handler = paging_handler(lambda q: f'<{other.url}/v2/{REPO}/tags/list?{q}>; rel="next"')
        with (
            LocalHTTPServer(handler) as server,
            pytest.raises(RegistryError, match="another scheme or host"),
        ):
            await _client(server, page_size=3).list_tags(REPO)
        assert other.requests == []


async def test_link_to_other_scheme_refused() -> None:
    holder: dict[str, str] = {}
    handler = paging_handler(
        lambda q: f'<https://{holder["hp"]}/v2/{REPO}/tags/list?{q}>; rel="next"'
    )
    with LocalHTTPServer(handler) as server:
        holder["hp"] = server.host_port
        with pytest.raises(RegistryError, match="another scheme or host"):
            await _client(server, page_size=3).list_tags(REPO)
        assert len(server.requests) == 1


async def test_protocol_relative_link_to_foreign_host_refused(foreign: LocalHTTPServer) -> None:
    handler = paging_handler(lambda q: f"<//{foreign.host_port}/v2/{REPO}/tags/list?{q}>; rel=next")
    with (
        LocalHTTPServer(handler) as server,
        pytest.raises(RegistryError, match="another scheme or host"),
    ):
        await _client(server, page_size=3).list_tags(REPO)
    assert foreign.requests == []


async def test_link_with_userinfo_refused() -> None:
    holder: dict[str, str] = {}
    handler = paging_handler(
        lambda q: f'<http://user:pw@{holder["hp"]}/v2/{REPO}/tags/list?{q}>; rel="next"'
    )
    with LocalHTTPServer(handler) as server:
        holder["hp"] = server.host_port
        with pytest.raises(RegistryError, match="another scheme or host") as info:
            await _client(server, page_size=3).list_tags(REPO)
    assert "pw" not in str(info.value)


async def test_link_outside_v2_refused() -> None:
    with LocalHTTPServer(paging_handler(lambda q: '</admin/delete-all>; rel="next"')) as server:
        with pytest.raises(RegistryError, match="outside /v2/"):
            await _client(server, page_size=3).list_tags(REPO)
        assert len(server.requests) == 1


async def test_repeated_page_detected() -> None:
    # Always points back at the first page.
    handler = paging_handler(lambda q: f'</v2/{REPO}/tags/list?n=3>; rel="next"')
    with LocalHTTPServer(handler) as server:
        with pytest.raises(RegistryError, match="repeats a page"):
            await _client(server, page_size=3).list_tags(REPO)
        # Detected before the repeated page is asked for again.
        assert len(server.requests) == 1


async def test_two_page_cycle_detected() -> None:
    def handle(request: RecordedRequest) -> Reply:
        if "last" in request.query:
            return _json({"tags": ["b"]}, f'</v2/{REPO}/tags/list?n=1>; rel="next"')
        return _json({"tags": ["a"]}, f'</v2/{REPO}/tags/list?n=1&last=a>; rel="next"')

    with LocalHTTPServer(handle) as server:
        with pytest.raises(RegistryError, match="repeats a page"):
            await _client(server, page_size=1).list_tags(REPO)
        assert len(server.requests) == 2


async def test_page_cap() -> None:
    counter = iter(range(10**6))

    def endless(request: RecordedRequest) -> Reply:
        i = next(counter)
        return _json({"tags": [f"t{i}"]}, f'</v2/{REPO}/tags/list?last=t{i}>; rel="next"')

    with LocalHTTPServer(endless) as server:
        with pytest.raises(RegistryError, match="more than 5 pages"):
            await _client(server, max_pages=5).list_tags(REPO)
        assert len(server.requests) == 5


async def test_registry_ignoring_n_gives_everything_in_one_page() -> None:
    with LocalHTTPServer(lambda r: _json({"name": REPO, "tags": TAGS})) as server:
        client = _client(server, page_size=2)
        assert await client.list_tags(REPO) == TAGS
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param({"name": REPO, "tags": None}, [], id="tags-null"),
        pytest.param({"name": REPO}, [], id="tags-missing"),
        pytest.param(
            {
                "tags": [
                    "w_2024_01",
                    "sha256-" + "a" * 64 + ".sig",
                    "sha256-" + "b" * 64,
                    "sha256:" + "c" * 64,
                    "../../etc",
                    "",
                    7,
                    None,
                    "x" * 129,
                    "w_2024_01",
                    "r23_0_1",
                ]
            },
            ["w_2024_01", "r23_0_1"],
            id="digest-like-invalid-and-duplicate-tags",
        ),
    ],
)
async def test_odd_payloads(payload: object, expected: list[str]) -> None:
    with LocalHTTPServer(lambda r: _json(payload)) as server:
        assert await _client(server).list_tags(REPO) == expected


async def test_null_page_and_duplicates_across_pages() -> None:
    pages = {
        "": ({"tags": ["a", "b"]}, "p2"),
        "p2": ({"tags": None}, "p3"),
        "p3": ({"tags": ["b", "c"]}, None),
    }

    def handle(request: RecordedRequest) -> Reply:
        payload, following = pages[request.query.get("last", [""])[0]]
        link = f'</v2/{REPO}/tags/list?last={following}>; rel="next"' if following else None
        return _json(payload, link)

    with LocalHTTPServer(handle) as server:
        assert await _client(server).list_tags(REPO) == ["a", "b", "c"]
        assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(200, {}, b"not json"), "not JSON"),
        (Reply(200, {}, b"[1, 2]"), "not a JSON object"),
        (Reply(200, {}, b'{"tags": "w_2024_01"}'), "is not a list"),
        (Reply(404, {}, b"{}"), "not found"),
        (Reply(500, {}, b"{}"), "HTTP 500"),
        (Reply(302, {"Location": "http://127.0.0.2:9/x"}, b""), "redirects are not followed"),
    ],
)
async def test_bad_replies(reply: Reply, message: str) -> None:
    with (
        LocalHTTPServer(lambda r: reply) as server,
        pytest.raises(RegistryError, match=message),
    ):
        await _client(server).list_tags(REPO)


async def test_large_reply_arriving_in_many_chunks() -> None:
    many = [f"exp_build_{i:05d}" for i in range(20000)]  # about 400 kB
    with LocalHTTPServer(lambda r: _json({"tags": many})) as server:
        assert await _client(server).list_tags(REPO) == many


async def test_reply_size_limit() -> None:
    with (
        LocalHTTPServer(lambda r: _json({"tags": TAGS * 100})) as server,
        pytest.raises(RegistryError, match="exceeds 100 bytes"),
    ):
        await _client(server, max_response_bytes=100).list_tags(REPO)


@pytest.mark.parametrize("repository", ["../x", "UPPER/case", "a//b", "a/b?x=1", ""])
async def test_invalid_repository_never_requested(repository: str) -> None:
    with LocalHTTPServer(lambda r: _json({})) as server:
        with pytest.raises(RegistryError, match="not a valid repository"):
            await _client(server).list_tags(repository)
        assert server.requests == []


async def test_timeout_is_a_registry_error() -> None:
    import time

    def slow(request: RecordedRequest) -> Reply:
        time.sleep(1.0)
        return _json({"tags": []})

    with LocalHTTPServer(slow) as server, pytest.raises(RegistryError, match="timed out"):
        await _client(server, request_timeout=0.2).list_tags(REPO)


async def test_https_only_unless_listed_insecure() -> None:
    with LocalHTTPServer(lambda r: _json({"tags": TAGS})) as server:
        client = RegistryClient(server.host_port)
        assert client.base_url == f"https://{server.host_port}"
        with pytest.raises(RegistryError, match=f"https://{server.host_port}"):
            await client.list_tags(REPO)
        # The TLS handshake is not an HTTP request: nothing was received in clear.
        assert server.requests == []
        assert await _client(server).list_tags(REPO) == TAGS
