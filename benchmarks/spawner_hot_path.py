"""Benchmark: the CPU LSSTSpawner adds on a spawn's hot path, in-process and unprofiled.

The spawn storm measures the whole hub; this isolates the spawner's own code,
built offline as ``lsst-spawner render-pod`` does (no hub, no Kubernetes API),
with the storm's configuration, and times, per call:

- constructing the spawner (JupyterHub builds one per user on first use);
- ``get_pod_manifest()`` (for LSSTSpawner: validate options, read the identity,
  build the lab spec, KubeSpawner's manifest, apply the spec, back to a model);
- LSSTSpawner's pieces of that: ``prepare_lab()`` and the ``dict_to_model``
  conversion of the final pod.

    python benchmarks/spawner_hot_path.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from spawn_storm import IMAGE, TAG, common_config
from traitlets.config import Config

from lsst_spawner.commands import _offline_kubernetes_client
from lsst_spawner.lab.models import dict_to_model, model_to_dict
from lsst_spawner.offline import OfflineHub, OfflineServer, OfflineUser
from lsst_spawner.testing.identity_auth import identity_for


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
            pod = await spawners[0].get_pod_manifest()
            assert pod.spec.containers[0].image == IMAGE, pod.spec.containers[0].image
        config = load_config("lsst", Path(tmp))
        fresh = [make_spawner("lsst", config, f"p{i:05d}") for i in range(calls + 20)]
        out["lsst prepare_lab"] = await timed(calls, lambda i: fresh[i].prepare_lab())
        pod = model_to_dict(await fresh[0].get_pod_manifest())
        out["lsst dict_to_model(pod)"] = await timed(calls, lambda i: dict_to_model(pod, "V1Pod"))
        out["lsst pod bytes"] = len(json.dumps(pod))
        kube_pod = await make_spawner(
            "kube", load_config("kube", Path(tmp)), "k"
        ).get_pod_manifest()
        out["kube pod bytes"] = len(json.dumps(model_to_dict(kube_pod)))
    return out


def run(calls: int = 300) -> dict[str, float]:
    return asyncio.run(measure(calls))


def main() -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    result = run(args.calls)
    for name, value in result.items():
        if name.endswith("bytes"):
            print(f"{name:32} {value:8.0f}")
        else:
            print(f"{name:32} {value:8.3f} ms (median of {args.calls})")
    return result


if __name__ == "__main__":
    main()
