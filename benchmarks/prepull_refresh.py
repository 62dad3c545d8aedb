"""Benchmark: a menu refresh with prepull bookkeeping, 10,000 tags and 20 nodes, on loopback.

- **cold prepull**: 20 empty lab nodes (the emulator, stub kubelet); the prepuller's
  rounds until every radio image is on every node. Counts the Kubernetes requests
  (the emulator's counters) and the pulls.
- **refresh with prepull bookkeeping**: what the hub does every refresh once the
  nodes have the images: :meth:`MenuCache.refresh` against the real registry
  (Debian's ``docker-registry`` with the 10,000-tag storage of
  ``registry_refresh.py``), one prepull round (list nodes, nothing to pull) and the
  presence-marked menu (:meth:`Prepuller.menu_for`). Registry and Kubernetes
  requests counted; wall time on loopback.
- **form render**: :func:`render_options_form` of the presence-marked menu, p50/p99.

    python benchmarks/prepull_refresh.py [--refreshes 5] [--renders 500]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from image_menu import POLICY, SIZES
from registry_refresh import ALIASES, REPOSITORY, TAG_COUNT, ensure_storage

from lsst_spawner.form.options import OptionsCatalog
from lsst_spawner.form.render import render_options_form
from lsst_spawner.images.cache import CacheSettings, MenuCache
from lsst_spawner.images.model import TagKind
from lsst_spawner.images.prepull import prepull_targets
from lsst_spawner.images.registry import RegistryClient, RegistryImageSource
from lsst_spawner.kube.prepull import Prepuller, PrepullSettings
from lsst_spawner.kube.retries import RetryPolicy
from lsst_spawner.testing.kube import KubeEmulator
from lsst_spawner.testing.kube.kubelet import ProcessKubelet
from lsst_spawner.testing.kube.nodes import FakeNode, NodeImage
from lsst_spawner.testing.registry import LocalRegistry, push_alias, push_tags

NODES = 20
NAMESPACE = "bench"
#: Images already on each node besides the menu's (a real node's list is full of them).
OTHER_IMAGES = 30


def lab_nodes() -> list[FakeNode]:
    nodes = []
    for n in range(NODES):
        other = [
            NodeImage(
                [f"other.example/img{i}@sha256:{n * 100 + i:064x}", f"other.example/img{i}:1"],
                10**8 + i,
            )
            for i in range(OTHER_IMAGES)
        ]
        nodes.append(FakeNode(f"lab-{n:02d}", labels={"pool": "lab"}, images=other))
    return nodes


async def with_api(kubeconfig: Path, work: Any) -> Any:
    from kubernetes_asyncio import client, config

    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration) as api:
        return await work(client.CoreV1Api(api))


def run(refreshes: int = 5, renders: int = 500, page_size: int = 1000) -> dict[str, Any]:
    storage = ensure_storage()
    emulator = KubeEmulator(namespaces=("default", NAMESPACE)).start_in_thread()
    kubelet = ProcessKubelet(emulator, nodes=lab_nodes(), mode="stub")
    kubelet.pull_bytes_per_second = 1e12  # pulls of 2 GB take 2 ms: bookkeeping, not waiting
    emulator.run(kubelet.start())
    kubeconfig = emulator.write_kubeconfig(Path(kubelet.workdir) / "kubeconfig", NAMESPACE)
    settings = PrepullSettings(
        namespace=NAMESPACE,
        node_selector=(("pool", "lab"),),
        poll_interval=0.05,
        running_grace=0.05,  # stub containers never exit
    )
    policy = RetryPolicy(budget=30, request_timeout=10)
    result: dict[str, Any] = {"nodes": NODES, "tags": TAG_COUNT}
    try:
        with LocalRegistry(storage) as registry:

            async def work(v1: Any) -> None:
                client = RegistryClient(
                    registry.host_port,
                    insecure_registries=[registry.host_port],
                    page_size=page_size,
                )
                cache = MenuCache(RegistryImageSource(client, REPOSITORY), POLICY, CacheSettings())
                menu = await cache.refresh()
                # The storage's tags share one manifest; the radio images get their own here
                # (and the aliases follow), so each is a pull of its own, as at a site.
                radio = [i.tag for i in menu.radio if i.kind is not TagKind.ALIAS]
                radio += [i.tag for i in menu.aliased if i.kind is not TagKind.ALIAS]
                await push_tags(registry.url, REPOSITORY, radio, distinct=True)
                for alias, target in ALIASES.items():
                    await push_alias(registry.url, REPOSITORY, alias, target)
                menu = await cache.refresh()

                async def current() -> Any:
                    return cache.menu

                prepuller = Prepuller(v1, settings, current, policy)
                targets = prepull_targets(menu)
                # Cold: pull every radio image onto every node.
                emulator.counters.reset()
                started = time.perf_counter()
                rounds = 0
                while True:
                    rounds += 1
                    plans = await prepuller.run_round()
                    if not plans and not any(not t.done() for t in prepuller._pulls.values()):
                        break
                    await prepuller.wait_for_pulls()
                result["cold"] = {
                    "targets": len(targets),
                    "pulls": len(kubelet.pulls),
                    "rounds": rounds,
                    "seconds": time.perf_counter() - started,
                    "kube_requests": emulator.counters.as_dict(),
                    "kube_total": emulator.counters.total,
                    "prepuller_requests": dict(prepuller.requests),
                }
                # Warm: a refresh with prepull bookkeeping, as every refresh_interval.
                times, registry_requests, kube_requests, presence_ms = [], [], [], []
                plain = []  # the same refresh without prepull, alternating: the machine's load
                for _ in range(refreshes):
                    t0 = time.perf_counter()
                    await cache.refresh()
                    plain.append(time.perf_counter() - t0)
                    before = client.stats.requests
                    emulator.counters.reset()
                    start = time.perf_counter()
                    menu = await cache.refresh()
                    plans = await prepuller.run_round()  # lists nodes, marks the new menu
                    end = time.perf_counter()
                    marked = prepuller.menu_for(menu)
                    assert marked is not menu
                    mark = time.perf_counter()
                    await prepuller.mark(replace(menu))  # the marking alone, timed
                    presence_ms.append((time.perf_counter() - mark) * 1000)
                    assert not plans, plans
                    times.append(end - start)
                    registry_requests.append(client.stats.requests - before)
                    kube_requests.append(emulator.counters.total)
                assert [i.tag for i in marked.radio] == [i.tag for i in menu.radio]
                result["refresh"] = {
                    "runs": refreshes,
                    "registry_requests": max(registry_requests),
                    "kube_requests": max(kube_requests),
                    "p50_ms": statistics.median(times) * 1000,
                    "max_ms": max(times) * 1000,
                    "presence_p50_ms": statistics.median(presence_ms),
                    "plain_p50_ms": statistics.median(plain) * 1000,
                    "plain_max_ms": max(plain) * 1000,
                    "radio": len(marked.radio),
                    "dropdown": len(marked.dropdown),
                }
                catalog = OptionsCatalog(menu=marked, sizes=SIZES, default_size="medium")
                render_options_form(catalog, None)  # the dropdown's one render per menu
                samples = []
                for _ in range(renders):
                    t0 = time.perf_counter()
                    html = render_options_form(catalog, None)
                    samples.append(time.perf_counter() - t0)
                samples.sort()
                result["render"] = {
                    "renders": renders,
                    "p50_ms": statistics.median(samples) * 1000,
                    "p99_ms": samples[max(0, int(len(samples) * 0.99) - 1)] * 1000,
                    "html_bytes": len(html.encode()),
                }
                await prepuller.close()

            asyncio.run(with_api(kubeconfig, work))
    finally:
        emulator.run(kubelet.stop())
        emulator.stop_thread()
    return result


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refreshes", type=int, default=5)
    parser.add_argument("--renders", type=int, default=500)
    args = parser.parse_args()
    result = run(args.refreshes, args.renders)
    cold, warm, render = result["cold"], result["refresh"], result["render"]
    print(f"{TAG_COUNT} tags in the real registry, {NODES} lab nodes (emulator, stub kubelet)")
    print(
        f"cold prepull: {cold['targets']} radio images x {NODES} nodes = {cold['pulls']} pulls in "
        f"{cold['rounds']} rounds, {cold['seconds']:.2f} s; Kubernetes requests "
        f"{cold['kube_total']}: {cold['kube_requests']}; prepuller's own count "
        f"{cold['prepuller_requests']}"
    )
    print(
        f"refresh + prepull bookkeeping ({warm['runs']} runs): {warm['registry_requests']} "
        f"registry requests, {warm['kube_requests']} Kubernetes request(s), p50 "
        f"{warm['p50_ms']:.1f} ms, max {warm['max_ms']:.1f} ms (presence marking, in a "
        f"worker thread, p50 {warm['presence_p50_ms']:.1f} ms); without prepull, alternating: "
        f"p50 {warm['plain_p50_ms']:.1f} ms, max {warm['plain_max_ms']:.1f} ms; menu "
        f"{warm['radio']} radio, {warm['dropdown']} dropdown"
    )
    print(
        f"form render of the marked menu: p50 {render['p50_ms']:.3f} ms, p99 "
        f"{render['p99_ms']:.3f} ms, {render['html_bytes']} bytes"
    )
    return result


if __name__ == "__main__":
    main()
