"""The hub's pod reflector keeps trimmed lab pods, and every reader still finds what it reads.

Each reader of a reflector's pod (KubeSpawner's and lsst_spawner's) is run on
a whole pod that records every key read; the trimmed pod must give the same
values at each of those paths and the same results. The lists of readers are
checked against the code, so a new reader fails here until it is listed.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from kubespawner import KubeSpawner, clients
from kubespawner.spawner import PodReflector

import lsst_spawner
from lsst_spawner.kube.objects import has_legacy_env_secret
from lsst_spawner.kube.pull import container_started, pull_failure
from lsst_spawner.kube.reflector import (
    CONTAINER_FIELDS,
    SPEC_FIELDS,
    TrimmedPodReflector,
    TrimmedPods,
    trim_pod,
)
from lsst_spawner.kube.startfail import start_failure
from lsst_spawner.testing.kube.fixtures import KubeHandle

from .test_lifecycle import make_spawner

GOLDEN_LAB = Path(__file__).parents[1] / "lab" / "golden" / "default-rra.json"

#: What the API server adds to the lab pod the spawner built (the golden file of tests/lab).
SERVER_FIELDS = {
    "uid": "7d1c4e0a-0000-4000-8000-000000000001",
    "resourceVersion": "4711",
    "creationTimestamp": "2026-12-02T05:00:00Z",
    "managedFields": [
        {
            "manager": "kubespawner",
            "operation": "Update",
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:containers": {'k:{"name":"notebook"}': {".": {}}}}},
        }
    ],
}
RUNNING = {
    "phase": "Running",
    "podIP": "127.0.9.1",
    "hostIP": "127.0.9.254",
    "conditions": [{"type": "Ready", "status": "True"}],
    "initContainerStatuses": [
        {"name": "nss", "ready": True, "state": {"terminated": {"exitCode": 0}}}
    ],
    "containerStatuses": [
        {"name": "notebook", "ready": True, "state": {"running": {"startedAt": "2026-12-02"}}}
    ],
}


def api_pod(status: Mapping[str, Any] = RUNNING, **metadata: Any) -> dict[str, Any]:
    """The lab pod of tests/lab's golden file as the API server returns it, with ``status``."""
    pod: dict[str, Any] = copy.deepcopy(json.loads(GOLDEN_LAB.read_text())["pod"])
    pod["metadata"].update(copy.deepcopy(SERVER_FIELDS), **metadata)
    pod["spec"]["nodeName"] = "node-0"
    pod["status"] = copy.deepcopy(dict(status))
    return pod


def variants() -> Iterator[tuple[str, dict[str, Any]]]:
    """Pods in each state a reader distinguishes."""
    yield "running", api_pod()
    yield "pending", api_pod({"phase": "Pending"})
    pulling = {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}
    yield (
        "pull-failure",
        api_pod(
            {
                "phase": "Pending",
                "containerStatuses": [
                    {"name": "notebook", "ready": False, "state": {"waiting": pulling}}
                ],
            }
        ),
    )
    exited = {"terminated": {"exitCode": 3, "reason": "Error"}}
    yield (
        "terminated",
        api_pod(
            {
                "phase": "Failed",
                "podIP": "127.0.9.1",
                "containerStatuses": [{"name": "notebook", "ready": False, "state": exited}],
            }
        ),
    )
    yield "no-container-status", api_pod({"phase": "Succeeded", "podIP": None})
    yield "deleting", api_pod(deletionTimestamp="2026-12-02T05:01:00Z")
    legacy = api_pod()
    legacy["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": "nb-rra-env"}}]
    yield "legacy-env-secret", legacy
    held = {"reason": "CreateContainerConfigError", "message": 'secret "site-butler" not found'}
    missing = api_pod(
        {
            "phase": "Pending",
            "containerStatuses": [{"name": "notebook", "ready": False, "state": {"waiting": held}}],
        }
    )
    missing["spec"]["containers"][0]["env"].append(
        {"name": "BUTLER", "valueFrom": {"secretKeyRef": {"name": "site-butler", "key": "token"}}}
    )
    yield "missing-site-secret", missing
    failed_init = {"terminated": {"exitCode": 4, "reason": "Error"}}
    yield (
        "init-failure",
        api_pod(
            {
                "phase": "Pending",
                "initContainerStatuses": [
                    {"name": "init-home", "restartCount": 2, "state": failed_init}
                ],
            }
        ),
    )


# --- a pod that records what is read of it ------------------------------------------------


class Watched(dict[str, Any]):
    """A mapping that records the path of every key read of it (lists' items are ``*``)."""

    def __init__(self, data: Mapping[str, Any], path: tuple[str, ...], seen: set[Any]) -> None:
        super().__init__(data)
        self.path, self.seen = path, seen

    def _read(self, key: str) -> Any:
        self.seen.add((*self.path, key))
        return watched(super().__getitem__(key), (*self.path, key), self.seen)

    def __getitem__(self, key: str) -> Any:
        return self._read(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.add((*self.path, key))
        return self._read(key) if super().__contains__(key) else default

    def __contains__(self, key: object) -> bool:
        self.seen.add((*self.path, key))
        return super().__contains__(key)

    def items(self) -> Any:
        return [(key, self._read(key)) for key in self.keys()]

    def values(self) -> Any:
        return [self._read(key) for key in self.keys()]


class WatchedList(list[Any]):
    def __init__(self, data: list[Any], path: tuple[str, ...], seen: set[Any]) -> None:
        super().__init__(data)
        self.path, self.seen = path, seen

    def __getitem__(self, index: Any) -> Any:
        return watched(super().__getitem__(index), (*self.path, "*"), self.seen)

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            yield watched(item, (*self.path, "*"), self.seen)


def watched(value: Any, path: tuple[str, ...], seen: set[Any]) -> Any:
    if isinstance(value, Mapping):
        return Watched(value, path, seen)
    if isinstance(value, list):
        return WatchedList(value, path, seen)
    return value


def values_at(value: Any, path: tuple[Any, ...]) -> list[Any]:
    """Every value at ``path`` in ``value`` (``*``: each item of a list); [] where absent."""
    if not path:
        return [value]
    key, rest = path[0], path[1:]
    if key == "*":
        items = value if isinstance(value, list) else []
        return [found for item in items for found in values_at(item, rest)]
    if isinstance(value, Mapping) and key in value:
        return values_at(value[key], rest)
    return []


# --- the readers ---------------------------------------------------------------------------


@pytest.fixture
async def kubespawner(tmp_path: Path) -> KubeSpawner:
    from lsst_spawner.commands import _offline_kubernetes_client

    with _offline_kubernetes_client(str(tmp_path)):
        spawner = KubeSpawner(_mock=True)
    spawner.delete_stopped_pods = False  # poll reads only; no stop request
    return spawner


def poll_with(spawner: KubeSpawner, monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], Any]:
    """KubeSpawner's ``poll`` reading ``pod`` from a stand-in for its pod reflector."""

    async def no_reflector_start(replace: bool = False) -> None:
        return None

    monkeypatch.setattr(spawner, "_start_watching_pods", no_reflector_start)
    key = f"{spawner.namespace}/{spawner.pod_name}"

    class StandIn:
        pods: dict[str, Any] = {}

    monkeypatch.setitem(KubeSpawner.reflectors, spawner._get_reflector_key("pods"), StandIn)

    async def poll(pod: Any) -> Any:
        StandIn.pods = {key: pod}
        return await spawner.poll()

    return poll


def readers(spawner: KubeSpawner, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every function that reads a pod of the pod reflector, by name (see the tests below)."""

    def url(pod: Any) -> Any:
        return spawner._get_pod_url(pod) if spawner.is_pod_running(pod) else None

    return {
        # KubeSpawner: poll; _start (running, uid for the owner reference and pod_id, URL,
        # port for services); get_url after a restart (lsst_spawner.kube.resilience).
        "poll": poll_with(spawner, monkeypatch),
        "is_pod_running": spawner.is_pod_running,
        "pod_has_uid": spawner.pod_has_uid,
        "_start: pod_id": lambda pod: pod["metadata"]["uid"],
        "_get_pod_url": url,
        "_get_pod_port": spawner._get_pod_port,
        "get_url: phase": lambda pod: pod["status"].get("phase"),
        # lsst_spawner: the stop's legacy -env Secret, the pull-failure watch.
        "has_legacy_env_secret": lambda pod: has_legacy_env_secret(pod, "nb-rra"),
        "pull_failure": pull_failure,
        "container_started": container_started,
        # lsst_spawner: a missing Secret/ConfigMap or key, a failing init container.
        "start_failure": start_failure,
    }


async def read(reader: Callable[[Any], Any], pod: Any) -> Any:
    result = reader(pod)
    return await result if inspect.isawaitable(result) else result


async def test_the_trimmed_pod_gives_every_reader_what_it_reads(
    kubespawner: KubeSpawner, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = 0
    for state, pod in variants():
        trimmed = trim_pod(pod)
        for name, reader in readers(kubespawner, monkeypatch).items():
            seen: set[Any] = set()
            whole = await read(reader, watched(copy.deepcopy(pod), (), seen))
            assert await read(reader, copy.deepcopy(trimmed)) == whole, f"{name}, {state} pod"
            for path in seen:
                if any(other[: len(path)] == path != other for other in seen):
                    # Read on the way to a deeper key: it must be there, as in the whole pod.
                    assert len(values_at(trimmed, path)) == len(values_at(pod, path)), path
                    continue
                assert values_at(trimmed, path) == values_at(pod, path), (
                    f"{name} reads {'.'.join(map(str, path))} of a {state} pod, "
                    "which trim_pod drops"
                )
            checked += len(seen)
    assert checked > 50  # the recording saw the readers' reads


def test_a_reader_of_a_dropped_field_fails_the_check() -> None:
    """The check above can fail: a reader of a container's securityContext sees a trimmed field."""
    pod, seen = api_pod(), set()

    def reads_context(pod: Any) -> Any:
        return [c.get("securityContext") for c in pod["spec"]["containers"]]

    reads_context(watched(pod, (), seen))
    path = ("spec", "containers", "*", "securityContext")
    assert seen == {("spec",), ("spec", "containers"), path}
    assert values_at(trim_pod(pod), path) == []
    assert values_at(pod, path) != []


def test_the_trimmed_pod_keeps_env_references_but_no_literal_value() -> None:
    pod = api_pod()
    env = trim_pod(pod)["spec"]["containers"][0]["env"]
    assert env
    assert all(set(var) == {"name", "valueFrom"} for var in env)
    literal = [v for v in pod["spec"]["containers"][0]["env"] if "value" in v]
    assert literal  # the whole pod has some, the trimmed one none


#: Where lsst_spawner reads the pod reflector's pods: each is covered by readers() above.
PRODUCT_READERS = {
    "attempt.py": 2,  # the pull-failure watch's read_pod, stop_lab's legacy check
    "kube/resilience.py": 1,  # get_url
}
#: KubeSpawner's functions that read its pod reflector's pods, or take a pod from it.
KUBESPAWNER_READERS = {
    "poll",
    "_start",
    "stop",  # only whether the pod is gone
    "is_pod_running",
    "pod_has_uid",
    "_get_pod_url",
    "_get_pod_port",
}


def test_every_product_reader_of_the_reflector_is_covered() -> None:
    root = Path(lsst_spawner.__file__).parent
    found = {}
    for path in sorted(root.rglob("*.py")):
        if "testing" in path.relative_to(root).parts:
            continue
        count = len(re.findall(r"\.pods\.get\(|\.pods\[", path.read_text()))
        if count:
            found[str(path.relative_to(root))] = count
    assert found == PRODUCT_READERS


def test_every_kubespawner_reader_of_the_reflector_is_covered() -> None:
    found = set()
    for name, function in inspect.getmembers(KubeSpawner, inspect.isfunction):
        source = inspect.getsource(function)
        takes_pod = "pod" in inspect.signature(function).parameters
        if "pod_reflector.pods" in source or (takes_pod and re.search(r"\bpod\[", source)):
            found.add(name)
    assert found == KUBESPAWNER_READERS


def literal_env(container: Mapping[str, Any]) -> list[Any]:
    """The container's env entries with a literal value (the trimmed pod keeps none)."""
    return [var for var in container.get("env") or [] if "value" in var]


# --- the trimming itself -----------------------------------------------------------------


def test_trimming_a_lab_pod(golden: Callable[[str, Any], None]) -> None:
    pod = api_pod()
    trimmed = trim_pod(pod)
    golden("trimmed-lab-pod", trimmed)
    assert not literal_env(trimmed["spec"]["containers"][0])
    assert "managedFields" not in trimmed["metadata"]
    assert trimmed["status"] is pod["status"], "shared, not copied"
    assert len(json.dumps(trimmed)) < len(json.dumps(pod)) / 2


@pytest.mark.parametrize(
    "pod",
    [
        {},
        {"metadata": {"name": "x"}},
        {"metadata": None, "spec": None, "status": None},
        {"spec": {"containers": None}},
        {"spec": {"containers": ["not a container"]}},
    ],
)
def test_odd_pods_are_trimmed_without_error(pod: dict[str, Any]) -> None:
    trimmed = trim_pod(pod)
    assert set(trimmed) <= set(pod)


def test_trimmed_pods_trims_every_way_a_pod_is_stored() -> None:
    pods = TrimmedPods({"labs/a": api_pod()})
    pods["labs/b"] = api_pod()
    pods.update({"labs/c": api_pod()})
    pods.setdefault("labs/d", api_pod())
    assert not any(literal_env(pod["spec"]["containers"][0]) for pod in pods.values())
    assert pods.pop("labs/a")["metadata"]["name"] == "nb-rra"


async def test_the_reflector_trims_what_kubespawner_stores(tmp_path: Path) -> None:
    from lsst_spawner.commands import _offline_kubernetes_client

    with _offline_kubernetes_client(str(tmp_path)):
        reflector = TrimmedPodReflector(namespace="labs")
    reflector.resources = {"labs/a": api_pod()}  # how KubeSpawner's list stores them
    reflector.resources["labs/b"] = api_pod()  # how its watch stores one
    assert isinstance(reflector.pods, TrimmedPods)
    assert not any(literal_env(pod["spec"]["containers"][0]) for pod in reflector.pods.values())


# --- in the hub: the spawner's reflector ---------------------------------------------------


async def lab_pods(kube_api: KubeHandle, spawner: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod as the API server has it, and as the spawner's reflector keeps it."""
    stored = await kube_api.get("pods", spawner.pod_name)
    return stored, spawner.pod_reflector.pods[f"{kube_api.namespace}/{spawner.pod_name}"]


@pytest.mark.parametrize("trim", [True, False])
async def test_the_spawners_reflector_keeps_trimmed_pods_unless_told_not_to(
    kube_api: KubeHandle, kubelet: Any, trim: bool
) -> None:
    kubelet.mode = "stub"
    clients.load_config.cache_clear()  # this test's emulator, not an offline kubeconfig
    spawner = make_spawner(kube_api, "rra", image="w_2026_46")
    spawner.kubernetes_trim_reflected_pods = trim
    await asyncio.wait_for(spawner.start(), 60)
    try:
        reflector = spawner.pod_reflector
        assert type(reflector) is (TrimmedPodReflector if trim else PodReflector)
        stored, kept = await lab_pods(kube_api, spawner)
        assert stored["spec"]["containers"][0]["env"], "the lab's env is in its pod"
        assert kept["metadata"]["uid"] == stored["metadata"]["uid"]
        if trim:
            assert set(kept["spec"]["containers"][0]) - {"env"} == set(CONTAINER_FIELDS) - {
                "envFrom"
            }
            assert not literal_env(kept["spec"]["containers"][0])
            assert "containers" in kept["spec"]
            assert set(kept["spec"]) <= {"containers", "initContainers", "volumes", *SPEC_FIELDS}
            assert "volumes" in stored["spec"]
        else:
            assert kept["spec"] == stored["spec"]
        assert spawner.is_pod_running(kept)
    finally:
        await spawner.stop(now=True)
        await KubeSpawner._stop_all_reflectors()
        clients.load_config.cache_clear()
