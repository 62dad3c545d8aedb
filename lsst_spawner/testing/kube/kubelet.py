"""The process kubelet: schedules pods on fake nodes and runs them as local processes.

It lives in the emulator's event loop and works on the object store directly
(as a real kubelet would through its own API connection), so its updates are
neither counted as client requests nor hit by injected faults.

Modes:

- ``process``: each container with a ``command`` runs as a local process with
  the pod's environment, in a scratch directory, bound to the pod's own
  loopback address: ``0.0.0.0`` in the command, args and env values is
  replaced by the pod IP (in a real pod, 0.0.0.0 is the pod's own network
  namespace). Deleting the pod sends SIGTERM, then SIGKILL after the grace period.
- ``stub``: no process; every declared container port answers any HTTP request
  with ``200`` from one tiny protocol handler, for benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .network import AddressPool, StubResponder
from .podenv import ContainerConfigError, resolve_env
from .podstatus import running_status, set_condition, set_container, waiting_status
from .resources import event_name
from .server import KubeEmulator
from .status import ApiError
from .store import Change, now_rfc3339

__all__ = ["FakeNode", "ProcessKubelet"]

ImageCheck = Callable[[str], Any] | Collection[str] | None


@dataclass
class FakeNode:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    max_pods: int = 110


@dataclass
class _Runtime:
    namespace: str
    name: str
    uid: str
    node: str | None = None
    ip: str | None = None
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    terminating: bool = False
    scratch: Path | None = None


class ProcessKubelet:
    def __init__(
        self,
        emulator: KubeEmulator,
        *,
        nodes: Iterable[str | FakeNode] = ("node-1", "node-2"),
        mode: Literal["process", "stub"] = "process",
        images: ImageCheck = None,
        step_delay: float = 0.0,
        workdir: str | os.PathLike[str] | None = None,
        inherit_env: bool = False,
        extra_env: dict[str, str] | None = None,
        addresses: AddressPool | None = None,
    ) -> None:
        if mode not in ("process", "stub"):
            raise ValueError("mode must be 'process' or 'stub'")
        self.emulator = emulator
        self.store = emulator.store
        self.nodes = [FakeNode(n) if isinstance(n, str) else n for n in nodes]
        self.mode = mode
        self.images = images
        self.step_delay = step_delay
        self.inherit_env = inherit_env
        self.extra_env = dict(extra_env or {})
        self.addresses = addresses or AddressPool()
        self.stubs = StubResponder()
        self.pods: dict[str, _Runtime] = {}
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="lsst-kubelet-"))
        self._started = False
        self._unschedulable: list[_Runtime] = []

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Attach to the emulator (call on the emulator's loop) and adopt pending pods."""
        self.store.listeners.append(self._on_change)
        self.emulator.log_providers.append(self.pod_log)
        self._started = True
        for pod in list(self.store.objects["pods"].values()):
            if not (pod.get("spec") or {}).get("nodeName"):
                self._launch(pod)

    async def stop(self) -> None:
        """Kill every process and close every stub socket; pods stay in the store."""
        if not self._started:
            return
        self._started = False
        with contextlib.suppress(ValueError):
            self.store.listeners.remove(self._on_change)
        with contextlib.suppress(ValueError):
            self.emulator.log_providers.remove(self.pod_log)
        for runtime in list(self.pods.values()):
            if runtime.task is not None:
                runtime.task.cancel()
            await self._kill(runtime, grace=0)
        self.pods.clear()
        self.stubs.close_all()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def pod_log(self, namespace: str, name: str) -> str | None:
        for runtime in self.pods.values():
            if (runtime.namespace, runtime.name) == (namespace, name) and runtime.scratch:
                logs = sorted(runtime.scratch.glob("*.log"))
                return "".join(p.read_text(errors="replace") for p in logs)
        return None

    # -- reacting to the store ----------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        if change.resource != "pods":
            return
        meta = change.obj["metadata"]
        runtime = self.pods.get(meta["uid"])
        if change.type == "ADDED" and not (change.obj.get("spec") or {}).get("nodeName"):
            self._launch(change.obj)
        elif change.type == "MODIFIED" and meta.get("deletionTimestamp") and runtime:
            if not runtime.terminating:
                runtime.terminating = True
                grace = meta.get("deletionGracePeriodSeconds") or 0
                asyncio.get_running_loop().create_task(self._terminate(runtime, grace))
        elif change.type == "DELETED" and runtime:
            runtime.terminating = True
            asyncio.get_running_loop().create_task(self._terminate(runtime, 0, removed=True))

    def _launch(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        runtime = _Runtime(meta["namespace"], meta["name"], meta["uid"])
        self.pods[meta["uid"]] = runtime
        runtime.task = asyncio.get_running_loop().create_task(self._run(runtime))

    def _mutate(self, runtime: _Runtime, fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        pod = self.store.objects["pods"].get((runtime.namespace, runtime.name))
        if pod is None or pod["metadata"]["uid"] != runtime.uid:
            raise asyncio.CancelledError  # the pod is gone; stop working on it
        return self.store.mutate("pods", runtime.namespace, runtime.name, fn)

    def _event(
        self,
        runtime: _Runtime,
        reason: str,
        message: str,
        *,
        warning: bool = False,
        container: str | None = None,
        component: str = "kubelet",
    ) -> None:
        now = now_rfc3339()
        involved = {
            "kind": "Pod",
            "namespace": runtime.namespace,
            "name": runtime.name,
            "uid": runtime.uid,
            "apiVersion": "v1",
        }
        pod = self.store.objects["pods"].get((runtime.namespace, runtime.name))
        if pod is not None:
            involved["resourceVersion"] = pod["metadata"]["resourceVersion"]
        if container:
            involved["fieldPath"] = f"spec.containers{{{container}}}"
        body = {
            "metadata": {"name": event_name(runtime.name)},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "source": {
                "component": component,
                **({"host": runtime.node} if runtime.node and component == "kubelet" else {}),
            },
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": runtime.node or "",
        }
        with contextlib.suppress(ApiError):
            self.store.create("events", runtime.namespace, body)

    def _retry_unschedulable(self) -> None:
        waiting, self._unschedulable = self._unschedulable, []
        for runtime in waiting:
            if runtime.uid in self.pods and not runtime.terminating:
                runtime.task = asyncio.get_running_loop().create_task(self._run(runtime))

    async def _image_present(self, image: str) -> bool:
        if self.images is None:
            return True
        if callable(self.images):
            result = self.images(image)
            if inspect.isawaitable(result):
                result = await result
            return bool(result)
        return image in self.images

    # -- the pod's life -----------------------------------------------------------------

    def _pick_node(self, pod: dict[str, Any]) -> FakeNode | None:
        selector = (pod.get("spec") or {}).get("nodeSelector") or {}
        load = {n.name: 0 for n in self.nodes}
        for other in self.pods.values():
            if other.node in load:
                load[other.node] += 1
        fits = [
            n
            for n in self.nodes
            if all(n.labels.get(k) == v for k, v in selector.items()) and load[n.name] < n.max_pods
        ]
        return min(fits, key=lambda n: load[n.name]) if fits else None

    async def _pause(self) -> None:
        if self.step_delay:
            await asyncio.sleep(self.step_delay)

    async def _run(self, runtime: _Runtime) -> None:
        try:
            await self._pause()
            pod = self.store.get("pods", runtime.namespace, runtime.name)
            node = self._pick_node(pod)
            if node is None:
                self._event(
                    runtime,
                    "FailedScheduling",
                    f"0/{len(self.nodes)} nodes are "
                    "available: no node matches the pod's node selector or capacity.",
                    warning=True,
                    component="default-scheduler",
                )
                self._unschedulable.append(runtime)  # retried when a pod goes away
                return
            runtime.node = node.name

            def bind(p: dict[str, Any]) -> None:
                p["spec"]["nodeName"] = node.name
                set_condition(p, "PodScheduled", True)

            self._mutate(runtime, bind)
            self._event(
                runtime,
                "Scheduled",
                f"Successfully assigned {runtime.namespace}/{runtime.name} to {node.name}",
                component="default-scheduler",
            )
            await self._pause()
            containers = pod["spec"]["containers"]
            ports = sorted({p["containerPort"] for c in containers for p in c.get("ports") or []})
            runtime.ip = self.addresses.allocate(ports)
            runtime.scratch = self.workdir / runtime.namespace / f"{runtime.name}-{runtime.uid[:8]}"
            runtime.scratch.mkdir(parents=True, exist_ok=True)
            ip = runtime.ip

            def network(p: dict[str, Any]) -> None:
                status = p["status"]
                status.update(
                    hostIP="127.0.0.1",
                    hostIPs=[{"ip": "127.0.0.1"}],
                    podIP=ip,
                    podIPs=[{"ip": ip}],
                    startTime=now_rfc3339(),
                )
                set_condition(p, "Initialized", True)
                set_condition(p, "Ready", False, "ContainersNotReady")
                set_condition(p, "ContainersReady", False, "ContainersNotReady")
                status["containerStatuses"] = [
                    waiting_status(c, "ContainerCreating") for c in p["spec"]["containers"]
                ]

            self._mutate(runtime, network)
            for container in containers:
                if not await self._pull(runtime, container):
                    return
            for container in containers:
                try:
                    env = resolve_env(
                        self.store,
                        self.store.get("pods", runtime.namespace, runtime.name),
                        container,
                    )
                except ContainerConfigError as exc:
                    self._event(
                        runtime,
                        "Failed",
                        f"Error: {exc}",
                        warning=True,
                        container=container["name"],
                    )
                    waiting = waiting_status(container, "CreateContainerConfigError", str(exc))
                    self._set_waiting(runtime, waiting)
                    return
                self._event(
                    runtime,
                    "Created",
                    f"Created container {container['name']}",
                    container=container["name"],
                )
                await self._start_container(runtime, container, env, ports)
                self._event(
                    runtime,
                    "Started",
                    f"Started container {container['name']}",
                    container=container["name"],
                )
            await self._ready(runtime, containers)
        except asyncio.CancelledError:
            pass
        except ApiError:
            pass  # the pod vanished under us

    def _set_waiting(self, runtime: _Runtime, waiting: dict[str, Any]) -> None:
        self._mutate(runtime, lambda p: set_container(p, waiting["name"], waiting))

    async def _pull(self, runtime: _Runtime, container: dict[str, Any]) -> bool:
        image, name = container["image"], container["name"]
        self._event(runtime, "Pulling", f'Pulling image "{image}"', container=name)
        await self._pause()
        if await self._image_present(image):
            self._event(
                runtime,
                "Pulled",
                f'Successfully pulled image "{image}" in 0.01s (0.01s including waiting)',
                container=name,
            )
            return True
        self._event(
            runtime,
            "Failed",
            f'Failed to pull image "{image}": rpc error: code = '
            f'NotFound desc = failed to pull and unpack image "{image}": not found',
            warning=True,
            container=name,
        )
        self._event(runtime, "Failed", "Error: ErrImagePull", warning=True, container=name)
        self._mutate(
            runtime,
            lambda p: set_container(
                p,
                name,
                waiting_status(
                    container, "ErrImagePull", f'failed to pull image "{image}": not found'
                ),
            ),
        )
        await self._pause()
        self._event(
            runtime, "BackOff", f'Back-off pulling image "{image}"', warning=True, container=name
        )
        self._event(runtime, "Failed", "Error: ImagePullBackOff", warning=True, container=name)
        self._mutate(
            runtime,
            lambda p: set_container(
                p,
                name,
                waiting_status(container, "ImagePullBackOff", f'Back-off pulling image "{image}"'),
            ),
        )
        return False

    async def _start_container(
        self, runtime: _Runtime, container: dict[str, Any], env: dict[str, str], ports: list[int]
    ) -> None:
        assert runtime.ip is not None
        assert runtime.scratch is not None
        # KubeSpawner passes its cmd as ``args`` (the image's entrypoint runs it); with no
        # images here, ``command + args`` is the program. Neither: the image's own default,
        # which cannot be known, so the pod is answered like a stub.
        command = list(container.get("command") or []) + list(container.get("args") or [])
        if self.mode == "stub" or not command:
            for port in [p["containerPort"] for p in container.get("ports") or []] or ports:
                await self.stubs.listen(runtime.ip, port)
            return
        ip = runtime.ip
        full_env = dict(os.environ) if self.inherit_env else {}
        full_env.update(
            PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]),
            HOME=str(runtime.scratch),
            LANG="C.UTF-8",
            HOSTNAME=runtime.name,
            KUBERNETES_SERVICE_HOST=self.emulator.host,
            KUBERNETES_SERVICE_PORT=str(self.emulator.port),
        )
        full_env.update(self.extra_env)
        full_env.update({k: v.replace("0.0.0.0", ip) for k, v in env.items()})
        argv = [arg.replace("0.0.0.0", ip) for arg in command]
        log = (runtime.scratch / f"{container['name']}.log").open("ab")
        try:
            runtime.processes[container["name"]] = await asyncio.create_subprocess_exec(
                *argv,
                env=full_env,
                cwd=runtime.scratch,
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        asyncio.get_running_loop().create_task(self._reap(runtime, container["name"]))

    async def _ready(self, runtime: _Runtime, containers: list[dict[str, Any]]) -> None:
        probes: list[dict[str, Any]] = [
            c["readinessProbe"] for c in containers if c.get("readinessProbe")
        ]
        started = now_rfc3339()

        def running(p: dict[str, Any], ready: bool) -> None:
            p["status"]["phase"] = "Running"
            p["status"]["containerStatuses"] = [
                running_status(c, started, ready) for c in p["spec"]["containers"]
            ]
            set_condition(p, "ContainersReady", ready, None if ready else "ContainersNotReady")
            set_condition(p, "Ready", ready, None if ready else "ContainersNotReady")

        self._mutate(runtime, lambda p: running(p, not probes))
        if probes:
            for probe in probes:
                await self._probe(runtime, probe)
            self._mutate(runtime, lambda p: running(p, True))

    async def _probe(self, runtime: _Runtime, probe: dict[str, Any]) -> None:
        check = probe.get("httpGet") or probe.get("tcpSocket") or {}
        port = check.get("port")
        period = min(float(probe.get("periodSeconds", 10)), 0.5)
        await asyncio.sleep(min(float(probe.get("initialDelaySeconds", 0)), 5))
        while not runtime.terminating:
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection(runtime.ip, port)
                if "path" in check:
                    writer.write(f"GET {check['path']} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
                    line = await reader.readline()
                    writer.close()
                    if 200 <= int([*line.split(), b"0", b"0"][1] or 0) < 400:
                        return
                else:
                    writer.close()
                    return
            await asyncio.sleep(period)

    async def _reap(self, runtime: _Runtime, name: str) -> None:
        process = runtime.processes[name]
        code = await process.wait()
        if runtime.terminating:
            return
        finished = now_rfc3339()

        def exited(p: dict[str, Any]) -> None:
            for status in p["status"].get("containerStatuses") or []:
                if status["name"] == name:
                    started = (status["state"].get("running") or {}).get("startedAt", finished)
                    status.update(
                        ready=False,
                        started=False,
                        state={
                            "terminated": {
                                "exitCode": code,
                                "reason": "Completed" if code == 0 else "Error",
                                "startedAt": started,
                                "finishedAt": finished,
                            }
                        },
                    )
            states = [s["state"] for s in p["status"].get("containerStatuses") or []]
            if all("terminated" in s for s in states):
                failed = any(s["terminated"]["exitCode"] != 0 for s in states)
                p["status"]["phase"] = "Failed" if failed else "Succeeded"
            set_condition(p, "Ready", False, "PodCompleted")
            set_condition(p, "ContainersReady", False, "PodCompleted")

        with contextlib.suppress(asyncio.CancelledError, ApiError):
            self._mutate(runtime, exited)

    async def _terminate(self, runtime: _Runtime, grace: int, removed: bool = False) -> None:
        if runtime.task is not None and not runtime.task.done():
            runtime.task.cancel()
        if not removed:
            for name in list(runtime.processes) or []:
                self._event(runtime, "Killing", f"Stopping container {name}", container=name)
        await self._kill(runtime, grace)
        self.pods.pop(runtime.uid, None)
        if runtime.node is not None:
            self._retry_unschedulable()
        if not removed:
            self.store.finish_pod_termination(runtime.namespace, runtime.name, runtime.uid)

    async def _kill(self, runtime: _Runtime, grace: float) -> None:
        for process in runtime.processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in runtime.processes.values():
            try:
                await asyncio.wait_for(process.wait(), max(deadline - time.monotonic(), 0.05))
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        if runtime.ip is not None:
            self.stubs.close(runtime.ip)
            self.addresses.release(runtime.ip)
