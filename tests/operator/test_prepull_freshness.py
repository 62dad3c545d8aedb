"""The hub trusts the operator's published prepull state only while the operator keeps
publishing it: an unchanged state is republished once an interval, and one older than
three intervals is dropped (the menu is shown without presence, as before the first
listing), so images a node may have lost are not offered as quick starts."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lsst_spawner.images.model import ImageMenu
from lsst_spawner.images.prepull import NodeImages, PrepullState
from lsst_spawner.kube.prepull import Prepuller, PrepullSettings
from lsst_spawner.kube.retries import RetryPolicy
from lsst_spawner.operator.prepull import (
    STALE_INTERVALS,
    PublishedPrepuller,
    PublishingPrepuller,
    published_too_old,
    state_to_publish,
)

POLICY = RetryPolicy(budget=5, request_timeout=5)
SETTINGS = PrepullSettings(namespace="labs", interval=60.0)


def _state(observed: datetime) -> PrepullState:
    node = NodeImages("node-1", frozenset({"registry.example/lab:w_2026_45"}), 1)
    return PrepullState(nodes=(node,), observed_at=observed, version="v1")


def test_a_state_is_too_old_after_three_intervals_and_never_without_a_time() -> None:
    now = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    limit = timedelta(seconds=STALE_INTERVALS * SETTINGS.interval)
    assert not published_too_old(_state(now - limit + timedelta(seconds=1)), 60.0, now)
    assert published_too_old(_state(now - limit - timedelta(seconds=1)), 60.0, now)
    assert not published_too_old(PrepullState(), 60.0, now)


async def test_the_hub_drops_a_stale_published_state() -> None:
    published: dict[str, Any] = {}

    async def read() -> Any:
        return published.get("body")

    hub = PublishedPrepuller(SETTINGS, read, POLICY, log=logging.getLogger("test"))
    fresh = _state(datetime.now(tz=UTC))
    published["body"] = state_to_publish(fresh, ImageMenu(image_base="registry.example/lab"))
    await hub.run_round()
    assert hub.state is not None
    assert hub.state.node_names == ("node-1",)
    old = datetime.now(tz=UTC) - timedelta(seconds=(STALE_INTERVALS + 1) * SETTINGS.interval)
    published["body"] = state_to_publish(_state(old), ImageMenu(image_base="registry.example/lab"))
    await hub.run_round()
    assert hub.state is None


async def test_the_operator_republishes_an_unchanged_state_once_an_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bodies: list[dict[str, Any]] = []

    async def publish(body: dict[str, Any]) -> None:
        bodies.append(body)

    async def menu() -> ImageMenu:
        return ImageMenu(image_base="registry.example/lab")

    operator = PublishingPrepuller(None, SETTINGS, menu, POLICY, publish)

    async def listed() -> list[Any]:
        operator.state = _state(datetime.now(tz=UTC))
        return []

    # The base class's round (listing nodes, pulling) is not the point here.
    monkeypatch.setattr(Prepuller, "run_round", lambda self: listed())
    await operator.run_round()
    await operator.run_round()
    assert len(bodies) == 1  # unchanged, within the interval
    operator.published_at -= SETTINGS.interval
    await operator.run_round()
    assert len(bodies) == 2
    assert bodies[0]["version"] == bodies[1]["version"]
