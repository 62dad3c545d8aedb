"""The Kubernetes permissions the hub needs: computed from the configured features, no I/O.

:func:`required_rules` gives the minimal Role for a spawner configuration;
``lsst-spawner rbac`` prints it (:func:`role_manifest`). :data:`Z2JH_HUB_ROLE_RULES`
is the Role the Zero to JupyterHub chart gives its hub, which a default
configuration fits (:func:`missing_rules` says what a configuration needs beyond it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PREPULL_NODES_RULE",
    "Z2JH_HUB_ROLE_RULES",
    "Z2JH_HUB_ROLE_SOURCE",
    "HubFeatures",
    "cluster_role_manifest",
    "features_for_config",
    "hub_cluster_role_for_config",
    "hub_role_for_config",
    "missing_rules",
    "operator_mode",
    "required_cluster_rules",
    "required_rules",
    "role_manifest",
]

#: Where :data:`Z2JH_HUB_ROLE_RULES` comes from (the template, verbatim).
Z2JH_HUB_ROLE_SOURCE = (
    "jupyterhub/zero-to-jupyterhub-k8s, jupyterhub/templates/hub/rbac.yaml at commit "
    "02ccaf29664b3c0fe402e96c76c02d033e347c06 (chart for JupyterHub 5.4; the same at the "
    "2026-07 head)"
)

#: The z2jh chart's hub Role: no ConfigMaps, no update or patch.
Z2JH_HUB_ROLE_RULES: tuple[dict[str, list[str]], ...] = (
    {
        "apiGroups": [""],
        "resources": ["pods", "persistentvolumeclaims", "secrets", "services"],
        "verbs": ["get", "watch", "list", "create", "delete"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "watch", "list"]},
)


@dataclass(frozen=True)
class HubFeatures:
    """The spawner settings that decide which Kubernetes requests the hub makes."""

    #: ``KubeSpawner.events_enabled``: the event reflector lists and watches Events.
    events: bool = True
    #: ``KubeSpawner.storage_pvc_ensure``: a PVC is created per user (never deleted by the hub).
    pvcs: bool = False
    #: ``KubeSpawner.services_enabled`` or ``internal_ssl``: a Service per lab.
    services: bool = False
    #: ``JupyterHub.internal_ssl``: KubeSpawner puts the lab's certificates in a Secret of its own.
    internal_ssl: bool = False
    #: ``LSSTSpawner.lab_home_claim_enabled``: a home claim per user (created, never deleted).
    home_claims: bool = False
    #: ``LSSTSpawner.lab_sweep_interval`` above 0: the leftover sweep lists lab Secrets.
    sweep: bool = True
    #: ``KubeSpawner.enable_user_namespaces``: namespaces are created, every rule is
    #: needed in every namespace, so the hub needs a ClusterRole.
    user_namespaces: bool = False
    #: ``LSSTSpawner.image_prepull_enabled``: the prepuller lists nodes (a ClusterRole) and
    #: creates, reads and deletes its pull pods (the Role's pods rule).
    prepull: bool = False

    @classmethod
    def from_spawner_config(
        cls, spawner: Mapping[str, Any], hub: Mapping[str, Any] | None = None
    ) -> HubFeatures:
        """From the ``LSSTSpawner``/``KubeSpawner`` section of a config (and the hub's)."""
        internal_ssl = bool((hub or {}).get("internal_ssl", False))
        # A duration (seconds or "10m", "1h30m") is 0 exactly when no digit is above 0.
        sweep = any(digit in str(spawner.get("lab_sweep_interval", "10m")) for digit in "123456789")
        return cls(
            events=bool(spawner.get("events_enabled", True)),
            pvcs=bool(spawner.get("storage_pvc_ensure", False)),
            services=bool(spawner.get("services_enabled", False)) or internal_ssl,
            internal_ssl=internal_ssl,
            home_claims=bool(spawner.get("lab_home_claim_enabled", False)),
            sweep=sweep,
            user_namespaces=bool(spawner.get("enable_user_namespaces", False)),
            prepull=bool(spawner.get("image_prepull_enabled", False)),
        )


def _rule(resources: Iterable[str], verbs: Iterable[str]) -> dict[str, list[str]]:
    return {"apiGroups": [""], "resources": list(resources), "verbs": list(verbs)}


def required_rules(features: HubFeatures = HubFeatures()) -> list[dict[str, list[str]]]:
    """The minimal rules for ``features``; each rule and verb is used by a spawn or a stop.

    Pods: created and deleted, listed and watched by KubeSpawner's pod reflector
    (and listed by the leftover sweep). Secrets: the lab's Secret (secrets, NSS and
    static files, long env values) is created and deleted, and listed by the sweep.
    Events: listed and watched by the event reflector. PVCs (home claims,
    KubeSpawner's ``storage_pvc_ensure``), Services and namespaces only when
    configured; with namespaces, every rule is for a ClusterRole.
    """
    rules = []
    if features.user_namespaces:
        # Created before the lab's first object; a 409 (it exists) is fine.
        rules.append({"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]})
    pod_verbs = ["create", "delete", "list", "watch"]
    if features.prepull:  # the prepuller reads each pull's pod until its image arrived
        pod_verbs.insert(2, "get")
    rules.append(_rule(["pods"], pod_verbs))
    rules.append(
        _rule(["secrets"], ["create", "delete", "list"] if features.sweep else ["create", "delete"])
    )
    if features.events:
        rules.append(_rule(["events"], ["list", "watch"]))
    if features.pvcs or features.home_claims:
        # Both take a 409 as "exists"; KubeSpawner reads the PVC only after a 403 (quota).
        rules.append(_rule(["persistentvolumeclaims"], ["create"]))
    if features.services:
        rules.append(_rule(["services"], ["create", "delete"]))
    return rules


#: What the prepuller needs at the cluster scope: nodes are not namespaced, so only a
#: ClusterRole (bound to the hub's service account) can grant it; z2jh's hub Role has none.
PREPULL_NODES_RULE: dict[str, list[str]] = {
    "apiGroups": [""],
    "resources": ["nodes"],
    "verbs": ["list"],
}


def required_cluster_rules(features: HubFeatures = HubFeatures()) -> list[dict[str, list[str]]]:
    """The ClusterRole rules for ``features``: ``list nodes`` with prepull on, else none."""
    return [dict(PREPULL_NODES_RULE)] if features.prepull else []


def cluster_role_manifest(
    rules: Iterable[Mapping[str, Any]], *, name: str = "lsst-spawner-hub"
) -> dict[str, Any]:
    """A ``ClusterRole`` manifest holding ``rules``."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [dict(rule) for rule in rules],
    }


def _grants(rules: Iterable[Mapping[str, Any]], resource: str, verb: str) -> bool:
    return any(
        ("*" in r.get("apiGroups", ()) or "" in r.get("apiGroups", ()))
        and ("*" in r.get("resources", ()) or resource in r.get("resources", ()))
        and ("*" in r.get("verbs", ()) or verb in r.get("verbs", ()))
        and not r.get("resourceNames")
        for r in rules
    )


def missing_rules(
    needed: Iterable[Mapping[str, Any]], granted: Iterable[Mapping[str, Any]]
) -> list[dict[str, list[str]]]:
    """The parts of ``needed`` that ``granted`` does not give, one rule per resource."""
    granted = list(granted)
    missing = []
    for rule in needed:
        for resource in rule["resources"]:
            verbs = [v for v in rule["verbs"] if not _grants(granted, resource, v)]
            if verbs:
                missing.append(_rule([resource], verbs))
    return missing


def role_manifest(
    rules: Iterable[Mapping[str, Any]],
    *,
    name: str = "lsst-spawner-hub",
    namespace: str | None,
    cluster: bool = False,
) -> dict[str, Any]:
    """A ``Role`` manifest holding ``rules`` (a ``ClusterRole`` when ``cluster``)."""
    metadata: dict[str, Any] = {"name": name}
    if namespace and not cluster:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole" if cluster else "Role",
        "metadata": metadata,
        "rules": [dict(rule) for rule in rules],
    }


def _section(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    has = getattr(config, "_has_section", None)
    if has is not None and not has(name):  # a traitlets Config makes missing sections on read
        return {}
    section = config.get(name) or {}
    return section if isinstance(section, Mapping) else {}


def features_for_config(config: Mapping[str, Any]) -> tuple[HubFeatures, str | None]:
    """The features of a JupyterHub config (``KubeSpawner``/``LSSTSpawner``) and its namespace."""
    spawner: dict[str, Any] = {}
    for name in ("KubeSpawner", "LSSTSpawner"):  # LSSTSpawner's settings win, as in traitlets
        spawner.update(_section(config, name))
    features = HubFeatures.from_spawner_config(spawner, _section(config, "JupyterHub"))
    namespace = spawner.get("namespace")
    return features, str(namespace) if namespace else None


def operator_mode(config: Mapping[str, Any]) -> bool:
    """Whether the config's hub runs in operator mode (``LSSTSpawner.lab_backend``)."""
    return _section(config, "LSSTSpawner").get("lab_backend") == "operator"


def hub_role_for_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The minimal Role for a JupyterHub config (``KubeSpawner``/``LSSTSpawner`` settings)
    in hub mode; :func:`lsst_spawner.operator.manifests.hub_role_for_mode` picks operator
    mode's when the config asks for it."""
    features, namespace = features_for_config(config)
    return role_manifest(
        required_rules(features), namespace=namespace, cluster=features.user_namespaces
    )


def hub_cluster_role_for_config(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ClusterRole a JupyterHub config needs beyond its Role, or ``None`` (the default).

    ``None`` in operator mode: there the operator lists the nodes it prepulls on.
    """
    features, _ = features_for_config(config)
    rules = [] if operator_mode(config) else required_cluster_rules(features)
    return cluster_role_manifest(rules) if rules else None
