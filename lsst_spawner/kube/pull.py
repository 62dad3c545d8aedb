"""Failing fast when the lab's image cannot be pulled.

KubeSpawner waits out ``start_timeout`` (often 10 minutes) while the kubelet reports
``ErrImagePull`` and ``ImagePullBackOff`` over and over. :func:`pull_failure` reads a pod
(the reflector's copy: no extra request) for those reasons; :func:`watch_image_pull` gives
the kubelet a grace period to recover (a registry hiccup) and then returns the failure, so
the spawn can be stopped with the kubelet's reason in words a user understands.

The menu pins images by the digest it resolved at its last refresh; a manifest deleted
since (a pruned tag) cannot be pulled. :func:`watch_image_pull` also asks the registry
once (``manifest_exists``) whether the pinned manifest is still there: when it is gone
and the container has not started within the grace period (a node that cached the
image still runs it), the spawn fails saying the image is no longer in the registry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MANIFEST_GONE",
    "PULL_FAILURE_REASONS",
    "PullFailure",
    "container_started",
    "pull_failure",
    "waiting_containers",
    "watch_image_pull",
]

#: Waiting reasons a kubelet gives a container whose image it cannot get.
PULL_FAILURE_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)

#: The reason of a failure found by asking the registry, not the kubelet.
MANIFEST_GONE = "ManifestUnknown"

_EXPLAINED = {
    "ErrImagePull": "the node could not pull it",
    "ImagePullBackOff": "the node could not pull it and is waiting before it tries again",
    "InvalidImageName": "its name is not a valid image reference",
    "ErrImageNeverPull": "it is not on the node and the pod may not pull it",
    MANIFEST_GONE: "it is no longer in the registry (deleted after the image list was made)",
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


def waiting_containers(
    pod: Mapping[str, Any] | None,
) -> Iterator[tuple[Mapping[str, Any], str, str]]:
    """``(status, reason, message)`` of each waiting container of ``pod``, init ones first."""
    status = (pod or {}).get("status") or {}
    for group in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(group) or []:
            waiting = ((container.get("state") or {}).get("waiting")) or {}
            if waiting:
                message = str(waiting.get("message") or "")[:500]
                yield container, str(waiting.get("reason") or ""), message


def pull_failure(pod: Mapping[str, Any] | None) -> PullFailure | None:
    """The first container (init containers first) of ``pod`` waiting on a pull failure."""
    for container, reason, message in waiting_containers(pod):
        if reason in PULL_FAILURE_REASONS:
            return PullFailure(str(container.get("image") or "?"), reason, message)
    return None


def container_started(pod: Mapping[str, Any] | None) -> bool:
    """Whether any container of ``pod`` runs or ran (its image was there)."""
    status = (pod or {}).get("status") or {}
    for group in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(group) or []:
            state = container.get("state") or {}
            if "running" in state or "terminated" in state:
                return True
    return False


async def watch_image_pull(
    read_pod: Callable[[], Mapping[str, Any] | None],
    *,
    grace: float,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    manifest_exists: Callable[[], Awaitable[bool]] | None = None,
    image: str = "",
) -> PullFailure:
    """Return once ``read_pod()`` has shown a pull failure for ``grace`` seconds without a break,
    or once ``manifest_exists()`` said the image's manifest is gone and no container started
    within ``grace`` seconds of that answer.

    ``manifest_exists`` is asked once, in the background; an error there proves nothing
    and is ignored (the kubelet decides). A failure while the manifest is known gone is
    reported as :data:`MANIFEST_GONE`, with the kubelet's message. Runs until cancelled
    otherwise; ``read_pod`` must not do I/O (a reflector's cache).
    """
    since: float | None = None
    gone_since: float | None = None
    check = asyncio.ensure_future(manifest_exists()) if manifest_exists is not None else None
    try:
        while True:
            if check is not None and check.done():
                if not check.cancelled() and check.exception() is None and not check.result():
                    gone_since = clock()
                check = None
            pod = read_pod()
            failure = pull_failure(pod)
            now = clock()
            if gone_since is not None and container_started(pod):
                gone_since = None  # the node had the image: the lab runs anyway
            gone = gone_since is not None
            if failure is None:
                since = None
            else:
                since = now if since is None else since
                if now - since >= grace:
                    return _gone(failure.image, failure.message) if gone else failure
            if gone_since is not None and now - gone_since >= grace:
                return _gone(image or (failure.image if failure else "?"), "")
            await asyncio.sleep(interval)
    finally:
        if check is not None:
            check.cancel()


def _gone(image: str, kubelet_message: str) -> PullFailure:
    message = "the registry answers 404 for its manifest digest"
    if kubelet_message:
        message += f"; the node said: {kubelet_message}"
    return PullFailure(image, MANIFEST_GONE, message[:500])
