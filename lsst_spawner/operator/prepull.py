"""Prepull in operator mode: the operator runs the prepuller, the hub reads what it found.

In operator mode the hub has no pod rights, so the operator runs the prepuller
(:class:`~lsst_spawner.kube.prepull.Prepuller`, the in-hub code) for each LabTemplate
with ``image_prepull_enabled``, with its own Role (``pods`` create/delete, and a
ClusterRole with ``list nodes``), on the template's node selection and its menu (the lab
menu's current revision with ``spec.labMenu``). The active replica only: a replica that
stands by (kopf peering) stops its prepullers.

After each round the operator publishes what the nodes hold in the LabTemplate's
``status.prepull`` (only the names of the menu's images, so it stays small): the
eligible nodes and, for each, the menu images it has. The hub, whose Role may ``get``
LabTemplates, reads it into the same :class:`~lsst_spawner.images.prepull.PrepullState`
the in-hub prepuller builds from the nodes, so the menu's radio choices and "slower to
start" marks (:func:`~lsst_spawner.images.prepull.apply_presence`) are computed by the same
code in both modes (:class:`PublishedPrepuller`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..images.model import ImageMenu, MenuImage
from ..images.prepull import NodeImages, PrepullState, PullPlan
from ..kube.prepull import Prepuller, PrepullSettings
from ..kube.retries import RetryPolicy

__all__ = [
    "PublishedPrepuller",
    "PublishingPrepuller",
    "menu_image_names",
    "published_state",
    "state_to_publish",
    "template_prepull_settings",
]

Log = logging.Logger | logging.LoggerAdapter[logging.Logger]
Publish = Callable[[dict[str, Any]], Awaitable[None]]
ReadPublished = Callable[[], Awaitable[Mapping[str, Any] | None]]


def _node_name(image: MenuImage) -> str:
    """The name a node's ``status.images`` lists ``image`` by (as ``image_on_node`` reads it)."""
    if image.digest:
        return f"{image.reference[: -len(image.tag) - 1]}@{image.digest}"
    return image.reference


def menu_image_names(menu: ImageMenu) -> frozenset[str]:
    """The node image names of every image ``menu`` offers (radio, dropdown, aliases)."""
    return frozenset(_node_name(image) for image in (*menu.radio, *menu.dropdown, *menu.aliased))


def state_to_publish(state: PrepullState, menu: ImageMenu) -> dict[str, Any]:
    """``status.prepull``: the eligible nodes with the menu's images they hold (pure)."""
    names = menu_image_names(menu)
    nodes = [
        {
            "name": node.name,
            "imageCount": node.image_count,
            "images": sorted(node.names & names),
        }
        for node in state.nodes
    ]
    body: dict[str, Any] = {"nodes": nodes, "ineligible": list(state.ineligible)}
    text = json.dumps(body, sort_keys=True)
    body["version"] = hashlib.sha256(text.encode()).hexdigest()[:32]
    if state.observed_at is not None:
        body["observedAt"] = state.observed_at.isoformat().replace("+00:00", "Z")
    return body


def published_state(published: Mapping[str, Any] | None) -> PrepullState | None:
    """The :class:`PrepullState` a ``status.prepull`` describes; ``None`` for none or a malformed
    one (the menu is then shown without presence, as before the first listing)."""
    if not isinstance(published, Mapping):
        return None
    try:
        nodes = tuple(
            NodeImages(
                str(node["name"]),
                frozenset(str(name) for name in node.get("images") or []),
                int(node.get("imageCount", 0)),
            )
            for node in published.get("nodes") or []
        )
        observed = published.get("observedAt")
        observed_at = (
            datetime.fromisoformat(observed.replace("Z", "+00:00"))
            if isinstance(observed, str)
            else None
        )
        return PrepullState(
            nodes=nodes,
            ineligible=tuple(str(name) for name in published.get("ineligible") or []),
            observed_at=observed_at,
            version=str(published.get("version", "")),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def template_prepull_settings(
    namespace: str, pod_template: Mapping[str, Any], traits: Any
) -> PrepullSettings:
    """The prepuller's settings for a template: its pod's node selection, its timing traits."""
    spec = pod_template.get("spec") or {}
    settings: PrepullSettings = traits.prepull_settings_for(
        namespace, dict(spec.get("nodeSelector") or {}), list(spec.get("tolerations") or [])
    )
    return settings


class PublishingPrepuller(Prepuller):
    """The operator's prepuller of one template: each round also publishes what it found
    (when it changed, and at least once an interval, so the hub can tell it is current)."""

    def __init__(
        self,
        api: Any,
        settings: PrepullSettings,
        menu: Callable[[], Awaitable[ImageMenu | None]],
        policy: RetryPolicy,
        publish: Publish,
        *,
        log: Log | None = None,
    ) -> None:
        super().__init__(api, settings, menu, policy, log=log)
        self._publish = publish
        self.published: str | None = None
        self.published_at = float("-inf")

    async def run_round(self) -> list[PullPlan]:
        plans = await super().run_round()
        menu = await self._menu()
        if self.state is not None and menu is not None and menu.complete:
            body = state_to_publish(self.state, menu)
            # Also unchanged, once an interval: ``observedAt`` tells the hub it is current.
            due = time.monotonic() - self.published_at >= self.settings.interval
            if body["version"] != self.published or due:
                await self._publish(body)
                self.published, self.published_at = body["version"], time.monotonic()
        return plans


#: After this many prepull intervals without a new ``status.prepull`` (an operator whose
#: prepuller stopped, or one standing by with no replica working), the hub stops trusting it.
STALE_INTERVALS = 3


def published_too_old(state: PrepullState, interval: float, now: datetime | None = None) -> bool:
    """Whether ``state`` was observed more than :data:`STALE_INTERVALS` intervals ago (a state
    without ``observedAt`` is never too old: nothing says when it was seen)."""
    if state.observed_at is None:
        return False
    now = now or datetime.now(tz=state.observed_at.tzinfo or UTC)
    return (now - state.observed_at).total_seconds() > STALE_INTERVALS * interval


class PublishedPrepuller(Prepuller):
    """The hub's view in operator mode: rounds read the operator's ``status.prepull`` instead
    of listing nodes; it never creates a pod. Marking the menu is the base class's."""

    def __init__(
        self,
        settings: PrepullSettings,
        read: ReadPublished,
        policy: RetryPolicy,
        *,
        log: Log | None = None,
    ) -> None:
        async def no_menu() -> ImageMenu | None:
            return None

        super().__init__(None, settings, no_menu, policy, log=log)
        self._read = read

    async def run_round(self) -> list[PullPlan]:
        self.rounds += 1
        self._count("read labtemplate")
        state = published_state(await self._read())
        if state is not None and published_too_old(state, self.settings.interval):
            if self.state is not None:
                self.log.warning(
                    "The operator's prepull state (observed %s) is older than %s intervals: "
                    "the menu is shown without presence until it publishes again",
                    state.observed_at,
                    STALE_INTERVALS,
                )
            self.state = None  # no presence, as before the first listing
        elif state is not None:
            self.state = state
        return []

    async def close(self) -> None:
        self.cancel()


class TemplatePrepulls:
    """The operator's prepullers, one per LabTemplate with ``image_prepull_enabled``.

    :meth:`check` (every heartbeat) lists the templates of the operator's namespaces, starts
    a :class:`PublishingPrepuller` for each that prepulls, replaces one whose settings
    changed, and stops those of templates gone, turned off, or while this replica stands by.
    """

    def __init__(
        self,
        state: Any,
        api: Any,
        standing_by: Callable[[], Awaitable[bool]],
        *,
        log: Log | None = None,
    ) -> None:
        self.state = state
        self.api = api
        self._standing_by = standing_by
        self.log = log or logging.getLogger(__name__)
        self.prepullers: dict[tuple[str, str], PublishingPrepuller] = {}

    def get(self, namespace: str, name: str) -> PublishingPrepuller | None:
        return self.prepullers.get((namespace, name))

    async def mark(self, namespace: str, name: str, menu: ImageMenu) -> ImageMenu:
        """``menu`` with the template's presence (a lab then prefers nodes that have its image)."""
        prepuller = self.get(namespace, name)
        return await prepuller.mark(menu) if prepuller is not None else menu

    def _make(self, namespace: str, name: str, settings: PrepullSettings) -> PublishingPrepuller:
        from .build import Rejected
        from .menu import template_image_menu

        state = self.state

        async def menu() -> ImageMenu | None:
            try:
                site = await state.site(namespace, name)
            except Rejected:
                return None
            return await template_image_menu(state.lab_menus, site)

        async def publish(body: dict[str, Any]) -> None:
            await state.kube.patch_template_status(namespace, name, {"prepull": body})

        return PublishingPrepuller(
            self.api, settings, menu, state.kube.policy, publish, log=self.log
        )

    async def check(self) -> None:
        from .build import Rejected

        if await self._standing_by():
            await self.close()
            return
        wanted: set[tuple[str, str]] = set()
        for namespace in self.state.namespaces:
            for body in await self.state.kube.list_templates(namespace):
                name = str(body["metadata"]["name"])
                try:
                    site = await self.state.site(namespace, name)
                except Rejected:
                    continue
                if not getattr(site.traits, "image_prepull_enabled", False):
                    continue
                settings = template_prepull_settings(
                    namespace, site.template.spec.pod_template, site.traits
                )
                key = (namespace, name)
                wanted.add(key)
                kept = self.prepullers.get(key)
                if kept is not None and kept.settings != settings:
                    await kept.close()
                    kept = None
                if kept is None:
                    kept = self.prepullers[key] = self._make(namespace, name, settings)
                    self.log.info("Prepulling the images of LabTemplate %s/%s", namespace, name)
                kept.ensure_running()
        for key in set(self.prepullers) - wanted:
            await self.prepullers.pop(key).close()

    async def close(self) -> None:
        prepullers = list(self.prepullers.values())
        self.prepullers.clear()
        for prepuller in prepullers:
            await prepuller.close()

    async def run(self, interval: float) -> None:
        """:meth:`check` every ``interval`` seconds until cancelled (the operator's cleanup)."""
        import asyncio

        try:
            while True:
                try:
                    await self.check()
                except Exception as error:
                    self.log.warning("Prepull check failed: %s: %s", type(error).__name__, error)
                await asyncio.sleep(interval)
        finally:
            await asyncio.shield(self.close())
