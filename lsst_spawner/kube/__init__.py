"""The Kubernetes edge: retries (:mod:`.retries`), the lab's objects (:mod:`.objects`),
KubeSpawner hardening (:mod:`.resilience`) and the traits (:mod:`.traits`).

This package imports neither KubeSpawner nor traitlets; import
:mod:`lsst_spawner.kube.resilience` and :mod:`lsst_spawner.kube.traits` for those.
"""

from __future__ import annotations

from .objects import create_lab_config, create_replacing, delete_lab_config, delete_lab_objects
from .retries import (
    TRANSIENT_ERRORS,
    TRANSIENT_STATUSES,
    KubernetesError,
    RetryPolicy,
    api_message,
    is_transient,
    request_without_reply,
    retry_after_seconds,
    skip_unused_environment_lookups,
    with_retries,
)

__all__ = [
    "TRANSIENT_ERRORS",
    "TRANSIENT_STATUSES",
    "KubernetesError",
    "RetryPolicy",
    "api_message",
    "create_lab_config",
    "create_replacing",
    "delete_lab_config",
    "delete_lab_objects",
    "is_transient",
    "request_without_reply",
    "retry_after_seconds",
    "skip_unused_environment_lookups",
    "with_retries",
]
