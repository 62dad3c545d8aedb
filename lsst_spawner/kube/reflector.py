"""KubeSpawner's pod reflector, keeping of each lab pod only what the hub reads.

KubeSpawner's pod reflector keeps every pod it watches in the hub's memory, as
the API server sent it, for as long as the lab runs. A lab pod carries its plain
environment literally (about forty variables; the lab's Secret holds the rest),
its volumes and mounts and security contexts: none of it is read again once the
pod exists. :func:`trim_pod` keeps what the hub's readers use, listed with them:

- ``metadata`` (less ``managedFields``): name, namespace, uid, labels and
  annotations, ``deletionTimestamp`` (KubeSpawner's ``is_pod_running``,
  ``pod_has_uid``, ``_start``'s owner reference, ``after_pod_created_hook``);
- ``status``, whole (``is_pod_running``, ``poll``, ``_get_pod_url``'s ``podIP``,
  :mod:`lsst_spawner.kube.pull`'s pull failures, ``get_url`` after a restart);
- of ``spec``, :data:`SPEC_FIELDS`, and of each container :data:`CONTAINER_FIELDS`
  (``_get_pod_port`` reads the ports, :func:`~lsst_spawner.kube.objects.has_legacy_env_secret`
  the ``envFrom``); of init and app containers alike the env entries that reference a
  Secret or ConfigMap key (never a literal value), and the Secret/ConfigMap volumes
  (:mod:`lsst_spawner.kube.startfail` names a missing one).

``kubernetes_trim_reflected_pods = False`` keeps whole pods, for a site hook
(``get_pod_url``, ``after_pod_created_hook``) that reads more of the pod.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubespawner import KubeSpawner
from kubespawner.spawner import PodReflector
from traitlets import Bool, default, validate

__all__ = [
    "CONTAINER_FIELDS",
    "SPEC_FIELDS",
    "TrimmedPodReflector",
    "TrimmedPodReflectorMixin",
    "TrimmedPods",
    "trim_pod",
]

#: What the trimmed pod keeps of each of its containers.
CONTAINER_FIELDS = ("name", "image", "ports", "envFrom")
#: What the trimmed pod keeps of its spec besides ``containers`` (for logs and debugging).
SPEC_FIELDS = ("nodeName", "hostname", "subdomain", "serviceAccountName")
#: What the trimmed pod drops of its metadata (the server's field-ownership records).
METADATA_DROPPED = frozenset({"managedFields"})


def trim_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of ``pod`` (a pod as JSON) that the hub reads; values are shared, not copied."""
    trimmed = {key: pod[key] for key in ("apiVersion", "kind", "status") if key in pod}
    metadata = pod.get("metadata")
    if isinstance(metadata, Mapping):
        trimmed["metadata"] = {k: v for k, v in metadata.items() if k not in METADATA_DROPPED}
    elif metadata is not None:
        trimmed["metadata"] = metadata
    spec = pod.get("spec")
    if isinstance(spec, Mapping):
        kept = {key: spec[key] for key in SPEC_FIELDS if key in spec}
        for field in ("initContainers", "containers"):
            if field in spec:
                kept[field] = _trim_containers(spec[field])
        volumes = spec.get("volumes")
        if isinstance(volumes, list):
            kept["volumes"] = [v for v in volumes if _reads_objects(v)]
        trimmed["spec"] = kept
    elif spec is not None:
        trimmed["spec"] = spec
    return trimmed


def _trim_containers(containers: Any) -> Any:
    if not isinstance(containers, list):
        return containers
    return [_trim_container(c) if isinstance(c, Mapping) else c for c in containers]


def _trim_container(container: Mapping[str, Any]) -> dict[str, Any]:
    kept = {key: container[key] for key in CONTAINER_FIELDS if key in container}
    env = container.get("env")
    if isinstance(env, list):
        # Only the references (a missing site Secret or key fails the spawn, naming it:
        # lsst_spawner.kube.startfail), never a literal value.
        refs = [v for v in env if isinstance(v, Mapping) and _env_ref(v.get("valueFrom"))]
        if refs:
            kept["env"] = [{"name": v.get("name"), "valueFrom": v["valueFrom"]} for v in refs]
    return kept


def _env_ref(value_from: Any) -> bool:
    return isinstance(value_from, Mapping) and bool(
        {"secretKeyRef", "configMapKeyRef"} & value_from.keys()
    )


def _reads_objects(volume: Any) -> bool:
    """A volume of a Secret or ConfigMap (what a missing one names)."""
    return isinstance(volume, Mapping) and bool(
        {"secret", "configMap", "projected"} & volume.keys()
    )


class TrimmedPods(dict[str, Any]):
    """The reflector's pods by ``namespace/name``, each trimmed as it is stored."""

    def __init__(self, pods: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        items = pods.items() if isinstance(pods, Mapping) else pods
        super().__init__((key, trim_pod(pod)) for key, pod in items)

    def __setitem__(self, key: str, pod: Any) -> None:
        super().__setitem__(key, trim_pod(pod))

    def setdefault(self, key: str, pod: Any = None) -> Any:
        if key not in self:
            self[key] = pod
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, pod in dict(*args, **kwargs).items():
            self[key] = pod


class TrimmedPodReflector(PodReflector):
    """KubeSpawner's :class:`PodReflector`, storing each pod trimmed by :func:`trim_pod`.

    Both ways KubeSpawner stores pods go through :class:`TrimmedPods`: the list
    (``self.resources = {...}``, validated below) and each watch event
    (``self.resources[key] = pod``).
    """

    @default("resources")
    def _trimmed_default(self) -> TrimmedPods:
        return TrimmedPods()

    @validate("resources")
    def _trimmed_resources(self, proposal: Any) -> TrimmedPods:
        value = proposal["value"]
        return value if isinstance(value, TrimmedPods) else TrimmedPods(value)


class TrimmedPodReflectorMixin(KubeSpawner):
    """Starts :class:`TrimmedPodReflector` where KubeSpawner starts its pod reflector."""

    kubernetes_trim_reflected_pods = Bool(
        True,
        config=True,
        help=(
            "Keep only what the hub reads of each lab pod in KubeSpawner's pod reflector "
            "(metadata, status, the containers' names, images, ports and envFrom), not the "
            "whole pod. False keeps whole pods, for a get_pod_url or after_pod_created_hook "
            "that reads more."
        ),
    )

    async def _start_reflector(
        self, kind: str, reflector_class: Any, replace: bool = False, **kwargs: Any
    ) -> Any:
        trim = self.kubernetes_trim_reflected_pods
        if kind == "pods" and reflector_class is PodReflector and trim:
            reflector_class = TrimmedPodReflector
        return await super()._start_reflector(kind, reflector_class, replace=replace, **kwargs)
