"""The test kit's bounded poll: the first accepted value, or a failure naming what and the last."""

from __future__ import annotations

import asyncio

import pytest

from lsst_spawner.testing.waiting import WaitTimeout, wait_for, wait_for_async


def counter(values: list[object]) -> tuple[list[int], object]:
    calls: list[int] = []

    def check() -> object:
        calls.append(1)
        return values[min(len(calls), len(values)) - 1]

    return calls, check


def test_the_first_truthy_value_is_returned() -> None:
    calls, check = counter([None, 0, [], {"phase": "Running"}, "later"])
    assert wait_for(check, "the pod", timeout=30, interval=0.001) == {"phase": "Running"}
    assert len(calls) == 4


def test_until_decides_what_is_accepted() -> None:
    calls, check = counter(["Pending", "Pending", "Running", "Succeeded"])
    got = wait_for(check, "Running", timeout=30, interval=0.001, until=lambda p: p == "Running")
    assert got == "Running"
    assert len(calls) == 3


def test_a_timeout_names_what_and_the_last_value_seen_and_the_detail() -> None:
    calls, check = counter(["Pending", "ContainerCreating"])
    with pytest.raises(WaitTimeout) as raised:
        wait_for(
            check,
            "pod nb-rra running",
            timeout=0.05,
            interval=0.01,
            until=lambda phase: phase == "Running",
            detail=lambda: "LOG",
        )
    assert str(raised.value) == (
        "timed out after 0.05s waiting for pod nb-rra running;"
        " the last value seen: 'ContainerCreating'\nLOG"
    )
    assert isinstance(raised.value, AssertionError)
    assert len(calls) >= 2  # polled, and once more at the deadline


def test_a_timeout_of_zero_still_checks_once() -> None:
    calls, check = counter([True])
    assert wait_for(check, "it", timeout=0) is True
    calls, check = counter([False])
    with pytest.raises(WaitTimeout, match=r"after 0s waiting for it; the last value seen: False$"):
        wait_for(check, "it", timeout=0)
    assert len(calls) == 1


def test_a_long_last_value_is_shortened_keeping_both_ends() -> None:
    html = "<html>" + "x" * 10_000 + "<p>the end</p>"
    with pytest.raises(WaitTimeout) as raised:
        wait_for(lambda: html, "the form", timeout=0, until=lambda h: "w_2026_45" in h)
    message = str(raised.value)
    assert len(message) < 3200
    assert "'<html>xxx" in message
    assert "<p>the end</p>'" in message
    assert " … " in message


async def test_the_async_flavour_awaits_coroutine_checks() -> None:
    seen: list[int] = []

    async def check() -> int:
        await asyncio.sleep(0)
        seen.append(len(seen))
        return len(seen)

    assert (
        await wait_for_async(check, "three", timeout=30, interval=0.001, until=lambda n: n >= 3)
        == 3
    )
    calls, plain = counter([0, "", "ok"])
    assert await wait_for_async(plain, "ok", timeout=30, interval=0.001) == "ok"
    assert len(calls) == 3


async def test_the_async_flavour_times_out_with_the_last_value() -> None:
    async def check() -> dict[str, str]:
        return {"phase": "Pending"}

    with pytest.raises(WaitTimeout) as raised:
        await wait_for_async(
            check, "the lab", timeout=0.05, interval=0.01, until=lambda p: p["phase"] == "Running"
        )
    assert str(raised.value) == (
        "timed out after 0.05s waiting for the lab; the last value seen: {'phase': 'Pending'}"
    )


async def test_the_async_flavour_lets_the_loop_run_while_it_waits() -> None:
    done = asyncio.Event()
    asyncio.get_running_loop().call_later(0.02, done.set)
    assert await wait_for_async(done.is_set, "the timer", timeout=30, interval=0.005) is True
