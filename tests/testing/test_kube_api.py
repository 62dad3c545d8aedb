"""The emulator through the unmodified kubernetes_asyncio client and a kubeconfig."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from lsst_spawner.testing.kube.authn import ADMIN_TOKEN

#: Raw requests authenticate as the emulator's administrator.
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def pod(name: str, labels: dict | None = None, image: str = "lab:w_2026_01", **spec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "nb", "image": image}], **spec},
    }


def body(exc: ApiException) -> dict:
    return json.loads(exc.body)


async def test_crud_and_conflicts(kube_api) -> None:
    ns = kube_api.namespace
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        created = await v1.create_namespaced_config_map(
            ns, {"metadata": {"name": "cm"}, "data": {"a": "1"}}
        )
        assert created.metadata.uid
        rv1 = int(created.metadata.resource_version)
        read = await v1.read_namespaced_config_map("cm", ns)
        assert read.data == {"a": "1"}
        with pytest.raises(ApiException) as exc:
            await v1.create_namespaced_config_map(ns, {"metadata": {"name": "cm"}})
        assert exc.value.status == 409
        assert body(exc.value)["reason"] == "AlreadyExists"
        assert body(exc.value)["kind"] == "Status"

        read.data = {"a": "2"}
        replaced = await v1.replace_namespaced_config_map("cm", ns, read)
        assert int(replaced.metadata.resource_version) > rv1
        read.data = {"a": "3"}  # stale resourceVersion
        with pytest.raises(ApiException) as exc:
            await v1.replace_namespaced_config_map("cm", ns, read)
        assert exc.value.status == 409
        assert body(exc.value)["reason"] == "Conflict"

        await v1.delete_namespaced_config_map("cm", ns)
        with pytest.raises(ApiException) as exc:
            await v1.read_namespaced_config_map("cm", ns)
        assert exc.value.status == 404
        assert body(exc.value)["message"] == 'configmaps "cm" not found'
        assert body(exc.value)["details"] == {"name": "cm", "kind": "configmaps"}


async def test_generate_name_secret_string_data_and_missing_namespace(kube_api) -> None:
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        secret = await v1.create_namespaced_secret(
            kube_api.namespace, {"metadata": {"generateName": "tok-"}, "stringData": {"t": "x"}}
        )
        assert secret.metadata.name.startswith("tok-")
        assert len(secret.metadata.name) == 9
        assert secret.data == {"t": "eA=="}
        with pytest.raises(ApiException) as exc:
            await v1.create_namespaced_secret("nope", {"metadata": {"name": "s"}})
        assert exc.value.status == 404
        assert body(exc.value)["message"] == 'namespaces "nope" not found'


async def test_schema_rejects_malformed_pods(kube_api) -> None:
    ns = kube_api.namespace
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        bad = pod("bad")
        bad["spec"]["containers"][0]["ports"] = [{"containerPort": "eight"}]
        with pytest.raises(ApiException) as exc:
            await v1.create_namespaced_pod(ns, bad)
        assert exc.value.status == 422
        details = body(exc.value)["details"]
        assert details["kind"] == "Pod"
        assert details["causes"][0]["field"] == "spec.containers[0].ports[0].containerPort"

        no_image = pod("noimage")
        del no_image["spec"]["containers"][0]["image"]
        with pytest.raises(ApiException) as exc:
            await v1.create_namespaced_pod(ns, no_image)
        assert exc.value.status == 422
        assert body(exc.value)["message"] == (
            'Pod "noimage" is invalid: spec.containers[0].image: Required value'
        )

        with pytest.raises(ApiException) as exc:
            await v1.create_namespaced_pod(ns, pod("Upper_Case"))
        assert exc.value.status == 422

        unknown = pod("unknown")
        unknown["spec"]["contaners"] = []
        async with aiohttp.ClientSession(headers=ADMIN) as http:
            url = f"{kube_api.emulator.url}/api/v1/namespaces/{ns}/pods?fieldValidation=Strict"
            async with http.post(url, json=unknown) as response:
                assert response.status == 400
                assert 'unknown field \\"spec.contaners\\"' in await response.text()
        # Default fieldValidation (Warn): accepted, the unknown field dropped.
        created = await v1.create_namespaced_pod(ns, unknown)
        assert created.metadata.name == "unknown"
        stored = await kube_api.get("pods", "unknown")
        assert "contaners" not in stored["spec"]
        assert stored["status"]["phase"] == "Pending"
        assert stored["spec"]["restartPolicy"] == "Always"


async def test_selectors(kube_api) -> None:
    ns = kube_api.namespace
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_pod(ns, pod("a", {"app": "lab", "tier": "x"}))
        await v1.create_namespaced_pod(ns, pod("b", {"app": "lab"}))
        await v1.create_namespaced_pod(ns, pod("c", {"app": "hub"}))

        async def names(**kwargs) -> list[str]:
            result = await v1.list_namespaced_pod(ns, **kwargs)
            return [p.metadata.name for p in result.items]

        assert await names(label_selector="app=lab") == ["a", "b"]
        assert await names(label_selector="app==lab,tier") == ["a"]
        assert await names(label_selector="app!=lab") == ["c"]
        assert await names(label_selector="app in (hub, other)") == ["c"]
        assert await names(label_selector="app notin (hub),!tier") == ["b"]
        assert await names(field_selector="metadata.name=b") == ["b"]
        assert await names(field_selector="status.phase=Pending,metadata.name!=a") == ["b", "c"]
        with pytest.raises(ApiException) as exc:
            await names(field_selector="spec.bogus=1")
        assert exc.value.status == 400
        assert "field label not supported" in body(exc.value)["message"]
        await v1.create_namespaced_event(
            ns,
            {
                "metadata": {"name": "e1"},
                "involvedObject": {"kind": "Pod", "name": "a"},
                "reason": "Test",
                "message": "m",
            },
        )
        await v1.create_namespaced_event(
            ns,
            {
                "metadata": {"name": "e2"},
                "involvedObject": {"kind": "Node", "name": "n"},
                "reason": "Test",
                "message": "m",
            },
        )
        events = await v1.list_namespaced_event(
            ns, field_selector="involvedObject.kind=Pod,involvedObject.name=a"
        )
        assert [e.metadata.name for e in events.items] == ["e1"]
        assert events.items[0].event_time is None  # serialized as null, as KubeSpawner expects


async def test_patches(kube_api) -> None:
    ns = kube_api.namespace
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        p = pod("p", {"a": "1"})
        p["spec"]["containers"][0]["env"] = [{"name": "X", "value": "1"}]
        await v1.create_namespaced_pod(ns, p)
        # strategic merge (the client's default for dicts): labels merge
        patched = await v1.patch_namespaced_pod("p", ns, {"metadata": {"labels": {"b": "2"}}})
        assert patched.metadata.labels == {"a": "1", "b": "2"}
        # merge patch: null deletes
        patched = await v1.patch_namespaced_pod(
            "p",
            ns,
            {"metadata": {"labels": {"a": None}}},
            _content_type="application/merge-patch+json",
        )
        assert patched.metadata.labels == {"b": "2"}
        # JSON patch (a list body)
        patched = await v1.patch_namespaced_pod(
            "p", ns, [{"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}}]
        )
        assert patched.metadata.annotations == {"k": "v"}
        # the pod spec is immutable except for a few fields
        with pytest.raises(ApiException) as exc:
            await v1.patch_namespaced_pod(
                "p",
                ns,
                {"spec": {"containers": [{"name": "nb", "env": [{"name": "Y", "value": "2"}]}]}},
            )
        assert exc.value.status == 422
        # ... the image is one of them, merged into the container by name
        patched = await v1.patch_namespaced_pod(
            "p", ns, {"spec": {"containers": [{"name": "nb", "image": "lab:w_2026_02"}]}}
        )
        assert patched.spec.containers[0].image == "lab:w_2026_02"
        assert patched.spec.containers[0].env[0].name == "X"
        # status subresource: only status changes
        patched = await v1.patch_namespaced_pod_status(
            "p", ns, {"status": {"phase": "Running"}, "metadata": {"labels": {"z": "9"}}}
        )
        assert patched.status.phase == "Running"
        assert "z" not in patched.metadata.labels
        # a status change through the main resource is ignored
        patched = await v1.patch_namespaced_pod("p", ns, {"status": {"phase": "Failed"}})
        assert patched.status.phase == "Running"


async def test_ownerreference_gc_and_orphan(kube_api) -> None:
    ns = kube_api.namespace
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        owner = await v1.create_namespaced_pod(ns, pod("owner"))
        ref = {"apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": owner.metadata.uid}
        for name in ("cm1", "cm2"):
            await v1.create_namespaced_config_map(
                ns, {"metadata": {"name": name, "ownerReferences": [ref]}}
            )
        await v1.create_namespaced_secret(ns, {"metadata": {"name": "keep"}})
        await v1.delete_namespaced_pod("owner", ns)
        assert await kube_api.list("configmaps") == []
        assert [s["metadata"]["name"] for s in await kube_api.list("secrets")] == ["keep"]

        owner = await v1.create_namespaced_pod(ns, pod("owner2"))
        ref = {**ref, "name": "owner2", "uid": owner.metadata.uid}
        await v1.create_namespaced_config_map(
            ns, {"metadata": {"name": "orphan", "ownerReferences": [ref]}}
        )
        await v1.delete_namespaced_pod("owner2", ns, propagation_policy="Orphan")
        orphan = await kube_api.get("configmaps", "orphan")
        assert "ownerReferences" not in orphan["metadata"]


async def test_grace_period_and_finalizers(kube_api) -> None:
    ns = kube_api.namespace
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_pod(ns, pod("g", nodeName="node-x"))
        deleted = await v1.delete_namespaced_pod("g", ns, grace_period_seconds=1)
        assert deleted.metadata.deletion_timestamp is not None
        assert deleted.metadata.deletion_grace_period_seconds == 1
        assert (await kube_api.get("pods", "g")) is not None
        await asyncio.sleep(1.3)
        assert (await kube_api.get("pods", "g")) is None

        await v1.create_namespaced_config_map(
            ns, {"metadata": {"name": "f", "finalizers": ["example.com/hold"]}}
        )
        await v1.delete_namespaced_config_map("f", ns)
        held = await kube_api.get("configmaps", "f")
        assert held["metadata"]["deletionTimestamp"]
        await v1.patch_namespaced_config_map(
            "f", ns, [{"op": "remove", "path": "/metadata/finalizers"}]
        )
        assert (await kube_api.get("configmaps", "f")) is None


async def test_watch_from_resource_version(kube_api) -> None:
    ns = kube_api.namespace
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_pod(ns, pod("before", {"w": "1"}))
        listed = await v1.list_namespaced_pod(ns)
        rv = listed.metadata.resource_version
        await v1.create_namespaced_pod(ns, pod("after", {"w": "1"}))

        async def later() -> None:
            await asyncio.sleep(0.2)
            await v1.create_namespaced_pod(ns, pod("during", {"w": "1"}))
            await v1.create_namespaced_pod(ns, pod("other", {"w": "2"}))
            await v1.patch_namespaced_pod("during", ns, {"metadata": {"labels": {"w": "2"}}})

        task = asyncio.create_task(later())
        seen = []
        start = asyncio.get_running_loop().time()
        async with watch.Watch().stream(
            v1.list_namespaced_pod, ns, label_selector="w=1", resource_version=rv, timeout_seconds=1
        ) as stream:
            async for event in stream:
                seen.append((event["type"], event["object"].metadata.name))
        await task
        elapsed = asyncio.get_running_loop().time() - start
        # "before" predates rv; the label change reads as DELETED for this selector
        assert seen == [("ADDED", "after"), ("ADDED", "during"), ("DELETED", "during")]
        assert 0.9 < elapsed < 3


async def test_watch_too_old_resource_version_is_gone(kube_api) -> None:
    emulator = kube_api.emulator
    emulator.call(setattr, emulator.store, "history_limit", 2)
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        for n in range(4):
            await v1.create_namespaced_config_map(
                kube_api.namespace, {"metadata": {"name": f"c{n}"}}
            )

        async def drain() -> None:
            async with watch.Watch().stream(
                v1.list_namespaced_config_map,
                kube_api.namespace,
                resource_version="1",
                timeout_seconds=1,
            ) as stream:
                async for _ in stream:
                    pass

        with pytest.raises(ApiException) as exc:
            await drain()
        assert exc.value.status == 410


async def test_namespace_deletion_removes_contents(kube_api) -> None:
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespace({"metadata": {"name": "tmp"}})
        await v1.create_namespaced_config_map("tmp", {"metadata": {"name": "c"}})
        await v1.delete_namespace("tmp")
        with pytest.raises(ApiException) as exc:
            await v1.read_namespace("tmp")
        assert exc.value.status == 404
        assert kube_api.emulator.list_objects("configmaps", "tmp") == []


async def test_a_watcher_gone_while_its_events_wait_to_be_sent_is_not_an_error(
    kube_api, caplog: pytest.LogCaptureFixture
) -> None:
    """A hub that stops (or drops a watch) while the emulator waits to send it events:
    aiohttp raises a bare ``ConnectionError("Connection lost")`` from the drain, which the
    watch handler ends quietly, as it does a ``ConnectionResetError``."""
    import socket
    import struct
    from urllib.parse import urlsplit

    emulator = kube_api._emu  # the emulator's own log: not there on a real cluster
    url = urlsplit(emulator.url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((url.hostname, url.port))
    path = f"/api/v1/namespaces/{kube_api.namespace}/configmaps?watch=true"
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        for n in range(80):  # 80 x 64 KiB of events the watcher never reads
            await v1.create_namespaced_config_map(
                kube_api.namespace, {"metadata": {"name": f"big{n}"}, "data": {"a": "x" * 65536}}
            )
    # Reset, not a clean close: what a killed hub's connections do.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    for _ in range(50):
        await asyncio.sleep(0.05)
        if not emulator.call(lambda: len(emulator.store.watchers["configmaps"])):
            break
    assert emulator.call(lambda: len(emulator.store.watchers["configmaps"])) == 0, "the watch ended"
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [], [r.getMessage() for r in errors]
