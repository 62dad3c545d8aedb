"""Init containers, run by the kubelet as a real one runs them.

Before any app container, the pod's ``initContainers`` run one at a time, in
order, each to completion: the next starts only after the previous one exited
with 0, and the app containers only after all of them did. Each one is pulled,
configured (env, ``envFrom``, ``valueFrom``; a missing Secret or ConfigMap is a
``CreateContainerConfigError`` retried until it appears), created and started
like an app container (:meth:`ProcessKubelet._start_container`): in ``oci`` mode
in runc as its own security context, with its own volume mounts of the pod's
volumes, so what it writes to an ``emptyDir`` or a claim the app containers see;
in ``process`` mode as a local process in the pod's scratch directory, which all
of the pod's containers share as their working directory.

An init container with nothing to run (``stub`` mode, or no ``command`` in
``process`` mode, where images have no entrypoint) completes at once with exit
code 0.

Status, as the kubelet writes it: every container ``waiting`` with reason
``PodInitializing`` at first, the pod ``Pending`` with condition ``Initialized``
``False`` (``ContainersNotInitialized``); each init container ``running``, then
``terminated`` with its exit code and reason ``Completed`` or ``Error``. A
failure with ``restartPolicy: Never`` fails the pod (phase ``Failed``); with
``OnFailure`` or ``Always`` the container is restarted after a back-off (state
``waiting``, reason ``CrashLoopBackOff``, ``lastState`` its last run,
``restartCount`` counted), as often as it takes. Events ``Pulling``/``Pulled``/
``Created``/``Started``/``BackOff`` name the container by
``spec.initContainers{name}``. Sidecars (an init container's own
``restartPolicy: Always``) are not modelled: the emulator's validation refuses them.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

from .podstatus import INIT, running_status, set_condition, set_container, terminated_state
from .podstatus import waiting_status as waiting
from .store import now_rfc3339

if TYPE_CHECKING:
    from .kubelet import ProcessKubelet, _Runtime

__all__ = ["run_init_containers"]


async def run_init_containers(kubelet: ProcessKubelet, runtime: _Runtime, ports: list[int]) -> bool:
    """Run the pod's init containers in order; True once all completed (or there are none).

    False when the pod failed (an init container failed under ``restartPolicy: Never``),
    an image cannot be pulled or the runtime refused a container (both reported in the
    container's status); the caller then starts no app container.
    """
    pod = kubelet.store.get("pods", runtime.namespace, runtime.name)
    containers = pod["spec"].get("initContainers") or []
    for container in containers:
        if not await _run_one(kubelet, runtime, container, ports):
            return False
    if containers:

        def initialized(p: dict[str, Any]) -> None:
            set_condition(p, "Initialized", True)

        kubelet._mutate(runtime, initialized)
    return True


async def _run_one(
    kubelet: ProcessKubelet, runtime: _Runtime, container: dict[str, Any], ports: list[int]
) -> bool:
    name = container["name"]
    runtime.init_names.add(name)
    image = await kubelet._pull(runtime, container, INIT)
    if image is None:
        return False
    restarts = 0
    while True:
        spec = await kubelet._config_or_retry(runtime, container, {name: image}, ports, INIT)
        pod = kubelet.store.get("pods", runtime.namespace, runtime.name)
        policy = pod["spec"].get("restartPolicy") or "Always"
        kubelet._event(runtime, "Created", f"Created container {name}", container=name, group=INIT)
        if spec is None:  # nothing to run: done at once
            started, code = now_rfc3339(), 0
            _started(kubelet, runtime, container, started, restarts)
        else:
            running = await kubelet._start_container(runtime, pod, container, spec, ports, INIT)
            if running is None:
                return False  # the runtime refused it (reported already)
            started = running.started_at
            _started(kubelet, runtime, container, started, restarts)
            code = await running.process.wait()
            running.exit_code = code
            running.exited.set()
            runtime.changed.set()
            if runtime.terminating:
                return False
            await running.cleanup()
        state = terminated_state(code, started, now_rfc3339())
        _update(kubelet, runtime, name, _terminated(container, state, restarts))
        if code == 0:
            return True
        if policy == "Never":
            kubelet._mutate(runtime, _failed)
            return False
        await kubelet._pause()
        restarts += 1
        backoff = min(0.1 * 2 ** (restarts - 1), kubelet.max_backoff)
        kubelet._event(
            runtime,
            "BackOff",
            f"Back-off restarting failed container {name} in pod {runtime.name}",
            warning=True,
            container=name,
            group=INIT,
        )
        message = f"back-off {backoff:g}s restarting failed container={name} pod={runtime.name}"
        crash = {
            **waiting(container, "CrashLoopBackOff", message),
            "restartCount": restarts,
            "lastState": {"terminated": state},
        }
        _update(kubelet, runtime, name, crash)
        await asyncio.sleep(backoff)


def _started(
    kubelet: ProcessKubelet,
    runtime: _Runtime,
    container: dict[str, Any],
    started: str,
    restarts: int,
) -> None:
    name = container["name"]
    kubelet._event(runtime, "Started", f"Started container {name}", container=name, group=INIT)
    status = running_status(container, started, ready=False)
    status["restartCount"] = restarts
    _update(kubelet, runtime, name, status)


def _update(kubelet: ProcessKubelet, runtime: _Runtime, name: str, status: dict[str, Any]) -> None:
    kubelet._mutate(runtime, functools.partial(_set, name=name, status=status))


def _terminated(container: dict[str, Any], state: dict[str, Any], restarts: int) -> dict[str, Any]:
    status = running_status(container, state["startedAt"], ready=state["exitCode"] == 0)
    status.update(started=False, restartCount=restarts, state={"terminated": state})
    return status


def _set(pod: dict[str, Any], name: str, status: dict[str, Any]) -> None:
    previous = next(
        (s for s in pod["status"].get(INIT) or [] if s["name"] == name and "lastState" in s), None
    )
    if previous is not None and "lastState" not in status:
        status = {**status, "lastState": previous["lastState"]}
    set_container(pod, name, status, INIT)


def _failed(pod: dict[str, Any]) -> None:
    pod["status"]["phase"] = "Failed"
    set_condition(pod, "Ready", False, "PodFailed")
    set_condition(pod, "ContainersReady", False, "PodFailed")
