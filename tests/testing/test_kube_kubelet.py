"""The process kubelet, and KubeSpawner's reflectors against the emulator."""

from __future__ import annotations

import json
import sys

import aiohttp
import pytest
from kubernetes_asyncio import client

from lsst_spawner.testing.waiting import wait_for_async

LIFECYCLE = ["Scheduled", "Pulling", "Pulled", "Created", "Started"]


def lab_pod(name: str, command: list[str] | None, image: str = "lab:w_2026_01", **extra) -> dict:
    container = {
        "name": "notebook",
        "image": image,
        "ports": [{"containerPort": 8888, "name": "notebook-port"}],
        **extra,
    }
    if command is not None:
        container["command"] = command
    return {
        "metadata": {"name": name, "labels": {"component": "singleuser-server"}},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 5},
    }


async def wait_for(check, limit: float = 10.0, what: str | None = None):
    """Await ``check()`` every 50 ms until it is truthy (its value), for ``limit`` seconds."""
    what = what or f"{getattr(check, '__qualname__', check)}() to be true"
    return await wait_for_async(check, what, timeout=limit, interval=0.05)


async def reasons(kube_api, name: str) -> list[str]:
    events = await kube_api.list("events")
    ours = [e for e in events if e["involvedObject"]["name"] == name]
    return [e["reason"] for e in sorted(ours, key=lambda e: int(e["metadata"]["resourceVersion"]))]


async def running(kube_api, name: str):
    pod = await kube_api.get("pods", name)
    if (
        pod
        and pod["status"].get("phase") == "Running"
        and all(c["ready"] for c in pod["status"]["containerStatuses"])
    ):
        return pod
    return None


async def test_process_pod_lifecycle(kube_api, kubelet) -> None:
    ns = kube_api.namespace
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_secret(
            ns, {"metadata": {"name": "s"}, "stringData": {"token": "sekrit"}}
        )
        await v1.create_namespaced_config_map(
            ns, {"metadata": {"name": "c"}, "data": {"url": "http://hub"}}
        )
        script = (
            'echo "$TOKEN $HUB_URL $POD_NAME" > env.txt; '
            f"exec {sys.executable} -m http.server --bind 0.0.0.0 8888"
        )
        env = [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
            {"name": "HUB_URL", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "url"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ]
        await v1.create_namespaced_pod(ns, lab_pod("lab", ["sh", "-c", script], env=env))
        pod = await wait_for(lambda: running(kube_api, "lab"))
        ip = pod["status"]["podIP"]
        assert ip.startswith("127.0.")
        assert ip != "127.0.0.1"
        assert pod["spec"]["nodeName"] in ("node-1", "node-2")
        assert await reasons(kube_api, "lab") == LIFECYCLE

        async def served():
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"http://{ip}:8888/env.txt") as response,
                ):
                    return await response.text() if response.status == 200 else None
            except aiohttp.ClientError:
                return None

        assert (await wait_for(served)).strip() == "sekrit http://hub lab"

        await v1.delete_namespaced_pod("lab", ns)
        await wait_for(lambda: _gone(kube_api, "lab"), limit=8)
        assert "Killing" in await reasons(kube_api, "lab")
        with pytest.raises(aiohttp.ClientError):
            async with aiohttp.ClientSession() as http, http.get(f"http://{ip}:8888/"):
                pass


async def _gone(kube_api, name: str) -> bool:
    return await kube_api.get("pods", name) is None


async def test_two_pods_get_distinct_addresses(kube_api, kubelet) -> None:
    kubelet.mode = "stub"
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        for name in ("a", "b"):
            await v1.create_namespaced_pod(kube_api.namespace, lab_pod(name, None))
        first = await wait_for(lambda: running(kube_api, "a"))
        second = await wait_for(lambda: running(kube_api, "b"))
    assert first["status"]["podIP"] != second["status"]["podIP"]
    assert {first["spec"]["nodeName"], second["spec"]["nodeName"]} == {"node-1", "node-2"}


async def test_missing_image_fails_with_backoff(kube_api, kubelet) -> None:
    kubelet.images = {"lab:w_2026_01"}
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_pod(kube_api.namespace, lab_pod("bad", None, image="lab:nope"))

        async def backoff():
            pod = await kube_api.get("pods", "bad")
            statuses = pod["status"].get("containerStatuses") or [{}]
            waiting = statuses[0].get("state", {}).get("waiting", {})
            return pod if waiting.get("reason") == "ImagePullBackOff" else None

        pod = await wait_for(backoff)
    assert pod["status"]["phase"] == "Pending"
    assert await reasons(kube_api, "bad") == [
        "Scheduled",
        "Pulling",
        "Failed",
        "Failed",
        "BackOff",
        "Failed",
    ]


async def test_missing_secret_is_a_config_error(kube_api, kubelet) -> None:
    kubelet.mode = "stub"
    env = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_pod(kube_api.namespace, lab_pod("cfg", None, env=env))

        async def config_error():
            pod = await kube_api.get("pods", "cfg")
            statuses = pod["status"].get("containerStatuses") or [{}]
            waiting = statuses[0].get("state", {}).get("waiting", {})
            if waiting.get("reason") == "CreateContainerConfigError":
                return waiting["message"]
            return None

        assert await wait_for(config_error) == 'secret "absent" not found'
        failed = [e for e in await kube_api.list("events") if e["reason"] == "Failed"]
        assert failed[0]["message"] == 'Error: secret "absent" not found'


async def test_a_config_error_is_retried_until_the_secret_appears(kube_api, kubelet) -> None:
    # A process: it prints what it got; optional references to missing objects are skipped.
    ns = kube_api.namespace
    env = [
        {"name": "T", "valueFrom": {"secretKeyRef": {"name": "later", "key": "k"}}},
        {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "c"}}},
        {
            "name": "O",
            "valueFrom": {"secretKeyRef": {"name": "nowhere", "key": "x", "optional": True}},
        },
    ]
    script = 'echo "T=$T C=$C O=${O:-unset}"; sleep 30'
    body = lab_pod(
        "late",
        ["sh", "-c", script],
        env=env,
        envFrom=[{"secretRef": {"name": "nowhere-either", "optional": True}}],
    )
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}, "data": {}})
        await v1.create_namespaced_pod(ns, body)

        async def waiting_message():
            pod = await kube_api.get("pods", "late")
            statuses = pod["status"].get("containerStatuses") or [{}]
            return statuses[0].get("state", {}).get("waiting", {}).get("message")

        assert await wait_for(waiting_message) == 'secret "later" not found'
        await v1.create_namespaced_secret(
            ns, {"metadata": {"name": "later"}, "stringData": {"k": "t"}}
        )

        async def no_key():
            message = await waiting_message()
            return message if message and message.startswith("couldn't") else None

        assert await wait_for(no_key, 30) == f"couldn't find key c in ConfigMap {ns}/cm"
        await v1.patch_namespaced_config_map("cm", ns, {"data": {"c": "see"}})
        await wait_for(lambda: running(kube_api, "late"))

        async def logged():
            text = await v1.read_namespaced_pod_log("late", ns)
            return text if text.strip() else None

        assert (await wait_for(logged)).strip() == "T=t C=see O=unset"


async def test_stub_mode_answers_http_without_a_process(kube_api, kubelet) -> None:
    kubelet.mode = "stub"
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_pod(
            kube_api.namespace, lab_pod("stub", ["jupyterhub-singleuser"])
        )
        pod = await wait_for(lambda: running(kube_api, "stub"))
        ip = pod["status"]["podIP"]
        async with aiohttp.ClientSession() as http:
            for _ in range(2):  # keep-alive: two requests on one connection
                async with http.get(f"http://{ip}:8888/user/x/api") as response:
                    assert response.status == 200
                    assert (await response.json())["kubelet"] == "stub"
        assert kubelet.pods[pod["metadata"]["uid"]].processes == {}
        await v1.delete_namespaced_pod("stub", kube_api.namespace)
        await wait_for(lambda: _gone(kube_api, "stub"))
    with pytest.raises(aiohttp.ClientError):
        async with aiohttp.ClientSession() as http, http.get(f"http://{ip}:8888/"):
            pass


async def test_kubespawner_reflectors_sync_from_the_emulator(kube_api, kubelet) -> None:
    from kubespawner import clients
    from kubespawner.spawner import EventReflector, PodReflector

    kubelet.mode = "stub"
    clients.load_config.cache_clear()
    clients._client_cache.clear()
    clients.load_config()  # reads KUBECONFIG, set by the fixture
    ns = kube_api.namespace
    pods = PodReflector(namespace=ns, labels={"component": "singleuser-server"}, timeout_seconds=2)
    events = EventReflector(namespace=ns, fields={"involvedObject.kind": "Pod"}, timeout_seconds=2)
    try:
        await pods.start()
        await events.start()
        async with kube_api.api_client() as api:
            v1 = client.CoreV1Api(api)
            await v1.create_namespaced_pod(ns, lab_pod("refl", None))

            async def reflected():
                pod = pods.pods.get(f"{ns}/refl")
                return pod and pod["status"].get("phase") == "Running"

            await wait_for(reflected)
            await wait_for(lambda: _has_started_event(events))
            await v1.delete_namespaced_pod("refl", ns)

            async def removed():
                return f"{ns}/refl" not in pods.pods

            await wait_for(removed)
        assert kube_api.counters.get("watch", "pods") >= 1
        assert kube_api.counters.get("watch", "events") >= 1
    finally:
        await pods.stop()
        await events.stop()
        clients.load_config.cache_clear()
        clients._client_cache.clear()


async def _has_started_event(events) -> bool:
    return any(e["reason"] == "Started" for e in events.events)


async def test_full_nodes_leave_pods_pending_until_room(kube_api, kubelet) -> None:
    from lsst_spawner.testing.kube.kubelet import FakeNode

    kubelet.mode = "stub"
    kubelet.nodes = [FakeNode("small", max_pods=1)]
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_pod(kube_api.namespace, lab_pod("one", None))
        await wait_for(lambda: running(kube_api, "one"))
        await v1.create_namespaced_pod(kube_api.namespace, lab_pod("two", None))
        await wait_for(lambda: _has_reason(kube_api, "two", "FailedScheduling"))
        assert (await kube_api.get("pods", "two"))["status"]["phase"] == "Pending"
        await v1.delete_namespaced_pod("one", kube_api.namespace)
        await wait_for(lambda: running(kube_api, "two"))


async def _has_reason(kube_api, name: str, reason: str) -> bool:
    return reason in await reasons(kube_api, name)


async def test_a_stub_pods_log_is_empty_and_a_pending_pods_is_refused(kube_api, kubelet) -> None:
    kubelet.mode = "stub"
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_pod(kube_api.namespace, lab_pod("quiet", None))
        await wait_for(lambda: running(kube_api, "quiet"))
        assert await v1.read_namespaced_pod_log("quiet", kube_api.namespace) == ""
        kubelet.images = set()
        await v1.create_namespaced_pod(kube_api.namespace, lab_pod("blocked", None))

        async def refused():
            try:
                await v1.read_namespaced_pod_log("blocked", kube_api.namespace)
            except client.ApiException as error:
                return error
            return None

        error = await wait_for(refused)
    assert error.status == 400
    message = json.loads(error.body)["message"]
    assert message.startswith('container "notebook" in pod "blocked" is waiting to start: ')
