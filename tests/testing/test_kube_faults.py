"""Fault injection and request counters."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from lsst_spawner.testing.kube import FaultInjector
from lsst_spawner.testing.kube.authn import ADMIN_TOKEN

#: Raw requests authenticate as the emulator's administrator.
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def cm(name: str) -> dict:
    return {"metadata": {"name": name}}


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, "InternalError"), (503, "ServiceUnavailable"), (429, "TooManyRequests")],
)
async def test_error_faults(kube_api, status: int, reason: str) -> None:
    kube_api.faults.error_rate(1.0, status, verbs="create", resources="configmaps", times=1)
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        with pytest.raises(ApiException) as exc:
            await v1.create_namespaced_config_map(kube_api.namespace, cm("a"))
        assert exc.value.status == status
        assert json.loads(exc.value.body)["reason"] == reason
        if status == 429:
            assert exc.value.headers["Retry-After"] == "1"
        # times=1: the retry succeeds, and other verbs were never affected
        await v1.create_namespaced_config_map(kube_api.namespace, cm("a"))
        await v1.read_namespaced_config_map("a", kube_api.namespace)
    assert kube_api.counters.faults_injected("error") == 1
    assert kube_api.counters.get("create", "configmaps") == 2
    assert kube_api.counters.get("get", "configmaps") == 1


def test_seeded_faults_are_deterministic() -> None:
    def pattern(seed: int) -> list[bool]:
        faults = FaultInjector(seed)
        faults.error_rate(0.3)
        return [faults.decide("get", "pods").error is not None for _ in range(200)]

    assert pattern(7) == pattern(7)
    assert pattern(7) != pattern(8)
    assert 30 < sum(pattern(7)) < 90


async def test_connection_reset_and_latency(kube_api) -> None:
    url = f"{kube_api.emulator.url}/api/v1/namespaces/{kube_api.namespace}/configmaps"
    # aiohttp retries an idempotent request once after a reset, so no times=1 here
    reset = kube_api.faults.reset_rate(1.0, verbs="list")
    kube_api.faults.latency(0.3, verbs="get")
    async with aiohttp.ClientSession(headers=ADMIN) as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(url) as response:
                await response.read()
        kube_api.faults.remove(reset)
        async with http.get(url) as response:
            assert response.status == 200
        start = time.monotonic()
        async with http.get(f"{url}/missing") as response:
            assert response.status == 404
        assert time.monotonic() - start >= 0.3
    assert kube_api.counters.faults_injected("reset") >= 1
    assert kube_api.counters.faults_injected("latency") == 1


async def test_api_down_refuses_then_recovers(kube_api) -> None:
    emulator = kube_api.emulator
    url = f"{emulator.url}/api/v1/namespaces"
    emulator.run(emulator.down(0.5))
    async with aiohttp.ClientSession(headers=ADMIN) as http:
        with pytest.raises(aiohttp.ClientConnectorError):
            async with http.get(url):
                pass
        await asyncio.sleep(0.8)
        async with http.get(url) as response:
            assert response.status == 200


async def test_api_down_503_mode(kube_api) -> None:
    emulator = kube_api.emulator
    emulator.run(emulator.down(mode="503"))
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        with pytest.raises(ApiException) as exc:
            await v1.list_namespaced_pod(kube_api.namespace)
        assert exc.value.status == 503
        emulator.run(emulator.up())
        await v1.list_namespaced_pod(kube_api.namespace)


async def test_counters_by_verb_and_resource(kube_api) -> None:
    ns = kube_api.namespace
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_config_map(ns, cm("a"))
        await v1.patch_namespaced_config_map("a", ns, {"data": {"k": "v"}})
        await v1.list_namespaced_config_map(ns)
        await v1.delete_namespaced_config_map("a", ns)
    assert kube_api.counters.as_dict() == {
        "create": {"configmaps": 1},
        "delete": {"configmaps": 1},
        "list": {"configmaps": 1},
        "patch": {"configmaps": 1},
    }
    assert kube_api.counters.mean_seconds("create") > 0


async def test_standalone_cli_serves_and_stops(tmp_path) -> None:
    import signal
    import sys

    from kubernetes_asyncio import config

    kubeconfig = tmp_path / "kc"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lsst_spawner.testing.kube",
        "--kubeconfig",
        str(kubeconfig),
        "--kubelet",
        "stub",
        "--hub-role",
        "admin",
        "--counters",
        str(tmp_path / "counts.json"),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert b"Kubernetes emulator at http://127.0.0.1:" in line
        configuration = client.Configuration()
        await config.load_kube_config(str(kubeconfig), client_configuration=configuration)
        async with client.ApiClient(configuration) as api:
            names = await client.CoreV1Api(api).list_namespace()
        assert [n.metadata.name for n in names.items] == ["default"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    assert json.loads((tmp_path / "counts.json").read_text()) == {"list": {"namespaces": 1}}
