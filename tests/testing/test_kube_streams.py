"""Exec, logs, restarts and probes of OCI kubelet pods, driven by the real kubectl."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from .test_kube_oci import finished, pod, wait_for

pytestmark = pytest.mark.integration

KUBECTL = os.environ.get("LSST_SPAWNER_KUBECTL") or shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture
def kube_tls() -> bool:
    """kubectl sends its bearer token only over https."""
    return True


async def kubectl(kube_api: Any, *args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    if not os.access(KUBECTL, os.X_OK):
        pytest.fail(f"kubectl is missing ({KUBECTL}); set LSST_SPAWNER_KUBECTL", pytrace=False)
    process = await asyncio.create_subprocess_exec(
        KUBECTL,
        f"--kubeconfig={kube_api.kubeconfig}",
        f"--namespace={kube_api.namespace}",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def create(kube_api: Any, body: dict[str, Any]) -> None:
    async with kube_api.api_client() as api:
        await client.CoreV1Api(api).create_namespaced_pod(kube_api.namespace, body)


async def running(kube_api: Any, name: str) -> Any:
    async def check() -> Any:
        found = await kube_api.get("pods", name)
        statuses = (found or {}).get("status", {}).get("containerStatuses") or []
        return found if statuses and all(s["ready"] for s in statuses) else None

    return await wait_for(check)


async def test_kubectl_exec_runs_inside_the_container_as_its_user(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str]
) -> None:
    body = pod(
        "shell",
        images["shell"],
        "trap 'exit 0' TERM; while :; do sleep 0.2; done",
        securityContext={"runAsUser": 40001, "runAsGroup": 40001},
    )
    await create(kube_api, body)
    await running(kube_api, "shell")
    code, out, err = await kubectl(kube_api, "exec", "shell", "--", "id", "-u")
    assert (code, out.strip()) == (0, "40001"), err
    code, out, err = await kubectl(
        kube_api, "exec", "shell", "--", "sh", "-c", "echo o; echo e >&2; exit 3"
    )
    assert code == 3
    assert out == "o\n"
    assert "e\n" in err
    # stdin, closed by kubectl when its input ends (v5.channel.k8s.io's close channel).
    code, out, err = await kubectl(
        kube_api, "exec", "-i", "shell", "--", "tr", "a-z", "A-Z", stdin=b"hello\n"
    )
    assert (code, out) == (0, "HELLO\n"), err
    code, _, err = await kubectl(kube_api, "exec", "shell", "-c", "nope", "--", "true")
    assert code != 0
    assert "container nope is not valid for pod shell" in err


async def test_kubectl_logs_follow_tail_and_previous(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str]
) -> None:
    script = (
        "n=$(cat /data/runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/runs; "
        'echo "run $n"; echo "second line"; [ $n -ge 2 ] && exit 0; exit 1'
    )
    body = pod("crashy", images["shell"], script, restartPolicy="OnFailure")
    body["spec"]["volumes"] = [{"name": "data", "emptyDir": {}}]
    body["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    await create(kube_api, body)
    done = await finished(kube_api, "crashy")
    status = done["status"]["containerStatuses"][0]
    assert done["status"]["phase"] == "Succeeded"
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert status["state"]["terminated"]["exitCode"] == 0
    assert (await kubectl(kube_api, "logs", "crashy"))[1] == "run 2\nsecond line\n"
    assert (await kubectl(kube_api, "logs", "crashy", "--previous"))[1] == "run 1\nsecond line\n"
    assert (await kubectl(kube_api, "logs", "crashy", "--tail=1"))[1] == "second line\n"

    # No previous run: the API server's error, not the current log.
    once = pod("once", images["shell"], "echo only")
    await create(kube_api, once)
    await finished(kube_api, "once")
    code, out, err = await kubectl(kube_api, "logs", "once", "--previous")
    assert code != 0
    assert out == ""
    assert 'previous terminated container "main" in pod "once" not found' in err

    # -f follows until the container exits.
    slow = pod("slow", images["shell"], "for i in 1 2 3; do echo tick $i; sleep 0.3; done")
    await create(kube_api, slow)
    await running(kube_api, "slow")
    code, out, err = await kubectl(kube_api, "logs", "-f", "slow")
    assert (code, out) == (0, "tick 1\ntick 2\ntick 3\n"), err


async def test_restart_policy_and_exit_codes(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str]
) -> None:
    await create(kube_api, pod("never", images["shell"], "exit 3"))
    failed = await finished(kube_api, "never")
    assert failed["status"]["phase"] == "Failed"
    terminated = failed["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")

    await create(kube_api, pod("always", images["shell"], "exit 0", restartPolicy="Always"))

    async def restarted_twice() -> Any:
        found = await kube_api.get("pods", "always")
        statuses = found["status"].get("containerStatuses") or [{}]
        return found if statuses[0].get("restartCount", 0) >= 2 else None

    again = await restarted_twice_or_fail(restarted_twice)
    status = again["status"]["containerStatuses"][0]
    assert status["lastState"]["terminated"]["exitCode"] == 0
    assert again["status"]["phase"] == "Running"


async def restarted_twice_or_fail(check: Any) -> Any:
    return await wait_for(check, 30)


async def test_probes_run_on_schedule_and_stop_when_the_container_exits(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str], tmp_path: Path
) -> None:
    counts = tmp_path / "probes"
    counts.mkdir()
    counts.chmod(0o777)
    body = pod(
        "probed",
        images["shell"],
        "sleep 1; touch /tmp/ready; sleep 1.5; exit 0",
        securityContext={"runAsUser": 40001},
    )
    container = body["spec"]["containers"][0]
    container["readinessProbe"] = {
        "exec": {"command": ["sh", "-c", "echo r >> /counts/ready; test -f /tmp/ready"]},
        "periodSeconds": 1,
        "failureThreshold": 1,
    }
    container["volumeMounts"] = [{"name": "counts", "mountPath": "/counts"}]
    body["spec"]["volumes"] = [{"name": "counts", "hostPath": {"path": str(counts)}}]
    await create(kube_api, body)
    first = await kube_api.get("pods", "probed")
    await wait_for(lambda: _phase(kube_api, "probed", "Running"))
    unready = await kube_api.get("pods", "probed")
    assert first is not None
    assert unready["status"]["containerStatuses"][0]["ready"] is False
    await running(kube_api, "probed")
    await finished(kube_api, "probed")
    after_exit = (counts / "ready").read_text().count("r")
    assert after_exit >= 2
    await asyncio.sleep(1.5)
    assert (counts / "ready").read_text().count("r") == after_exit, "probing went on after exit"


async def _phase(kube_api: Any, name: str, phase: str) -> bool:
    found = await kube_api.get("pods", name)
    return bool(found) and found["status"].get("phase") == phase


async def test_a_failing_liveness_probe_restarts_the_container(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str]
) -> None:
    body = pod("sick", images["shell"], "trap 'exit 0' TERM; while :; do sleep 0.1; done")
    body["spec"]["restartPolicy"] = "Always"
    body["spec"]["containers"][0]["livenessProbe"] = {
        "exec": {"command": ["false"]},
        "periodSeconds": 1,
        "failureThreshold": 2,
    }
    await create(kube_api, body)

    async def restarted() -> Any:
        found = await kube_api.get("pods", "sick")
        statuses = found["status"].get("containerStatuses") or [{}]
        return found if statuses[0].get("restartCount", 0) >= 1 else None

    await wait_for(restarted)
    events = await kube_api.list("events")
    messages = [e["message"] for e in events if e["involvedObject"]["name"] == "sick"]
    assert any(m.startswith("Liveness probe failed") for m in messages), messages
    assert "Container main failed liveness probe, will be restarted" in messages


async def test_kubectl_attach_feeds_stdin_and_streams_output(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str]
) -> None:
    body = pod("attached", images["shell"], "echo started; exec tr a-z A-Z")
    body["spec"]["containers"][0]["stdin"] = True
    await create(kube_api, body)
    await running(kube_api, "attached")
    code, out, err = await kubectl(kube_api, "attach", "-i", "attached", stdin=b"shout\n")
    assert code == 0, err
    assert "SHOUT" in out
    done = await finished(kube_api, "attached")
    assert done["status"]["phase"] == "Succeeded"


async def test_hostile_stream_requests_get_the_api_servers_errors(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str]
) -> None:
    import aiohttp

    two = pod("two", images["shell"], "trap 'exit 0' TERM; while :; do sleep 0.2; done")
    two["spec"]["containers"].append({**two["spec"]["containers"][0], "name": "side"})
    await create(kube_api, two)
    await running(kube_api, "two")
    base = f"{kube_api.emulator.url}/api/v1/namespaces/{kube_api.namespace}/pods"

    from lsst_spawner.testing.kube.authn import ADMIN_TOKEN

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    async def get(path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http,
            http.get(base + path, headers={**admin, **(headers or {})}) as r,
        ):
            return r.status, (await r.json()).get("message", "")

    status, message = await get("/two/log")
    assert status == 400
    assert message == "a container name must be specified for pod two, choose one of: [main side]"
    assert (await get("/two/log?container=main&tailLines=-3"))[0] == 400
    assert (await get("/two/log?container=main&timestamps=true"))[0] == 400
    assert await get("/two/log?container=ghost") == (
        400,
        "container ghost is not valid for pod two",
    )
    # SPDY (what kubectl before 1.29 speaks) and plain requests are not upgraded.
    spdy = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}
    status, message = await get("/two/exec?container=main&command=id&stdout=true", spdy)
    assert (status, message) == (400, "Upgrade request required")
    status, message = await get("/two/exec?container=main&stdout=true")
    assert (status, message) == (400, "you must specify at least 1 command")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(
                base + "/two/exec?container=main&command=id&stdout=true",
                protocols=("channel.k8s.io",),
                headers=admin,
            )
    assert refused.value.status == 400
    assert (await get("/ghost/log"))[0] == 404
