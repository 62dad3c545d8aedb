"""An image the node cannot pull fails the spawn within lab_image_pull_grace, not start_timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from kubespawner import clients
from tornado.web import HTTPError

from lsst_spawner.kube.pull import pull_failure, watch_image_pull
from lsst_spawner.offline import OfflineHub, OfflineServer, OfflineUser
from lsst_spawner.spawner import LSSTSpawner
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.oauth.identity import identity_for

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


async def test_a_manifest_deleted_after_the_menu_was_built_fails_fast_naming_the_image(
    kube_api: KubeHandle, kubelet: Any, local_registry: Any, tmp_path: Any
) -> None:
    """The menu's cached digest no longer resolves in the real registry: the spawn stops
    within lab_image_pull_grace, says the image is gone, and leaves nothing behind."""
    import uuid

    from lsst_spawner.testing.kube.images import publish_image, registry_images

    from .test_lifecycle import spawner_config

    repository = f"gone/lab-{uuid.uuid4().hex[:8]}"
    url, host = local_registry.registry.url, local_registry.host_port
    digests = {}
    for tag in ("recommended", "w_2026_46", "w_2026_45"):
        reference = await publish_image(url, repository, tag, env={"TAG": tag})
        digests[tag] = reference.rsplit("@", 1)[1]
    kubelet.mode = "stub"
    kubelet.images = registry_images()  # the node pulls from the registry the reference names
    clients.load_config.cache_clear()
    config = spawner_config(kube_api.namespace)
    config.LSSTSpawner.image_source = "registry"
    config.LSSTSpawner.registry_host = host
    config.LSSTSpawner.registry_repository = repository
    config.LSSTSpawner.registry_insecure_hosts = [host]
    config.LSSTSpawner.image_alias_tags = []
    user = OfflineUser("rra", {"identity": identity_for("rra").to_dict()})
    spawner = LSSTSpawner(config=config, user=user, hub=OfflineHub())
    spawner.server = OfflineServer(user)
    spawner.api_token = "image-pull-test-token"
    spawner.user_options = {"image": "w_2026_45"}
    spawner.lab_options_fresh = True
    menu = await spawner.get_menu()
    image = menu.find("w_2026_45")
    assert image is not None
    assert image.digest == digests["w_2026_45"]
    assert await local_registry.client().delete_manifest(repository, digests["w_2026_45"])

    spawner.start_timeout = 300
    spawner.lab_image_pull_grace = 1
    with pytest.raises(HTTPError) as refused:
        await asyncio.wait_for(spawner.start(), 120)
    assert refused.value.status_code == 503
    message = refused.value.jupyterhub_message  # type: ignore[attr-defined]
    reference = f"{host}/{repository}:w_2026_45@{digests['w_2026_45']}"
    assert message.startswith(f"Your lab could not start: the image {reference} could not be")
    assert "it is no longer in the registry" in message
    assert "[ManifestUnknown]" in message
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}
    clients.load_config.cache_clear()


def _started(image: str = "reg/lab:x@sha256:" + "a" * 64) -> dict[str, Any]:
    return {
        "status": {"containerStatuses": [{"name": "n", "image": image, "state": {"running": {}}}]}
    }


async def test_a_gone_manifest_fails_after_the_grace_unless_the_node_had_the_image() -> None:
    now = [0.0]

    async def gone() -> bool:
        return False

    def tick(pod: Any) -> Any:
        def read() -> Any:
            now[0] += 0.5
            return pod

        return read

    pending = {"status": {"containerStatuses": [{"name": "n", "state": {"waiting": {}}}]}}
    failure = await watch_image_pull(
        tick(pending), grace=2, interval=0, clock=lambda: now[0], manifest_exists=gone, image="i"
    )
    assert (failure.image, failure.reason) == ("i", "ManifestUnknown")
    assert now[0] >= 2
    # A node that cached the image runs it: no failure.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            watch_image_pull(
                tick(_started()), grace=0, interval=0.01, manifest_exists=gone, image="i"
            ),
            0.3,
        )

    async def broken() -> bool:
        raise OSError("registry unreachable")

    # A registry that does not answer proves nothing: the kubelet decides.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            watch_image_pull(
                tick(pending), grace=0, interval=0.01, manifest_exists=broken, image="i"
            ),
            0.3,
        )
