"""The emulator through the unmodified kubernetes_asyncio client and a kubeconfig."""

from __future__ import annotations

import asyncio
import json
import time

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


# -- kubectl-grade API (issue 14): raw HTTP, the rejection paths with the hostile input ----

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


async def test_tables_answer_the_accept_header_and_refuse_what_they_cannot_produce(
    kube_api,
) -> None:
    ns, url = kube_api.namespace, kube_api.emulator.url
    kube_api.emulator.create_object(
        "configmaps", {"metadata": {"name": "cm"}, "data": {"a": "1"}}, ns
    )
    base = f"{url}/api/v1/namespaces/{ns}/configmaps"
    async with aiohttp.ClientSession(headers=ADMIN) as http:
        async with http.get(base, headers={"Accept": TABLE}) as response:
            table = await response.json()
        assert table["kind"] == "Table"
        assert table["apiVersion"] == "meta.k8s.io/v1"
        assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
        assert table["rows"][0]["cells"][:2] == ["cm", 1]
        assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
        async with http.get(f"{base}/cm?includeObject=Object", headers={"Accept": TABLE}) as r:
            one = await r.json()
        assert one["rows"][0]["object"]["data"] == {"a": "1"}
        async with http.get(f"{base}?includeObject=None", headers={"Accept": TABLE}) as r:
            assert "object" not in (await r.json())["rows"][0]
        async with http.get(f"{base}?includeObject=Everything", headers={"Accept": TABLE}) as r:
            assert r.status == 400
            assert "includeObject" in (await r.json())["message"]
        async with http.get(base, headers={"Accept": "application/json"}) as r:
            assert (await r.json())["kind"] == "ConfigMapList"
        only_protobuf = {"Accept": "application/vnd.kubernetes.protobuf"}
        async with http.get(base, headers=only_protobuf) as r:
            assert r.status == 406
            assert (await r.json())["reason"] == "NotAcceptable"


async def test_watch_with_table_accept_sends_one_row_tables(kube_api) -> None:
    ns, url = kube_api.namespace, kube_api.emulator.url
    kube_api.emulator.create_object("configmaps", {"metadata": {"name": "cm"}}, ns)
    watch_url = f"{url}/api/v1/namespaces/{ns}/configmaps?watch=true&timeoutSeconds=1"
    async with (
        aiohttp.ClientSession(headers=ADMIN) as http,
        http.get(watch_url, headers={"Accept": TABLE}) as response,
    ):
        first = json.loads(await response.content.readline())
    assert first["type"] == "ADDED"
    assert first["object"]["kind"] == "Table"
    assert first["object"]["rows"][0]["cells"][0] == "cm"


async def test_dry_run_takes_only_all(kube_api) -> None:
    ns, url = kube_api.namespace, kube_api.emulator.url
    before = kube_api.emulator.create_object("configmaps", {"metadata": {"name": "cm"}}, ns)
    base = f"{url}/api/v1/namespaces/{ns}/configmaps"
    body = {"metadata": {"name": "cm"}, "data": {"a": "2"}}
    merge = {"Content-Type": "application/merge-patch+json"}
    async with aiohttp.ClientSession(headers=ADMIN) as http:
        for method, target, kind, extra in (
            ("POST", base, "CreateOptions", {}),
            ("PUT", f"{base}/cm", "UpdateOptions", {}),
            ("PATCH", f"{base}/cm", "PatchOptions", merge),
            ("DELETE", f"{base}/cm", "DeleteOptions", {}),
            ("DELETE", base, "DeleteOptions", {}),
        ):
            async with http.request(
                method, f"{target}?dryRun=Everything", json=body, headers=extra
            ) as response:
                assert response.status == 422, (method, target)
                status = await response.json()
            assert status["message"].startswith(f'{kind}.meta.k8s.io "" is invalid: dryRun')
            assert '"Everything"' in status["message"]
        # dryRun in a DeleteOptions body is checked too.
        async with http.delete(f"{base}/cm", json={"dryRun": ["Sometimes"]}) as response:
            assert response.status == 422
        async with http.delete(f"{base}/cm", json={"dryRun": ["All"]}) as response:
            assert response.status == 200
    assert kube_api.emulator.get_object("configmaps", "cm", ns) == before


async def test_bodies_are_decoded_by_content_type(kube_api) -> None:
    ns, url = kube_api.namespace, kube_api.emulator.url
    base = f"{url}/api/v1/namespaces/{ns}/configmaps"
    async with aiohttp.ClientSession(headers=ADMIN) as http:
        yaml_body = "metadata:\n  name: from-yaml\ndata:\n  a: '1'\n"
        async with http.post(
            base, data=yaml_body, headers={"Content-Type": "application/yaml"}
        ) as response:
            assert response.status == 201
        async with http.post(
            base, data='{"metadata":{"name":"t"}}', headers={"Content-Type": "text/plain"}
        ) as response:
            assert response.status == 415
            status = await response.json()
        assert status["reason"] == "UnsupportedMediaType"
        assert "application/vnd.kubernetes.protobuf" in status["message"]
        protobuf = {"Content-Type": "application/vnd.kubernetes.protobuf"}
        async with http.post(base, data=b"\x0a\x02v1", headers=protobuf) as response:
            assert response.status == 400  # no k8s\0 envelope
            assert "k8s" in (await response.json())["message"]
        type_meta = b"\x0a\x02v1\x12\x03Pod"
        pod_body = b"k8s\x00\x0a" + bytes([len(type_meta)]) + type_meta + b"\x12\x00"
        async with http.post(
            f"{url}/api/v1/namespaces/{ns}/pods", data=pod_body, headers=protobuf
        ) as response:
            assert response.status == 415
            assert "not Pod" in (await response.json())["message"]
        truncated = b"k8s\x00\x0a\x50\x0a"
        async with http.post(base, data=truncated, headers=protobuf) as response:
            assert response.status == 400
    assert kube_api.emulator.get_object("configmaps", "from-yaml", ns)["data"] == {"a": "1"}


async def test_server_side_apply_is_a_415_before_the_object_is_looked_up(kube_api) -> None:
    ns, url = kube_api.namespace, kube_api.emulator.url
    apply = {"Content-Type": "application/apply-patch+yaml"}
    target = f"{url}/api/v1/namespaces/{ns}/configmaps/nope?fieldManager=kubectl"
    async with (
        aiohttp.ClientSession(headers=ADMIN) as http,
        http.patch(target, data="metadata: {name: nope}\n", headers=apply) as r,
    ):
        assert r.status == 415
        status = await r.json()
    assert status["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, "
        "application/strategic-merge-patch+json"
    )


async def test_discovery_lists_short_names_categories_verbs_and_subresources(kube_api) -> None:
    url = kube_api.emulator.url
    async with aiohttp.ClientSession(headers=ADMIN) as http:
        async with http.get(f"{url}/api/v1") as response:
            resources = {r["name"]: r for r in (await response.json())["resources"]}
        async with http.delete(f"{url}/api/v1/namespaces") as response:
            assert response.status == 405  # no deletecollection on namespaces
    assert resources["pods"]["shortNames"] == ["po"]
    assert resources["pods"]["categories"] == ["all"]
    assert resources["services"]["categories"] == ["all"]
    assert "categories" not in resources["configmaps"]
    assert {r["shortNames"][0] for r in resources.values() if r.get("shortNames")} == {
        "po",
        "svc",
        "cm",
        "ns",
        "pvc",
        "ev",
        "no",
    }
    assert "deletecollection" not in resources["namespaces"]["verbs"]
    assert resources["pods/log"]["verbs"] == ["get"]
    assert resources["pods/status"]["verbs"] == ["get", "patch", "update"]


async def test_openapi_documents(kube_api) -> None:
    url = kube_api.emulator.url
    async with aiohttp.ClientSession(headers=ADMIN) as http:
        async with http.get(f"{url}/openapi/v2", headers={"Accept": "application/json"}) as r:
            v2 = await r.json()
        async with http.get(f"{url}/openapi/v3") as r:
            index = await r.json()
        async with http.get(f"{url}{index['paths']['api/v1']['serverRelativeURL']}") as r:
            v3 = await r.json()
    pod = v2["definitions"]["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    assert pod["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.core.v1.PodSpec"
    patch = v2["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert {"dryRun", "fieldValidation"} <= {p["name"] for p in patch["parameters"]}
    schemas = v3["components"]["schemas"]
    assert schemas["io.k8s.api.core.v1.ConfigMap"]["properties"]["data"]["type"] == "object"
    port = schemas["io.k8s.api.core.v1.ServicePort"]["properties"]["targetPort"]
    assert port["allOf"] == [  # a reference with a description, wrapped as a server does
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}
    ]


def test_human_duration_matches_apimachinery() -> None:
    from lsst_spawner.testing.kube.table import human_duration

    cases = {
        -5: "<invalid>",
        -1: "0s",
        59: "59s",
        119: "119s",
        125: "2m5s",
        600: "10m",
        3 * 3600: "3h",
        3 * 3600 + 60: "3h1m",
        9 * 3600: "9h",
        49 * 3600: "2d1h",
        30 * 86400: "30d",
        800 * 86400: "2y70d",
        9 * 365 * 86400: "9y",
    }
    assert {s: human_duration(s) for s in cases} == cases


def test_pod_status_cells_follow_the_api_servers_printer() -> None:
    from lsst_spawner.testing.kube.table import to_table

    now = 1_800_000_000.0
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3 * 86400))
    restarted = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 125))

    def cells(spec: dict, status: dict, **meta) -> list:
        pod = {
            "metadata": {"name": "p", "creationTimestamp": created, **meta},
            "spec": {"containers": [{"name": "nb"}], **spec},
            "status": status,
        }
        return to_table("pods", [pod], "1", now=now)["rows"][0]["cells"]

    waiting_init = {
        "initContainerStatuses": [{"state": {"waiting": {"reason": "PodInitializing"}}}]
    }
    assert cells({"initContainers": [{"name": "i"}]}, {"phase": "Pending", **waiting_init})[2] == (
        "Init:0/1"
    )
    pull = {"initContainerStatuses": [{"state": {"waiting": {"reason": "ErrImagePull"}}}]}
    assert cells({"initContainers": [{"name": "i"}]}, {"phase": "Pending", **pull})[2] == (
        "Init:ErrImagePull"
    )
    crashing = {
        "phase": "Running",
        "containerStatuses": [
            {
                "ready": False,
                "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"finishedAt": restarted, "exitCode": 1}},
            }
        ],
    }
    row = cells({}, crashing)
    assert row[1:3] == ["0/1", "CrashLoopBackOff"]
    assert row[3] == "4 (2m5s ago)"
    done = {
        "phase": "Succeeded",
        "containerStatuses": [{"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
    }
    assert cells({}, done)[2] == "Completed"
    killed = {
        "phase": "Failed",
        "containerStatuses": [{"state": {"terminated": {"exitCode": 137, "signal": 9}}}],
    }
    assert cells({}, killed)[2] == "Signal:9"
    running = {
        "phase": "Running",
        "podIP": "127.0.0.9",
        "containerStatuses": [{"ready": True, "restartCount": 0, "state": {"running": {}}}],
    }
    assert cells({"nodeName": "n1"}, running)[1:] == [
        "1/1",
        "Running",
        "0",
        "3d",
        "127.0.0.9",
        "n1",
        "<none>",
        "<none>",
    ]
    assert cells({}, running, deletionTimestamp=created)[2] == "Terminating"
