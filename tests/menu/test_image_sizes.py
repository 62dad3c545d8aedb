"""Compressed image sizes: the real local registry, and registries that reply with hostility."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest

from lsst_spawner.images.registry import RegistryClient, RegistryImageSource
from lsst_spawner.menu.image_sizes import (
    MAX_IMAGE_BYTES,
    MAX_LAYERS,
    ImageSize,
    ImageSizes,
    check_platform,
    format_bytes,
    read_image_size,
)
from lsst_spawner.testing import LocalHTTPServer, RecordedRequest, Reply
from lsst_spawner.testing.registry.fixtures import RegistryFixture

DOCKER = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
REPOSITORY = "sizes/lab"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _push_blob(session: aiohttp.ClientSession, url: str, data: bytes) -> str:
    async with session.post(f"{url}/v2/{REPOSITORY}/blobs/uploads/") as response:
        assert response.status == 202, await response.text()
        location = response.headers["Location"]
    location = location if "://" in location else url + location
    separator = "&" if "?" in location else "?"
    async with session.put(f"{location}{separator}digest={_digest(data)}", data=data) as response:
        assert response.status == 201, await response.text()
    return _digest(data)


async def _push_manifest(
    session: aiohttp.ClientSession, url: str, reference: str, manifest: dict[str, Any]
) -> tuple[str, int]:
    body = json.dumps(manifest).encode()
    media_type = manifest["mediaType"]
    async with session.put(
        f"{url}/v2/{REPOSITORY}/manifests/{reference}",
        data=body,
        headers={"Content-Type": media_type},
    ) as response:
        assert response.status == 201, await response.text()
    return _digest(body), len(body)


async def _push_image(
    session: aiohttp.ClientSession, url: str, tag: str, layers: list[bytes], arch: str
) -> tuple[str, int]:
    config = json.dumps({"architecture": arch, "os": "linux", "config": {}}).encode()
    await _push_blob(session, url, config)
    entries = []
    for layer in layers:
        entries.append(
            {
                "mediaType": LAYER,
                "size": len(layer),
                "digest": await _push_blob(session, url, layer),
            }
        )
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": len(config),
            "digest": _digest(config),
        },
        "layers": entries,
    }
    return await _push_manifest(session, url, tag, manifest)


@pytest.fixture(scope="module")
def pushed(local_registry: RegistryFixture) -> dict[str, int]:
    """Images of known layer sizes in the real registry: two single-platform, one index."""
    amd64 = [b"a" * 1000, b"b" * 2345, b"c" * 17]
    arm64 = [b"d" * 4321]

    async def push() -> None:
        url = local_registry.registry.url
        async with aiohttp.ClientSession() as session:
            await _push_image(session, url, "w_2024_20", amd64, "amd64")
            arm = await _push_image(session, url, "w_2024_20-arm64", arm64, "arm64")
            amd = await _push_image(session, url, "w_2024_20-amd64", amd64, "amd64")
            index = {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": DOCKER,
                        "digest": digest,
                        "size": size,
                        "platform": {"os": "linux", "architecture": arch},
                    }
                    for (digest, size), arch in ((arm, "arm64"), (amd, "amd64"))
                ],
            }
            await _push_manifest(session, url, "w_2024_21", index)

    asyncio.run(push())
    return {"amd64": sum(map(len, amd64)), "arm64": sum(map(len, arm64))}


@pytest.mark.integration
async def test_sizes_from_the_real_registry(
    local_registry: RegistryFixture, pushed: dict[str, int]
) -> None:
    source = RegistryImageSource(local_registry.client(), REPOSITORY)
    sizes = await ImageSizes(source).sizes(["w_2024_20", "w_2024_21", "w_2099_01"])
    assert sizes == {
        "w_2024_20": ImageSize("w_2024_20", pushed["amd64"]),
        "w_2024_21": ImageSize("w_2024_21", pushed["amd64"], platform="linux/amd64"),
        "w_2099_01": ImageSize(
            "w_2099_01", None, reason="the registry has no manifest for this tag"
        ),
    }
    assert str(sizes["w_2024_20"]) == "3.28 KiB"
    assert str(sizes["w_2024_21"]) == "3.28 KiB (linux/amd64 of a multi-platform image)"
    assert str(sizes["w_2099_01"]) == "unknown: the registry has no manifest for this tag"
    # The site's platform decides which image of an index is measured.
    arm = await read_image_size(source, "w_2024_21", "linux/arm64")
    assert arm == ImageSize("w_2024_21", pushed["arm64"], platform="linux/arm64")
    other = await read_image_size(source, "w_2024_21", "linux/s390x")
    assert other.reason == (
        "the multi-platform image has no linux/s390x image (it has linux/amd64, linux/arm64)"
    )


@pytest.mark.integration
async def test_sizes_through_token_auth_and_no_credential_in_the_reason(
    token_registry: RegistryFixture,
) -> None:
    repository = token_registry.repository
    source = RegistryImageSource(token_registry.client(), repository)
    size = await read_image_size(source, "w_2024_05", "linux/amd64")
    assert size == ImageSize("w_2024_05", len(b"lsst-spawner test layer\n"))
    refused = RegistryImageSource(token_registry.client(credentials=None), repository)
    size = await read_image_size(refused, "w_2024_05", "linux/amd64")
    assert size.size is None
    assert size.reason.startswith("token endpoint ")
    assert token_registry.credentials is not None
    assert token_registry.credentials.password not in size.reason


def _manifest(layers: Any) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": DOCKER, "layers": layers}).encode()


def _layer(size: Any) -> dict[str, Any]:
    return {"mediaType": LAYER, "size": size, "digest": "sha256:" + "0" * 64}


HOSTILE: dict[str, tuple[int, dict[str, str], bytes, str]] = {
    "huge": (200, {}, _manifest([_layer(MAX_IMAGE_BYTES + 1)]), "the layers add up to more than"),
    "huge sum": (
        200,
        {},
        _manifest([_layer(MAX_IMAGE_BYTES // 2 + 1), _layer(MAX_IMAGE_BYTES // 2 + 1)]),
        "the layers add up to more than 1.00 TiB; not believed",
    ),
    "negative": (200, {}, _manifest([_layer(10), _layer(-5)]), "layer 1 has a negative size (-5)"),
    "string": (200, {}, _manifest([_layer("12")]), "layer 0 has no integer size ('12')"),
    "float": (200, {}, _manifest([_layer(1.5)]), "layer 0 has no integer size ('1.5')"),
    "bool": (200, {}, _manifest([_layer(True)]), "layer 0 has no integer size ('True')"),
    "null": (200, {}, _manifest([_layer(None)]), "layer 0 has no integer size ('None')"),
    "no size": (200, {}, _manifest([{"digest": "x"}]), "layer 0 has no integer size ('None')"),
    "layer not an object": (200, {}, _manifest([7]), "layer 0 has no integer size"),
    "missing layers": (
        200,
        {},
        json.dumps({"schemaVersion": 2, "mediaType": DOCKER}).encode(),
        "the manifest has no list of layers",
    ),
    "layers not a list": (200, {}, _manifest({"size": 1}), "the manifest has no list of layers"),
    "no layers": (200, {}, _manifest([]), "the manifest has no list of layers"),
    "too many layers": (
        200,
        {},
        _manifest([{"size": 1}] * (MAX_LAYERS + 1)),
        f"the manifest lists {MAX_LAYERS + 1} layers",
    ),
    "an int of 5000 digits": (
        200,
        {},
        b'{"mediaType": "' + DOCKER.encode() + b'", "layers": [{"size": ' + b"9" * 5000 + b"}]}",
        "is not JSON",
    ),
    "not JSON": (200, {}, b"<html>hello</html>", "is not JSON"),
    "a list": (200, {}, b"[1, 2]", "the manifest is a JSON list, not an object"),
    "deep": (200, {}, b"[" * 100 + b"]" * 100, "nested more than"),
    "unknown type": (
        200,
        {"Content-Type": "text/plain"},
        _manifest([_layer(1)]),
        "unsupported manifest media type (text/plain)",
    ),
    "schema 1": (
        200,
        {"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"},
        b"{}",
        "unsupported manifest media type",
    ),
    "index without manifests": (
        200,
        {"Content-Type": OCI_INDEX},
        b'{"schemaVersion": 2}',
        "the index has no list of manifests",
    ),
    "index with a bad digest": (
        200,
        {"Content-Type": OCI_INDEX},
        json.dumps(
            {
                "manifests": [
                    {"digest": "../x", "platform": {"os": "linux", "architecture": "amd64"}}
                ]
            }
        ).encode(),
        "the index's linux/amd64 entry has no valid digest",
    ),
    "index of a missing image": (
        200,
        {"Content-Type": OCI_INDEX},
        json.dumps(
            {
                "manifests": [
                    {"digest": "sha256:" + "1" * 64, "platform": "linux/amd64"},
                    {
                        "digest": "sha256:" + "2" * 64,
                        "platform": {"os": "linux", "architecture": "amd64"},
                    },
                ]
            }
        ).encode(),
        "the registry lacks the linux/amd64 image the index names",
    ),
    "server error": (500, {}, b"password=hunter2", "answered HTTP 500 while reading"),
    "too big": (200, {}, b" " * 70_000, "exceeds 65536 bytes"),
    "redirect": (
        302,
        {"Location": "http://127.0.0.9/elsewhere"},
        b"",
        "redirects are not followed",
    ),
}


@pytest.fixture
def hostile() -> Iterator[Callable[[int, dict[str, str], bytes], RegistryImageSource]]:
    servers: list[LocalHTTPServer] = []

    def make(status: int, headers: dict[str, str], body: bytes) -> RegistryImageSource:
        def reply(request: RecordedRequest) -> Reply:
            if "/manifests/sha256:" in request.path:
                return Reply(404)  # an index's entries are not there
            return Reply(status, {"Content-Type": DOCKER, **headers}, body)

        server = LocalHTTPServer(reply)
        servers.append(server)
        client = RegistryClient(
            server.host_port,
            insecure_registries=[server.host_port],
            max_response_bytes=65536,
            request_timeout=2,
        )
        return RegistryImageSource(client, REPOSITORY)

    yield make
    for server in servers:
        server.close()


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_a_hostile_reply_is_an_unknown_size_with_the_reason(
    case: str, hostile: Callable[[int, dict[str, str], bytes], RegistryImageSource]
) -> None:
    status, headers, body, reason = HOSTILE[case]
    source = hostile(status, headers, body)
    sizes = await ImageSizes(source).sizes(["w_2024_20"])
    size = sizes["w_2024_20"]
    assert size.size is None
    assert reason in size.reason
    assert str(size).startswith("unknown: ")
    assert "hunter2" not in size.reason


async def test_a_registry_that_does_not_answer_in_time() -> None:
    def slow(request: RecordedRequest) -> Reply:
        time.sleep(1.5)
        return Reply(200, {"Content-Type": DOCKER}, _manifest([_layer(1)]))

    with LocalHTTPServer(slow) as server:
        client = RegistryClient(
            server.host_port, insecure_registries=[server.host_port], request_timeout=0.5
        )
        sizes = ImageSizes(RegistryImageSource(client, REPOSITORY))
        first = await sizes.sizes(["w_2024_20"], wait=0.05)
        assert first["w_2024_20"].reason == (
            "still being read from the registry; reload in a moment"
        )
        later = await sizes.sizes(["w_2024_20"], wait=5)
        assert later["w_2024_20"].size is None
        assert "timed out" in later["w_2024_20"].reason
        assert sizes.reads == 1


async def test_sizes_are_cached_known_ones_longer() -> None:
    replies = {"w_1": _manifest([_layer(5)]), "w_2": b"not json"}
    now = [0.0]

    def reply(request: RecordedRequest) -> Reply:
        return Reply(200, {"Content-Type": DOCKER}, replies[request.path.rsplit("/", 1)[1]])

    with LocalHTTPServer(reply) as server:
        client = RegistryClient(server.host_port, insecure_registries=[server.host_port])
        source = RegistryImageSource(client, REPOSITORY)
        sizes = ImageSizes(source, ttl=600, failure_ttl=30, clock=lambda: now[0])

        def requests() -> int:
            return len(server.requests)

        got = await sizes.sizes(["w_1", "w_2"])
        assert (got["w_1"].size, got["w_2"].size, requests()) == (5, None, 2)
        await sizes.sizes(["w_1", "w_2"])
        assert requests() == 2  # both cached
        now[0] = 31.0
        await sizes.sizes(["w_1", "w_2"])
        assert requests() == 3  # the unknown one is asked again
        now[0] = 700.0
        await sizes.sizes(["w_1"])
        assert requests() == 4
        await sizes.close()


def test_platforms_and_formatting() -> None:
    assert check_platform("linux/arm64/v8") == "linux/arm64/v8"
    for bad in ("amd64", "linux/", "Linux/AMD64", "linux/amd64/v8/x", "linux/amd64\n"):
        with pytest.raises(ValueError, match="is not a platform"):
            check_platform(bad)
    assert [format_bytes(n) for n in (0, 1023, 1024, 5 * 1024**3 // 2, 3 * 1024**4)] == [
        "0 B",
        "1023 B",
        "1.00 KiB",
        "2.50 GiB",
        "3.00 TiB",
    ]
    assert format_bytes(123 * 1024**2) == "123.0 MiB"
