"""The LabTemplate: a site's lab configuration as a Kubernetes object, and back.

:func:`template_from_config` turns a hub configuration into a template: the
LSSTSpawner traits the template holds (:mod:`lsst_spawner.crd.settings`) and
KubeSpawner's pod for a stand-in user, with that user's names replaced by
``{variables}``. :func:`expand_pod_template` is the inverse, for one server: the
variables KubeSpawner itself expands (computed here with KubeSpawner's own slug
functions, never taken from the resource), KubeSpawner's user labels and
annotations, and the hub's ``JUPYTERHUB_*`` variables. The result is the pod
the in-hub spawner builds with KubeSpawner; the lab builders are applied to it
in both modes alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from kubespawner.slugs import escape_slug, is_valid_label, multi_slug, safe_slug

from ..config import Duration
from .models import API_VERSION
from .settings import TEMPLATE_SETTING_NAMES

__all__ = [
    "HUB_ENV_PATTERN",
    "POD_VARIABLES",
    "SENTINEL_SERVER",
    "SENTINEL_USER",
    "expand_pod_template",
    "hub_connection_env",
    "pod_variables",
    "template_from_settings",
    "template_pod",
]

#: The stand-in user and server a template's pod is rendered for.
SENTINEL_USER = "lab.tmpl.user"
SENTINEL_SERVER = "tmpl.server"
#: Env variables the hub passes for one server (its connection settings), never the token.
HUB_ENV_PATTERN = re.compile(r"JUPYTERHUB_[A-Z0-9_]{1,64}")
_TOKEN_ENV = frozenset({"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"})
#: The variables a pod template may use (KubeSpawner's names).
POD_VARIABLES = (
    "unescaped_username",
    "unescaped_servername",
    "username",
    "servername",
    "user_server",
    "escaped_username",
    "escaped_servername",
)
_VARIABLE = re.compile(r"\{(" + "|".join(POD_VARIABLES) + r")\}")
_SLUG_MAX = 48  # KubeSpawner's _expand_user_properties
_USER_LABELS = ("hub.jupyter.org/username", "hub.jupyter.org/servername")


def pod_variables(username: str, servername: str) -> dict[str, str]:
    """KubeSpawner's template values (``slug_scheme = "safe"``) for one user's server."""
    safe_user = safe_slug(username, max_length=_SLUG_MAX)
    safe_server = safe_slug(servername, max_length=_SLUG_MAX) if servername else ""
    if len(safe_user) + len(safe_server) + 2 > _SLUG_MAX:
        user_server = multi_slug([username, servername], max_length=_SLUG_MAX)
    else:
        user_server = f"{safe_user}--{safe_server}" if servername else safe_user
    return {
        "unescaped_username": username,
        "unescaped_servername": servername,
        "username": safe_user,
        "servername": safe_server,
        "user_server": user_server,
        "escaped_username": escape_slug(username),
        "escaped_servername": escape_slug(servername),
    }


def _map_strings(value: Any, change: Any) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, list):
        return [_map_strings(item, change) for item in value]
    if isinstance(value, dict):
        return {key: _map_strings(item, change) for key, item in value.items()}
    return value


def _to_variables(text: str, forms: list[tuple[str, str]]) -> str:
    for form, name in forms:
        text = text.replace(form, "{" + name + "}")
    return text


def _notebook(pod: Mapping[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod["spec"]["containers"]
    return next((c for c in containers if c.get("name") == "notebook"), containers[0])


def hub_connection_env(pod: Mapping[str, Any]) -> dict[str, str]:
    """The ``JUPYTERHUB_*`` variables of KubeSpawner's pod: the hub's settings for this server."""
    return {
        entry["name"]: str(entry.get("value", ""))
        for entry in _notebook(pod).get("env") or []
        if HUB_ENV_PATTERN.fullmatch(entry.get("name", ""))
        and entry["name"] not in _TOKEN_ENV
        and "value" in entry
    }


def template_pod(pod: Mapping[str, Any]) -> dict[str, Any]:
    """KubeSpawner's pod for the stand-in user, as a template: names become ``{variables}``.

    The hub's variables (``JUPYTERHUB_*``, the API token) are taken out: they come
    from each LabServer and its Secret. KubeSpawner's user labels are set per
    server by :func:`expand_pod_template`.
    """
    result: dict[str, Any] = json.loads(json.dumps(pod))
    lab = _notebook(result)
    lab["env"] = [
        entry
        for entry in lab.get("env") or []
        if not (HUB_ENV_PATTERN.fullmatch(entry.get("name", "")) or entry.get("name") in _TOKEN_ENV)
    ]
    metadata = result.setdefault("metadata", {})
    for key in _USER_LABELS:
        (metadata.get("labels") or {}).pop(key, None)
        (metadata.get("annotations") or {}).pop(key, None)
    metadata.pop("name", None)
    values = pod_variables(SENTINEL_USER, SENTINEL_SERVER)
    # Longest first, so that a form containing another is replaced whole.
    forms = sorted(((v, k) for k, v in values.items() if v), key=lambda f: -len(f[0]))
    changed: dict[str, Any] = _map_strings(result, lambda text: _to_variables(text, forms))
    return changed


def _expand(text: str, values: Mapping[str, str]) -> str:
    if "{" not in text:
        return text
    rendered = _VARIABLE.sub(lambda match: values[match[1]], text)
    # As KubeSpawner: a trailing '-' left by an empty server name is dropped.
    if rendered != text and not text.endswith("-"):
        rendered = rendered.rstrip("-")
    return rendered


def expand_pod_template(
    template: Mapping[str, Any], username: str, servername: str, hub_env: Mapping[str, str]
) -> dict[str, Any]:
    """KubeSpawner's pod for one server, from a template (see the module's docstring).

    ``hub_env`` must hold only ``JUPYTERHUB_*`` names (the operator's policy checks it).
    """
    values = pod_variables(username, servername)
    pod: dict[str, Any] = _map_strings(
        json.loads(json.dumps(template)), lambda text: _expand(text, values)
    )
    metadata = pod.setdefault("metadata", {})
    labels = metadata.setdefault("labels", {})
    labels["hub.jupyter.org/username"] = safe_slug(username, is_valid=is_valid_label)
    labels["hub.jupyter.org/servername"] = safe_slug(servername, is_valid=is_valid_label)
    annotations = metadata.setdefault("annotations", {})
    annotations["hub.jupyter.org/username"] = username
    if servername:
        annotations["hub.jupyter.org/servername"] = servername
    lab = _notebook(pod)
    lab["env"] = [
        *[{"name": name, "value": value} for name, value in hub_env.items()],
        *(lab.get("env") or []),
    ]
    return pod


def _json_value(trait: Any, value: Any) -> Any:
    if isinstance(trait, Duration) and isinstance(value, float):
        return int(value) if value.is_integer() else f"{value}s"
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return value


def template_from_settings(
    settings: Any, pod: Mapping[str, Any], *, name: str, namespace: str | None = None
) -> dict[str, Any]:
    """A LabTemplate from a settings object (the spawner's traits) and KubeSpawner's pod.

    Only the settings that differ from their defaults are written, by trait name.
    """
    traits = settings.traits(config=True)
    values = {}
    for trait_name in TEMPLATE_SETTING_NAMES:
        if trait_name not in traits:
            continue
        trait = traits[trait_name]
        value = getattr(settings, trait_name)
        if value != trait.default():
            values[trait_name] = _json_value(trait, value)
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": API_VERSION,
        "kind": "LabTemplate",
        "metadata": metadata,
        "spec": {"settings": values, "podTemplate": template_pod(pod)},
    }
