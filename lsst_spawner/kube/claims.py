"""A user's home claim and namespace on the Kubernetes API: created once, re-used after.

Both are created before the lab's first object, with the same bounded retries
as every other write (:func:`~lsst_spawner.kube.retries.with_retries`); one
that exists already (409) is re-used as it is. Neither is ever deleted here:
the claim holds the user's files, and the namespace may hold other servers.
z2jh's hub Role grants ``persistentvolumeclaims: create``; namespaces need a
ClusterRole (``lsst-spawner rbac`` prints it).
"""

from __future__ import annotations

from typing import Any

from .retries import KubernetesError, RetryPolicy, request_without_reply, with_retries

__all__ = ["ensure_home_claim", "ensure_namespace"]


async def _create_unless_exists(call: Any, what: str, policy: RetryPolicy) -> bool:
    """Run the create ``call`` with retries; True if created, False if it existed (409)."""
    try:
        await with_retries(call, what=what, policy=policy)
    except KubernetesError as error:
        if error.status != 409:
            raise
        return False
    return True


async def ensure_home_claim(
    api: Any, namespace: str, body: dict[str, Any], policy: RetryPolicy
) -> bool:
    """Create the home claim ``body`` unless it exists; True when this call created it."""
    name = body["metadata"]["name"]
    created = await _create_unless_exists(
        lambda: request_without_reply(
            api.create_namespaced_persistent_volume_claim, namespace, body
        ),
        f"creating persistentvolumeclaim {namespace}/{name}",
        policy,
    )
    if created:
        policy.logger.info("Created the home claim %s/%s", namespace, name)
    else:
        policy.logger.info("Re-using the home claim %s/%s", namespace, name)
    return created


async def ensure_namespace(api: Any, body: dict[str, Any], policy: RetryPolicy) -> bool:
    """Create the user's namespace ``body`` unless it exists; True when this call created it."""
    name = body["metadata"]["name"]
    created = await _create_unless_exists(
        lambda: request_without_reply(api.create_namespace, body),
        f"creating namespace {name}",
        policy,
    )
    if created:
        policy.logger.info("Created the user namespace %s", name)
    return created
