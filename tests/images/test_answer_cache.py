"""AnswerCache: one fetch per key in flight, answers kept a TTL, failures kept by the rule given."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from lsst_spawner.images.answer_cache import AnswerCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Fetcher:
    """Answers ``answer + key``, or raises ``error``; holds every fetch until ``release``."""

    answer: str = "ok"
    error: Exception | None = None
    keys: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    finished: int = 0
    cancelled: int = 0

    def __post_init__(self) -> None:
        self.release.set()

    async def __call__(self, key: str) -> str:
        self.keys.append(key)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        if self.error is not None:
            raise self.error
        return f"{self.answer}:{key}"


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_concurrent_callers_share_one_fetch_per_key() -> None:
    fetch = Fetcher()
    cache: AnswerCache[str, str] = AnswerCache(fetch, 60)
    fetch.release.clear()
    callers = [asyncio.ensure_future(cache.get("a")) for _ in range(30)]
    other = asyncio.ensure_future(cache.get("b"))
    await _settle()
    assert fetch.keys == ["a", "b"]  # all 30 are waiting on the one fetch of "a"
    fetch.release.set()
    assert await asyncio.gather(*callers) == ["ok:a"] * 30
    assert await other == "ok:b"
    assert await cache.get("a") == "ok:a"
    assert fetch.keys == ["a", "b"]
    assert cache.fetches == 2


async def test_an_answer_is_kept_ttl_seconds_from_when_it_came() -> None:
    clock, fetch = Clock(), Fetcher()
    cache: AnswerCache[str, str] = AnswerCache(fetch, 30, clock=clock)
    fetch.release.clear()
    first = asyncio.ensure_future(cache.get("a"))
    await _settle()
    clock.now = 5.0  # the answer arrives 5 s after it was asked for
    fetch.release.set()
    assert await first == "ok:a"
    fetch.answer = "new"
    clock.now = 34.9
    assert await cache.get("a") == "ok:a"
    assert len(fetch.keys) == 1
    clock.now = 35.0
    assert await cache.get("a") == "new:a"
    assert await cache.get("a") == "new:a"
    assert len(fetch.keys) == 2


async def test_ttl_zero_fetches_for_every_caller_not_in_flight() -> None:
    fetch = Fetcher()
    cache: AnswerCache[str, str] = AnswerCache(fetch, 0)
    for _ in range(3):
        assert await cache.get("a") == "ok:a"
    assert len(fetch.keys) == 3


async def test_a_raised_failure_is_not_kept_by_default() -> None:
    fetch = Fetcher(error=OSError("registry down"))
    cache: AnswerCache[str, str] = AnswerCache(fetch, 60)
    fetch.release.clear()
    callers = [asyncio.ensure_future(cache.get("a")) for _ in range(3)]
    await _settle()
    fetch.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert [str(r) for r in results] == ["registry down"] * 3  # every waiter hears it
    assert len(fetch.keys) == 1
    fetch.error = None
    assert await cache.get("a") == "ok:a"  # the next caller asks again
    assert len(fetch.keys) == 2


async def test_a_failed_answer_is_not_kept_by_default() -> None:
    fetch = Fetcher(answer="unknown")
    cache: AnswerCache[str, str] = AnswerCache(
        fetch, 60, failed=lambda answer: answer.startswith("unknown")
    )
    assert await cache.get("a") == "unknown:a"  # given to its callers, but not kept
    fetch.answer = "ok"
    assert await cache.get("a") == "ok:a"
    assert await cache.get("a") == "ok:a"
    assert len(fetch.keys) == 2


async def test_a_failed_answer_is_kept_failure_ttl_and_a_good_one_ttl() -> None:
    clock, fetch = Clock(), Fetcher(answer="unknown")
    cache: AnswerCache[str, str] = AnswerCache(
        fetch, 60, failure_ttl=5, failed=lambda answer: answer.startswith("unknown"), clock=clock
    )
    assert await cache.get("a") == "unknown:a"
    fetch.answer = "ok"
    clock.now = 4.9
    assert await cache.get("a") == "unknown:a"
    assert len(fetch.keys) == 1
    clock.now = 5.0
    assert await cache.get("a") == "ok:a"
    clock.now = 64.9
    assert await cache.get("a") == "ok:a"
    assert len(fetch.keys) == 2
    clock.now = 65.0
    assert await cache.get("a") == "ok:a"
    assert len(fetch.keys) == 3


async def test_a_raised_failure_is_kept_failure_ttl_when_asked() -> None:
    clock, fetch = Clock(), Fetcher(error=OSError("registry down"))
    cache: AnswerCache[str, str] = AnswerCache(fetch, 60, failure_ttl=5, clock=clock)
    with pytest.raises(OSError, match="registry down"):
        await cache.get("a")
    fetch.error = None
    clock.now = 4.9
    with pytest.raises(OSError, match="registry down"):
        await cache.get("a")
    assert len(fetch.keys) == 1
    clock.now = 5.0
    assert await cache.get("a") == "ok:a"
    assert len(fetch.keys) == 2


async def test_a_waiter_cancelled_leaves_the_fetch_to_the_others() -> None:
    fetch = Fetcher()
    cache: AnswerCache[str, str] = AnswerCache(fetch, 60)
    fetch.release.clear()
    first = asyncio.ensure_future(cache.get("a"))
    second = asyncio.ensure_future(cache.get("a"))
    await _settle()
    first.cancel()
    await _settle()
    assert first.cancelled()
    fetch.release.set()
    assert await second == "ok:a"
    assert (fetch.cancelled, fetch.finished) == (0, 1)
    assert await cache.get("a") == "ok:a"  # kept, not poisoned by the cancelled waiter
    assert len(fetch.keys) == 1


async def test_every_waiter_giving_up_still_keeps_the_answer_for_later() -> None:
    fetch = Fetcher()
    cache: AnswerCache[str, str] = AnswerCache(fetch, 60)
    fetch.release.clear()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(cache.get("a"), 0.01)
    asked = cache.ask("a")
    done, _ = await asyncio.wait({asked}, timeout=0.01)
    assert not done
    asked.cancel()
    fetch.release.set()
    await _settle()
    assert (fetch.cancelled, fetch.finished) == (0, 1)
    assert await cache.get("a") == "ok:a"
    assert len(fetch.keys) == 1


async def test_a_fetch_stopped_by_close_is_no_answer() -> None:
    fetch = Fetcher()
    cache: AnswerCache[str, str] = AnswerCache(fetch, 60)
    fetch.release.clear()
    waiter = asyncio.ensure_future(cache.get("a"))
    await _settle()
    await cache.close()
    assert fetch.cancelled == 1
    with pytest.raises(asyncio.CancelledError):
        await waiter
    fetch.release.set()
    assert await cache.get("a") == "ok:a"  # asked again
    assert len(fetch.keys) == 2


async def test_past_the_limit_the_older_half_of_the_answers_goes() -> None:
    fetch = Fetcher()
    cache: AnswerCache[str, str] = AnswerCache(fetch, 60, limit=4)
    for key in "abcd":
        await cache.get(key)
    fetch.release.clear()
    in_flight = asyncio.ensure_future(cache.get("e"))  # full: a and b go
    await _settle()
    assert len(cache) == 3
    fetch.release.set()
    await in_flight
    for key in "cde":
        await cache.get(key)
    assert fetch.keys == list("abcde")  # c, d and e were kept
    await cache.get("a")
    assert fetch.keys == list("abcdea")


async def test_a_fetch_in_flight_is_never_dropped_for_the_limit() -> None:
    fetch = Fetcher()
    cache: AnswerCache[str, str] = AnswerCache(fetch, 60, limit=2)
    fetch.release.clear()
    waiting = [asyncio.ensure_future(cache.get(key)) for key in "abc"]
    await _settle()
    assert len(cache) == 3
    again = asyncio.ensure_future(cache.get("a"))
    await _settle()
    fetch.release.set()
    assert await asyncio.gather(*waiting, again) == ["ok:a", "ok:b", "ok:c", "ok:a"]
    assert fetch.keys == list("abc")


async def test_an_answer_fetched_again_counts_as_the_newest_for_the_limit() -> None:
    clock, fetch = Clock(), Fetcher()
    cache: AnswerCache[str, str] = AnswerCache(fetch, 10, limit=5, clock=clock)
    for second, key in enumerate("abcde"):
        clock.now = second
        await cache.get(key)
    clock.now = 10.0
    await cache.get("a")  # expired: fetched again, now the newest
    await cache.get("f")  # full: the older half, b and c, go (not the fresh a)
    for key in "adef":
        await cache.get(key)
    assert fetch.keys == list("abcdeaf")
    await cache.get("c")
    assert fetch.keys == list("abcdeafc")


async def test_a_fetch_that_ends_cancelled_is_no_answer() -> None:
    """A fetch cancelled from inside (its own request task was cancelled) is not kept."""
    calls = 0

    async def fetch(key: str) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise asyncio.CancelledError
        return f"ok:{key}"

    cache: AnswerCache[str, str] = AnswerCache(fetch, 60, failure_ttl=60)
    with pytest.raises(asyncio.CancelledError):
        await cache.get("a")
    assert await cache.get("a") == "ok:a"
    assert calls == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"ttl": -1}, "ttl must be a finite number >= 0, not -1"),
        ({"ttl": float("inf")}, "ttl must be a finite number >= 0, not inf"),
        ({"failure_ttl": float("nan")}, "failure_ttl must be a finite number >= 0, not nan"),
        ({"failure_ttl": -0.5}, "failure_ttl must be a finite number >= 0, not -0.5"),
        ({"limit": 0}, "limit must be at least 1, not 0"),
    ],
)
def test_bad_settings_are_refused_by_name(arguments: dict[str, float], message: str) -> None:
    settings = {"ttl": 60.0, **arguments}
    ttl = settings.pop("ttl")
    with pytest.raises(ValueError, match=message):
        AnswerCache(Fetcher(), ttl, **settings)  # type: ignore[arg-type]
