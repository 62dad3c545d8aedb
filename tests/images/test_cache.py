"""The background menu cache: cold start, refresh, failures, sharing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from lsst_spawner.images.cache import (
    CacheSettings,
    MenuCache,
    redact,
    source_cache_key,
)
from lsst_spawner.images.menu import MenuPolicy
from lsst_spawner.images.sources import ImageSource, ImageSourceError
from lsst_spawner.images.static import StaticImageSource

BASE = "registry.example.org/sciplat-lab"
DIGEST = "sha256:" + "ab" * 32
POLICY = MenuPolicy()
# Long intervals: background refreshes after the first happen only when a test asks.
SETTINGS = CacheSettings(refresh_interval=3600, cold_start_timeout=0.05, refresh_timeout=60)


class ControlledSource:
    """An image source whose answers, failures and delays the test controls."""

    def __init__(self, tags: list[str] | None = None) -> None:
        self.tags = tags if tags is not None else ["recommended", "w_2024_10", "w_2024_09"]
        self.digests = {"recommended": DIGEST, "w_2024_10": DIGEST}
        self.error: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.list_calls = 0
        self.digest_requests: list[list[str]] = []

    @property
    def image_base(self) -> str:
        return BASE

    async def list_tags(self) -> list[str]:
        self.list_calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return list(self.tags)

    async def resolve_digests(self, tags: Iterable[str]) -> dict[str, str]:
        wanted = list(tags)
        self.digest_requests.append(wanted)
        return {t: self.digests[t] for t in wanted if t in self.digests}


def test_controlled_source_meets_the_protocol() -> None:
    assert isinstance(ControlledSource(), ImageSource)


async def test_first_request_waits_for_a_quick_source() -> None:
    source = ControlledSource()
    cache = MenuCache(source, POLICY, SETTINGS)
    menu = await cache.get_menu()
    assert menu.complete
    # w_2024_10 shares the digest of recommended, so it is shown as recommended.
    assert [image.tag for image in menu.radio] == ["recommended", "w_2024_09"]
    assert [image.tag for image in menu.aliased] == ["w_2024_10"]
    assert menu.recommended is not None
    assert menu.recommended.display_name == "Recommended (Weekly 2024_10)"
    assert cache.menu is menu
    await cache.close()


async def test_cold_start_with_a_slow_source_returns_a_placeholder(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = ControlledSource()
    source.gate = asyncio.Event()  # never answers until released
    cache = MenuCache(source, POLICY, SETTINGS)
    with caplog.at_level(logging.WARNING):
        menu = await cache.get_menu()
    assert not menu.complete
    assert menu.recommended is not None
    assert menu.recommended.tag == "recommended"
    assert [image.tag for image in menu.radio] == ["recommended"]
    assert "not ready" in caplog.text
    # After the cold-start deadline, requests do not wait again.
    again = await cache.get_menu()
    assert again is menu
    assert source.list_calls == 1
    # When the source answers, the next request gets the full menu.
    source.gate.set()
    for _ in range(100):
        if cache.menu is not None:
            break
        await asyncio.sleep(0.01)
    full = await cache.get_menu()
    assert full.complete
    assert full.find("w_2024_09") is not None
    await cache.close()


async def test_concurrent_cold_requests_share_one_refresh() -> None:
    source = ControlledSource()
    source.gate = asyncio.Event()
    cache = MenuCache(source, POLICY, CacheSettings(cold_start_timeout=30))

    async def release_soon() -> None:
        await asyncio.sleep(0)
        assert source.gate is not None
        source.gate.set()

    menus = await asyncio.gather(*(cache.get_menu() for _ in range(20)), release_soon())
    assert source.list_calls == 1
    assert all(menu.complete for menu in menus[:20])
    await cache.close()


async def test_source_that_raises_at_cold_start_gives_the_placeholder_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = ControlledSource()
    source.error = ImageSourceError("registry said 503")
    # A long cold-start timeout: the failure, not the timeout, ends the wait.
    cache = MenuCache(source, POLICY, CacheSettings(cold_start_timeout=3600))
    with caplog.at_level(logging.WARNING):
        menu = await asyncio.wait_for(cache.get_menu(), timeout=60)
    assert not menu.complete
    assert menu.recommended is not None
    assert "registry said 503" in caplog.text
    assert "no menu yet" in caplog.text
    await cache.close()


async def test_failed_refresh_keeps_the_last_menu_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = ControlledSource()
    cache = MenuCache(source, POLICY, SETTINGS)
    good = await cache.refresh()
    source.error = ImageSourceError("connection refused")
    with pytest.raises(ImageSourceError):
        await cache.refresh()
    assert cache.menu is good
    assert await cache.get_menu() is good
    await cache.close()

    # The background loop logs the failure instead of raising.
    caplog.clear()
    looping = MenuCache(source, POLICY, CacheSettings(refresh_interval=0.01))
    looping._menu = good
    with caplog.at_level(logging.WARNING):
        assert await looping.get_menu() is good
        for _ in range(200):
            if looping.failure_count:
                break
            await asyncio.sleep(0.01)
    assert looping.failure_count >= 1
    assert looping.menu is good
    assert "keeping the last menu" in caplog.text
    assert "ImageSourceError: connection refused" in caplog.text
    await looping.close()


async def test_background_refresh_picks_up_new_tags() -> None:
    source = ControlledSource()
    cache = MenuCache(source, POLICY, CacheSettings(refresh_interval=0.01))
    first = await cache.get_menu()
    assert first.find("w_2024_11") is None
    source.tags.append("w_2024_11")
    for _ in range(200):
        menu = await cache.get_menu()
        if menu.find("w_2024_11") is not None:
            break
        await asyncio.sleep(0.01)
    assert menu.find("w_2024_11") is not None
    await cache.close()


async def test_failure_logs_carry_no_credentials(caplog: pytest.LogCaptureFixture) -> None:
    source = ControlledSource()
    source.error = RuntimeError(
        "GET https://robot:hunter2@registry.example.org/v2/ failed; "
        "Authorization: Bearer eyJhbGciOi.secretpart.sig; password=swordfish"
    )
    cache = MenuCache(source, POLICY, CacheSettings(cold_start_timeout=3600))
    with caplog.at_level(logging.DEBUG):
        await cache.get_menu()
    assert "RuntimeError" in caplog.text
    for secret in ("hunter2", "robot", "secretpart", "swordfish"):
        assert secret not in caplog.text
    await cache.close()


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("https://user:pa55@host/v2", "pa55"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("bearer abc.def.ghi", "abc.def.ghi"),
        ('{"token": "t0ken-value"}', "t0ken-value"),
        ("secret=s3cr3t&x=1", "s3cr3t"),
    ],
)
def test_redact(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_redact_truncates() -> None:
    assert len(redact("x" * 10_000)) <= 503


@pytest.mark.parametrize(
    ("tags", "digests", "problem"),
    [
        ("not a list", {}, "list_tags() returned str"),
        (["recommended"], ["not", "a", "dict"], "resolve_digests() returned list"),
    ],
)
async def test_misbehaving_source_fails_the_refresh(
    tags: object, digests: object, problem: str
) -> None:
    class Odd(ControlledSource):
        async def list_tags(self) -> list[str]:
            return tags  # type: ignore[return-value]

        async def resolve_digests(self, tags: Iterable[str]) -> dict[str, str]:
            return digests  # type: ignore[return-value]

    cache = MenuCache(Odd(), POLICY, SETTINGS)
    with pytest.raises(TypeError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        await cache.refresh()
    assert cache.menu is None


async def test_refresh_timeout_bounds_a_hanging_source() -> None:
    source = ControlledSource()
    source.gate = asyncio.Event()
    cache = MenuCache(source, POLICY, CacheSettings(refresh_timeout=0.05))
    with pytest.raises(TimeoutError):
        await cache.refresh()
    assert cache.menu is None


async def test_digests_are_asked_only_for_the_few_tags_that_need_them() -> None:
    tags = ["recommended", *(f"w_{2000 + n // 52}_{n % 52 + 1:02d}" for n in range(10_000))]
    source = ControlledSource(tags)
    cache = MenuCache(source, POLICY, SETTINGS)
    menu = await cache.refresh()
    assert len(menu.images) == 10_001
    assert len(source.digest_requests) == 1
    assert source.digest_requests[0] == ["recommended", "w_2192_16", "w_2192_15"]


async def test_invalid_tags_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    hostile = '"><script>alert(1)</script>'
    source = ControlledSource(["recommended", hostile])
    cache = MenuCache(source, POLICY, SETTINGS)
    with caplog.at_level(logging.WARNING):
        menu = await cache.refresh()
    assert menu.invalid_tag_count == 1
    assert "1 invalid tag" in caplog.text
    assert menu.find(hostile) is None


async def test_clock_sets_refreshed_at() -> None:
    when = datetime(2030, 1, 2, tzinfo=UTC)
    cache = MenuCache(ControlledSource(), POLICY, SETTINGS, clock=lambda: when)
    assert (await cache.refresh()).refreshed_at == when


# --- sharing ---------------------------------------------------------------------


def test_source_cache_key() -> None:
    assert source_cache_key(StaticImageSource(BASE, ["a"])) == source_cache_key(
        StaticImageSource(BASE, ["a"])
    )
    assert source_cache_key(StaticImageSource(BASE, ["a"])) != source_cache_key(
        StaticImageSource(BASE, ["b"])
    )
    assert source_cache_key(ControlledSource()) == ("ControlledSource", BASE)
