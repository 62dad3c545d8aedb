"""``KubeTraits``: how LSSTSpawner's Kubernetes requests are bounded and retried."""

from __future__ import annotations

from typing import ClassVar

from traitlets import Bool

from ..config import CheckedConfigurable, Duration
from .retries import RetryPolicy

__all__ = ["KubeTraits"]


class KubeTraits(CheckedConfigurable):
    """The Kubernetes edge's traits: request timeout, retry budget, client lookups."""

    #: Class name used in problem messages, as operators write the traits.
    trait_owner: ClassVar[str] = "LSSTSpawner"

    kubernetes_request_timeout = Duration(
        "30s", minimum=1, config=True, help="Timeout of one Kubernetes API request."
    )
    kubernetes_retry_budget = Duration(
        "2m",
        minimum=1,
        config=True,
        help="Total time transient Kubernetes failures are retried for, with backoff.",
    )
    lab_image_pull_grace = Duration(
        "60s",
        minimum=0,
        config=True,
        help=(
            "How long a lab pod may report ErrImagePull, ImagePullBackOff or InvalidImageName "
            "before its spawn fails with the kubelet's reason (KubeSpawner would wait the whole "
            "start_timeout); its pod and Secrets are deleted."
        ),
    )
    lab_start_failure_grace = Duration(
        "30s",
        minimum=0,
        config=True,
        help=(
            "How long a lab pod may wait on a missing Secret or ConfigMap (or key) it reads, or "
            "restart a failing init container, before its spawn fails naming it; a pod that "
            "failed stops the spawn at once. Its pod and Secrets are deleted."
        ),
    )
    kubernetes_skip_environment_lookups = Bool(
        True,
        config=True,
        help=(
            "Turn off aiohttp's per-request netrc and proxy lookups on KubeSpawner's "
            "Kubernetes client when no proxy variable applies to the API server and no netrc "
            "entry names it (they find nothing; ~0.4 ms of hub CPU per request). "
            "False keeps them."
        ),
    )

    def retry_policy(self) -> RetryPolicy:
        """The :class:`RetryPolicy` these traits describe (the logger is added by its user)."""
        return RetryPolicy(
            budget=self.kubernetes_retry_budget, request_timeout=self.kubernetes_request_timeout
        )
