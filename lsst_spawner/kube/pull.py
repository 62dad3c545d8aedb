"""Failing fast when the lab's image cannot be pulled.

KubeSpawner waits out ``start_timeout`` (often 10 minutes) while the kubelet reports
``ErrImagePull`` and ``ImagePullBackOff`` over and over. :func:`pull_failure` reads a pod
(the reflector's copy: no extra request) for those reasons; :func:`watch_image_pull` gives
the kubelet a grace period to recover (a registry hiccup) and then returns the failure, so
the spawn can be stopped with the kubelet's reason in words a user understands.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PULL_FAILURE_REASONS", "PullFailure", "pull_failure", "watch_image_pull"]

#: Waiting reasons a kubelet gives a container whose image it cannot get.
PULL_FAILURE_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)

_EXPLAINED = {
    "ErrImagePull": "the node could not pull it",
    "ImagePullBackOff": "the node could not pull it and is waiting before it tries again",
    "InvalidImageName": "its name is not a valid image reference",
    "ErrImageNeverPull": "it is not on the node and the pod may not pull it",
}


@dataclass(frozen=True)
class PullFailure:
    """A container's image the kubelet cannot get: the image, its reason and message."""

    image: str
    reason: str
    message: str

    def user_message(self) -> str:
        detail = f" ({self.message})" if self.message else ""
        return (
            f"Your lab could not start: the image {self.image} could not be used, because "
            f"{_EXPLAINED.get(self.reason, self.reason)} [{self.reason}]{detail}. Choose "
            "another image, or ask the hub's administrators whether this one still exists."
        )


def pull_failure(pod: Mapping[str, Any] | None) -> PullFailure | None:
    """The first container (init containers first) of ``pod`` waiting on a pull failure."""
    if not pod:
        return None
    status = pod.get("status") or {}
    for group in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(group) or []:
            waiting = ((container.get("state") or {}).get("waiting")) or {}
            reason = waiting.get("reason")
            if reason in PULL_FAILURE_REASONS:
                message = str(waiting.get("message") or "")[:500]
                return PullFailure(str(container.get("image") or "?"), str(reason), message)
    return None


async def watch_image_pull(
    read_pod: Callable[[], Mapping[str, Any] | None],
    *,
    grace: float,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> PullFailure:
    """Return once ``read_pod()`` has shown a pull failure for ``grace`` seconds without a break.

    Runs until cancelled otherwise; ``read_pod`` must not do I/O (a reflector's cache).
    """
    since: float | None = None
    while True:
        failure = pull_failure(read_pod())
        if failure is None:
            since = None
        else:
            since = clock() if since is None else since
            if clock() - since >= grace:
                return failure
        await asyncio.sleep(interval)
