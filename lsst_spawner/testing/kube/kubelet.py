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
- ``oci``: each container runs in Debian's ``runc`` (see :mod:`.oci`), on the
  host's root filesystem (read-only when the container asks), as the user, group
  and supplemental groups of its security context, with its capabilities,
  seccomp profile and no-new-privileges flag, its volumes mounted
  (:mod:`.volumes`), an ``/etc/hosts`` naming the namespace's services
  (:mod:`.dns`) and the environment of its image config (read from the
  registry its reference names, :mod:`.images`) and of the pod, nothing of the
  host's. Needs root and runc.

In every mode, the pod's init containers run first, one at a time, each to
completion (:mod:`.initcontainers`); readiness and liveness probes run on their
schedule until the container exits (:mod:`.probes`), a container that exits is
restarted as the pod's ``restartPolicy`` says (with ``restartCount`` and
``lastState``), and the pod's ``log``, ``exec`` and ``attach`` subresources are
served by :mod:`.streams`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Collection, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .containers import RunningContainer, host_environment, start_oci, start_process
from .dns import hosts_file, service_env
from .images import ImageConfig, ImagePullError, fetch_image_config, mirrored
from .initcontainers import run_init_containers
from .network import AddressPool, StubResponder
from .nodes import (
    FakeNode,
    affinity_score,
    fits_node,
    image_digest,
    node_body,
    node_has_image,
    record_image,
    status_images,
)
from .oci import Bundle, build_process, build_spec, find_runc
from .podenv import ContainerConfigError, resolve_env
from .podstatus import (
    APP,
    INIT,
    refresh_pod_conditions,
    running_status,
    set_condition,
    set_container,
    terminated_state,
    waiting_status,
)
from .probes import ProbeLoop, stop_all
from .resources import event_name
from .server import KubeEmulator
from .status import ApiError
from .store import Change, now_rfc3339
from .volumes import HostVolume, VolumeError, container_mounts, prepare_volumes

__all__ = ["FakeNode", "ProcessKubelet"]

ImageCheck = Callable[[str], Any] | Collection[str] | None


@dataclass
class _Runtime:
    namespace: str
    name: str
    uid: str
    node: str | None = None
    ip: str | None = None
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    containers: dict[str, RunningContainer] = field(default_factory=dict)
    previous_logs: dict[str, Path] = field(default_factory=dict)
    loops: list[asyncio.Task[None]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    terminating: bool = False
    scratch: Path | None = None
    volumes: dict[str, HostVolume] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # log followers wake up
    init_names: set[str] = field(default_factory=set)  # which of ``containers`` are init ones


class ProcessKubelet:
    def __init__(
        self,
        emulator: KubeEmulator,
        *,
        nodes: Iterable[str | FakeNode] = ("node-1", "node-2"),
        mode: Literal["process", "stub", "oci"] = "process",
        images: ImageCheck = None,
        step_delay: float = 0.0,
        workdir: str | os.PathLike[str] | None = None,
        inherit_env: bool = False,
        extra_env: dict[str, str] | None = None,
        addresses: AddressPool | None = None,
        mirrors: dict[str, str] | None = None,
    ) -> None:
        if mode not in ("process", "stub", "oci"):
            raise ValueError("mode must be 'process', 'stub' or 'oci'")
        self.runc = find_runc() if mode == "oci" else ""
        if mode == "oci" and os.geteuid() != 0:
            raise PermissionError("the oci mode runs runc and mounts overlays: it needs root")
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
        self._image_cache: dict[str, ImageConfig] = {}
        #: Registry host -> loopback mirror (``docker.io`` for references without a host).
        self.mirrors = dict(mirrors or {})
        self._hosts_pending = False
        self._terminations: set[asyncio.Task[None]] = set()
        #: Seconds between retries of a volume or container config that failed.
        self.retry_period = 0.5
        #: How long a restart backs off, at most (a real kubelet goes to 5 minutes).
        self.max_backoff = 2.0
        #: Image sizes by reference (with or without ``@digest``), else the default: a pull
        #: takes ``size / pull_bytes_per_second`` seconds (scaled down so tests stay fast).
        self.image_sizes: dict[str, int] = {}
        self.default_image_size = 2_000_000_000
        self.pull_bytes_per_second = 100e9
        #: Pulls done (node, image), in order, for tests.
        self.pulls: list[tuple[str, str]] = []
        # A kubelet pulls one image at a time (serializeImagePulls, the default).
        self._pull_locks: dict[str, asyncio.Lock] = {}

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Attach to the emulator (call on the emulator's loop) and adopt pending pods."""
        from .streams import register

        self.store.listeners.append(self._on_change)
        self.emulator.log_providers.append(self.pod_log)
        register(self.emulator, self)
        if self.mode == "oci" and not self.runc:  # switched to oci after construction
            self.runc = find_runc()
        self._started = True
        for node in self.nodes:
            self._register(node)
        for pod in list(self.store.objects["pods"].values()):
            if not (pod.get("spec") or {}).get("nodeName"):
                self._launch(pod)

    async def add_node(self, node: str | FakeNode) -> FakeNode:
        """A new node joins (call on the emulator's loop): registered, and pending pods retried."""
        fake = FakeNode(node) if isinstance(node, str) else node
        if any(n.name == fake.name for n in self.nodes):
            raise ValueError(f"node {fake.name} is already registered")
        self.nodes.append(fake)
        if self._started:
            self._register(fake)
            self._retry_unschedulable()
        return fake

    def node(self, name: str | None) -> FakeNode | None:
        return next((n for n in self.nodes if n.name == name), None)

    def _register(self, node: FakeNode) -> None:
        """Create the node's ``Node`` object, or refresh its status.images if it exists."""
        body = node_body(node, now_rfc3339())
        if ("", node.name) not in self.store.objects["nodes"]:
            status = body.pop("status")
            self.store.create("nodes", None, body)
            self.store.mutate("nodes", None, node.name, lambda n: n.update(status=status))
        else:
            self._report_images(node)

    def _report_images(self, node: FakeNode) -> None:
        images = status_images(node)
        with contextlib.suppress(ApiError):  # the node object was deleted
            self.store.mutate(
                "nodes", None, node.name, lambda n: n.setdefault("status", {}).update(images=images)
            )

    async def stop(self) -> None:
        """Kill every process and close every stub socket; pods stay in the store."""
        if not self._started:
            return
        self._started = False
        with contextlib.suppress(ValueError):
            self.store.listeners.remove(self._on_change)
        with contextlib.suppress(ValueError):
            self.emulator.log_providers.remove(self.pod_log)
        from .streams import unregister

        unregister(self.emulator, self)
        for runtime in list(self.pods.values()):
            runtime.terminating = True
            if runtime.task is not None:
                runtime.task.cancel()
            await self._kill(runtime, grace=0)
        # Terminations under way finish here, not after the loop is gone (their runc
        # and umount subprocesses would be left to a closed loop).
        await asyncio.gather(*self._terminations, return_exceptions=True)
        self.pods.clear()
        self.stubs.close_all()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._terminations.add(task)
        task.add_done_callback(self._terminations.discard)

    def runtime_of(self, namespace: str, name: str) -> _Runtime | None:
        for runtime in self.pods.values():
            if (runtime.namespace, runtime.name) == (namespace, name):
                return runtime
        return None

    def pod_log(self, namespace: str, name: str) -> str | None:
        runtime = self.runtime_of(namespace, name)
        if runtime is None or runtime.scratch is None:
            return None
        logs = sorted(runtime.scratch.glob("*.current.log"))
        return "".join(p.read_text(errors="replace") for p in logs)

    # -- reacting to the store ----------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        if change.resource in ("pods", "services") and self.mode == "oci":
            self._refresh_hosts_soon()
        if change.resource != "pods":
            return
        meta = change.obj["metadata"]
        runtime = self.pods.get(meta["uid"])
        bound = (change.obj.get("spec") or {}).get("nodeName")
        if change.type == "ADDED" and (not bound or self.node(bound) is not None):
            self._launch(change.obj)  # to schedule, or pinned to one of our nodes (nodeName)
        elif change.type == "MODIFIED" and meta.get("deletionTimestamp") and runtime:
            if not runtime.terminating:
                runtime.terminating = True
                grace = meta.get("deletionGracePeriodSeconds") or 0
                self._background(self._terminate(runtime, grace))
        elif change.type == "DELETED" and runtime:
            runtime.terminating = True
            self._background(self._terminate(runtime, 0, removed=True))

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
        group: str = APP,
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
            field = "initContainers" if group == INIT else "containers"
            involved["fieldPath"] = f"spec.{field}{{{container}}}"
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

    def _refresh_hosts_soon(self) -> None:
        if self._hosts_pending:
            return
        self._hosts_pending = True
        asyncio.get_running_loop().call_soon(self._refresh_hosts)

    def _refresh_hosts(self) -> None:
        """Rewrite every OCI pod's ``/etc/hosts`` in place (the bind mount keeps the inode)."""
        self._hosts_pending = False
        for runtime in list(self.pods.values()):
            path = runtime.scratch / "hosts" if runtime.scratch else None
            if path is not None and path.exists() and runtime.ip:
                text = hosts_file(self.store, runtime.namespace, runtime.name, runtime.ip)
                with contextlib.suppress(OSError), path.open("r+") as out:
                    if out.read() != text:
                        out.seek(0)
                        out.truncate()
                        out.write(text)

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
        """The scheduler: nodes the pod fits (selector, affinity, taints, capacity), best
        preferred-affinity score first, then the least loaded."""
        load = {n.name: 0 for n in self.nodes}
        for other in self.pods.values():
            if other.node in load:
                load[other.node] += 1
        scored = []
        for n in self.nodes:
            obj = self.store.objects["nodes"].get(("", n.name))
            if obj is None:  # a node put in ``nodes`` after start(): it registers now
                self._register(n)
                obj = self.store.objects["nodes"].get(("", n.name))
            if obj is not None and fits_node(pod, obj) and load[n.name] < n.max_pods:
                scored.append((-affinity_score(pod, obj), load[n.name], n.name, n))
        return min(scored)[3] if scored else None

    async def _pause(self) -> None:
        if self.step_delay:
            await asyncio.sleep(self.step_delay)

    async def _run(self, runtime: _Runtime) -> None:
        try:
            await self._pause()
            pod = self.store.get("pods", runtime.namespace, runtime.name)
            pinned = self.node(pod["spec"].get("nodeName"))
            node = pinned or self._pick_node(pod)
            if node is None:
                self._event(
                    runtime,
                    "FailedScheduling",
                    f"0/{len(self.nodes)} nodes are available: no node matches the pod's "
                    "node selector, affinity, taints or capacity.",
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
            if pinned is None:  # a pod created with nodeName bypasses the scheduler
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
                # As the kubelet's convertToAPIContainerStatuses: every container waits,
                # "PodInitializing" while the pod has init containers to run.
                init = p["spec"].get("initContainers") or []
                if init:
                    set_condition(p, "Initialized", False, "ContainersNotInitialized")
                    status["initContainerStatuses"] = [
                        waiting_status(c, "PodInitializing") for c in init
                    ]
                else:
                    set_condition(p, "Initialized", True)
                set_condition(p, "Ready", False, "ContainersNotReady")
                set_condition(p, "ContainersReady", False, "ContainersNotReady")
                reason = "PodInitializing" if init else "ContainerCreating"
                status["containerStatuses"] = [
                    waiting_status(c, reason) for c in p["spec"]["containers"]
                ]

            pod = self._mutate(runtime, network)
            if self.mode == "oci":
                # As a kubelet does, a volume that cannot be set up (a ConfigMap not there
                # yet) is retried, with a FailedMount event now and then.
                for attempt in itertools.count():
                    shutil.rmtree(runtime.scratch / "volumes", ignore_errors=True)
                    try:
                        runtime.volumes = prepare_volumes(
                            self.store, pod, runtime.scratch / "volumes", self.workdir / "claims"
                        )
                        break
                    except (VolumeError, OSError) as exc:
                        volume = getattr(exc, "volume", "") or "?"
                        if attempt % 20 == 0:
                            self._event(
                                runtime,
                                "FailedMount",
                                f'MountVolume.SetUp failed for volume "{volume}" : {exc}',
                                warning=True,
                            )
                    await asyncio.sleep(self.retry_period)
                (runtime.scratch / "hosts").write_text(
                    hosts_file(self.store, runtime.namespace, runtime.name, ip)
                )
            if not await run_init_containers(self, runtime, ports):
                return  # an init container failed for good (restartPolicy Never), or the pod went
            images: dict[str, ImageConfig] = {}
            for container in containers:
                image = await self._pull(runtime, container)
                if image is None:
                    return
                images[container["name"]] = image
            for container in containers:
                spec = await self._config_or_retry(runtime, container, images, ports)
                loop = asyncio.get_running_loop().create_task(
                    self._container_loop(runtime, container, spec, ports)
                )
                runtime.loops.append(loop)
                await self._pause()
        except asyncio.CancelledError:
            pass
        except ApiError:
            pass  # the pod vanished under us

    async def _config_or_retry(
        self,
        runtime: _Runtime,
        container: dict[str, Any],
        images: dict[str, ImageConfig],
        ports: list[int],
        group: str = APP,
    ) -> Any:
        """The container's spec; a CreateContainerConfigError is reported and retried.

        The status follows each new reason at once (a Secret that appeared without the
        key); the ``Failed`` event is repeated only every 20 attempts, as a kubelet's
        back-off spaces them."""
        said = ""
        for attempt in itertools.count():
            try:
                pod = self.store.get("pods", runtime.namespace, runtime.name)
                env = resolve_env(self.store, pod, container)
                return self._container_spec(runtime, pod, container, images, env, ports)
            except (ContainerConfigError, VolumeError) as exc:
                if attempt % 20 == 0 or str(exc) != said:
                    said = str(exc)
                    self._event(
                        runtime,
                        "Failed",
                        f"Error: {exc}",
                        warning=True,
                        container=container["name"],
                        group=group,
                    )
                    waiting = waiting_status(container, "CreateContainerConfigError", str(exc))
                    self._set_waiting(runtime, waiting, group)
            await asyncio.sleep(self.retry_period)
        raise AssertionError("unreachable")

    def _container_spec(
        self,
        runtime: _Runtime,
        pod: dict[str, Any],
        container: dict[str, Any],
        images: dict[str, ImageConfig],
        env: dict[str, str],
        ports: list[int],
    ) -> Any:
        """What starting ``container`` needs: an argv and environment, or an OCI spec."""
        assert runtime.ip is not None
        assert runtime.scratch is not None
        ip = runtime.ip
        env = {k: v.replace("0.0.0.0", ip) for k, v in env.items()}
        if self.mode != "oci":
            command = list(container.get("command") or []) + list(container.get("args") or [])
            if self.mode == "stub" or not command:
                return None
            extra = {
                "KUBERNETES_SERVICE_HOST": self.emulator.host,
                "KUBERNETES_SERVICE_PORT": str(self.emulator.port),
                **self.extra_env,
            }
            full = host_environment(env, runtime.scratch, runtime.name, extra, self.inherit_env)
            return [arg.replace("0.0.0.0", ip) for arg in command], full
        image = images[container["name"]]
        argv = image.argv(container.get("command"), container.get("args"))
        argv = [arg.replace("0.0.0.0", ip) for arg in argv]
        variables: dict[str, str] = {}
        if pod["spec"].get("enableServiceLinks", True):
            variables.update(
                service_env(self.store, runtime.namespace, self.emulator.host, self.emulator.port)
            )
        else:
            variables.update(
                {
                    k: v
                    for k, v in service_env(
                        self.store, runtime.namespace, self.emulator.host, self.emulator.port
                    ).items()
                    if k.startswith("KUBERNETES_")
                }
            )
        variables.update(self.extra_env)
        variables.update(env)
        process = build_process(pod, container, image, argv, variables)
        mounts = container_mounts(container, runtime.volumes)
        if not any(m["destination"] == "/etc/hosts" for m in mounts):
            mounts.append(
                {
                    "destination": "/etc/hosts",
                    "type": "bind",
                    "source": str(runtime.scratch / "hosts"),
                    "options": ["bind", "ro"],
                }
            )
        return process, mounts

    async def _container_loop(
        self, runtime: _Runtime, container: dict[str, Any], spec: Any, ports: list[int]
    ) -> None:
        """Start the container, probe it, and restart it as the restart policy says."""
        name = container["name"]
        restarts = 0
        policy = "Always"
        try:
            while True:
                pod = self.store.get("pods", runtime.namespace, runtime.name)
                policy = pod["spec"].get("restartPolicy") or "Always"
                self._event(runtime, "Created", f"Created container {name}", container=name)
                running = await self._start_container(runtime, pod, container, spec, ports)
                if running is None and spec is not None:
                    return  # the runtime refused it (reported already)
                self._event(runtime, "Started", f"Started container {name}", container=name)
                probes = self._start_probes(runtime, container, running)
                runtime.loops.extend(probes)  # cancelled with the pod, too
                ready = not container.get("readinessProbe")
                started = running.started_at if running else now_rfc3339()
                self._mutate(
                    runtime,
                    functools.partial(
                        self._set_running,
                        container=container,
                        started=started,
                        ready=ready,
                        restarts=restarts,
                    ),
                )
                if running is None:
                    return  # stub: runs until the pod is deleted
                code = await running.process.wait()
                running.exit_code = code
                running.exited.set()
                await stop_all(probes)
                runtime.changed.set()
                if runtime.terminating:
                    return
                await running.cleanup()
                finished = now_rfc3339()
                state = terminated_state(code, running.started_at, finished)
                again = policy == "Always" or (policy == "OnFailure" and code != 0)
                if not again:
                    self._mutate(
                        runtime, functools.partial(self._set_terminated, name=name, state=state)
                    )
                    return
                restarts += 1
                backoff = min(0.1 * 2 ** (restarts - 1), self.max_backoff)
                message = (
                    f"back-off {backoff:g}s restarting failed container={name} pod={runtime.name}"
                )
                self._event(
                    runtime,
                    "BackOff",
                    "Back-off restarting failed container " + name,
                    warning=True,
                    container=name,
                )
                self._mutate(
                    runtime,
                    functools.partial(
                        self._set_backoff,
                        container=container,
                        state=state,
                        restarts=restarts,
                        message=message,
                    ),
                )
                await asyncio.sleep(backoff)
        except asyncio.CancelledError:
            pass
        except ApiError:
            pass

    def _set_running(
        self,
        p: dict[str, Any],
        container: dict[str, Any],
        started: str,
        ready: bool,
        restarts: int,
    ) -> None:
        statuses = p["status"].get("containerStatuses") or []
        previous: dict[str, Any] = next((s for s in statuses if s["name"] == container["name"]), {})
        status = running_status(container, started, ready)
        status["restartCount"] = restarts
        if "lastState" in previous:
            status["lastState"] = previous["lastState"]
        set_container(p, container["name"], status)
        refresh_pod_conditions(p)

    def _set_terminated(self, p: dict[str, Any], name: str, state: dict[str, Any]) -> None:
        for status in p["status"].get("containerStatuses") or []:
            if status["name"] == name:
                status.update(ready=False, started=False, state={"terminated": state})
        refresh_pod_conditions(p)

    def _set_backoff(
        self,
        p: dict[str, Any],
        container: dict[str, Any],
        state: dict[str, Any],
        restarts: int,
        message: str,
    ) -> None:
        status = waiting_status(container, "CrashLoopBackOff", message)
        status.update(restartCount=restarts, lastState={"terminated": state})
        set_container(p, container["name"], status)
        refresh_pod_conditions(p)

    async def _start_container(
        self,
        runtime: _Runtime,
        pod: dict[str, Any],
        container: dict[str, Any],
        spec: Any,
        ports: list[int],
        group: str = APP,
    ) -> RunningContainer | None:
        assert runtime.ip is not None
        assert runtime.scratch is not None
        name = container["name"]
        if spec is None:  # stub: answer HTTP on the ports
            for port in [p["containerPort"] for p in container.get("ports") or []] or ports:
                await self.stubs.listen(runtime.ip, port)
            return None
        log = runtime.scratch / f"{name}.current.log"
        if log.exists() and name in runtime.containers:  # a restart: keep the last run's log
            previous = runtime.scratch / f"{name}.previous.log"
            os.replace(log, previous)
            runtime.previous_logs[name] = previous
        log.write_bytes(b"")
        started = now_rfc3339()
        if self.mode != "oci":
            argv, env = spec
            running = await start_process(name, argv, env, runtime.scratch, log, started)
        else:
            process, mounts = spec
            bundle = Bundle(
                runtime.scratch / "oci" / name, f"lsst-{runtime.uid[:8]}-{uuid.uuid4().hex[:6]}"
            )
            try:
                await bundle.prepare()
                oci_spec = build_spec(pod, container, process, bundle.rootfs, mounts)
                running = await start_oci(
                    name, self.runc, bundle, oci_spec, log, started, bool(container.get("stdin"))
                )
            except OSError as exc:
                await bundle.cleanup(self.runc)
                self._event(
                    runtime, "Failed", f"Error: {exc}", warning=True, container=name, group=group
                )
                waiting = waiting_status(container, "RunContainerError", str(exc))
                self._set_waiting(runtime, waiting, group)
                return None
        runtime.containers[name] = running
        runtime.processes[name] = running.process
        runtime.changed.set()
        return running

    def _start_probes(
        self, runtime: _Runtime, container: dict[str, Any], running: RunningContainer | None
    ) -> list[asyncio.Task[None]]:
        assert runtime.ip is not None
        name = container["name"]
        tasks: list[asyncio.Task[None]] = []

        async def no_exec(argv: list[str], limit: float) -> int:
            return 0  # a stub container "runs" any command

        exec_fn = running.exec_code if running is not None else no_exec
        if container.get("readinessProbe"):

            async def readiness(ok: bool, message: str) -> None:
                if not ok:
                    self._event(
                        runtime,
                        "Unhealthy",
                        f"Readiness probe failed: {message}",
                        warning=True,
                        container=name,
                    )
                self._mutate(runtime, lambda p: self._set_ready(p, name, ok))

            tasks.append(
                ProbeLoop(
                    container["readinessProbe"], container, runtime.ip, exec_fn, readiness
                ).start()
            )
        if container.get("livenessProbe") and running is not None:

            async def liveness(ok: bool, message: str) -> None:
                if ok:
                    return
                self._event(
                    runtime,
                    "Unhealthy",
                    f"Liveness probe failed: {message}",
                    warning=True,
                    container=name,
                )
                self._event(
                    runtime,
                    "Killing",
                    f"Container {name} failed liveness probe, will be restarted",
                    container=name,
                )
                grace = float(runtime_grace(self.store, runtime))
                asyncio.get_running_loop().create_task(running.stop(grace))

            tasks.append(
                ProbeLoop(
                    container["livenessProbe"], container, runtime.ip, exec_fn, liveness
                ).start()
            )
        return tasks

    def _set_ready(self, p: dict[str, Any], name: str, ok: bool) -> None:
        for status in p["status"].get("containerStatuses") or []:
            if status["name"] == name and "running" in status["state"]:
                status["ready"] = ok
        refresh_pod_conditions(p)

    def _set_waiting(self, runtime: _Runtime, waiting: dict[str, Any], group: str = APP) -> None:
        self._mutate(runtime, lambda p: set_container(p, waiting["name"], waiting, group))

    def image_size(self, image: str) -> int:
        """The size of ``image`` in bytes (``image_sizes``, by reference or without digest)."""
        for key in (image, image.split("@", 1)[0]):
            if key in self.image_sizes:
                return self.image_sizes[key]
        return self.default_image_size

    async def _image_config(self, image: str, use_cache: bool) -> tuple[ImageConfig | None, str]:
        """The image's config if it can be had (OCI: from its registry), else the failure."""
        failure = f'failed to pull and unpack image "{image}": not found'
        if self.mode == "oci":
            cached = self._image_cache.get(image)
            if cached is not None and use_cache:
                return cached, ""
            try:
                config = await fetch_image_config(mirrored(image, self.mirrors))
            except ImagePullError as exc:
                return None, str(exc)
            self._image_cache[image] = config
            return config, ""
        try:
            if await self._image_present(image):
                return ImageConfig(), ""
        except ImagePullError as exc:  # a check that says why (registry_images)
            return None, str(exc)
        return None, failure

    async def _pull(
        self, runtime: _Runtime, container: dict[str, Any], group: str = APP
    ) -> ImageConfig | None:
        image, name = container["image"], container["name"]
        event = functools.partial(self._event, runtime, container=name, group=group)
        node = self.node(runtime.node)
        use_cache = container.get("imagePullPolicy") != "Always"
        if node is not None and use_cache and node_has_image(node, image):
            config, _ = await self._image_config(image, use_cache)
            if config is not None:
                event("Pulled", f'Container image "{image}" already present on machine')
                return config
        event("Pulling", f'Pulling image "{image}"')
        loop = asyncio.get_running_loop()
        asked = loop.time()
        async with self._pull_locks.setdefault(runtime.node or "", asyncio.Lock()):
            await self._pause()
            began = loop.time()
            config, failure = await self._image_config(image, use_cache)
            if config is not None:
                size = self.image_size(image)
                await asyncio.sleep(size / self.pull_bytes_per_second)
                if node is not None:
                    record_image(node, image, size, image_digest(image, config.digest))
                    self._report_images(node)
                    self.pulls.append((node.name, image))
        if config is not None:
            done = loop.time()
            event(
                "Pulled",
                f'Successfully pulled image "{image}" in {done - began:.3f}s '
                f"({done - asked:.3f}s including waiting). Image size: {size} bytes.",
            )
            return config
        event(
            "Failed",
            f'Failed to pull image "{image}": rpc error: code = NotFound desc = {failure}',
            warning=True,
        )
        event("Failed", "Error: ErrImagePull", warning=True)
        self._set_waiting(runtime, waiting_status(container, "ErrImagePull", failure), group)
        await self._pause()
        event("BackOff", f'Back-off pulling image "{image}"', warning=True)
        event("Failed", "Error: ImagePullBackOff", warning=True)
        backoff = waiting_status(container, "ImagePullBackOff", f'Back-off pulling image "{image}"')
        self._set_waiting(runtime, backoff, group)
        return None

    async def _terminate(self, runtime: _Runtime, grace: int, removed: bool = False) -> None:
        if runtime.task is not None and not runtime.task.done():
            runtime.task.cancel()
        if not removed:
            for name, running in list(runtime.containers.items()):
                if name in runtime.init_names and running.exited.is_set():
                    continue  # an init container that completed: nothing to stop
                group = INIT if name in runtime.init_names else APP
                self._event(
                    runtime, "Killing", f"Stopping container {name}", container=name, group=group
                )
        await self._kill(runtime, grace)
        self.pods.pop(runtime.uid, None)
        if runtime.node is not None:
            self._retry_unschedulable()
        if not removed:
            self.store.finish_pod_termination(runtime.namespace, runtime.name, runtime.uid)

    async def _kill(self, runtime: _Runtime, grace: float) -> None:
        await stop_all(runtime.loops)
        await asyncio.gather(
            *(c.stop(grace) for c in runtime.containers.values()), return_exceptions=True
        )
        for running in runtime.containers.values():
            running.exited.set()
        runtime.changed.set()
        if runtime.ip is not None:
            self.stubs.close(runtime.ip)
            self.addresses.release(runtime.ip)


def runtime_grace(store: Any, runtime: _Runtime) -> int:
    pod = store.objects["pods"].get((runtime.namespace, runtime.name)) or {}
    return int((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
