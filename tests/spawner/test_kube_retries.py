"""Regressions: KubeSpawner's own requests retry transient failures; a leftover pod is replaced.

KubeSpawner 7 retries only timeouts when it creates or deletes the pod, keeps a
reflector whose first list failed in its class-wide cache, and answers a
leftover pod (409) with ``self.stop()`` -- which in LSSTSpawner also deleted the
Secret the spawn had just created.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubespawner import KubeSpawner, clients

from lsst_spawner.testing.kube.fixtures import KubeHandle
from tests.reliability.helpers import EMPTY, lab_census, make_spawner, no_lab_objects


@pytest.fixture
async def stub_kubelet(kubelet: Any) -> AsyncIterator[Any]:
    kubelet.mode = "stub"
    clients.load_config.cache_clear()
    yield kubelet
    await KubeSpawner._stop_all_reflectors()
    clients.load_config.cache_clear()


async def test_pod_create_retries_transient_failures(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    kube_api.faults.error_rate(1.0, 503, verbs="create", resources="pods", times=2)
    kube_api.faults.reset_rate(1.0, verbs="create", resources="pods", times=1)
    spawner = make_spawner(kube_api, "rra", lab_spawn_timeout="20s")
    url = await asyncio.wait_for(spawner.start(), 30)
    assert url.startswith("http://127.")
    assert kube_api.counters.faults_injected() == 3
    await spawner.stop(now=True)
    assert lab_census(kube_api) == EMPTY


async def test_pod_delete_retries_transient_failures(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    spawner = make_spawner(kube_api, "rra", lab_spawn_timeout="20s")
    await asyncio.wait_for(spawner.start(), 30)
    kube_api.faults.error_rate(1.0, 429, verbs="delete", resources="pods", times=1)
    kube_api.faults.error_rate(1.0, 500, verbs="delete", resources="pods", times=1)
    await asyncio.wait_for(spawner.stop(now=True), 30)
    assert kube_api.counters.faults_injected("error") == 2
    await no_lab_objects(kube_api)


async def test_pod_create_gives_up_with_the_last_error(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    kube_api.faults.error_rate(1.0, 503, verbs="create", resources="pods")
    spawner = make_spawner(kube_api, "rra", lab_spawn_timeout="20s", kubernetes_retry_budget="2s")
    with pytest.raises(TimeoutError, match=r"Could not create pod .*last error: .*503"):
        await asyncio.wait_for(spawner.start(), 30)
    assert lab_census(kube_api) == EMPTY


async def test_a_leftover_pod_is_replaced_without_losing_the_new_config(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    # A hub that died left the lab behind; a new spawn for the same user
    # replaces the lab's Secret, then finds the pod (409) and replaces it.
    # Only the pod may be deleted for that, not the new Secret.
    first = make_spawner(kube_api, "rra", lab_spawn_timeout="20s")
    await asyncio.wait_for(first.start(), 30)
    old_uid = (await kube_api.get("pods", "nb-rra"))["metadata"]["uid"]
    second = make_spawner(kube_api, "rra", lab_spawn_timeout="20s")
    url = await asyncio.wait_for(second.start(), 30)
    assert url.startswith("http://127.")
    pod = await kube_api.get("pods", "nb-rra")
    assert pod["metadata"]["uid"] != old_uid
    assert pod["status"]["phase"] == "Running"
    assert lab_census(kube_api) == {
        "pods": ["nb-rra"],
        "configmaps": [],
        "secrets": ["nb-rra-secret"],
    }
    await second.stop(now=True)
    assert lab_census(kube_api) == EMPTY


async def test_a_reflector_whose_first_list_failed_is_replaced(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    # The first list of pods fails once: the spawn retries the reflector's
    # start instead of failing, and no later spawn gets a dead reflector.
    kube_api.faults.error_rate(1.0, 500, verbs="list", resources="pods", times=1)
    spawner = make_spawner(kube_api, "rra", lab_spawn_timeout="20s")
    await asyncio.wait_for(spawner.start(), 30)
    assert kube_api.counters.faults_injected("error") == 1
    await spawner.stop(now=True)
    other = make_spawner(kube_api, "mfs", lab_spawn_timeout="20s")
    await asyncio.wait_for(other.start(), 30)
    await other.stop(now=True)
    assert lab_census(kube_api) == EMPTY


async def test_a_dead_reflector_in_the_cache_is_replaced(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    # What an unpatched KubeSpawner leaves behind after a failed first list
    # (or a watch that gave up after a long outage): a reflector without a
    # watch task. The next spawn starts a new one instead of timing out.
    spawner = make_spawner(kube_api, "rra", lab_spawn_timeout="20s")
    await asyncio.wait_for(spawner.start(), 30)
    await spawner.stop(now=True)
    reflector = KubeSpawner.reflectors[spawner._get_reflector_key("pods")]
    await reflector.stop()
    other = make_spawner(kube_api, "mfs", lab_spawn_timeout="20s")
    await asyncio.wait_for(other.start(), 30)
    assert KubeSpawner.reflectors[spawner._get_reflector_key("pods")] is not reflector
    await other.stop(now=True)
    assert lab_census(kube_api) == EMPTY


async def test_get_url_finds_the_lab_of_an_interrupted_spawn(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    # A restarted hub builds a new spawner for a server it had recorded with a
    # placeholder address; get_url() answers with the pod's address.
    first = make_spawner(kube_api, "rra", lab_spawn_timeout="20s")
    url = await asyncio.wait_for(first.start(), 30)
    restarted = make_spawner(kube_api, "rra", lab_spawn_timeout="20s")
    assert await asyncio.wait_for(restarted.get_url(), 30) == url
    await restarted.stop(now=True)
    assert lab_census(kube_api) == EMPTY
