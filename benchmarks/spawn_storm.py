"""Benchmark: a spawn storm through a real JupyterHub, LSSTSpawner against plain KubeSpawner.

Each round starts a fresh ``jupyterhub`` process (:class:`HubProcess`) with one
of the two spawners, both configured for the same image, namespace, command and
timeouts, against the Kubernetes API emulator with its kubelet in stub mode (no
injected latency), both in a process of their own (:class:`EmulatorProcess`). The
rounds alternate (LSST, plain, LSST, plain, ...), so slow drift of the shared
machine's load hits both alike.

One round:

1. create N users with one bulk ``POST /users``, and give each the identity
   LSSTSpawner needs in ``auth_state`` (``PATCH /users/{name}``; done for both
   spawners, so both hubs hold the same data);
2. warm up: spawn and stop one extra user (imports, reflectors, first clients),
   then reset the emulator's request counters;
3. the storm: N concurrent ``POST /users/{name}/server`` straight to the hub's
   REST API. ``slow_spawn_timeout`` is raised so each request returns only when
   the server is ready (201) or failed; its latency is the time to ready;
4. hub CPU (``utime + stime`` from ``/proc/<pid>/stat``) and RSS (``VmRSS``)
   before and after; Kubernetes API requests counted at the emulator;
5. N concurrent ``DELETE /users/{name}/server``, the same figures for the stops (a
   stop whose ``Spawner.stop`` raised counts as failed, from the hub's own metrics:
   JupyterHub answers it 204), then a check that no pod, ConfigMap or Secret is left.

    python benchmarks/spawn_storm.py --n 100 --rounds 2 [--json out.json]

Every wait is bounded; the script stops by itself. Only loopback traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import math
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import yaml

from lsst_spawner.rbac import Z2JH_HUB_ROLE_RULES
from lsst_spawner.testing.hub import HubProcess
from lsst_spawner.testing.kube import KubeEmulator
from lsst_spawner.testing.kube.hub_role import write_hub_kubeconfig
from lsst_spawner.testing.kube.kubelet import FakeNode, ProcessKubelet
from lsst_spawner.testing.oauth.identity import identity_for

NAMESPACE = "labs"
IMAGE_BASE = "registry.example.org/sciplat-lab"
TAG = "w_2026_46"
DIGEST = "sha256:" + "d" * 64
#: What LSSTSpawner puts in the pod for ``TAG`` pinned by ``DIGEST``; plain KubeSpawner
#: is configured with the same string (checked in every round: ``pod_image``).
IMAGE = f"{IMAGE_BASE}:{TAG}@{DIGEST}"
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SPAWNERS = ("lsst", "kube")
LABELS = {"lsst": "LSSTSpawner", "kube": "KubeSpawner"}


#: Appended to the hub's config by ``--profile`` (JupyterHub itself uses SIGUSR1).
PROFILE_HOOK = """
import cProfile as _cProfile, signal as _signal
_profile = _cProfile.Profile()
_signal.signal(_signal.SIGRTMIN + 1, lambda *_: _profile.enable())
_signal.signal(
    _signal.SIGRTMIN + 2, lambda *_: (_profile.disable(), _profile.dump_stats({path!r}))
)
"""

#: Appended to the hub's config by ``--tracemalloc``: traces allocations from the start,
#: and writes a snapshot before the spawn storm and one after it (when RSS is read), each
#: with the traced total beside it (``.json``); the peak is reset before the storm, so the
#: "after" file's ``peak`` is the most Python memory held at once during the storm.
TRACEMALLOC_HOOK = """
import json as _json, tracemalloc as _tracemalloc, signal as _signal
_tracemalloc.start(25)
def _trace_dump(path, reset):
    current, peak = _tracemalloc.get_traced_memory()
    with open(path + ".json", "w") as _file:
        _json.dump({{"current": current, "peak": peak}}, _file)
    _tracemalloc.take_snapshot().dump(path)
    if reset:
        _tracemalloc.reset_peak()
_signal.signal(_signal.SIGRTMIN + 3, lambda *_: _trace_dump({before!r}, True))
_signal.signal(_signal.SIGRTMIN + 4, lambda *_: _trace_dump({after!r}, False))
"""


#: Appended to the hub's config by ``--gc-stats``: times every garbage collection of the
#: hub's main thread, by generation, and writes the totals to a JSON file on a signal.
GC_HOOK = """
import gc as _gc, json as _json, signal as _signal, time as _time
_gc_stats = {{"0": [0, 0.0], "1": [0, 0.0], "2": [0, 0.0]}}
_gc_start = [0.0]
def _gc_callback(phase, info):
    if phase == "start":
        _gc_start[0] = _time.thread_time()
    else:
        entry = _gc_stats[str(info["generation"])]
        entry[0] += 1
        entry[1] += _time.thread_time() - _gc_start[0]
_gc.callbacks.append(_gc_callback)
def _gc_dump(*_):
    with open({path!r}, "w") as _file:
        _json.dump({{**_gc_stats, "tracked": [len(_gc.get_objects()), 0.0]}}, _file)
_signal.signal(_signal.SIGRTMIN + 5, _gc_dump)
"""


#: Appended to the hub's config by ``--trim``: on a signal, a full garbage collection and
#: glibc's ``malloc_trim(0)`` (memory freed but kept by the allocators goes back to the
#: system), then a file saying it is done; the RSS read after it is what is still in use.
TRIM_HOOK = """
import ctypes as _ctypes, gc as _gc, os as _os, signal as _signal, sys as _sys
def _trim(*_):
    _gc.collect()
    _ctypes.CDLL("libc.so.6").malloc_trim(0)
    # Python's small-object allocator's own figures (it writes them to fd 2).
    _fd = _os.open({path!r} + ".tmp", _os.O_WRONLY | _os.O_CREAT | _os.O_TRUNC)
    _saved = _os.dup(2)
    _os.dup2(_fd, 2)
    try:
        _sys._debugmallocstats()
    finally:
        _os.dup2(_saved, 2)
        _os.close(_saved)
        _os.close(_fd)
    _os.replace({path!r} + ".tmp", {path!r})
_signal.signal(_signal.SIGRTMIN + 6, _trim)
"""

#: ``sys._debugmallocstats()`` lines read by ``--trim`` (bytes).
PYMALLOC_FIGURES = {
    "arenas": "arenas * 1048576 bytes/arena",
    "allocated": "# bytes in allocated blocks",
    "available": "# bytes in available blocks",
    "unused_pools": "unused pools * 16384 bytes",
}


def parse_pymalloc(text: str) -> dict[str, int]:
    """The figures of ``PYMALLOC_FIGURES`` from ``sys._debugmallocstats()`` output."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        for name, marker in PYMALLOC_FIGURES.items():
            if marker in line and name not in out:
                out[name] = int(line.rsplit("=", 1)[1].strip().replace(",", ""))
    return out


#: The hub listens with Tornado's backlog of 128. N simultaneous connections while its event
#: loop is busy overflow it and some are reset (measured: 12 to 25 of 1,000), which would
#: count as spawn failures though the hub never saw them. The harness raises it (both hubs).
BACKLOG_HOOK = """
import tornado.tcpserver as _tcpserver
_listen = _tcpserver.TCPServer.listen
def _listen_with_backlog(self, port, address=None, *args, **kwargs):
    kwargs.setdefault("backlog", 4096)
    return _listen(self, port, address, *args, **kwargs)
_tcpserver.TCPServer.listen = _listen_with_backlog
"""


#: The hub settings every kind shares (the spawner's aside).
HUB_CONFIG = """
c.JupyterHub.authenticator_class = "lsst_spawner.testing.oauth.identity.StaticIdentityAuthenticator"
c.JupyterHub.concurrent_spawn_limit = {limit}
c.JupyterHub.active_server_limit = 0
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 900, "slow_stop_timeout": 900}}
"""

#: ``null``: a spawner that does nothing, so a round measures JupyterHub's own cost of a
#: spawn (API token, OAuth client, database, proxy route, the lab's readiness check).
#: Every lab is one HTTP responder outside the hub (``NULL_RESPONDER_PORT`` names its
#: port), as every stub lab is the kubelet's responder in the emulator's process.
NULL_SPAWNER_CONFIG = """
from jupyterhub.spawner import Spawner as _Spawner
class NullSpawner(_Spawner):
    _running = False
    async def start(self):
        self._running = True
        return ("127.0.0.1", int(__import__("os").environ["NULL_RESPONDER_PORT"]))
    async def poll(self):
        return None if self._running else 0
    async def stop(self, now=False):
        self._running = False
c.JupyterHub.spawner_class = NullSpawner
c.NullSpawner.http_timeout = 600
c.NullSpawner.start_timeout = 900
"""


def common_config(kind: str, n: int, workdir: Path) -> str:
    """The hub configuration of one spawner; everything else is the same for all."""
    if kind == "null":
        return BACKLOG_HOOK + HUB_CONFIG.format(limit=n + 10) + NULL_SPAWNER_CONFIG
    cls = "LSSTSpawner" if kind == "lsst" else "KubeSpawner"
    shared = (
        BACKLOG_HOOK
        + HUB_CONFIG.format(limit=n + 10)
        + f"""c.{cls}.namespace = {NAMESPACE!r}
c.{cls}.cmd = ["jupyterhub-singleuser"]
c.{cls}.args = ["--allow-root"]
c.{cls}.http_timeout = 600
"""
    )
    if kind == "kube":
        return (
            shared
            + f"""
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.image = {IMAGE!r}
c.KubeSpawner.start_timeout = 900
# LSSTSpawner's defaults (kubernetes_request_timeout 30s, kubernetes_retry_budget 2m);
# KubeSpawner's own (3s, 30s) make a stalled hub event loop retry pod creations.
c.KubeSpawner.k8s_api_request_timeout = 30
c.KubeSpawner.k8s_api_request_retry_timeout = 120
"""
        )
    return (
        shared
        + f"""
c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = {IMAGE_BASE!r}
c.LSSTSpawner.static_image_tags = ["recommended", {TAG!r}]
c.LSSTSpawner.static_image_digests = {{"recommended": {DIGEST!r}, {TAG!r}: {DIGEST!r}}}
c.LSSTSpawner.lab_home_directory = "{workdir}/home/{{username}}"
c.LSSTSpawner.lab_runtime_directory = "{workdir}/run"
c.LSSTSpawner.lab_spawn_timeout = "15m"
"""
        + ('c.LSSTSpawner.lab_backend = "operator"\n' if kind == "operator" else "")
    )


def proc_cpu_seconds(pid: int | None) -> float:
    """utime + stime of one process (not its children), in seconds."""
    if pid is None:
        return math.nan
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of stat(5)


def proc_rss_bytes(pid: int | None) -> int:
    if pid is None:
        return 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def per_op(counts: dict[str, dict[str, int]], n: int) -> dict[str, float]:
    """``{"create pods": 1.0, ...}`` per spawn (or stop), and the totals by class."""
    out: dict[str, float] = {}
    for verb, resources in sorted(counts.items()):
        for resource, count in sorted(resources.items()):
            out[f"{verb} {resource}"] = count / n
    out["writes"] = sum(v for k, v in out.items() if k.split()[0] in WRITE_VERBS)
    out["reads"] = sum(v for k, v in out.items() if k.split()[0] in ("get", "list"))
    out["lists"] = sum(v for k, v in out.items() if k.split()[0] == "list")
    out["all"] = sum(
        v for k, v in out.items() if k not in ("writes", "reads", "lists") and " " in k
    )
    return out


@dataclass
class Phase:
    """Figures of the spawn phase or the stop phase of one round."""

    n: int
    ok: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    hub_cpu_seconds: float = 0.0
    proxy_cpu_seconds: float = 0.0
    #: The emulator's process (API server, stub kubelet and its stub labs).
    emulator_cpu_seconds: float = 0.0
    #: Other processes of the round by name (operator mode: ``{"operator": ...}``).
    other_cpu_seconds: dict[str, float] = field(default_factory=dict)
    latency_p50: float = math.nan
    latency_p99: float = math.nan
    latency_max: float = math.nan
    rss_before: int = 0
    rss_after: int = 0
    #: ``--trim``: RSS after the hub collected its garbage and ran ``malloc_trim(0)``,
    #: read after ``rss_after``; ``rss_before`` is then read after the same, so both
    #: growths start from a trimmed hub.
    rss_after_trim: int = 0
    #: ``--trim``: Python's small-object allocator before and after (``PYMALLOC_FIGURES``).
    pymalloc: dict[str, dict[str, int]] = field(default_factory=dict)
    requests: dict[str, dict[str, int]] = field(default_factory=dict)
    #: ``--gc-stats``: garbage collections of the hub during the phase, by generation:
    #: ``{"2": [collections, seconds], ...}``.
    gc: dict[str, list[float]] = field(default_factory=dict)
    #: ``--tracemalloc``: Python memory traced before and after the phase, in bytes:
    #: ``{"before": {"current": ...}, "after": {"current": ..., "peak": ...}}``.
    traced: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def cpu_per_op(self) -> float:
        return self.hub_cpu_seconds / self.n

    @property
    def rss_growth_per_op(self) -> float:
        return (self.rss_after - self.rss_before) / self.n


@dataclass
class Round:
    kind: str
    index: int
    n: int
    load_before: str
    pod_image: str | None = None
    leftovers: dict[str, int] = field(default_factory=dict)
    #: How long after the stops the namespace held lab objects (the wait's length when
    #: some were still left).
    emptied_seconds: float = math.nan
    spawn: Phase | None = None
    stop: Phase | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("spawn", "stop"):
            phase = getattr(self, name)
            if phase is not None:
                out[name]["cpu_per_op"] = phase.cpu_per_op
                out[name]["rss_growth_per_op"] = phase.rss_growth_per_op
                out[name]["per_op"] = per_op(phase.requests, phase.ok or phase.n)
        return out


class HubClient:
    """The hub's REST API, straight to the hub (not through the proxy), with aiohttp."""

    def __init__(self, hub: HubProcess, session: aiohttp.ClientSession) -> None:
        self.base = f"http://127.0.0.1:{hub.hub_port}/hub/api"
        self.headers = {"Authorization": f"token {hub.token}"}
        self.session = session

    async def failed_stops(self) -> int:
        """How many server stops failed so far, by the hub's own count: JupyterHub answers
        a ``DELETE .../server`` whose ``Spawner.stop`` raised as one that worked (204),
        and counts it only in its ``server_stop_seconds`` metric, ``status="failure"``."""
        url = self.base.removesuffix("/api") + "/metrics"
        async with self.session.get(
            url, headers=self.headers, timeout=aiohttp.ClientTimeout(total=60)
        ) as response:
            text = await response.text()
            if response.status != 200:
                raise RuntimeError(f"GET /hub/metrics: {response.status} {text[:300]}")
        for line in text.splitlines():
            if line.startswith("jupyterhub_server_stop_seconds_count") and (
                'status="failure"' in line
            ):
                return int(float(line.rsplit(" ", 1)[1]))
        return 0

    async def call(
        self, method: str, path: str, body: Any = None, seconds: float = 60
    ) -> tuple[int, str]:
        async with self.session.request(
            method,
            self.base + path,
            json=body,
            headers=self.headers,
            timeout=aiohttp.ClientTimeout(total=seconds),
        ) as response:
            return response.status, await response.text()


async def bounded_gather(coros: list[Any], limit: int) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with semaphore:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


async def timed_call(
    client: HubClient, method: str, path: str, body: Any, seconds: float
) -> tuple[int, str, float]:
    start = time.perf_counter()
    try:
        status, text = await client.call(method, path, body, seconds=seconds)
    except (TimeoutError, aiohttp.ClientError) as error:
        status, text = 0, f"{type(error).__name__}: {error}"
    return status, text, time.perf_counter() - start


LAB_KINDS = ("pods", "configmaps", "secrets", "services")


def lab_objects(emulator: KubeEmulator) -> dict[str, int]:
    """How many lab objects the namespace holds (counted in the emulator's loop, no copies)."""
    store = emulator.store
    return emulator.call(
        lambda: {kind: len(store.list(kind, NAMESPACE, None, None)[0]) for kind in LAB_KINDS}
    )


def pod_image(emulator: KubeEmulator) -> str | None:
    """The first container image of one lab pod (to check both spawners use the same)."""
    store = emulator.store

    def read() -> str | None:
        pods = store.list("pods", NAMESPACE, None, None)[0]
        return pods[0]["spec"]["containers"][0]["image"] if pods else None

    return emulator.call(read)


def clear_namespace(emulator: KubeEmulator) -> None:
    """Delete what a round left behind (grace 0), so the next round starts clean.

    Events too: the emulator never expires them (a cluster drops them after an hour),
    and every re-list of the hub's event reflector returns all of them, so without this
    each round's hub CPU per spawn grew with the events of the rounds before it
    (measured at N=1000: 21.5, 28.2, 39.1, 42.2, 56.8, 64.4 ms over six rounds).
    """
    store = emulator.store

    def clear() -> None:
        for kind in (*LAB_KINDS, "events"):
            for obj in store.list(kind, NAMESPACE, None, None)[0]:
                store.delete(kind, NAMESPACE, obj["metadata"]["name"], grace_period=0)

    emulator.call(clear)


def reset_counters(emulator: KubeEmulator) -> None:
    emulator.counters.reset()


def read_counters(emulator: KubeEmulator) -> dict[str, dict[str, int]]:
    counters: dict[str, dict[str, int]] = emulator.counters.as_dict()
    return counters


def rbac_decisions(emulator: KubeEmulator) -> dict[str, Any]:
    """The emulator's RBAC decisions so far, and the first requests it refused."""
    authorizer = emulator.access.authorizer
    denied = [f"{a.user.name} {a.verb} {a.resource}" for a in authorizer.denied[:5]]
    return {**authorizer.decisions, "first_denied": denied}


#: What the driver may ask of the emulator's process (``EmulatorProcess.ask``).
EMULATOR_COMMANDS = {
    f.__name__: f
    for f in (
        lab_objects,
        pod_image,
        clear_namespace,
        reset_counters,
        read_counters,
        rbac_decisions,
    )
}


async def check_hub_role(kubeconfig: Path) -> dict[str, Any]:
    """Ask the emulator, with the hub's own token, which rules it has in the lab namespace
    (a SelfSubjectRulesReview), and make one request the z2jh Role refuses; fail unless the
    hub is bound to exactly z2jh's hub Role."""
    config = yaml.safe_load(await asyncio.to_thread(kubeconfig.read_text))
    server = config["clusters"][0]["cluster"]["server"]
    token = config["users"][0]["user"]["token"]
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": NAMESPACE},
    }
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(server, headers=headers) as session:
        path = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
        async with session.post(path, json=review) as reply:
            rules = (await reply.json())["status"]["resourceRules"]
        async with session.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps") as reply:
            configmaps = reply.status, (await reply.json())["message"]

    def canonical(rule: Any) -> tuple[Any, ...]:
        return tuple(sorted((k, tuple(sorted(v))) for k, v in dict(rule).items() if v))

    # Every user may create reviews (system:basic-user); the rest must be z2jh's Role.
    granted = sorted(canonical(r) for r in rules if "authorization.k8s.io" not in r["apiGroups"])
    expected = sorted(canonical(r) for r in Z2JH_HUB_ROLE_RULES)
    if granted != expected or configmaps[0] != 403:
        raise RuntimeError(f"the hub is not bound to z2jh's hub Role: {rules}, {configmaps}")
    return {"rules": rules, "configmaps_list": configmaps}


def host_emulator(
    conn: Connection,
    kubeconfig: str,
    nodes: int,
    per_node: int,
    workdir: str,
    plugins: tuple[str, ...] = (),
) -> None:
    """The emulator's process: the API server and its stub kubelet (whose stub labs answer
    the hub's readiness checks) in a thread, and a command loop on ``conn``. ``plugins``
    are modules imported first, which add their own ``EMULATOR_COMMANDS``."""
    for module in plugins:
        importlib.import_module(module)
    emulator = KubeEmulator(namespaces=("default", NAMESPACE)).start_in_thread()
    kubelet = ProcessKubelet(
        emulator,
        nodes=[FakeNode(f"node-{i}", max_pods=per_node) for i in range(nodes)],
        mode="stub",
        workdir=workdir,
    )
    emulator.run(kubelet.start())
    write_hub_kubeconfig(emulator, kubeconfig, NAMESPACE)  # the hub as z2jh binds it
    conn.send(("ready", None))
    try:
        while True:
            command, args = conn.recv()
            if command == "stop":
                break
            try:
                conn.send(("ok", EMULATOR_COMMANDS[command](emulator, *args)))
            except Exception as error:  # reported to the driver, which raises it
                conn.send(("error", f"{command}: {type(error).__name__}: {error}"))
    finally:
        emulator.run(kubelet.stop())
        emulator.stop_thread()
        conn.send(("ok", None))


class EmulatorProcess:
    """The Kubernetes API emulator and its stub kubelet in a process of their own.

    In the driver's process (as before 2026-11-22) the emulator, the stub labs and the
    N HTTP clients of the storm shared one interpreter and its GIL, so the hub's replies
    were delayed by the driver's own work, and more so the larger N.
    """

    def __init__(
        self, workroot: Path, nodes: int, per_node: int, plugins: tuple[str, ...] = ()
    ) -> None:
        self.kubeconfig = workroot / "kubeconfig"
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(
            target=host_emulator,
            args=(
                child,
                str(self.kubeconfig),
                nodes,
                per_node,
                str(workroot / "kubelet"),
                plugins,
            ),
            name="kube-emulator",
            daemon=True,
        )
        self.process.start()
        if not self._conn.poll(60):
            self.process.kill()
            raise RuntimeError("the emulator's process did not start within 60s")
        self._conn.recv()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def ask(self, command: str, *args: Any) -> Any:
        self._conn.send((command, args))
        if not self._conn.poll(60):
            raise RuntimeError(f"the emulator's process did not answer {command!r} within 60s")
        status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"emulator: {value}")
        return value

    def stop(self) -> None:
        try:
            self.ask("stop")
        finally:
            self.process.join(10)
            if self.process.is_alive():
                self.process.kill()


async def wait_until_empty(emulator: EmulatorProcess, seconds: float) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    while True:
        left: dict[str, int] = emulator.ask("lab_objects")
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.25)


async def storm(
    client: HubClient,
    hub: HubProcess,
    emulator: EmulatorProcess,
    method: str,
    names: list[str],
    body: Any,
    ok_status: int,
    seconds: float,
    profile: bool = False,
    trace_memory: bool = False,
    gc_stats: bool = False,
    trim: bool = False,
    others: dict[str, int] | None = None,
) -> Phase:
    phase = Phase(n=len(names))
    proxy_pid = read_pid(hub.workdir / "proxy.pid")
    await asyncio.sleep(1.0)  # let the previous phase's tail settle
    emulator.ask("reset_counters")
    if trim and hub.pid is not None:  # both RSS growths then start from a trimmed hub
        trimmed = hub.workdir.parent / "trimmed"
        await signal_and_wait(hub.pid, signal.SIGRTMIN + 6, trimmed)
        phase.pymalloc["before"] = parse_pymalloc(await asyncio.to_thread(trimmed.read_text))
    phase.rss_before = proc_rss_bytes(hub.pid)
    if trace_memory and hub.pid is not None:
        await signal_and_wait(hub.pid, signal.SIGRTMIN + 3, hub.workdir.parent / "before.trace")
    gc_file = hub.workdir.parent / "gc.json"
    gc0 = await read_gc_stats(hub.pid, gc_file) if gc_stats else {}
    cpu0, proxy0 = proc_cpu_seconds(hub.pid), proc_cpu_seconds(proxy_pid)
    emulator0 = proc_cpu_seconds(emulator.pid)
    others0 = {name: proc_cpu_seconds(pid) for name, pid in (others or {}).items()}
    if profile and hub.pid is not None:
        os.kill(hub.pid, signal.SIGRTMIN + 1)
    start = time.perf_counter()
    results = await asyncio.gather(
        *(timed_call(client, method, f"/users/{name}/server", body, seconds) for name in names)
    )
    phase.wall_seconds = time.perf_counter() - start
    phase.hub_cpu_seconds = proc_cpu_seconds(hub.pid) - cpu0
    phase.proxy_cpu_seconds = proc_cpu_seconds(proxy_pid) - proxy0
    phase.emulator_cpu_seconds = proc_cpu_seconds(emulator.pid) - emulator0
    for name, pid in (others or {}).items():
        phase.other_cpu_seconds[name] = proc_cpu_seconds(pid) - others0[name]
    if gc_stats:
        gc1 = await read_gc_stats(hub.pid, gc_file)
        phase.gc = {g: [gc1[g][0] - gc0[g][0], gc1[g][1] - gc0[g][1]] for g in gc1}
    if profile and hub.pid is not None:
        os.kill(hub.pid, signal.SIGRTMIN + 2)
    latencies = []
    for status, text, elapsed in results:
        if status == ok_status:
            phase.ok += 1
            latencies.append(elapsed)
        else:
            phase.failures += 1
            if len(phase.errors) < 5:
                phase.errors.append(f"{status}: {text[:300]}")
    phase.latency_p50 = percentile(latencies, 50)
    phase.latency_p99 = percentile(latencies, 99)
    phase.latency_max = max(latencies) if latencies else math.nan
    await asyncio.sleep(2.0)  # the hub's post-spawn bookkeeping, before RSS and counters
    phase.rss_after = proc_rss_bytes(hub.pid)
    if trace_memory and hub.pid is not None:
        await signal_and_wait(hub.pid, signal.SIGRTMIN + 4, hub.workdir.parent / "after.trace")
        for name in ("before", "after"):
            path = hub.workdir.parent / f"{name}.trace.json"
            phase.traced[name] = json.loads(await asyncio.to_thread(path.read_text))
    if trim and hub.pid is not None:
        trimmed = hub.workdir.parent / "trimmed"
        await signal_and_wait(hub.pid, signal.SIGRTMIN + 6, trimmed)
        phase.rss_after_trim = proc_rss_bytes(hub.pid)
        phase.pymalloc["after"] = parse_pymalloc(await asyncio.to_thread(trimmed.read_text))
    phase.requests = emulator.ask("read_counters")
    return phase


async def signal_and_wait(pid: int, signum: int, written: Path, seconds: float = 120) -> None:
    """Send ``signum`` to the hub and wait until it has written ``written``."""
    await asyncio.to_thread(written.unlink, missing_ok=True)
    os.kill(pid, signum)
    await asyncio.to_thread(wait_for_file, written, seconds)


async def read_gc_stats(pid: int | None, path: Path) -> dict[str, list[float]]:
    """The hub's garbage-collection totals so far (``GC_HOOK``)."""
    if pid is None:
        return {}
    await signal_and_wait(pid, signal.SIGRTMIN + 5, path)
    stats: dict[str, list[float]] = json.loads(await asyncio.to_thread(path.read_text))
    return stats


def wait_for_file(path: Path, seconds: float) -> None:
    """Wait until ``path`` exists and its size stopped changing (it is written whole)."""
    deadline = time.monotonic() + seconds
    size = -1
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = path.stat().st_size if path.exists() else -1
        if now >= 0 and now == size:
            return
        size = now
    raise RuntimeError(f"{path} was not written within {seconds:g}s")


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


async def run_round(
    kind: str,
    index: int,
    n: int,
    emulator: EmulatorProcess,
    kubeconfig: Path,
    workroot: Path,
    profile: bool = False,
    trace_memory: bool = False,
    gc_stats: bool = False,
    keep_lookups: bool = False,
    trim: bool = False,
    helper: Any = None,
    leftover_wait: float = 120,
) -> Round:
    """One round; ``helper`` (operator mode: the operator) has ``start(workdir)``, which
    returns the pids whose CPU the spawn phase reports, and ``stop()``; its ``hub_env``, if
    it has one, goes into the hub's environment. After the stops, the namespace is watched
    ``leftover_wait`` seconds at most until it holds no lab object."""
    result = Round(kind=kind, index=index, n=n, load_before=load_average())
    workdir = workroot / f"{index:02d}-{kind}"
    config = common_config(kind, n, workdir)
    if profile:
        config += PROFILE_HOOK.format(path=str(workdir / "spawn.pstats"))
    if keep_lookups and kind == "lsst":
        config += "\nc.LSSTSpawner.kubernetes_skip_environment_lookups = False\n"
    if gc_stats:
        config += GC_HOOK.format(path=str(workdir / "gc.json"))
    if trim:
        config += TRIM_HOOK.format(path=str(workdir / "trimmed"))
    if trace_memory:
        config += TRACEMALLOC_HOOK.format(
            before=str(workdir / "before.trace"), after=str(workdir / "after.trace")
        )
    hub = HubProcess(
        workdir / "hub",
        config,
        env={"KUBECONFIG": str(kubeconfig), **getattr(helper, "hub_env", {})},
    )
    others: dict[str, int] = await helper.start(workdir) if helper is not None else {}
    await asyncio.to_thread(hub.start, 120)
    names = [f"u{i:05d}" for i in range(n)]
    # The same body for both: the hub stores the options either way (one more DB write);
    # plain KubeSpawner without a profile_list ignores them.
    body = await asyncio.to_thread(hub.spawn_body, {"image": TAG})
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            client = HubClient(hub, session)
            everyone = [*names, "warmup"]
            for first in range(0, len(everyone), 500):
                status, text = await client.call(
                    "POST", "/users", {"usernames": everyone[first : first + 500]}, seconds=600
                )
                if status != 201:
                    raise RuntimeError(f"creating users: {status} {text[:300]}")
            patches = await bounded_gather(
                [
                    client.call(
                        "PATCH",
                        f"/users/{name}",
                        {"auth_state": {"identity": identity_for(name).to_dict()}},
                        seconds=600,
                    )
                    for name in everyone
                ],
                16,
            )
            bad = [p for p in patches if p[0] != 200]
            if bad:
                raise RuntimeError(f"setting auth_state: {bad[0][0]} {bad[0][1][:300]}")
            for method, expected in (("POST", 201), ("DELETE", 204)):
                status, text, _ = await timed_call(
                    client, method, "/users/warmup/server", body, 120
                )
                if status != expected:
                    raise RuntimeError(f"warm-up {method}: {status} {text[:500]}")
            await wait_until_empty(emulator, 60)
            timeout = 900
            result.spawn = await storm(
                client,
                hub,
                emulator,
                "POST",
                names,
                body,
                201,
                timeout,
                profile,
                trace_memory,
                gc_stats,
                trim,
                others,
            )
            result.pod_image = emulator.ask("pod_image")
            failed_before = await client.failed_stops()
            result.stop = await storm(
                client, hub, emulator, "DELETE", names, None, 204, timeout, gc_stats=gc_stats
            )
            # A 204 is not a stop that worked (HubClient.failed_stops): count the hub's own.
            failed = await client.failed_stops() - failed_before
            if failed:
                result.stop.failures += failed
                result.stop.ok -= failed
                result.stop.errors.append(f"{failed} stop(s) failed in the hub (its metrics)")
            waited = time.monotonic()
            result.leftovers = await wait_until_empty(emulator, leftover_wait)
            result.emptied_seconds = time.monotonic() - waited
    finally:
        await asyncio.to_thread(hub.stop)
        if helper is not None:
            await helper.stop()
        # A hub that failed mid-round may leave labs behind: clear them for the next round.
        emulator.ask("clear_namespace")
    return result


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def summarize(rounds: list[Round], kinds: tuple[str, ...] = SPAWNERS) -> dict[str, Any]:
    """Per spawner (``kinds``): medians over its rounds; and LSST / plain ratios."""
    out: dict[str, Any] = {}
    for kind in kinds:
        mine = [r for r in rounds if r.kind == kind]
        spawns = [r.spawn for r in mine if r.spawn is not None and r.stop is not None]
        stops = [r.stop for r in mine if r.spawn is not None and r.stop is not None]
        if not spawns:
            continue
        # Requests per successful spawn (stop): failed ones never reached Kubernetes.
        spawn_ops = [per_op(p.requests, p.ok or p.n) for p in spawns]
        stop_ops = [per_op(p.requests, p.ok or p.n) for p in stops]
        median = statistics.median
        out[kind] = {
            "rounds": len(spawns),
            "n": spawns[0].n,
            "cpu_per_spawn": median(p.cpu_per_op for p in spawns),
            "cpu_per_stop": median(p.cpu_per_op for p in stops),
            "proxy_cpu_per_spawn": median(p.proxy_cpu_seconds / p.n for p in spawns),
            "emulator_cpu_per_spawn": median(p.emulator_cpu_seconds / p.n for p in spawns),
            "p50": median(p.latency_p50 for p in spawns),
            "p99": median(p.latency_p99 for p in spawns),
            "max": max(p.latency_max for p in spawns),
            "wall": median(p.wall_seconds for p in spawns),
            "stop_p50": median(p.latency_p50 for p in stops),
            "failures": sum(p.failures for p in spawns),
            "stop_failures": sum(p.failures for p in stops),
            "leftovers": sum(sum(r.leftovers.values()) for r in mine),
            "rss_per_lab": median(p.rss_growth_per_op for p in spawns),
            "rss_per_lab_after_trim": median(
                (p.rss_after_trim - p.rss_before) / p.n if p.rss_after_trim else math.nan
                for p in spawns
            ),
            "requests_per_spawn": spawn_ops[-1],
            "requests_per_stop": stop_ops[-1],
            "writes_per_spawn": median(o["writes"] for o in spawn_ops),
            "lists_per_spawn": median(o["lists"] for o in spawn_ops),
            "all_per_spawn": median(o["all"] for o in spawn_ops),
            "writes_per_stop": median(o["writes"] for o in stop_ops),
            "all_per_stop": median(o["all"] for o in stop_ops),
            "pod_image": next((r.pod_image for r in mine if r.pod_image), None),
        }
    if "lsst" in out and "kube" in out:
        a, b = out["lsst"], out["kube"]
        out["ratio"] = {
            "cpu_per_spawn": ratio(a["cpu_per_spawn"], b["cpu_per_spawn"]),
            "cpu_per_stop": ratio(a["cpu_per_stop"], b["cpu_per_stop"]),
            "p50": ratio(a["p50"], b["p50"]),
            "rss_per_lab": ratio(a["rss_per_lab"], b["rss_per_lab"]),
            "rss_per_lab_after_trim": ratio(
                a["rss_per_lab_after_trim"], b["rss_per_lab_after_trim"]
            ),
            "extra_writes_per_spawn": a["writes_per_spawn"] - b["writes_per_spawn"],
        }
    return out


def print_report(rounds: list[Round], summary: dict[str, Any]) -> None:
    print("\nround  spawner      N  load-before     hub-cpu/spawn  p50 s  p99 s  fail  rss/lab KiB")
    for r in rounds:
        if r.spawn is None:
            continue
        print(
            f"{r.index:5}  {LABELS[r.kind]:11} {r.n:5}  {r.load_before:14} "
            f"{r.spawn.cpu_per_op * 1000:10.2f} ms {r.spawn.latency_p50:6.2f} "
            f"{r.spawn.latency_p99:6.2f} {r.spawn.failures:5}  "
            f"{r.spawn.rss_growth_per_op / 1024:9.1f}"
        )
        if r.spawn.gc:
            print(
                "       gc during the spawn storm: "
                + ", ".join(
                    f"gen{g} {int(c)}x {s * 1000 / r.n:.2f} ms/spawn"
                    for g, (c, s) in sorted(r.spawn.gc.items())
                    if g != "tracked"
                )
                + f"; GC-tracked objects +{r.spawn.gc['tracked'][0] / r.n:.0f} per lab"
            )
        if r.spawn.rss_after_trim:
            print(
                "       RSS growth per lab after gc.collect() and malloc_trim(0): "
                f"{(r.spawn.rss_after_trim - r.spawn.rss_before) / r.n / 1024:.1f} KiB"
            )
        # With --tracemalloc the allocator is tracemalloc's hook, and
        # sys._debugmallocstats() prints no pymalloc figures: nothing to report then.
        if all(
            PYMALLOC_FIGURES.keys() <= r.spawn.pymalloc.get(when, {}).keys()
            for when in ("before", "after")
        ):
            grown = {
                k: (r.spawn.pymalloc["after"][k] - r.spawn.pymalloc["before"][k]) / r.n / 1024
                for k in PYMALLOC_FIGURES
            }
            print(
                "       pymalloc growth per lab (trimmed): "
                + ", ".join(f"{k} {v:.1f} KiB" for k, v in grown.items())
            )
        if r.spawn.traced:
            before, after = r.spawn.traced["before"], r.spawn.traced["after"]
            print(
                "       traced Python memory per lab: kept "
                f"{(after['current'] - before['current']) / r.n / 1024:.1f} KiB, "
                f"peak during the storm {(after['peak'] - before['current']) / r.n / 1024:.1f} KiB"
            )
        print(
            f"       emulator CPU {r.spawn.emulator_cpu_seconds * 1000 / r.n:.2f} ms/spawn, "
            f"proxy {r.spawn.proxy_cpu_seconds * 1000 / r.n:.2f} ms/spawn"
        )
        for error in r.spawn.errors + (r.stop.errors if r.stop else []):
            print(f"       error: {error}")
    for kind in SPAWNERS:
        if kind in summary:
            s = summary[kind]
            print(f"\n{LABELS[kind]}: pod image {s['pod_image']}")
            print("  per spawn:", json.dumps(s["requests_per_spawn"]))
            print("  per stop: ", json.dumps(s["requests_per_stop"]))
    if "ratio" in summary:
        ratios = {k: round(v, 3) for k, v in summary["ratio"].items()}
        print("\nratio LSST/plain:", json.dumps(ratios))


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    workroot = Path(args.workdir or tempfile.mkdtemp(prefix="spawn-storm-"))
    per_node = math.ceil(args.n / args.nodes) + 10
    emulator = EmulatorProcess(workroot, args.nodes, per_node)
    kubeconfig = emulator.kubeconfig
    rounds: list[Round] = []
    deadline = time.monotonic() + args.max_minutes * 60
    try:
        hub_role = await check_hub_role(kubeconfig)
        print(
            "the hub is bound to z2jh's hub Role; listing configmaps as the hub: "
            f"{hub_role['configmaps_list'][0]} {hub_role['configmaps_list'][1]}",
            flush=True,
        )
        for index in range(args.rounds * 2):
            if time.monotonic() > deadline:
                print(f"stopping: --max-minutes {args.max_minutes} reached", flush=True)
                break
            kind = SPAWNERS[index % 2]
            print(f"round {index}: {LABELS[kind]}, N={args.n}, load {load_average()}", flush=True)
            result = await run_round(
                kind,
                index,
                args.n,
                emulator,
                kubeconfig,
                workroot,
                args.profile,
                args.tracemalloc,
                args.gc_stats,
                args.keep_environment_lookups,
                args.trim,
            )
            rounds.append(result)
            assert result.spawn is not None
            print(
                f"  spawn: {result.spawn.ok} ok, {result.spawn.failures} failed, "
                f"{result.spawn.wall_seconds:.1f}s, hub cpu {result.spawn.hub_cpu_seconds:.1f}s; "
                f"leftovers {result.leftovers}",
                flush=True,
            )
            for error in result.spawn.errors + (result.stop.errors if result.stop else []):
                print(f"  error: {error}", flush=True)
        rbac = emulator.ask("rbac_decisions")
        print(f"RBAC decisions in the whole run: {rbac}", flush=True)
    finally:
        emulator.stop()
    summary = summarize(rounds)
    print_report(rounds, summary)
    return {
        "n": args.n,
        "hub_role": hub_role,
        "rbac_decisions": rbac,
        "rounds": [r.to_dict() for r in rounds],
        "summary": summary,
        "load_after": load_average(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="concurrent spawns per round")
    parser.add_argument(
        "--rounds", type=int, default=2, help="rounds per spawner (alternating LSST, plain)"
    )
    parser.add_argument("--nodes", type=int, default=4, help="fake nodes of the stub kubelet")
    parser.add_argument("--max-minutes", type=float, default=60, help="no new round after this")
    parser.add_argument("--workdir", help="hub and kubelet directories (default: a temp dir)")
    parser.add_argument("--json", help="write all figures here")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the hub during each spawn storm (<workdir>/<round>/spawn.pstats); "
        "the profiler's overhead distorts the CPU figures",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace the hub's allocations and write snapshots before and after each spawn "
        "storm (<workdir>/<round>/before.trace, after.trace; compare them with "
        "benchmarks/memory_diff.py); tracing slows the hub and grows its RSS",
    )
    parser.add_argument(
        "--gc-stats",
        action="store_true",
        help="time the hub's garbage collections during each storm (collections and CPU "
        "seconds by generation, in the JSON and the report)",
    )
    parser.add_argument(
        "--trim",
        action="store_true",
        help="after the spawn storm's RSS is read, make the hub collect its garbage and "
        "return freed memory to the system (malloc_trim), and read RSS again: what is "
        "still in use, against what the allocators keep",
    )
    parser.add_argument(
        "--keep-environment-lookups",
        action="store_true",
        help="LSSTSpawner keeps aiohttp's per-request netrc and proxy lookups, as plain "
        "KubeSpawner does (kubernetes_skip_environment_lookups = False): compares the "
        "spawners with the same Kubernetes client",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    result = asyncio.run(amain(args))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
