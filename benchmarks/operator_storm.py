"""Benchmark: operator mode's spawn storm beside in-hub LSSTSpawner and plain KubeSpawner.

One run, one emulator process, rounds alternating operator mode, LSSTSpawner (in-hub)
and plain KubeSpawner; each round is ``spawn_storm.run_round`` (a fresh ``jupyterhub``,
N concurrent spawns through its REST API, then N stops; see spawn_storm.py). For an
operator-mode round, before the hub starts:

- the hub's service account is bound to operator mode's hub Role
  (``HUB_OPERATOR_ROLE_RULES``: LabServers, Secrets create/delete, Events; no pods),
  and back to z2jh's hub Role after the round;
- the LabTemplate ``lab`` is made from that round's hub configuration (as
  ``template-from-config`` does), and
- ``lsst-spawner operator`` runs as its own process (``--replicas 2``: two peered
  replicas), as the service account ``manifests --operator`` describes.

The operator's CPU (``utime + stime`` of its process) is read around the spawn storm like
the hub's. After the stops, no LabServer may be left, nor any pod or Secret.

    python benchmarks/operator_storm.py --n 100 --rounds 1 [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import spawn_storm as storm

from lsst_spawner.operator.manifests import HUB_OPERATOR_ROLE_RULES
from lsst_spawner.rbac import Z2JH_HUB_ROLE_RULES
from lsst_spawner.testing.kube import KubeEmulator
from lsst_spawner.testing.kube.hub_role import bind_hub
from lsst_spawner.testing.kube.kopf_process import (
    OPERATOR_COMMAND,
    KopfProcess,
    install_operator_mode,
    lab_template_from_config,
)
from lsst_spawner.testing.ports import free_port

KINDS = ("operator", "kube", "lsst", "null")
#: The kinds a run has unless ``--kinds`` says otherwise (``null`` is JupyterHub's floor).
DEFAULT_KINDS = ("operator", "kube", "lsst")
LABELS = {**storm.LABELS, "operator": "operator mode", "null": "no spawner"}
LABSERVERS = "labservers.lab.lsst-spawner.io"
TEMPLATES = "labtemplates.lab.lsst-spawner.io"


# --- commands run in the emulator's process (spawn_storm.EMULATOR_COMMANDS) -----------


def install_operator(emulator: KubeEmulator, kubeconfig: str) -> str:
    """Operator mode's CRDs and the operator's account; the operator's kubeconfig."""
    return str(install_operator_mode(emulator, storm.NAMESPACE, kubeconfig))


def bind_hub_rules(emulator: KubeEmulator, operator_mode: bool) -> None:
    """The hub's Role: operator mode's, or z2jh's (the hub's token stays valid)."""
    bind_hub(
        emulator, storm.NAMESPACE, HUB_OPERATOR_ROLE_RULES if operator_mode else Z2JH_HUB_ROLE_RULES
    )


def put_template(emulator: KubeEmulator, template: dict[str, Any]) -> None:
    """Create or replace the LabTemplate ``template`` names."""
    store, name = emulator.store, template["metadata"]["name"]

    def put() -> None:
        if store.objects[TEMPLATES].get((storm.NAMESPACE, name)) is not None:
            store.delete(TEMPLATES, storm.NAMESPACE, name, grace_period=0)
        store.create(TEMPLATES, storm.NAMESPACE, template)

    emulator.call(put)


def clear_lab_servers(emulator: KubeEmulator) -> int:
    """Remove the LabServers a round left (finalizers dropped); how many there were."""
    store = emulator.store

    def clear() -> int:
        left = store.list(LABSERVERS, storm.NAMESPACE, None, None)[0]
        for obj in left:
            name = obj["metadata"]["name"]
            current = store.objects[LABSERVERS][(storm.NAMESPACE, name)]
            current["metadata"].pop("finalizers", None)
            store.delete(LABSERVERS, storm.NAMESPACE, name, grace_period=0)
        return len(left)

    return emulator.call(clear)


def lab_server_event_reasons(emulator: KubeEmulator) -> dict[str, int]:
    """How many Events of each reason the round's LabServers have (the warm-up's aside)."""
    store = emulator.store

    def count() -> dict[str, int]:
        events = store.list("events", storm.NAMESPACE, None, None)[0]
        reasons = Counter(
            str(e.get("reason"))
            for e in events
            if e["involvedObject"].get("kind") == "LabServer"
            and e["involvedObject"].get("name") != "lab-warmup"
        )
        return dict(sorted(reasons.items()))

    return emulator.call(count)


for _command in (
    install_operator,
    bind_hub_rules,
    put_template,
    clear_lab_servers,
    lab_server_event_reasons,
):
    storm.EMULATOR_COMMANDS[_command.__name__] = _command


# --- the operator around an operator-mode round --------------------------------------


def healthy(port: int) -> bool:
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as reply:
            return int(reply.status) == 200
    except (OSError, urllib.error.URLError):
        return False


class OperatorHelper:
    """``lsst-spawner operator`` (one or two peered replicas) around one round."""

    def __init__(
        self,
        emulator: storm.EmulatorProcess,
        kubeconfig: str,
        n: int,
        replicas: int,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.emulator, self.kubeconfig, self.n, self.replicas = emulator, kubeconfig, n, replicas
        #: More ``lsst-spawner operator`` arguments (``--operator-arg``).
        self.extra_args = list(extra_args)
        self.processes: list[KopfProcess] = []
        #: The LabServers' Events by reason, read when the round's operator stops.
        self.event_reasons: dict[str, int] = {}

    async def start(self, workdir: Path) -> dict[str, int]:
        template = await lab_template_from_config(
            storm.common_config("operator", self.n, workdir),
            workdir / "lab_template_config.py",
            storm.NAMESPACE,
        )
        self.emulator.ask("put_template", template)
        self.emulator.ask("bind_hub_rules", True)
        mode = ["--standalone"] if self.replicas == 1 else ["--peering", "lsst-spawner"]
        ports = []
        for replica in range(self.replicas):
            port = free_port()
            ports.append(port)
            args = [
                "--namespace",
                storm.NAMESPACE,
                "--liveness",
                f"http://127.0.0.1:{port}/healthz",
            ]
            process = KopfProcess(
                [*args, *mode, "--priority", str(100 - replica), *self.extra_args],
                self.kubeconfig,
                workdir / f"operator-{replica}.log",
                command=OPERATOR_COMMAND,
            )
            self.processes.append(process.start())
        deadline = time.monotonic() + 120
        while not all(await asyncio.gather(*(asyncio.to_thread(healthy, p) for p in ports))):
            if time.monotonic() > deadline or not all(p.running() for p in self.processes):
                raise RuntimeError(
                    "the operator did not become healthy:\n" + self.processes[0].output[-3000:]
                )
            await asyncio.sleep(0.5)
        return {f"operator-{i}": p.pid for i, p in enumerate(self.processes) if p.pid}

    async def stop(self) -> None:
        if self.processes:  # stop() runs twice: in run_round, before its clear, and after
            for process in self.processes:
                await asyncio.to_thread(process.stop)
            self.event_reasons = self.emulator.ask("lab_server_event_reasons")
        self.processes = []
        self.emulator.ask("bind_hub_rules", False)


# --- the responder of the null spawner's labs -------------------------------------

#: Answers every HTTP request with an empty 200, as the kubelet's stub labs do.
RESPONDER = """
import asyncio, sys

async def answer(reader, writer):
    try:
        while (await reader.readline()) not in (b"\\r\\n", b"\\n", b""):
            pass
        writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n")
        await writer.drain()
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(answer, "127.0.0.1", int(sys.argv[1]), backlog=4096)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


class NullHelper:
    """The one HTTP responder every lab of a ``null`` round is (outside the hub)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.hub_env = {"NULL_RESPONDER_PORT": str(self.port)}
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, workdir: Path) -> dict[str, int]:
        command = [sys.executable, "-c", RESPONDER, str(self.port)]
        self.process = await asyncio.to_thread(subprocess.Popen, command)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the null spawner's responder did not start") from None
                await asyncio.sleep(0.1)
        return {"responder": self.process.pid}

    async def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            await asyncio.to_thread(self.process.wait, 30)
        self.process = None


# --- the run -------------------------------------------------------------------------


def operator_cpu(phase: storm.Phase) -> float:
    """The operator's CPU in a phase: all its replicas."""
    return sum(phase.other_cpu_seconds.values())


def summarize(rounds: list[storm.Round]) -> dict[str, Any]:
    out = storm.summarize(rounds, KINDS)
    mine = [r.spawn for r in rounds if r.kind == "operator" and r.spawn and r.stop]
    if mine:
        out["operator"]["operator_cpu_per_spawn"] = statistics.median(
            operator_cpu(p) / p.n for p in mine
        )
        out["operator"]["operator_cpu_per_spawn_each"] = [operator_cpu(p) / p.n for p in mine]
    if "operator" in out and "kube" in out and "lsst" in out:
        op, kube, lsst = out["operator"], out["kube"], out["lsst"]
        out["ratio_operator"] = {
            "hub_cpu_vs_kube": storm.ratio(op["cpu_per_spawn"], kube["cpu_per_spawn"]),
            "hub_cpu_vs_lsst": storm.ratio(op["cpu_per_spawn"], lsst["cpu_per_spawn"]),
            "hub_and_operator_cpu_vs_kube": storm.ratio(
                op["cpu_per_spawn"] + op.get("operator_cpu_per_spawn", math.nan),
                kube["cpu_per_spawn"],
            ),
            "p50_vs_lsst": storm.ratio(op["p50"], lsst["p50"]),
            "p99_vs_lsst": storm.ratio(op["p99"], lsst["p99"]),
        }
    if "null" in out and "kube" in out:
        # JupyterHub's own cost of a spawn (no spawner) against KubeSpawner's whole hub, and
        # what each spawner adds to it, against what KubeSpawner adds.
        floor, kube = out["null"]["cpu_per_spawn"], out["kube"]["cpu_per_spawn"]
        out["ratio_floor"] = {"null_vs_kube": storm.ratio(floor, kube)}
        for kind in ("operator", "lsst"):
            if kind in out:
                out["ratio_floor"][f"{kind}_above_floor_vs_kube_above_floor"] = storm.ratio(
                    out[kind]["cpu_per_spawn"] - floor, kube - floor
                )
    return out


def print_report(rounds: list[storm.Round], summary: dict[str, Any]) -> None:
    print("\nround  mode            N  load-before     hub-cpu/spawn  operator  p50 s  p99 s  fail")
    for r in rounds:
        if r.spawn is None:
            continue
        extra = (
            f"{operator_cpu(r.spawn) * 1000 / r.n:7.2f} ms" if r.kind == "operator" else " " * 10
        )
        print(
            f"{r.index:5}  {LABELS[r.kind]:13} {r.n:5}  {r.load_before:14} "
            f"{r.spawn.cpu_per_op * 1000:10.2f} ms {extra} {r.spawn.latency_p50:6.2f} "
            f"{r.spawn.latency_p99:6.2f} {r.spawn.failures:5}  leftovers {r.leftovers}"
        )
        for error in r.spawn.errors + (r.stop.errors if r.stop else []):
            print(f"       error: {error}")
    for kind in KINDS:
        if kind in summary:
            print(f"{LABELS[kind]} per spawn:", json.dumps(summary[kind]["requests_per_spawn"]))
    if "ratio_floor" in summary:
        ratios = {k: round(v, 3) for k, v in summary["ratio_floor"].items()}
        print("against JupyterHub's own cost (no spawner):", json.dumps(ratios))
    if "ratio_operator" in summary:
        ratios = {k: round(v, 3) for k, v in summary["ratio_operator"].items()}
        print("\noperator mode's ratios:", json.dumps(ratios))


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    workroot = Path(args.workdir or tempfile.mkdtemp(prefix="operator-storm-"))
    per_node = math.ceil(args.n / args.nodes) + 10
    emulator = storm.EmulatorProcess(workroot, args.nodes, per_node, plugins=("operator_storm",))
    rounds: list[storm.Round] = []
    deadline = time.monotonic() + args.max_minutes * 60
    kinds = [k for k in KINDS if k in args.kinds]
    event_reasons: list[dict[str, Any]] = []
    try:
        await storm.check_hub_role(emulator.kubeconfig)
        operator_kubeconfig = emulator.ask(
            "install_operator", str(workroot / "operator.kubeconfig")
        )
        for index in range(args.rounds * len(kinds)):
            if time.monotonic() > deadline:
                print(f"stopping: --max-minutes {args.max_minutes} reached", flush=True)
                break
            kind = kinds[index % len(kinds)]
            print(
                f"round {index}: {LABELS[kind]}, N={args.n}, load {storm.load_average()}",
                flush=True,
            )
            helper: OperatorHelper | NullHelper | None = None
            if kind == "operator":
                helper = OperatorHelper(
                    emulator, operator_kubeconfig, args.n, args.replicas, args.operator_arg
                )
            elif kind == "null":
                helper = NullHelper()
            try:
                result = await storm.run_round(
                    kind,
                    index,
                    args.n,
                    emulator,
                    emulator.kubeconfig,
                    workroot,
                    helper=helper,
                    leftover_wait=args.leftover_wait,
                )
            finally:
                if helper is not None:
                    await helper.stop()
                if isinstance(helper, OperatorHelper):
                    left = emulator.ask("clear_lab_servers")
            if isinstance(helper, OperatorHelper):
                result.leftovers["labservers"] = left
                reasons = helper.event_reasons
                print(f"  LabServer Events by reason: {reasons}", flush=True)
                event_reasons.append({"round": index, "reasons": reasons})
            rounds.append(result)
            assert result.spawn is not None
            print(
                f"  spawn: {result.spawn.ok} ok, {result.spawn.failures} failed, "
                f"{result.spawn.wall_seconds:.1f}s, hub cpu {result.spawn.hub_cpu_seconds:.1f}s, "
                f"other {result.spawn.other_cpu_seconds}; p50 {result.spawn.latency_p50:.2f}s "
                f"p99 {result.spawn.latency_p99:.2f}s; stop failures "
                f"{result.stop.failures if result.stop else '?'}; leftovers {result.leftovers} "
                f"({result.emptied_seconds:.1f}s after the stops)",
                flush=True,
            )
            if args.json:  # each round as it ends, in case the run is stopped early
                partial = {"n": args.n, "rounds": [r.to_dict() for r in rounds]}
                text = json.dumps(partial, default=str)
                await asyncio.to_thread(Path(args.json + ".partial").write_text, text)
        rbac = emulator.ask("rbac_decisions")
        print(f"RBAC decisions in the whole run: {rbac}", flush=True)
    finally:
        emulator.stop()
    summary = summarize(rounds)
    print_report(rounds, summary)
    return {
        "n": args.n,
        "replicas": args.replicas,
        "operator_args": args.operator_arg,
        "rbac_decisions": rbac,
        "rounds": [r.to_dict() for r in rounds],
        "lab_server_event_reasons": event_reasons,
        "summary": summary,
        "load_after": storm.load_average(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="concurrent spawns per round")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per mode (alternating)")
    parser.add_argument("--nodes", type=int, default=4, help="fake nodes of the stub kubelet")
    parser.add_argument("--replicas", type=int, default=1, choices=(1, 2), help="operators")
    parser.add_argument(
        "--kinds",
        nargs="+",
        default=list(DEFAULT_KINDS),
        choices=KINDS,
        help="which modes to run (null: a spawner that does nothing, JupyterHub's own cost)",
    )
    parser.add_argument(
        "--operator-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="one more argument of lsst-spawner operator "
        "(repeat; e.g. --operator-arg=--worker-limit=100)",
    )
    parser.add_argument(
        "--leftover-wait",
        type=float,
        default=120,
        help="after the stops, wait this long at most for the lab objects to be gone (seconds)",
    )
    parser.add_argument("--max-minutes", type=float, default=90, help="no new round after this")
    parser.add_argument("--workdir", help="hub, operator and kubelet directories")
    parser.add_argument("--json", help="write all figures here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    result = asyncio.run(amain(args))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
