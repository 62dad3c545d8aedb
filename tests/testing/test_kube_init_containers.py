"""Init containers in both kubelets: in order, each to completion, before the app (issue 14).

Every test runs with the process kubelet and again with the OCI kubelet (runc). The
pod's containers share a directory: an ``emptyDir`` in runc; in process mode the
pod's scratch directory, every container's working directory.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from lsst_spawner.testing.kube.table import to_table

from .test_kube_kubelet import wait_for as kubelet_wait_for


@pytest.fixture(params=["process", "oci"])
def node(request: pytest.FixtureRequest) -> Any:
    if request.param == "oci":
        request.applymarker(pytest.mark.integration)
        return request.getfixturevalue("oci_kubelet")
    return request.getfixturevalue("kubelet")


@pytest.fixture
def shell_image(node: Any, request: pytest.FixtureRequest) -> str:
    """An image with a shell (OCI: from the real registry; process mode: any name)."""
    if node.mode == "oci":
        return str(request.getfixturevalue("images")["shell"])
    return "shell:1"


async def wait_for(check: Any, limit: float = 30.0) -> Any:
    return await kubelet_wait_for(check, limit)


def shared(node: Any) -> str:
    """Where the pod's containers share files, as the containers see it."""
    return "/shared" if node.mode == "oci" else "."


def host_shared(node: Any, namespace: str, name: str) -> Path:
    """The same directory on the host, for the test to drop files in."""
    runtime = node.runtime_of(namespace, name)
    assert runtime is not None
    assert runtime.scratch is not None
    return runtime.scratch / "volumes" / "shared" if node.mode == "oci" else runtime.scratch


def shell(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "command": ["/bin/sh", "-c", script],
        "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
        **extra,
    }


def init_pod(
    name: str, image: str, init: list[dict[str, Any]], app: str, policy: str = "Never"
) -> dict[str, Any]:
    containers = [{**c, "image": image} for c in init]
    return {
        "metadata": {"name": name},
        "spec": {
            "initContainers": containers,
            "containers": [{**shell("app", app), "image": image}],
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "restartPolicy": policy,
            "terminationGracePeriodSeconds": 1,
        },
    }


def status_cell(pod: dict[str, Any]) -> str:
    """kubectl's STATUS column: the emulator's Table row for the pod."""
    return str(to_table("pods", [pod], "1")["rows"][0]["cells"][2])


def init_state(pod: dict[str, Any], name: str) -> dict[str, Any]:
    statuses = pod["status"].get("initContainerStatuses") or []
    found: dict[str, Any] = next(s for s in statuses if s["name"] == name)
    return found


def conditions(pod: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in pod["status"].get("conditions") or []}


async def create(kube_api: Any, body: dict[str, Any]) -> None:
    async with kube_api.api_client() as api:
        await client.CoreV1Api(api).create_namespaced_pod(kube_api.namespace, body)


async def log_of(kube_api: Any, pod: str, container: str) -> str:
    async with kube_api.api_client() as api:
        text: str = await client.CoreV1Api(api).read_namespaced_pod_log(
            pod, kube_api.namespace, container=container
        )
        return text


async def until(kube_api: Any, name: str, test: Any) -> dict[str, Any]:
    async def check() -> Any:
        pod = await kube_api.get("pods", name)
        return pod if pod is not None and test(pod) else None

    found: dict[str, Any] = await wait_for(check)
    return found


async def test_init_containers_run_in_order_each_to_completion_before_the_app(
    kube_api: Any, node: Any, shell_image: str
) -> None:
    d = shared(node)
    # The first waits for the test's go-ahead: while it runs, nothing else may start.
    first = shell("fetch", f"until [ -e {d}/go ]; do sleep 0.05; done; echo one > {d}/order")
    second = shell("prepare", f'test "$(cat {d}/order)" = one && echo two >> {d}/order')
    body = init_pod("ordered", shell_image, [first, second], f"cat {d}/order")
    await create(kube_api, body)

    pod = await until(kube_api, "ordered", lambda p: "running" in init_state(p, "fetch")["state"])
    assert pod["status"]["phase"] == "Pending"
    assert status_cell(pod) == "Init:0/2"
    assert conditions(pod)["Initialized"] == "False"
    assert init_state(pod, "prepare")["state"] == {"waiting": {"reason": "PodInitializing"}}
    app = pod["status"]["containerStatuses"][0]
    assert app["state"] == {"waiting": {"reason": "PodInitializing"}}

    await asyncio.to_thread(
        (host_shared(node, kube_api.namespace, "ordered") / "go").write_text, ""
    )
    pod = await until(kube_api, "ordered", lambda p: p["status"]["phase"] == "Succeeded")
    assert await log_of(kube_api, "ordered", "app") == "one\ntwo\n"
    for name in ("fetch", "prepare"):
        terminated = init_state(pod, name)["state"]["terminated"]
        assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    assert conditions(pod)["Initialized"] == "True"

    events = sorted(
        (e for e in await kube_api.list("events") if e["involvedObject"]["name"] == "ordered"),
        key=lambda e: int(e["metadata"]["resourceVersion"]),
    )
    seen = [(e["reason"], e["involvedObject"].get("fieldPath", "")) for e in events]
    started = [path for reason, path in seen if reason == "Started"]
    assert started == [
        "spec.initContainers{fetch}",
        "spec.initContainers{prepare}",
        "spec.containers{app}",
    ]
    for reason in ("Pulled", "Created"):
        assert (reason, "spec.initContainers{fetch}") in seen
        assert (reason, "spec.initContainers{prepare}") in seen


async def test_a_failing_init_container_fails_a_never_restarting_pod(
    kube_api: Any, node: Any, shell_image: str
) -> None:
    body = init_pod("broken", shell_image, [shell("setup", "echo no way; exit 3")], "echo app ran")
    await create(kube_api, body)
    pod = await until(kube_api, "broken", lambda p: p["status"]["phase"] == "Failed")
    terminated = init_state(pod, "setup")["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert status_cell(pod) == "Init:Error"
    assert conditions(pod)["Initialized"] == "False"
    assert pod["status"]["containerStatuses"][0]["state"] == {
        "waiting": {"reason": "PodInitializing"}
    }
    assert await log_of(kube_api, "broken", "setup") == "no way\n"
    paths = [
        e["involvedObject"].get("fieldPath")
        for e in await kube_api.list("events")
        if e["involvedObject"]["name"] == "broken"
    ]
    assert "spec.containers{app}" not in paths  # the app was never pulled nor created


async def test_a_failing_init_container_is_restarted_with_back_off_until_it_succeeds(
    kube_api: Any, node: Any, shell_image: str
) -> None:
    d = shared(node)
    script = f"echo try >> {d}/tries; test -e {d}/fixed || exit 7"
    body = init_pod("flaky", shell_image, [shell("setup", script)], "sleep 30", "OnFailure")
    await create(kube_api, body)

    def crashing(p: dict[str, Any]) -> bool:
        status = init_state(p, "setup")
        return "waiting" in status["state"] and status.get("restartCount", 0) >= 2

    pod = await until(kube_api, "flaky", crashing)
    status = init_state(pod, "setup")
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["lastState"]["terminated"]["exitCode"] == 7
    assert status_cell(pod) == "Init:CrashLoopBackOff"
    assert pod["status"]["phase"] == "Pending"
    reasons = [e["reason"] for e in await kube_api.list("events")]
    assert "BackOff" in reasons

    await asyncio.to_thread(
        (host_shared(node, kube_api.namespace, "flaky") / "fixed").write_text, ""
    )
    pod = await until(kube_api, "flaky", lambda p: p["status"]["phase"] == "Running")
    status = init_state(pod, "setup")
    assert status["state"]["terminated"]["reason"] == "Completed"
    assert status["restartCount"] >= 2
    assert conditions(pod)["Initialized"] == "True"
    tries = host_shared(node, kube_api.namespace, "flaky") / "tries"
    assert len((await asyncio.to_thread(tries.read_text)).split()) == status["restartCount"] + 1


async def test_a_missing_secret_holds_an_init_container_until_it_appears(
    kube_api: Any, node: Any, shell_image: str
) -> None:
    ns = kube_api.namespace
    init = shell(
        "token",
        f'echo "$TOKEN $MAYBE" > {shared(node)}/token',
        env=[
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "site", "key": "t"}}},
            {
                "name": "MAYBE",
                "valueFrom": {"secretKeyRef": {"name": "absent", "key": "x", "optional": True}},
            },
        ],
        envFrom=[{"configMapRef": {"name": "absent-too", "optional": True}}],
    )
    body = init_pod("waits", shell_image, [init], f"cat {shared(node)}/token")

    def waiting_message(p: dict[str, Any]) -> str:
        state = init_state(p, "token")["state"].get("waiting") or {}
        if state.get("reason") != "CreateContainerConfigError":
            return ""
        return str(state.get("message"))

    await create(kube_api, body)
    pod = await until(kube_api, "waits", waiting_message)
    assert waiting_message(pod) == 'secret "site" not found'
    assert status_cell(pod) == "Init:CreateContainerConfigError"
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_secret(
            ns, {"metadata": {"name": "site"}, "stringData": {"other": "x"}}
        )
        pod = await until(kube_api, "waits", lambda p: "couldn't" in waiting_message(p))
        assert waiting_message(pod) == f"couldn't find key t in Secret {ns}/site"
        await v1.patch_namespaced_secret("site", ns, {"stringData": {"t": "arrived"}})
    await until(kube_api, "waits", lambda p: p["status"]["phase"] == "Succeeded")
    assert (await log_of(kube_api, "waits", "app")).strip() == "arrived"


@pytest.mark.integration
async def test_an_init_container_runs_as_its_own_security_context(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str]
) -> None:
    # In runc: the init container as root with CHOWN only and a read-only root; the app as
    # the user it gave the directory to.
    script = (
        "mkdir /shared/home && chown 40001:40002 /shared/home && "
        "grep CapEff /proc/self/status; id -u; touch /etc/x 2>/dev/null || echo ro-root"
    )
    init = shell(
        "init-home",
        script,
        securityContext={
            "runAsUser": 0,
            "runAsGroup": 0,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]},
        },
    )
    body = init_pod("homes", images["shell"], [init], "id -u; touch /shared/home/mine && echo ok")
    body["spec"]["containers"][0]["securityContext"] = {"runAsUser": 40001, "runAsGroup": 40002}
    await create(kube_api, body)
    pod = await until(kube_api, "homes", lambda p: p["status"]["phase"] in ("Succeeded", "Failed"))
    init_log = await log_of(kube_api, "homes", "init-home")
    assert pod["status"]["phase"] == "Succeeded", init_log
    cap, uid, root = init_log.split("\n")[:3]
    assert cap.split() == ["CapEff:", "0000000000000001"]  # CAP_CHOWN alone
    assert (uid, root) == ("0", "ro-root")
    assert (await log_of(kube_api, "homes", "app")).split() == ["40001", "ok"]


@pytest.mark.parametrize(
    ("init", "field", "message"),
    [
        ({"name": "app"}, "spec.initContainers[0].name", 'Duplicate value: "app"'),
        (
            {"name": "i", "readinessProbe": {"exec": {"command": ["true"]}}},
            "spec.initContainers[0].readinessProbe",
            "may not be set for init containers",
        ),
        (
            {"name": "i", "restartPolicy": "Always"},
            "spec.initContainers[0].restartPolicy",
            "sidecar init containers are not supported",
        ),
        (
            {"name": "i", "volumeMounts": [{"name": "nope", "mountPath": "/x"}]},
            "spec.initContainers[0].volumeMounts[0].name",
            "Not found: 'nope'",
        ),
    ],
)
async def test_the_api_refuses_init_containers_a_kubelet_could_not_run(
    kube_api: Any, init: dict[str, Any], field: str, message: str
) -> None:
    body = init_pod("refused", "x:1", [init], "true")
    async with kube_api.api_client() as api:
        with pytest.raises(client.ApiException) as refused:
            await client.CoreV1Api(api).create_namespaced_pod(kube_api.namespace, body)
    assert refused.value.status == 422
    details = json.loads(refused.value.body)["details"]
    assert [(c["field"], message in c["message"]) for c in details["causes"]] == [(field, True)]
