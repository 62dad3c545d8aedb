"""The prepuller: the hub's background task that puts the menu's radio images on every node.

Each round (every ``interval``, and again as soon as a pull ends) it

1. lists the nodes (one request; needs a ClusterRole granting ``list`` on
   ``nodes``, which z2jh's hub Role does not: the prepuller is off by default);
2. works out the eligible nodes and what each has
   (:func:`~lsst_spawner.images.prepull.build_prepull_state`), which the menu
   reads (:meth:`Prepuller.menu_for`);
3. starts at most one pull per node that lacks one of the menu's radio images
   (:func:`~lsst_spawner.images.prepull.plan_pulls`).

A pull is one small pod pinned to its node (:func:`~lsst_spawner.images.prepull.prepull_pod`)
that runs ``/bin/true`` and exits; the prepuller reads it every ``poll_interval``
until its container has run (terminated, or running for ``running_grace``), a pull failure
is reported (``ErrImagePull``: not retried on that node for ``failure_backoff``)
or ``timeout`` passes, and then deletes it. The first round deletes prepull pods
a previous hub left behind (one list); :meth:`Prepuller.close` deletes those in
flight. Kubernetes requests per round: 1 (nodes), plus per pull 1 create,
1 read per ``poll_interval`` and 1 delete (see docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..images.model import ImageMenu
from ..images.prepull import (
    KUBELET_MAX_IMAGES,
    PREPULL_LABELS,
    PrepullState,
    PullPlan,
    apply_presence,
    build_prepull_state,
    plan_pulls,
    prepull_pod,
    prepull_targets,
)
from ..rbac import PREPULL_NODES_RULE
from .pull import pull_failure
from .retries import KubernetesError, RetryPolicy, request_json, request_without_reply, with_retries

__all__ = ["NODES_RULE", "PrepullSettings", "Prepuller"]

Log = logging.Logger | logging.LoggerAdapter[logging.Logger]

#: The ClusterRole rule the prepuller needs beyond z2jh's hub Role.
NODES_RULE = PREPULL_NODES_RULE

#: The longest :meth:`Prepuller.close` waits for its pulls to delete their pods.
CLOSE_TIMEOUT = 10.0

_SELECTOR = ",".join(f"{k}={v}" for k, v in PREPULL_LABELS.items())


@dataclass(frozen=True)
class PrepullSettings:
    """What the prepuller does, from the ``image_prepull_*`` traits (see their help)."""

    namespace: str
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Mapping[str, Any], ...] = ()
    interval: float = 60.0
    timeout: float = 900.0
    poll_interval: float = 2.0
    failure_backoff: float = 600.0
    radio_requires_presence: bool = True
    #: How long a pull's container may run before it is deleted anyway (``/bin/true``
    #: exits at once; an image whose ``/bin/true`` does something else is not waited for).
    running_grace: float = 5.0


class Prepuller:
    """One configuration's prepuller; see the module's docstring."""

    def __init__(
        self,
        api: Any,
        settings: PrepullSettings,
        menu: Callable[[], Awaitable[ImageMenu | None]],
        policy: RetryPolicy,
        *,
        log: Log | None = None,
    ) -> None:
        self.api = api
        self.settings = settings
        self._menu = menu
        self.policy = policy
        self.log = log or logging.getLogger(__name__)
        #: What the last node listing showed; ``None`` before the first.
        self.state: PrepullState | None = None
        #: Kubernetes requests made, by kind (``list nodes``, ``create pod``, ...).
        self.requests: dict[str, int] = {}
        self.rounds = 0
        self._pulls: dict[str, asyncio.Task[None]] = {}  # node -> its pull
        self._in_flight: dict[str, str] = {}  # node -> pod name
        self._failed: dict[tuple[str, str], float] = {}
        self._warned_full: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._cleaned = False
        self._memo: tuple[ImageMenu, str, ImageMenu] | None = None
        self._marking: asyncio.Task[ImageMenu] | None = None

    # --- what the menu reads ---------------------------------------------------------

    def menu_for(self, menu: ImageMenu) -> ImageMenu:
        """``menu`` with presence and the radio rule (the same object until either changes,
        so the form's cached dropdown stays valid); unchanged before the first listing.

        Marking ten thousand images takes a while, so it is done in a worker thread: until
        it is done for this menu and state, the last marked menu is returned (or ``menu``).
        Never waits.
        """
        done = self._already_marked(menu)
        if done is not None:
            return done
        if self._marking is None or self._marking.done():
            self._marking = asyncio.get_running_loop().create_task(self.mark(menu))
        memo = self._memo
        return memo[2] if memo is not None else menu

    def _already_marked(self, menu: ImageMenu) -> ImageMenu | None:
        """``menu`` itself when there is nothing to mark, its marked copy when it is
        marked for the current state, else ``None``."""
        state = self.state
        if state is None or not menu.complete:
            return menu
        memo = self._memo
        if memo is not None and memo[0] is menu and memo[1] == state.version:
            return memo[2]
        return None

    async def mark(self, menu: ImageMenu) -> ImageMenu:
        """Mark ``menu`` with the current state now (in a worker thread) and keep it."""
        done = self._already_marked(menu)
        state = self.state
        if done is not None or state is None:
            return done or menu
        marked = await asyncio.to_thread(
            apply_presence,
            menu,
            state,
            radio_requires_presence=self.settings.radio_requires_presence,
        )
        self._memo = (menu, state.version, marked)
        return marked

    # --- the background task ------------------------------------------------------------

    def ensure_running(self) -> None:
        """Start the background task on the running loop, if it is not running."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._task, self._wake = loop, None, asyncio.Event()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name="image prepuller")

    async def _run(self) -> None:
        while True:
            try:
                await self.run_round()
            except Exception as error:
                self.log.warning("Image prepull round failed: %s: %s", type(error).__name__, error)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.interval):
                    await self._wake.wait()

    def _count(self, what: str) -> None:
        self.requests[what] = self.requests.get(what, 0) + 1

    async def _call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        self._count(what)
        return await with_retries(
            lambda: request_json(method, *args, **kwargs), what=what, policy=self.policy
        )

    async def list_nodes(self) -> PrepullState:
        """List the nodes once and update :attr:`state` (warning about full image lists)."""
        reply = await self._call("list nodes", self.api.list_node)
        nodes: list[dict[str, Any]] = reply.get("items") or []
        state = build_prepull_state(
            nodes,
            dict(self.settings.node_selector),
            list(self.settings.tolerations),
            datetime.now(UTC),
        )
        for node in state.nodes:
            if node.list_may_be_truncated and node.name not in self._warned_full:
                self._warned_full.add(node.name)
                self.log.warning(
                    "Node %s lists exactly %d images, the kubelet's default "
                    "nodeStatusMaxImages: it may have more, which the menu cannot see. "
                    "Raise nodeStatusMaxImages in the kubelet configuration (-1 for no limit).",
                    node.name,
                    KUBELET_MAX_IMAGES,
                )
        self.state = state
        return state

    async def run_round(self) -> list[PullPlan]:
        """One round: clean up leftovers (first round), list nodes, start pulls."""
        self.rounds += 1
        if not self._cleaned:
            await self._delete_leftovers()
            self._cleaned = True
        state = await self.list_nodes()
        menu = await self._menu()  # starts the menu's own refresh, if nothing else did
        if menu is None or not menu.complete:
            return []
        await self.mark(menu)  # ready before the next form request asks
        now = time.monotonic()
        self._failed = {k: t for k, t in self._failed.items() if t > now}
        plans = plan_pulls(
            prepull_targets(menu),
            state,
            busy=[n for n, task in self._pulls.items() if not task.done()],
            skip=self._failed,
        )
        for plan in plans:
            self._pulls[plan.node] = asyncio.get_running_loop().create_task(
                self._pull(plan), name=f"prepull {plan.node}"
            )
        return plans

    async def wait_for_pulls(self) -> None:
        """Wait for the pulls under way (tests and the benchmark)."""
        await asyncio.gather(*self._pulls.values(), return_exceptions=True)

    async def _delete_leftovers(self) -> None:
        reply = await self._call(
            "list prepull pods",
            self.api.list_namespaced_pod,
            self.settings.namespace,
            label_selector=_SELECTOR,
        )
        for pod in reply.get("items") or []:
            await self._delete(pod["metadata"]["name"])

    async def _delete(self, name: str) -> None:
        self._count("delete pod")
        try:
            await with_retries(
                lambda: request_without_reply(
                    self.api.delete_namespaced_pod,
                    name,
                    self.settings.namespace,
                    grace_period_seconds=0,
                ),
                what=f"deleting prepull pod {name}",
                policy=self.policy,
            )
        except KubernetesError as error:
            if error.status != 404:
                self.log.warning("Could not delete prepull pod %s: %s", name, error)
        except Exception as error:  # the client closed (hub shutdown): the next hub cleans up
            self.log.warning("Could not delete prepull pod %s: %s", name, error)

    async def _pull(self, plan: PullPlan) -> None:
        settings = self.settings
        body = prepull_pod(plan.image, plan.node, tolerations=settings.tolerations)
        name = body["metadata"]["name"]
        reference = plan.image.pinned_reference
        began = time.monotonic()
        outcome = "timed out"
        try:
            self._count("create pod")
            try:
                await with_retries(
                    lambda: request_without_reply(
                        self.api.create_namespaced_pod, settings.namespace, body
                    ),
                    what=f"creating prepull pod {name}",
                    policy=self.policy,
                )
            except KubernetesError as error:
                if error.status != 409:  # 409: a pod of ours already pulls it; follow that
                    raise
            self._in_flight[plan.node] = name
            running_since: float | None = None
            while time.monotonic() - began < settings.timeout:
                await asyncio.sleep(settings.poll_interval)
                pod = await self._call(
                    "read pod", self.api.read_namespaced_pod, name, settings.namespace
                )
                if _running(pod):
                    running_since = running_since or time.monotonic()
                ran_long = (
                    running_since is not None
                    and time.monotonic() - running_since >= settings.running_grace
                )
                result = _pull_outcome(pod, ran_long)
                if result is not None:
                    outcome = result
                    break
        except KubernetesError as error:
            outcome = f"failed: {error}"
        finally:
            self._in_flight.pop(plan.node, None)
            # Shielded (a cancelled pull still deletes its pod) and bounded.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._delete(name)), self.policy.budget)
        seconds = time.monotonic() - began
        if outcome == "pulled":
            self.log.info("Prepulled %s onto %s in %.1fs", reference, plan.node, seconds)
        else:
            self._failed[(plan.node, reference)] = time.monotonic() + settings.failure_backoff
            self.log.warning(
                "Prepulling %s onto %s %s after %.1fs; not retried there for %gs",
                reference,
                plan.node,
                outcome,
                seconds,
                settings.failure_backoff,
            )
        self._wake.set()  # list the nodes again now: their images changed

    async def close(self) -> None:
        """Stop the task and the pulls, deleting the pods of pulls under way; waits at most
        ``CLOSE_TIMEOUT`` (a pod whose delete did not finish is the next hub's leftover)."""
        task, self._task = self._task, None
        pulls = list(self._pulls.values())
        self._pulls.clear()
        tasks = [t for t in (task, *pulls, self._marking) if t is not None]
        for t in tasks:
            if not t.done():
                t.cancel()
        here = [t for t in tasks if t.get_loop() is asyncio.get_running_loop()]
        if here:
            await asyncio.wait(here, timeout=CLOSE_TIMEOUT)

    def cancel(self) -> None:
        """Cancel without waiting (forgetting sites); in-flight pods go with the next hub."""
        for t in (self._task, *self._pulls.values()):
            if t is not None and not t.done():
                t.cancel()
        self._task = None
        self._pulls.clear()

    def __repr__(self) -> str:
        return f"Prepuller(namespace={self.settings.namespace!r}, rounds={self.rounds})"


def _pull_outcome(pod: Mapping[str, Any], ran_long: bool) -> str | None:
    """``pulled`` once the container has run (its image is there), a failure text, or
    ``None`` (still pulling). ``/bin/true`` exits at once: a container running for longer
    than ``running_grace`` (``ran_long``) is not waited for (deleted; its image is there)."""
    failure = pull_failure(pod)
    if failure is not None:
        return f"failed ({failure.reason}: {failure.message})"
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return "pulled"
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        if "terminated" in state or ("running" in state and ran_long):
            return "pulled"
    return None


def _running(pod: Mapping[str, Any]) -> bool:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return any("running" in (c.get("state") or {}) for c in statuses)


def settings_from(
    namespace: str,
    node_selector: Mapping[str, str],
    tolerations: Sequence[Mapping[str, Any]],
    **timing: Any,
) -> PrepullSettings:
    """:class:`PrepullSettings` from a lab's node selection (hashable) and the timing traits."""
    return PrepullSettings(
        namespace=namespace,
        node_selector=tuple(sorted(node_selector.items())),
        tolerations=tuple(dict(t) for t in tolerations),
        **timing,
    )
