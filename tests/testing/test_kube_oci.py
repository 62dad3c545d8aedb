"""The OCI kubelet: pods in runc, as their security context, seen from inside the container."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from .test_kube_kubelet import wait_for as kubelet_wait_for

pytestmark = pytest.mark.integration

RUNNING_OR_DONE = ("Running", "Succeeded", "Failed")


def pod(name: str, image: str, script: str | None = None, **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image, **extra.pop("container", {})}
    if script is not None:
        container["args"] = [script]
    spec = {
        "containers": [container],
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 1,
        **extra,
    }
    return {"metadata": {"name": name, "labels": {"app": name}}, "spec": spec}


async def wait_for(check: Any, limit: float = 30.0) -> Any:
    """The kubelet tests' wait, with the longer limit a container in runc needs."""
    return await kubelet_wait_for(check, limit)


async def finished(kube_api: Any, name: str) -> dict[str, Any]:
    async def done() -> Any:
        found = await kube_api.get("pods", name)
        return found if found and found["status"].get("phase") in ("Succeeded", "Failed") else None

    return await wait_for(done)


async def run_to_end(kube_api: Any, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Create the pod, wait until it ends, return it and its log (read through the API)."""
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_pod(kube_api.namespace, body)
        done = await finished(kube_api, body["metadata"]["name"])
        log = await v1.read_namespaced_pod_log(body["metadata"]["name"], kube_api.namespace)
    return done, log


def fields(log: str) -> dict[str, str]:
    """``key=value`` lines of a log."""
    return dict(line.split("=", 1) for line in log.splitlines() if "=" in line)


REPORT = """
echo "id=$(id)"
echo "uid=$(id -u)"
echo "groups=$(id -G)"
grep -E '^(CapEff|CapBnd|CapPrm|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\\t' | sed 's/:/=/'
if touch /etc/oci-probe 2>/dev/null; then echo "root=writable"; else echo "root=readonly"; fi
if touch /tmp/x 2>/dev/null; then echo "tmp=writable"; else echo "tmp=readonly"; fi
if unshare -U true 2>/dev/null; then echo "unshare=allowed"; else echo "unshare=refused"; fi
"""


async def test_the_security_context_is_honoured_inside_the_container(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str]
) -> None:
    body = pod(
        "locked",
        images["shell"],
        REPORT,
        securityContext={
            "runAsUser": 40001,
            "runAsGroup": 40002,
            "supplementalGroups": [1234567, 40003],
            "fsGroup": 40004,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        container={
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "readOnlyRootFilesystem": True,
            }
        },
    )
    done, log = await run_to_end(kube_api, body)
    seen = fields(log)
    assert done["status"]["phase"] == "Succeeded", log
    assert seen["uid"] == "40001"
    primary, *others = seen["groups"].split()
    assert primary == "40002"
    assert sorted(others) == ["1234567", "40003", "40004"]  # the kernel keeps them sorted
    for caps in ("CapEff", "CapBnd", "CapPrm"):
        assert seen[caps] == "0000000000000000", caps
    assert seen["NoNewPrivs"] == "1"
    assert seen["Seccomp"] == "2"
    assert seen["unshare"] == "refused"
    assert seen["root"] == "readonly"
    assert seen["tmp"] == "writable"
    assert not await asyncio.to_thread(os.path.exists, "/etc/oci-probe")


async def test_without_those_fields_the_container_gets_the_runtime_defaults(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str]
) -> None:
    # The contrast that shows each field above did something: root, default caps in the
    # bounding set, no no_new_privs, no seccomp filter, a writable (throwaway) root layer.
    done, log = await run_to_end(kube_api, pod("open", images["shell"], REPORT))
    seen = fields(log)
    assert done["status"]["phase"] == "Succeeded", log
    assert seen["uid"] == "0"
    assert seen["CapBnd"] != "0000000000000000"
    assert seen["NoNewPrivs"] == "0"
    assert seen["Seccomp"] == "0"
    assert seen["root"] == "writable"
    assert not await asyncio.to_thread(os.path.exists, "/etc/oci-probe"), "its own root layer"


async def test_run_as_non_root_refuses_a_root_container(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str]
) -> None:
    body = pod("rooty", images["shell"], "id", securityContext={"runAsNonRoot": True})
    async with kube_api.api_client() as api:
        await client.CoreV1Api(api).create_namespaced_pod(kube_api.namespace, body)

    async def refused() -> Any:
        found = await kube_api.get("pods", "rooty")
        statuses = found["status"].get("containerStatuses") or [{}]
        return statuses[0].get("state", {}).get("waiting", {}).get("message")

    assert "runAsNonRoot and image will run as root" in await wait_for(refused)


async def test_the_image_config_supplies_entrypoint_cmd_env_user_and_workdir(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str]
) -> None:
    body = pod(
        "configured",
        images["configured"],
        container={"env": [{"name": "SHARED", "value": "pod"}]},
    )
    done, log = await run_to_end(kube_api, body)
    assert done["status"]["phase"] == "Succeeded", log
    assert log.strip() == "cmd ran as 4321 in /tmp with from-image"

    # args replace Cmd and keep the Entrypoint; command replaces both.
    body = pod("args", images["configured"], 'echo "$SHARED $(id -g)"')
    body["spec"]["containers"][0]["env"] = [{"name": "SHARED", "value": "pod"}]
    _, log = await run_to_end(kube_api, body)
    assert log.strip() == "pod 4322"
    body = pod("command", images["configured"], container={"command": ["/bin/echo", "direct"]})
    _, log = await run_to_end(kube_api, body)
    assert log.strip() == "direct"


async def test_the_environment_is_the_pods_own(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str]
) -> None:
    os.environ["LSST_OCI_HOST_ONLY"] = "leak"
    try:
        body = pod("env", images["plain"], container={"command": ["/usr/bin/env"]})
        body["spec"]["containers"][0]["env"] = [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "REF", "value": "$(POD_NAME)-x"},
        ]
        _, log = await run_to_end(kube_api, body)
    finally:
        del os.environ["LSST_OCI_HOST_ONLY"]
    seen = fields(log)
    assert "LSST_OCI_HOST_ONLY" not in seen
    assert seen["POD_NAME"] == "env"
    assert seen["REF"] == "env-x"
    assert seen["HOSTNAME"] == "env"
    assert seen["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert seen["PATH"].split(":")[0] == os.path.dirname(sys.executable)
    assert seen["HOME"] == "/root"


async def test_a_reference_the_registry_does_not_have_is_err_image_pull(
    kube_api: Any, oci_kubelet: Any, local_registry: Any
) -> None:
    image = f"{local_registry.host_port}/oci/absent:nope"
    async with kube_api.api_client() as api:
        await client.CoreV1Api(api).create_namespaced_pod(kube_api.namespace, pod("nope", image))

    async def failed() -> Any:
        events = await kube_api.list("events")
        messages = [e["message"] for e in events if e["involvedObject"]["name"] == "nope"]
        return messages if "Error: ErrImagePull" in messages else None

    messages = await wait_for(failed)
    assert any(f'Failed to pull image "{image}"' in m and "not found" in m for m in messages)
    found = await kube_api.get("pods", "nope")
    assert found["status"]["phase"] == "Pending"
    waiting = found["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] in ("ErrImagePull", "ImagePullBackOff")


VOLUME_REPORT = """
set -e
for f in /cm/one /cm/renamed/two /sub/one.txt /sec/token /proj/a /proj/pod /dapi/labels; do
  echo "$f=$(cat $f | tr '\\n' ';') $(stat -L -c '%a %g' $f)"
done
echo "empty=$(stat -c '%a %g' /scratch)"
echo "claim=$(cat /claim/kept 2>/dev/null || echo none)"
date +%s%N > /claim/kept
echo written > /scratch/file
if touch /cm/new 2>/dev/null; then echo "cm=writable"; else echo "cm=readonly"; fi
if touch /host/new 2>/dev/null; then echo "hostro=writable"; else echo "hostro=readonly"; fi
"""


async def test_volumes_are_mounted_as_a_kubelet_mounts_them(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str], tmp_path: Path
) -> None:
    ns = kube_api.namespace
    host = tmp_path / "host"
    host.mkdir()
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_config_map(
            ns, {"metadata": {"name": "cm"}, "data": {"one": "1", "two": "2", "three": "3"}}
        )
        token = base64.b64encode(b"sekrit").decode()
        await v1.create_namespaced_secret(ns, {"metadata": {"name": "sec"}, "data": {"t": token}})
        await v1.create_namespaced_persistent_volume_claim(
            ns,
            {
                "metadata": {"name": "home"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )
    volumes = [
        {
            "name": "cm",
            "configMap": {
                "name": "cm",
                "defaultMode": 0o640,
                "items": [
                    {"key": "one", "path": "one"},
                    {"key": "two", "path": "renamed/two", "mode": 0o600},
                ],
            },
        },
        {"name": "sec", "secret": {"secretName": "sec", "items": [{"key": "t", "path": "token"}]}},
        {"name": "scratch", "emptyDir": {}},
        {"name": "claim", "persistentVolumeClaim": {"claimName": "home"}},
        {"name": "host", "hostPath": {"path": str(host), "type": "Directory"}},
        {
            "name": "proj",
            "projected": {
                "sources": [
                    {"configMap": {"name": "cm", "items": [{"key": "three", "path": "a"}]}},
                    {
                        "downwardAPI": {
                            "items": [{"path": "pod", "fieldRef": {"fieldPath": "metadata.name"}}]
                        }
                    },
                ]
            },
        },
        {
            "name": "dapi",
            "downwardAPI": {
                "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
            },
        },
    ]
    mounts = [
        {"name": "cm", "mountPath": "/cm"},
        {"name": "cm", "mountPath": "/sub/one.txt", "subPath": "one"},
        {"name": "sec", "mountPath": "/sec"},
        {"name": "scratch", "mountPath": "/scratch"},
        {"name": "claim", "mountPath": "/claim"},
        {"name": "host", "mountPath": "/host", "readOnly": True},
        {"name": "proj", "mountPath": "/proj"},
        {"name": "dapi", "mountPath": "/dapi"},
    ]

    def body(name: str) -> dict[str, Any]:
        made = pod(
            name,
            images["shell"],
            VOLUME_REPORT,
            volumes=volumes,
            securityContext={"runAsUser": 40001, "runAsGroup": 40001, "fsGroup": 40100},
        )
        made["spec"]["containers"][0]["volumeMounts"] = mounts
        return made

    done, log = await run_to_end(kube_api, body("vol1"))
    seen = fields(log)
    assert done["status"]["phase"] == "Succeeded", log
    assert seen["/cm/one"] == "1 640 40100"  # defaultMode, plus fsGroup's group
    assert seen["/cm/renamed/two"] == "2 640 40100"  # item mode 0600 + group read
    assert seen["/sub/one.txt"] == "1 640 40100"
    assert seen["/sec/token"] == "sekrit 644 40100"
    assert seen["/proj/a"] == "3 644 40100"
    assert seen["/proj/pod"] == "vol1 644 40100"
    assert seen["/dapi/labels"] == 'app="vol1" 644 40100'
    assert seen["empty"] == "2777 40100"
    assert seen["claim"] == "none"
    assert seen["cm"] == "readonly"
    assert seen["hostro"] == "readonly"
    # The claim's directory outlives the pod; the next pod finds what the first wrote.
    _, log = await run_to_end(kube_api, body("vol2"))
    assert fields(log)["claim"].isdigit()


async def test_a_subpath_through_a_symlink_out_of_the_volume_is_refused(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str]
) -> None:
    # The classic subPath escape: one pod plants a symlink to / in a claim, the next
    # mounts that subPath. It must not get the host's root.
    async with kube_api.api_client() as api:
        await client.CoreV1Api(api).create_namespaced_persistent_volume_claim(
            kube_api.namespace,
            {
                "metadata": {"name": "shared"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )
    volumes = [{"name": "v", "persistentVolumeClaim": {"claimName": "shared"}}]
    planter = pod("planter", images["shell"], "ln -s / /v/escape", volumes=volumes)
    planter["spec"]["containers"][0]["volumeMounts"] = [{"name": "v", "mountPath": "/v"}]
    done, log = await run_to_end(kube_api, planter)
    assert done["status"]["phase"] == "Succeeded", log
    victim = pod("victim", images["shell"], "ls /host-root", volumes=volumes)
    victim["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "v", "mountPath": "/host-root", "subPath": "escape"}
    ]
    async with kube_api.api_client() as api:
        await client.CoreV1Api(api).create_namespaced_pod(kube_api.namespace, victim)

    async def refused() -> Any:
        found = await kube_api.get("pods", "victim")
        statuses = found["status"].get("containerStatuses") or [{}]
        return statuses[0].get("state", {}).get("waiting", {}).get("message")

    assert "resolves outside the volume" in await wait_for(refused)


async def test_services_resolve_inside_pods_through_etc_hosts(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str]
) -> None:
    ns = kube_api.namespace
    server = pod(
        "hub",
        images["shell"],
        f'exec {sys.executable} -m http.server --bind "$(hostname -i)" 8443 -d /tmp',
    )
    server["metadata"]["labels"] = {"component": "hub"}
    server["spec"]["restartPolicy"] = "Always"
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_service(
            ns,
            {
                "metadata": {"name": "hub-ssl"},
                "spec": {
                    "clusterIP": "None",
                    "selector": {"component": "hub"},
                    "ports": [{"port": 8443, "name": "https"}],
                },
            },
        )
        await v1.create_namespaced_pod(ns, server)

        async def hub_ip() -> Any:
            found = await kube_api.get("pods", "hub")
            return (found or {}).get("status", {}).get("podIP")

        ip = await wait_for(hub_ip)
    fetch = (
        "import socket, sys, urllib.request\n"
        "for name in sys.argv[1:]:\n"
        "    print(name + '=' + socket.gethostbyname(name))\n"
        "reply = urllib.request.urlopen('http://' + sys.argv[2] + ':8443/')\n"
        "print('status=' + str(reply.status))\n"
    )
    client_pod = pod(
        "client",
        images["plain"],
        container={
            "command": [
                sys.executable,
                "-c",
                fetch,
                "hub-ssl",
                f"hub-ssl.{ns}",
                f"hub-ssl.{ns}.svc",
            ],
        },
    )
    client_pod["spec"]["restartPolicy"] = "OnFailure"  # until the hub listens
    done, log = await run_to_end(kube_api, client_pod)
    seen = fields(log)
    assert done["status"]["phase"] == "Succeeded", log
    assert seen["hub-ssl"] == seen[f"hub-ssl.{ns}"] == seen[f"hub-ssl.{ns}.svc"] == ip
    assert seen["status"] == "200"


async def test_a_missing_config_map_or_secret_is_retried_until_it_exists(
    kube_api: Any, oci_kubelet: Any, images: dict[str, str]
) -> None:
    ns = kube_api.namespace
    body = pod(
        "late",
        images["shell"],
        'echo "$(cat /cfg/k) $TOKEN"',
        volumes=[{"name": "cfg", "configMap": {"name": "later"}}],
    )
    container = body["spec"]["containers"][0]
    container["volumeMounts"] = [{"name": "cfg", "mountPath": "/cfg"}]
    container["env"] = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "t"}}}
    ]
    async with kube_api.api_client() as api:
        v1 = client.CoreV1Api(api)
        await v1.create_namespaced_pod(ns, body)

        async def reported(reason: str) -> Any:
            events = await kube_api.list("events")
            return any(
                e["involvedObject"]["name"] == "late" and e["reason"] == reason for e in events
            )

        await wait_for(lambda: reported("FailedMount"))
        await v1.create_namespaced_config_map(
            ns, {"metadata": {"name": "later"}, "data": {"k": "mounted"}}
        )

        async def config_error() -> Any:
            found = await kube_api.get("pods", "late")
            statuses = found["status"].get("containerStatuses") or [{}]
            waiting = statuses[0].get("state", {}).get("waiting", {})
            return waiting.get("reason") == "CreateContainerConfigError"

        await wait_for(config_error)
        await v1.create_namespaced_secret(
            ns, {"metadata": {"name": "later"}, "stringData": {"t": "arrived"}}
        )
        done = await finished(kube_api, "late")
        log = await v1.read_namespaced_pod_log("late", ns)
    assert done["status"]["phase"] == "Succeeded", log
    assert log.strip() == "mounted arrived"
