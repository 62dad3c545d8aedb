"""The real kubectl binaries against the emulator, through a kubeconfig (issue 14).

``/usr/bin/kubectl`` dispatches on the server's minor version; the versioned binaries
(``kubectl.1.27`` ... ``kubectl.1.33``) sit next to the real dispatcher. These tests
run the oldest and the newest of them directly, so they do not depend on what the
dispatcher picks.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.testing.kube.openapi import newest_kubernetes_version
from lsst_spawner.testing.waiting import wait_for

pytestmark = pytest.mark.integration


def _versioned_kubectls() -> list[tuple[tuple[int, int], Path]]:
    found = shutil.which("kubectl")
    if found is None:
        return []
    directory = Path(os.path.realpath(found)).parent
    versions = []
    for path in directory.glob("kubectl.1.*"):
        if match := re.fullmatch(r"kubectl\.(\d+)\.(\d+)", path.name):
            versions.append(((int(match[1]), int(match[2])), path))
    return sorted(versions)


KUBECTLS = _versioned_kubectls()
# Without the binaries every test below fails (on a path that does not exist), never skips.
EDGES = [KUBECTLS[0], KUBECTLS[-1]] if KUBECTLS else [((0, 0), Path("kubectl.not-installed"))]


@pytest.fixture
def kube_tls() -> bool:
    """kubectl sends its bearer token only over https."""
    return True


class Kubectl:
    """One kubectl binary pointed at the test's kubeconfig and namespace."""

    def __init__(self, binary: Path, version: tuple[int, int], kube_api: Any, tmp: Path):
        self.binary, self.version, self.kube_api = binary, version, kube_api
        self.cache = tmp / f"kubectl-cache-{version[0]}.{version[1]}"

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [
            str(self.binary),
            f"--kubeconfig={self.kube_api.kubeconfig}",
            f"--cache-dir={self.cache}",
            f"--namespace={self.kube_api.namespace}",
            *args,
        ]
        result = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=120, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def apply(self, manifest: dict[str, Any], *args: str, check: bool = True) -> Any:
        return self.run("apply", "-f", "-", *args, stdin=json.dumps(manifest), check=check)


@pytest.fixture(params=EDGES, ids=[f"{v[0]}.{v[1]}" for v, _ in EDGES])
def kubectl(request: pytest.FixtureRequest, kube_api: Any, tmp_path: Path) -> Kubectl:
    version, binary = request.param
    return Kubectl(binary, version, kube_api, tmp_path)


def test_kubectl_binaries_are_installed() -> None:
    """The tests below need them; without them this fails rather than skipping."""
    assert len(KUBECTLS) >= 2, (
        "expected kubectl.1.27 ... kubectl.1.33 next to the kubectl dispatcher "
        f"(found {[str(p) for _, p in KUBECTLS]})"
    )


def pod_manifest(name: str, image: str = "lab:w_2026_01") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "containers": [{"name": "nb", "image": image, "ports": [{"containerPort": 8888}]}]
        },
    }


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def columns(output: str) -> list[str]:
    """The header of a kubectl table, split on its runs of two or more spaces."""
    return re.split(r"\s{2,}", output.splitlines()[0].strip())


def row(output: str, first: str) -> list[str]:
    for line in output.splitlines()[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{output}")


def running(kube_api: Any, name: str) -> dict[str, Any]:
    def phase() -> Any:
        pod = kube_api.emulator.get_object("pods", name, kube_api.namespace)
        return pod if pod and (pod.get("status") or {}).get("phase") == "Running" else None

    return dict(wait_for(phase, f"pod {name} running"))


# -- Tables ---------------------------------------------------------------------------------


def init_manifest(name: str, script: str, policy: str) -> dict[str, Any]:
    body = pod_manifest(name)
    body["spec"]["containers"][0]["command"] = ["sleep", "30"]
    body["spec"]["restartPolicy"] = policy
    body["spec"]["initContainers"] = [
        {"name": f"init-{n}", "image": "lab:w_2026_01", "command": ["/bin/sh", "-c", script]}
        for n in range(2)
    ]
    return body


def test_get_pods_shows_the_init_containers_progress_and_failures(
    kubectl: Kubectl, kube_api: Any, kubelet: Any
) -> None:
    # The process kubelet runs the init containers; kubectl prints the server's Table.
    kubectl.apply(init_manifest("initing", "until [ -e go ]; do sleep 0.05; done", "Never"))
    kubectl.apply(init_manifest("init-error", "exit 3", "Never"))
    kubectl.apply(init_manifest("init-crash", "exit 3", "OnFailure"))

    def status(name: str) -> str:
        return row(kubectl.run("get", "pods").stdout, name)[2]

    wait_for(lambda: status("init-error") == "Init:Error", "Init:Error")
    wait_for(lambda: status("init-crash") == "Init:CrashLoopBackOff", "Init:CrashLoopBackOff")
    wait_for(lambda: status("initing") == "Init:0/2", "Init:0/2")

    def all_three() -> str | None:
        # One listing that shows all three: between two listings the kubelet restarts the
        # crashing init container when its back-off ends (Init:0/2 again, as a cluster shows).
        listed = kubectl.run("get", "pods").stdout
        shown = [row(listed, name)[2] for name in ("initing", "init-error", "init-crash")]
        return listed if shown == ["Init:0/2", "Init:Error", "Init:CrashLoopBackOff"] else None

    listed = wait_for(all_three, "one listing with the three init states")
    assert row(listed, "initing")[1] == "0/1"
    assert row(listed, "init-error")[1:3] == ["0/1", "Init:Error"]
    crash = row(listed, "init-crash")
    assert crash[2] == "Init:CrashLoopBackOff"
    assert int(crash[3].split()[0]) >= 1  # RESTARTS counts the init container's restarts
    runtime = kubelet.runtime_of(kube_api.namespace, "initing")
    (runtime.scratch / "go").write_text("")
    wait_for(lambda: status("initing") == "Running", "Running after the init containers")


def test_get_pods_shows_ready_status_restarts_ip_and_node(
    kubectl: Kubectl, kube_api: Any, kubelet: Any
) -> None:
    kubelet.mode = "stub"
    kubelet.images = {"lab:w_2026_01"}
    kubectl.apply(pod_manifest("lab"))
    kubectl.apply(pod_manifest("missing", image="lab:does_not_exist"))
    pod = running(kube_api, "lab")
    wait_for(lambda: "ImagePullBackOff" in kubectl.run("get", "pods").stdout, "ImagePullBackOff")

    plain = kubectl.run("get", "pods").stdout
    assert columns(plain) == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert row(plain, "lab")[1:4] == ["1/1", "Running", "0"]
    assert row(plain, "missing")[1:4] == ["0/1", "ImagePullBackOff", "0"]

    wide = kubectl.run("get", "pods", "-o", "wide").stdout
    assert columns(wide) == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ]
    cells = row(wide, "lab")
    assert cells[5:] == [pod["status"]["podIP"], pod["spec"]["nodeName"], "<none>", "<none>"]
    missing = kube_api.emulator.get_object("pods", "missing", kube_api.namespace)
    assert row(wide, "missing")[5:7] == [missing["status"]["podIP"], missing["spec"]["nodeName"]]


def test_every_kind_prints_the_columns_of_an_api_server(kubectl: Kubectl, kube_api: Any) -> None:
    kubectl.apply(configmap("settings", a="1", b="2"))
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "hub"},
            "spec": {"selector": {"app": "hub"}, "ports": [{"port": 8081}]},
        }
    )
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "home"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    kubectl.run("create", "secret", "generic", "token", "--from-literal=t=x")
    kubectl.run("create", "namespace", f"{kube_api.namespace}-extra")
    events_body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "hub.1"},
        "involvedObject": {"kind": "Service", "name": "hub", "namespace": kube_api.namespace},
        "reason": "Checked",
        "message": "checked by the test ",
        "type": "Normal",
        "source": {"component": "test"},
    }
    kubectl.apply(events_body)
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "node-9", "labels": {"node-role.kubernetes.io/worker": ""}},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "127.0.9.1"}],
                "nodeInfo": {
                    "kubeletVersion": "v1.37.0",
                    "osImage": "Debian",
                    "kernelVersion": "6.1.0",
                    "containerRuntimeVersion": "",
                    **dict.fromkeys(
                        (
                            "machineID",
                            "systemUUID",
                            "bootID",
                            "kubeProxyVersion",
                            "operatingSystem",
                            "architecture",
                        ),
                        "x",
                    ),
                },
            },
        }
    )

    expected = {
        "configmaps": (["NAME", "DATA", "AGE"], "settings", ["2"]),
        "secrets": (["NAME", "TYPE", "DATA", "AGE"], "token", ["Opaque", "1"]),
        "services": (
            ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
            "hub",
            ["ClusterIP", None, "<none>", "8081/TCP"],
        ),
        "persistentvolumeclaims": (
            [
                "NAME",
                "STATUS",
                "VOLUME",
                "CAPACITY",
                "ACCESS MODES",
                "STORAGECLASS",
                "VOLUMEATTRIBUTESCLASS",
                "AGE",
            ],
            "home",
            ["Bound", None, "1Gi", "RWO", "standard", "<unset>"],
        ),
        "events": (["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], None, None),
        "namespaces": (["NAME", "STATUS", "AGE"], f"{kube_api.namespace}-extra", ["Active"]),
        "nodes": (["NAME", "STATUS", "ROLES", "AGE", "VERSION"], "node-9", ["Ready", "worker"]),
    }
    for resource, (header, name, cells) in expected.items():
        output = kubectl.run("get", resource).stdout
        assert columns(output) == header, resource
        if name is None or cells is None:
            continue
        found = row(output, name)[1 : 1 + len(cells)]
        assert [c for c, want in zip(found, cells, strict=True) if want is not None] == [
            c for c in cells if c is not None
        ], (resource, found)
    events = kubectl.run("get", "events").stdout.splitlines()[1]
    assert re.split(r"\s{2,}", events.strip())[1:] == [
        "Normal",
        "Checked",
        "service/hub",
        "checked by the test",
    ]
    node = row(kubectl.run("get", "no", "-o", "wide").stdout, "node-9")
    assert [node[1], node[2], *node[4:]] == [
        "Ready",
        "worker",
        "v1.37.0",
        "127.0.9.1",
        "<none>",
        "Debian",
        "6.1.0",
        "<unknown>",
    ]
    service = kube_api.emulator.get_object("services", "hub", kube_api.namespace)
    wide = row(kubectl.run("get", "svc", "-o", "wide").stdout, "hub")
    assert wide[2:5] == [service["spec"]["clusterIP"], "<none>", "8081/TCP"]
    assert re.fullmatch(r"\d+s", wide[5])  # AGE
    assert wide[6] == "app=hub"


def test_get_watch_prints_rows_as_objects_change(kubectl: Kubectl, kube_api: Any) -> None:
    kubectl.apply(configmap("first", a="1"))
    command = [
        str(kubectl.binary),
        f"--kubeconfig={kube_api.kubeconfig}",
        f"--cache-dir={kubectl.cache}",
        f"--namespace={kube_api.namespace}",
        "get",
        "configmaps",
        "--watch",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as watching:
        guard = threading.Timer(60, watching.kill)  # a hung kubectl ends the reads below
        guard.start()
        try:
            assert watching.stdout is not None
            assert columns(watching.stdout.readline()) == ["NAME", "DATA", "AGE"]
            assert watching.stdout.readline().split()[:2] == ["first", "1"]
            kube_api.emulator.create_object(
                "configmaps", configmap("second", a="1", b="2"), kube_api.namespace
            )
            assert watching.stdout.readline().split()[:2] == ["second", "2"]
        finally:
            guard.cancel()
            watching.kill()


# -- discovery ------------------------------------------------------------------------------


def test_short_names_and_get_all(kubectl: Kubectl, kube_api: Any) -> None:
    kubectl.apply(configmap("settings", a="1"))
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "hub"},
            "spec": {"ports": [{"port": 8081}]},
        }
    )
    kube_api.emulator.create_object("pods", pod_manifest("lab"), kube_api.namespace)
    output = kubectl.run("get", "po,svc,cm,pvc,ev,secrets", "-o", "name").stdout.split()
    assert sorted(output) == ["configmap/settings", "pod/lab", "service/hub"]
    assert "namespace/default" in kubectl.run("get", "ns", "-o", "name").stdout.split()
    assert "No resources found" in kubectl.run("get", "no").stderr  # resolved, none registered
    everything = kubectl.run("get", "all", "-o", "name").stdout.split()
    assert sorted(everything) == ["pod/lab", "service/hub"]  # configmaps are not in "all"
    unknown = kubectl.run("get", "bogus", check=False)
    assert unknown.returncode != 0
    assert 'the server doesn\'t have a resource type "bogus"' in unknown.stderr


# -- OpenAPI: apply/create with validation, explain ----------------------------------------


def test_apply_create_and_explain_with_validation_on(kubectl: Kubectl, kube_api: Any) -> None:
    assert "created" in kubectl.apply(configmap("applied", a="1")).stdout
    created = kubectl.run("create", "-f", "-", stdin=json.dumps(configmap("created", a="1")))
    assert "configmap/created created" in created.stdout
    assert kube_api.emulator.get_object("configmaps", "created", kube_api.namespace)

    hostile = {**configmap("hostile", a="1"), "bogus": True}
    refused = kubectl.apply(hostile, check=False)
    assert refused.returncode != 0
    assert 'unknown field "bogus"' in refused.stderr
    assert kube_api.emulator.get_object("configmaps", "hostile", kube_api.namespace) is None
    refused = kubectl.run("create", "-f", "-", stdin=json.dumps(hostile), check=False)
    assert 'unknown field "bogus"' in refused.stderr

    explained = kubectl.run("explain", "pod.spec.containers.ports").stdout
    assert re.search(r"containerPort\s+<integer>\s+-required-", explained), explained
    assert "FIELD: ports <[]ContainerPort>" in explained
    # The same from the protobuf /openapi/v2 (the only document 1.27 and 1.28 must have).
    from_v2 = kubectl.run("explain", "pod.spec.containers.ports", "--output=plaintext-openapiv2")
    assert re.search(r"containerPort\s+<integer>\s+-required-", from_v2.stdout), from_v2.stdout
    missing = kubectl.run("explain", "pod.spec.nosuchfield", check=False)
    assert missing.returncode != 0
    assert "nosuchfield" in missing.stderr


# -- dryRun ---------------------------------------------------------------------------------


def test_server_dry_runs_change_nothing(kubectl: Kubectl, kube_api: Any, kubelet: Any) -> None:
    kubelet.mode = "stub"
    ns, emulator = kube_api.namespace, kube_api.emulator
    kubectl.apply(configmap("settings", a="1"))
    kubectl.apply(pod_manifest("lab"))
    running(kube_api, "lab")
    before_cm = emulator.get_object("configmaps", "settings", ns)
    before_pod = emulator.get_object("pods", "lab", ns)
    rv = emulator.call(lambda: emulator.store.rv)

    diff = kubectl.run(
        "diff", "-f", "-", stdin=json.dumps(configmap("settings", a="2")), check=False
    )
    assert diff.returncode == 1, diff.stderr  # 1: differences found
    assert '-  a: "1"' in diff.stdout
    assert '+  a: "2"' in diff.stdout
    applied = kubectl.apply(configmap("settings", a="2"), "--dry-run=server")
    assert "(server dry run)" in applied.stdout
    replaced = kubectl.run(
        "replace", "--dry-run=server", "-f", "-", stdin=json.dumps(configmap("settings", a="3"))
    )
    assert "(server dry run)" in replaced.stdout
    new = kubectl.run(
        "create", "--dry-run=server", "-f", "-", stdin=json.dumps(configmap("new", a="1"))
    )
    assert "configmap/new created (server dry run)" in new.stdout
    kubectl.run("delete", "configmap", "settings", "--dry-run=server")
    kubectl.run("delete", "pod", "lab", "--dry-run=server")
    kubectl.run("delete", "configmaps", "--all", "--dry-run=server")

    assert emulator.call(lambda: emulator.store.rv) == rv
    assert emulator.get_object("configmaps", "settings", ns) == before_cm
    assert emulator.get_object("pods", "lab", ns) == before_pod
    assert emulator.get_object("configmaps", "new", ns) is None
    # Without the dry run, the same commands do change things.
    kubectl.run("delete", "configmap", "settings")
    assert emulator.get_object("configmaps", "settings", ns) is None


# -- protobuf bodies ------------------------------------------------------------------------


def test_create_configmap_secret_namespace_sends_protobuf_and_works(
    kube_api: Any, tmp_path: Path
) -> None:
    version, binary = KUBECTLS[-1]
    assert version >= (1, 32), "the protobuf case needs kubectl 1.32 or later"
    kubectl = Kubectl(binary, version, kube_api, tmp_path)
    payload = tmp_path / "payload.bin"
    payload.write_bytes(bytes(range(256)))
    made = kubectl.run(
        "-v=8", "create", "configmap", "settings", "--from-literal=a=1", f"--from-file={payload}"
    )
    assert "Content-Type: application/vnd.kubernetes.protobuf" in made.stderr
    kubectl.run("create", "secret", "generic", "token", "--from-literal=t=s3cret")
    extra = f"{kube_api.namespace}-extra"
    kubectl.run("create", "namespace", extra)

    ns, emulator = kube_api.namespace, kube_api.emulator
    cm = emulator.get_object("configmaps", "settings", ns)
    assert cm["data"] == {"a": "1"}
    assert base64.b64decode(cm["binaryData"]["payload.bin"]) == bytes(range(256))
    secret = emulator.get_object("secrets", "token", ns)
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["t"]) == b"s3cret"
    assert "generateName" not in secret["metadata"]
    namespace = emulator.get_object("namespaces", extra, None)
    assert namespace["status"]["phase"] == "Active"


# -- server-side apply ----------------------------------------------------------------------


def test_server_side_apply_is_refused_as_by_a_server_without_it(
    kubectl: Kubectl, kube_api: Any
) -> None:
    new = kubectl.apply(configmap("fresh", a="1"), "--server-side", check=False)
    assert new.returncode != 0
    assert "Server-side apply not available on the server" in new.stderr
    assert "NotFound" not in new.stderr
    assert kube_api.emulator.get_object("configmaps", "fresh", kube_api.namespace) is None
    kubectl.apply(configmap("fresh", a="1"))
    existing = kubectl.apply(configmap("fresh", a="2"), "--server-side", check=False)
    assert "Server-side apply not available on the server" in existing.stderr
    stored = kube_api.emulator.get_object("configmaps", "fresh", kube_api.namespace)
    assert stored["data"] == {"a": "1"}


# -- events ---------------------------------------------------------------------------------


def test_describe_lists_a_pods_events_in_the_order_they_happened(
    kubectl: Kubectl, kube_api: Any, kubelet: Any
) -> None:
    kubelet.mode = "stub"
    kubectl.apply(pod_manifest("lab"))
    running(kube_api, "lab")

    def all_events() -> list[dict[str, Any]] | None:
        found = kube_api.emulator.list_objects("events", kube_api.namespace)
        return found if any(e["reason"] == "Started" for e in found) else None

    events = wait_for(all_events, "the Started event")
    names = [e["metadata"]["name"] for e in events]
    assert all(re.fullmatch(r"lab\.[0-9a-f]{16}", n) for n in names), names
    for event in events:
        assert event["firstTimestamp"] == event["lastTimestamp"]
        assert event["eventTime"] is None
        assert event["count"] == 1
    described = kubectl.run("describe", "pod", "lab").stdout
    table = described.split("Events:", 1)[1]
    reasons = [r for r in re.findall(r"^\s+\w+\s+(\w+)\s", table, re.MULTILINE) if r != "Reason"]
    assert reasons == ["Scheduled", "Pulling", "Pulled", "Created", "Started"], table
    listed = kubectl.run("get", "events", "-o", "name").stdout.split()
    assert listed == [f"event/{n}" for n in sorted(names)]


# -- version --------------------------------------------------------------------------------


def test_version_is_the_newest_the_schemas_cover_and_the_dispatcher_runs(
    kube_api: Any, tmp_path: Path
) -> None:
    newest = newest_kubernetes_version()
    dispatcher = shutil.which("kubectl")
    assert dispatcher is not None
    result = subprocess.run(
        [dispatcher, f"--kubeconfig={kube_api.kubeconfig}", "version", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    server = json.loads(result.stdout)["serverVersion"]
    assert f"{server['major']}.{server['minor']}" == newest
    # Past the newest versioned binary, the dispatcher runs as its own kubectl.
    listed = subprocess.run(
        [dispatcher, f"--kubeconfig={kube_api.kubeconfig}", f"--cache-dir={tmp_path}", "get", "ns"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert columns(listed.stdout) == ["NAME", "STATUS", "AGE"]
