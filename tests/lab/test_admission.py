"""lsst_spawner.kube.admission: a bounded number of requests in flight, oldest work first."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from lsst_spawner.kube.admission import PRIORITY, Admission


async def _hold(admission: Admission, seconds: float, log: list[str], name: str) -> None:
    await admission.acquire()
    log.append(name)
    try:
        await asyncio.sleep(seconds)
    finally:
        admission.release()


async def test_at_most_the_limit_hold_slots_at_once() -> None:
    admission = Admission(2)
    held = peak = 0

    async def one() -> None:
        nonlocal held, peak
        await admission.acquire()
        held += 1
        peak = max(peak, held)
        await asyncio.sleep(0.01)
        held -= 1
        admission.release()

    await asyncio.gather(*(one() for _ in range(7)))
    assert peak == 2
    assert admission.waiting == 0


async def test_waiters_are_admitted_lowest_priority_first_then_in_arrival_order() -> None:
    admission = Admission(1)
    await admission.acquire()  # full: everyone below queues
    order: list[str] = []
    tasks = []
    for name, priority in [("late", 5.0), ("first", 1.0), ("middle", 3.0), ("unset", None)]:
        context = contextvars.copy_context()
        if priority is not None:
            context.run(PRIORITY.set, priority)
        tasks.append(
            asyncio.get_running_loop().create_task(
                _hold(admission, 0, order, name), context=context
            )
        )
    context = contextvars.copy_context()
    context.run(PRIORITY.set, 1.0)
    tasks.append(
        asyncio.get_running_loop().create_task(
            _hold(admission, 0, order, "first-too"), context=context
        )
    )
    await asyncio.sleep(0)
    assert admission.waiting == 5
    admission.release()
    await asyncio.gather(*tasks)
    assert order == ["first", "first-too", "middle", "late", "unset"]


async def test_a_cancelled_waiter_takes_no_slot_and_a_slot_handed_over_is_passed_on() -> None:
    admission = Admission(1)
    await admission.acquire()
    queued = asyncio.ensure_future(admission.acquire())
    after = asyncio.ensure_future(admission.acquire())
    await asyncio.sleep(0)
    queued.cancel()  # cancelled while queued: skipped at the next release
    with pytest.raises(asyncio.CancelledError):
        await queued
    admission.release()
    await asyncio.wait_for(after, 1)  # the slot went past the cancelled waiter

    handed = asyncio.ensure_future(admission.acquire())
    last = asyncio.ensure_future(admission.acquire())
    await asyncio.sleep(0)
    admission.release()  # handed to `handed`, which is cancelled before it resumes
    handed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handed
    await asyncio.wait_for(last, 1)  # ... so it was passed on
    admission.release()
    await asyncio.wait_for(admission.acquire(), 1)  # and none was lost


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="admission limit must be 1 or more, not 0"):
        Admission(0)
