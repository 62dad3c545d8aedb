"""An image the node cannot pull fails the spawn within lab_image_pull_grace, not start_timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from kubespawner import clients
from tornado.web import HTTPError

from lsst_spawner.kube.pull import pull_failure, watch_image_pull
from lsst_spawner.testing.kube.fixtures import KubeHandle

from .test_lifecycle import IMAGE_BASE, lab_objects, make_spawner


@pytest.fixture
def node(kubelet: Any) -> Any:
    """The stub kubelet; its registry has every menu image but w_2026_45."""
    kubelet.mode = "stub"
    kubelet.images = lambda image: ":w_2026_45" not in image
    clients.load_config.cache_clear()  # KubeSpawner's client, for this test's emulator
    yield kubelet
    clients.load_config.cache_clear()


async def test_an_unpullable_menu_image_fails_fast_with_the_reason_and_leaves_nothing(
    kube_api: KubeHandle, node: Any
) -> None:
    """w_2026_45 is in the menu but not in the registry the node pulls from."""
    spawner = make_spawner(kube_api, "rra", image="w_2026_45")
    spawner.start_timeout = 300  # what KubeSpawner would wait out
    spawner.lab_image_pull_grace = 1
    began = time.monotonic()
    with pytest.raises(HTTPError) as refused:
        await asyncio.wait_for(spawner.start(), 120)
    elapsed = time.monotonic() - began
    assert elapsed < 120  # not start_timeout; the benchmarks, not this test, time it
    assert refused.value.status_code == 503
    message = refused.value.jupyterhub_message  # type: ignore[attr-defined]
    assert message.startswith(f"Your lab could not start: the image {IMAGE_BASE}:w_2026_45")
    assert "[ErrImagePull]" in message or "[ImagePullBackOff]" in message
    assert "HTTP 503" not in message
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}


async def test_a_pullable_image_is_not_stopped(kube_api: KubeHandle, node: Any) -> None:
    spawner = make_spawner(kube_api, "rra", image="w_2026_46")
    spawner.lab_image_pull_grace = 0
    await asyncio.wait_for(spawner.start(), 60)
    assert (await lab_objects(kube_api))["pods"] == ["nb-rra"]
    await spawner.stop(now=True)


def _pod(reason: str | None, group: str = "containerStatuses") -> dict[str, Any]:
    state = {"waiting": {"reason": reason, "message": "not found"}} if reason else {"running": {}}
    return {"status": {group: [{"name": "notebook", "image": "reg/lab:x", "state": state}]}}


@pytest.mark.parametrize(
    "reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"]
)
def test_each_pull_reason_is_a_failure(reason: str) -> None:
    failure = pull_failure(_pod(reason))
    assert failure is not None
    assert (failure.image, failure.reason, failure.message) == ("reg/lab:x", reason, "not found")
    assert pull_failure(_pod(reason, "initContainerStatuses")) is not None


@pytest.mark.parametrize(
    "reason", [None, "ContainerCreating", "PodInitializing", "CrashLoopBackOff"]
)
def test_other_states_are_not(reason: str | None) -> None:
    assert pull_failure(_pod(reason)) is None
    assert pull_failure(None) is None
    assert pull_failure({}) is None


async def test_the_grace_period_restarts_when_the_pull_recovers() -> None:
    now = [0.0]
    states = iter([_pod("ErrImagePull"), _pod(None), _pod("ErrImagePull"), _pod("ErrImagePull")])
    seen: list[float] = []

    def read() -> Any:
        seen.append(now[0])
        now[0] += 1
        return next(states)

    failure = await watch_image_pull(read, grace=1, interval=0, clock=lambda: now[0])
    assert failure.reason == "ErrImagePull"
    assert len(seen) == 4  # the recovery at the second read reset the clock
