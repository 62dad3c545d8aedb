"""Benchmark: the CPU LSSTSpawner adds on a spawn's hot path, in-process and unprofiled.

The spawn storm measures the whole hub; this isolates the spawner's own code,
built offline as ``lsst-spawner render-pod`` does (no hub, no Kubernetes API),
with the storm's configuration, and times, per call:

- constructing the spawner (JupyterHub builds one per user on first use);
- ``get_pod_manifest()`` (for LSSTSpawner: validate options, read the identity,
  build the lab spec, KubeSpawner's manifest, apply the spec, back to a model);
- ``lab_pod_manifest()``: the same pod as a dict, what a spawn without a
  ``modify_pod_hook`` sends;
- LSSTSpawner's pieces of that: ``prepare_lab()`` and the ``dict_to_model``
  conversion of the final pod;
- the client-side CPU (``time.process_time``) of the two writes LSSTSpawner adds,
  creating the lab's ConfigMap and Secret with ``kubernetes_asyncio`` and deleting
  them, against the emulator running in a subprocess (so its CPU is not counted).

    python benchmarks/spawner_hot_path.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from image_menu import deep_size
from spawn_storm import IMAGE, TAG, common_config
from traitlets.config import Config

from lsst_spawner.commands import _offline_kubernetes_client
from lsst_spawner.kube.reflector import trim_pod
from lsst_spawner.lab.models import dict_to_model, model_to_dict
from lsst_spawner.offline import OfflineHub, OfflineServer, OfflineUser
from lsst_spawner.testing.oauth.identity import identity_for


def load_config(kind: str, workdir: Path) -> Config:
    namespace: dict[str, Any] = {"c": Config()}
    exec(common_config(kind, 100, workdir), namespace)  # noqa: S102 - our own text
    return namespace["c"]


def make_spawner(kind: str, config: Config, name: str) -> Any:
    if kind == "lsst":
        from lsst_spawner import LSSTSpawner as cls
    else:
        from kubespawner import KubeSpawner as cls
    user = OfflineUser(name, {"identity": identity_for(name).to_dict()})
    spawner = cls(config=config, user=user, hub=OfflineHub())
    spawner.server = OfflineServer(user)
    spawner.api_token = "x" * 32
    spawner.user_options = {"image": TAG}
    if kind == "lsst":
        spawner.lab_options_fresh = True
    return spawner


async def timed(calls: int, fn: Callable[[int], Awaitable[Any] | Any]) -> float:
    """Median milliseconds of ``fn(i)`` over ``calls`` calls (after 20 warm-up calls)."""
    times = []
    for i in range(calls + 20):
        start = time.perf_counter()
        result = fn(i)
        if asyncio.iscoroutine(result):
            await result
        if i >= 20:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def measure(calls: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, _offline_kubernetes_client(tmp):
        for kind in ("lsst", "kube"):
            config = load_config(kind, Path(tmp))
            out[f"{kind} construct"] = await timed(
                calls, lambda i, k=kind, c=config: make_spawner(k, c, f"u{i:05d}")
            )
            spawners = [make_spawner(kind, config, f"m{i:05d}") for i in range(calls + 20)]

            async def manifest(i: int, s: list[Any] = spawners) -> Any:
                return await s[i].get_pod_manifest()  # a fresh spawner: no lab_spec yet

            out[f"{kind} get_pod_manifest"] = await timed(calls, manifest)
            if kind == "lsst":
                # What a spawn without a modify_pod_hook builds: the pod as a dict.
                dict_spawners = [make_spawner(kind, config, f"d{i:05d}") for i in range(calls + 20)]

                async def as_dict(i: int, s: list[Any] = dict_spawners) -> Any:
                    return (await s[i].prepare_lab_objects()).pod

                out["lsst lab_pod_manifest (a spawn's)"] = await timed(calls, as_dict)
            pod = await spawners[0].get_pod_manifest()
            assert pod.spec.containers[0].image == IMAGE, pod.spec.containers[0].image
        config = load_config("lsst", Path(tmp))
        fresh = [make_spawner("lsst", config, f"p{i:05d}") for i in range(calls + 20)]
        out["lsst prepare_lab"] = await timed(calls, lambda i: fresh[i].prepare_lab())
        pod = model_to_dict(await fresh[0].get_pod_manifest())
        out["lsst dict_to_model(pod)"] = await timed(calls, lambda i: dict_to_model(pod, "V1Pod"))
        out["lsst pod bytes"] = len(json.dumps(pod))
        # Not kept by the hub (no Secret reflector): secrets, NSS files, long env values.
        objects = fresh[0].lab_objects
        assert objects is not None
        out["lsst Secret bytes"] = len(json.dumps(objects.secret))
        # The spec a spawn holds until its Secret is created (then released).
        out["lsst lab_spec (held until created) bytes"] = deep_size(fresh[0].lab_spec)
        kube_pod = await make_spawner(
            "kube", load_config("kube", Path(tmp)), "k"
        ).get_pod_manifest()
        out["kube pod bytes"] = len(json.dumps(model_to_dict(kube_pod)))
        # What the hub's pod reflector keeps per running lab: the pod parsed from JSON.
        out["lsst pod in the reflector, traced bytes"] = parsed_size(pod)
        out["lsst pod in the reflector, trimmed, traced bytes"] = parsed_size(pod, trim=True)
        out["kube pod in the reflector, traced bytes"] = parsed_size(model_to_dict(kube_pod))
        out["lsst pod, trimmed bytes"] = len(json.dumps(trim_pod(pod)))
        out.update(await client_writes(fresh[0], Path(tmp), calls))
    return out


def start_emulator(kubeconfig: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "lsst_spawner.testing.kube", "--kubelet", "none"]
    command += ["--namespace", "labs", "--kubeconfig", str(kubeconfig)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


async def client_writes(spawner: Any, tmp: Path, calls: int) -> dict[str, float]:
    """Client CPU per env Secret + Secret create, and per delete of both, in milliseconds.

    Twice: with the aiohttp session as ``kubernetes_asyncio`` makes it (``trust_env``:
    a netrc and a proxy lookup in worker threads before every request), and after
    ``skip_unused_environment_lookups`` (what LSSTSpawner's client does when the
    hub's environment has no proxy or netrc entry for the API server).
    """
    import copy

    from kubernetes_asyncio import client
    from kubernetes_asyncio.config import load_kube_config

    from lsst_spawner.kube import (
        RetryPolicy,
        create_replacing,
        delete_lab_objects,
        skip_unused_environment_lookups,
    )

    policy = RetryPolicy(budget=30, request_timeout=30)

    objects = spawner.lab_objects or await spawner.prepare_lab_objects()
    kubeconfig = tmp / "emulator-kubeconfig"
    emulator = start_emulator(kubeconfig)
    out: dict[str, float] = {}
    try:
        assert emulator.stdout is not None
        emulator.stdout.readline()  # "Kubernetes emulator at ..." once serving
        configuration = client.Configuration()
        await load_kube_config(str(kubeconfig), client_configuration=configuration)
        for label in ("environment lookups on", "environment lookups off"):
            async with client.ApiClient(configuration) as api_client:
                api = client.CoreV1Api(api_client)
                if label.endswith("off") and not skip_unused_environment_lookups(api):
                    continue  # this machine has a proxy or netrc entry: nothing to compare
                create_cpu = delete_cpu = 0.0
                for i in range(calls + 20):
                    bodies = []
                    for body in (objects.secret,):
                        body = copy.deepcopy(dict(body))
                        body["metadata"]["name"] = f"{body['metadata']['name']}-{i}"
                        bodies.append(body)
                    start = time.process_time()
                    for body in bodies:
                        await create_replacing(api, "secret", "labs", body, policy)
                    middle = time.process_time()
                    await delete_lab_objects(
                        api,
                        "labs",
                        pod=None,
                        config_map=None,
                        secret=bodies[0]["metadata"]["name"],
                        policy=policy,
                    )
                    if i >= 20:
                        create_cpu += middle - start
                        delete_cpu += time.process_time() - middle
            out[f"lsst create the Secret (client CPU, {label})"] = create_cpu / calls * 1000
            out[f"lsst delete the Secret (client CPU, {label})"] = delete_cpu / calls * 1000
    finally:
        emulator.terminate()
        emulator.wait(10)
    return out


def parsed_size(pod: dict[str, Any], *, trim: bool = False, copies: int = 200) -> float:
    """Python memory (traced bytes) of one copy of ``pod`` parsed from its JSON, as the pod
    reflector keeps it: whole, or with ``trim`` parsed whole and then trimmed."""
    text = json.dumps(pod)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [trim_pod(json.loads(text)) if trim else json.loads(text) for _ in range(copies)]
    size = (tracemalloc.get_traced_memory()[0] - before) / copies
    tracemalloc.stop()
    del kept
    return size


def run(calls: int = 300) -> dict[str, float]:
    return asyncio.run(measure(calls))


def main() -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    result = run(args.calls)
    for name, value in result.items():
        if name.endswith("bytes"):
            print(f"{name:44} {value:8.0f}")
        else:
            what = "mean" if "client CPU" in name else "median"
            print(f"{name:44} {value:8.3f} ms ({what} of {args.calls})")
    return result


if __name__ == "__main__":
    main()
