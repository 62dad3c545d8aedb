"""The leftover sweep: a background task of the hub that deletes lab Secrets whose pod is gone.

A hub that dies between creating a lab's Secrets and creating its pod leaves the
Secrets behind; so does a stop whose Secret deletion failed for good. Every
``lab_sweep_interval`` the hub lists the Secrets carrying the project's label
(``app.kubernetes.io/part-of=lsst-spawner``) and the lab pods, and deletes each
Secret whose pod (its ``app.kubernetes.io/instance`` label) does not exist and
belongs to no spawn this process has in progress or ended since the sweep began
(:class:`SpawnRegistry`); each deletion is logged. Home claims are never touched
(the sweep lists Secrets only). It needs ``list`` and ``delete`` on secrets and
``list`` on pods, which z2jh's hub Role grants. It runs off the request path: one
task per hub process and namespace, started when the hub has started
(:mod:`lsst_spawner.hub_start`, from the configuration) or by the first spawner
JupyterHub makes, whichever comes first.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from ..config import CheckedConfigurable, Duration
from ..lab.names import LAB_PART_OF
from .retries import (
    KubernetesError,
    RetryPolicy,
    request_raw,
    request_without_reply,
    with_retries,
)

__all__ = [
    "SPAWNS",
    "SpawnRegistry",
    "SweepTraits",
    "start_hub_sweep",
    "start_sweep",
    "stop_sweeps",
    "sweep_once",
]

_LOG = logging.getLogger(__name__)
_SELECTOR = f"app.kubernetes.io/part-of={LAB_PART_OF}"
_INSTANCE = "app.kubernetes.io/instance"


class SpawnRegistry:
    """The pods (``namespace/name``) this process is creating objects for, right now or lately.

    A spawn is registered before its first Secret is written and unregistered when
    its start ends; a sweep skips every pod registered at any moment since it began,
    so a spawn that started and finished during one sweep is never mistaken for a
    leftover.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._active: Counter[str] = Counter()
        self._ended: dict[str, float] = {}

    def begin(self, key: str) -> None:
        self._active[key] += 1

    def end(self, key: str) -> None:
        self._active[key] -= 1
        if self._active[key] <= 0:
            del self._active[key]
        self._ended[key] = self._clock()

    def now(self) -> float:
        return self._clock()

    def busy_since(self, key: str, since: float) -> bool:
        """Whether ``key`` is in progress, or was at any time after ``since``."""
        return key in self._active or self._ended.get(key, float("-inf")) >= since

    def forget_before(self, since: float) -> None:
        self._ended = {key: when for key, when in self._ended.items() if when >= since}


#: This process's spawns in progress (the spawn attempts register here).
SPAWNS = SpawnRegistry()


class SweepTraits(CheckedConfigurable):
    """The sweep's trait."""

    trait_owner: ClassVar[str] = "LSSTSpawner"
    #: Made once when the hub has started (lsst_spawner.hub_start), so the sweep runs after a
    #: restart with nobody spawning.
    lab_starts_with_hub: ClassVar[bool] = True

    lab_sweep_interval = Duration(
        "10m",
        minimum=0,
        config=True,
        help="How often the hub deletes lab Secrets whose pod is gone and that no spawn in "
        "progress owns (leftovers of a hub that died mid-spawn); 0 turns the sweep off.",
    )


async def _list(
    method: Callable[..., Awaitable[Any]], *args: Any, what: str, policy: RetryPolicy
) -> list[Any]:
    """The items of a list request, read as JSON (no model objects), with retries."""
    data = await with_retries(
        lambda: request_raw(method, *args, label_selector=_SELECTOR), what=what, policy=policy
    )
    items: list[Any] = json.loads(data).get("items") or []
    return items


async def sweep_once(
    api: Any,
    namespace: str | None,
    policy: RetryPolicy,
    registry: SpawnRegistry = SPAWNS,
) -> list[str]:
    """One sweep of ``namespace`` (every namespace when ``None``); ``ns/name`` of each deleted.

    The Secrets are listed before the pods, so a Secret written after the pod list
    belongs to a spawn the registry knows.
    """
    began = registry.now()
    where = f"namespace {namespace}" if namespace else "every namespace"
    if namespace:
        secret_list, pod_list = api.list_namespaced_secret, api.list_namespaced_pod
        args: tuple[str, ...] = (namespace,)
    else:
        secret_list, pod_list = api.list_secret_for_all_namespaces, api.list_pod_for_all_namespaces
        args = ()
    secrets = await _list(secret_list, *args, what=f"listing lab secrets in {where}", policy=policy)
    pods = await _list(pod_list, *args, what=f"listing lab pods in {where}", policy=policy)
    alive = {f"{p['metadata'].get('namespace')}/{p['metadata']['name']}" for p in pods}
    deleted = []
    for secret in secrets:
        metadata = secret["metadata"]
        instance = (metadata.get("labels") or {}).get(_INSTANCE)
        ns, name = metadata.get("namespace") or namespace or "", metadata["name"]
        pod = f"{ns}/{instance}"
        if not instance or pod in alive or registry.busy_since(pod, began):
            continue
        try:
            await with_retries(
                functools.partial(request_without_reply, api.delete_namespaced_secret, name, ns),
                what=f"deleting leftover secret {ns}/{name}",
                policy=policy,
            )
        except KubernetesError as error:
            if error.status != 404:
                policy.logger.warning("Leftover sweep: could not delete secret %s: %s", name, error)
            continue
        policy.logger.info(
            "Leftover sweep: deleted secret %s/%s: its lab pod %s is gone and no spawn owns it",
            ns,
            name,
            instance,
        )
        deleted.append(f"{ns}/{name}")
    registry.forget_before(began)
    return deleted


#: The running sweeps: (event loop, namespace or None) -> task.
_TASKS: dict[tuple[int, str | None], asyncio.Task[None]] = {}


async def _sweep_forever(
    api: Any, namespace: str | None, interval: float, policy: RetryPolicy
) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await sweep_once(api, namespace, policy)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the next round tries again
            policy.logger.warning("Leftover sweep of %s failed: %s", namespace or "all", error)


def start_sweep(api: Any, namespace: str | None, interval: float, policy: RetryPolicy) -> bool:
    """Start the sweep of ``namespace`` on the running loop unless it runs; True if started.

    Does nothing when ``interval`` is 0 or there is no running loop.
    """
    if interval <= 0:
        return False
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    key = (id(loop), namespace)
    task = _TASKS.get(key)
    if task is not None and not task.done() and task.get_loop() is loop:
        return False
    _TASKS[key] = loop.create_task(_sweep_forever(api, namespace, interval, policy))
    policy.logger.info(
        "Leftover sweep of %s every %gs", f"namespace {namespace}" if namespace else "all", interval
    )
    return True


def stop_sweeps() -> None:
    """Cancel every sweep task (tests, hub shutdown)."""
    for task in _TASKS.values():
        task.cancel()
    _TASKS.clear()


def start_hub_sweep(spawner: Any) -> bool:
    """Start the sweep for ``spawner``'s namespace (all of them with user namespaces).

    Only inside a running JupyterHub (not for spawners that tools and tests make
    alone), on the hub's event loop; once per process and namespace. Never in operator
    mode: the hub's Role there cannot list Secrets, and the operator owns the lab's
    objects (their owner references and its finalizer clean them up).
    """
    if getattr(spawner, "lab_backend", "hub") == "operator":
        return False
    try:
        from jupyterhub.app import JupyterHub
    except ImportError:  # pragma: no cover - jupyterhub is a dependency
        return False
    if not JupyterHub.initialized():
        return False
    namespace = None if spawner.enable_user_namespaces else spawner.namespace
    return start_sweep(
        spawner.api, namespace, spawner.lab_sweep_interval, spawner.kube_retry_policy()
    )
