"""KubeSpawner's own Kubernetes requests, made resilient to transient failures.

KubeSpawner 7 retries only timeouts of its pod create and delete requests: a
429, 500, 503 or a connection reset fails the spawn or the stop at once, and a
reflector whose first list failed stays in the class-wide cache, dead, for
every later spawn. This mixin, placed just before ``KubeSpawner`` in
``LSSTSpawner``'s bases, retries transient failures the way
:mod:`lsst_spawner.kube.retries` does, within the spawner's :class:`RetryPolicy`
(``kubernetes_retry_budget``), and gives a hub
that restarted during a spawn the lab's real address (``get_url``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException
from kubespawner import KubeSpawner

from .reflector import TrimmedPodReflectorMixin
from .retries import (
    TRANSIENT_ERRORS,
    KubernetesError,
    RetryPolicy,
    api_message,
    is_transient,
    request_without_reply,
    with_retries,
)

__all__ = ["ResilientKubeSpawnerMixin"]


class ResilientKubeSpawnerMixin(TrimmedPodReflectorMixin):  # lab pods kept trimmed
    """Retries for KubeSpawner's pod requests and reflectors; the pod's URL after a restart.

    The final class provides :meth:`kube_retry_policy` and may record the last
    transient failure of a spawn (:meth:`note_transient_failure`).
    """

    def kube_retry_policy(self) -> RetryPolicy:
        """The retry policy of this spawner's Kubernetes requests."""
        raise NotImplementedError("the spawner class provides kube_retry_policy()")

    def note_transient_failure(self, detail: str) -> None:
        """Called with each transient failure of a KubeSpawner request (for timeout messages)."""

    async def get_url(self) -> str:
        """The lab's URL from its pod, for a hub that restarted while the lab was starting.

        JupyterHub records the server (with a placeholder address) before it
        calls ``start()`` and, on restart, asks ``get_url()`` of every server
        that ``poll()`` says is running. KubeSpawner does not implement it, so
        a lab whose spawn a hub crash interrupted keeps the placeholder, never
        answers there and is shut down after ``http_timeout``. Here the pod is
        looked up by name and, while it is still Pending, waited for (up to
        ``start_timeout``); without a running pod the recorded URL is returned.
        """
        await self._start_watching_pods()
        ref_key = f"{self.namespace}/{self.pod_name}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        while True:
            pod = self.pod_reflector.pods.get(ref_key)
            if pod is not None and self.is_pod_running(pod):
                url: str = self._get_pod_url(pod)
                return url
            pending = pod is not None and pod["status"].get("phase") == "Pending"
            if not pending or loop.time() >= deadline:
                recorded: str = await super().get_url()
                return recorded
            await asyncio.sleep(0.5)

    def _transient(self, what: str, error: BaseException) -> bool:
        """Log and remember ``error`` when it is transient; say whether it was."""
        if not is_transient(error):
            return False
        if isinstance(error, ApiException):
            detail = f"{error.status} {api_message(error)}"
        else:
            detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        self.note_transient_failure(f"{what}: {detail}")
        self.log.warning("Retrying %s after a transient failure: %s", what, detail)
        return True

    def _retry_or_raise(self, what: str, error: BaseException) -> bool:
        """False (retry: KubeSpawner's backoff calls again) for a transient failure;
        otherwise raise it, an API error as :class:`KubernetesError` with the API's message."""
        if self._transient(what, error):
            return False
        if isinstance(error, ApiException):
            raise KubernetesError(
                f"{what}: {error.status} {api_message(error)}", error.status
            ) from None
        raise error

    async def _make_create_pod_request(self, pod: Any, request_timeout: float) -> bool:
        """Create the pod; False (retry) on a transient failure or after removing a leftover.

        Unlike KubeSpawner, a leftover pod (409) is deleted with KubeSpawner's
        ``stop`` alone: this spawner's ``stop`` would also delete the Secret
        this spawn has just created, and the new pod would never start.
        """
        name = pod["metadata"]["name"] if isinstance(pod, dict) else pod.metadata.name
        what = f"creating pod {self.namespace}/{name}"
        try:
            await asyncio.wait_for(
                request_without_reply(self.api.create_namespaced_pod, self.namespace, pod),
                request_timeout,
            )
        except ApiException as error:
            if error.status != 409:
                return self._retry_or_raise(what, error)
            self.log.info("Found a leftover pod %s, deleting it", name)
            await KubeSpawner.stop(self, now=True)
            return False
        except TRANSIENT_ERRORS as error:  # timeouts included
            return self._retry_or_raise(what, error)
        return True

    async def _make_delete_pod_request(
        self, pod_name: str, delete_options: Any, grace_seconds: int, request_timeout: float
    ) -> bool:
        """KubeSpawner's pod deletion (a pod already gone is deleted), with transient
        failures retried (False) and the reply not decoded."""
        what = f"deleting pod {self.namespace}/{pod_name}"
        self.log.info("Deleting pod %s/%s", self.namespace, pod_name)
        try:
            await asyncio.wait_for(
                request_without_reply(
                    self.api.delete_namespaced_pod,
                    name=pod_name,
                    namespace=self.namespace,
                    body=delete_options,
                    grace_period_seconds=grace_seconds,
                ),
                request_timeout,
            )
        except ApiException as error:
            if error.status == 404:
                self.log.warning(
                    "No pod %s/%s to delete; already deleted", self.namespace, pod_name
                )
                return True
            return self._retry_or_raise(what, error)
        except TRANSIENT_ERRORS as error:  # timeouts included
            return self._retry_or_raise(what, error)
        return True

    async def _start_reflector(
        self, kind: str, reflector_class: Any, replace: bool = False, **kwargs: Any
    ) -> Any:
        """KubeSpawner's shared reflector, replaced when dead, its start retried when transient.

        KubeSpawner keeps a reflector whose first list failed (or whose watch
        gave up after a long outage) in its class-wide cache and hands it to
        every later spawn, which then waits for a pod that never shows up.
        """
        key = self._get_reflector_key(kind)
        previous = type(self).reflectors.get(key)
        if previous is not None and not replace and _reflector_dead(previous):
            self.log.warning("The %s reflector is not running; starting a new one", kind)
            replace = True
        attempt = {"replace": replace}

        async def start() -> Any:
            replace_now, attempt["replace"] = attempt["replace"], True
            return await super(ResilientKubeSpawnerMixin, self)._start_reflector(
                kind, reflector_class, replace=replace_now, **kwargs
            )

        policy = self.kube_retry_policy()
        return await with_retries(
            start,
            what=f"starting the {kind} reflector in {self.namespace}",
            policy=dataclasses.replace(policy, request_timeout=max(policy.request_timeout, 30.0)),
        )


def _reflector_dead(reflector: Any) -> bool:
    """True when a KubeSpawner reflector's first load failed or its watch task has ended."""
    first_load = reflector.first_load_future
    if first_load.done() and (first_load.cancelled() or first_load.exception() is not None):
        return True
    task = reflector.watch_task
    if first_load.done() and task is None:
        return True
    return task is not None and task.done()
