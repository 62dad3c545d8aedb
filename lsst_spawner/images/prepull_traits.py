"""Traits of the image prepuller, mixed into ``LSSTSpawner`` (``c.LSSTSpawner.image_prepull_*``).

Off by default: the prepuller lists nodes, which Zero to JupyterHub's hub Role
does not allow (:data:`~lsst_spawner.kube.prepull.NODES_RULE` must be granted by a
ClusterRole bound to the hub's service account; ``lsst-spawner rbac`` prints it).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

from traitlets import Bool

from ..config import CheckedConfigurable, ConfigProblem, Duration
from ..kube.prepull import NODES_RULE, Prepuller, PrepullSettings, settings_from
from .model import ImageMenu

__all__ = ["PrepullTraits"]


class PrepullTraits(CheckedConfigurable):
    """Whether the menu's radio images are prepulled onto the lab nodes, and how."""

    trait_owner: ClassVar[str] = "LSSTSpawner"

    image_prepull_enabled = Bool(
        False,
        config=True,
        help=(
            "Prepull the menu's radio and pinned images onto every node labs may run on, and "
            "show only images present on all of them as radio choices. Needs a ClusterRole "
            "granting list on nodes (z2jh's hub Role has none); see lsst-spawner rbac."
        ),
    )

    image_prepull_radio_requires_presence = Bool(
        True,
        config=True,
        help=(
            "With prepull on, radio choices are only images present on every eligible node "
            "(Nublado's rule); the others move to the dropdown, marked slower to start."
        ),
    )

    image_prepull_interval = Duration(
        "60s",
        minimum=1.0,
        config=True,
        help="How often the prepuller lists the nodes and starts the pulls that are missing.",
    )

    image_prepull_timeout = Duration(
        "15m",
        minimum=1.0,
        config=True,
        help=(
            "The longest one pull (one image onto one node) may take; its pod is then deleted "
            "and the pull is retried on that node after image_prepull_failure_backoff."
        ),
    )

    image_prepull_poll_interval = Duration(
        "2s",
        minimum=0.05,
        config=True,
        help="How often the prepuller reads a pull's pod to see whether its image has arrived.",
    )

    image_prepull_failure_backoff = Duration(
        "10m",
        minimum=0.0,
        config=True,
        help="How long a pull that failed or timed out is not tried again on that node.",
    )

    def prepull_settings(self) -> PrepullSettings:
        """The prepuller's settings: these traits and KubeSpawner's node selection."""
        spawner: Any = self
        return self.prepull_settings_for(
            str(getattr(spawner, "namespace", "default")),
            dict(getattr(spawner, "node_selector", None) or {}),
            list(getattr(spawner, "tolerations", None) or []),
        )

    def prepull_settings_for(
        self, namespace: str, node_selector: dict[str, str], tolerations: list[dict[str, Any]]
    ) -> PrepullSettings:
        """The prepuller's settings for this node selection (the operator's, from a template's
        pod) and these traits' timing."""
        return settings_from(
            namespace,
            node_selector,
            tolerations,
            interval=self.image_prepull_interval,
            timeout=self.image_prepull_timeout,
            poll_interval=self.image_prepull_poll_interval,
            failure_backoff=self.image_prepull_failure_backoff,
            radio_requires_presence=self.image_prepull_radio_requires_presence,
        )

    def image_prepuller(self) -> Prepuller | None:
        """This configuration's prepuller, started if needed; ``None`` with prepull off."""
        if not self.image_prepull_enabled or not hasattr(self, "api"):
            return None
        published = getattr(self, "published_prepuller", None)
        follower: Prepuller | None = published() if published is not None else None
        if follower is not None:
            return follower  # operator mode: the operator prepulls, the hub reads its findings
        from ..site import site_context

        prepuller = site_context(self).prepuller(self)
        prepuller.ensure_running()
        return prepuller

    def start_prepull_in_background(self) -> None:
        """Start the prepuller with the hub (a spawner is built on the hub's loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # check-config, render-pod: no loop, no background task
        self.image_prepuller()

    def menu_with_presence(self, menu: ImageMenu) -> ImageMenu:
        """``menu`` with presence and the radio rule when prepull is on; else ``menu``."""
        prepuller = self.image_prepuller()
        return prepuller.menu_for(menu) if prepuller is not None else menu

    def config_warnings(self) -> list[ConfigProblem]:
        warnings = super().config_warnings()
        # In operator mode the operator prepulls, with its own ClusterRole (docs/operator.md).
        if self.image_prepull_enabled and getattr(self, "lab_backend", "hub") != "operator":
            warnings.append(
                ConfigProblem(
                    self.trait_where("image_prepull_enabled"),
                    "the prepuller lists nodes, which z2jh's hub Role does not allow: bind the "
                    "hub's service account to a ClusterRole with the rule "
                    f"{json.dumps(NODES_RULE)} (lsst-spawner rbac prints it)",
                )
            )
        return warnings
