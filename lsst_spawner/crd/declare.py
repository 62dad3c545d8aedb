"""What the hub writes in operator mode: the hub Secret and the LabServer (pure builders).

The LabServer holds the user, the server name, the template's name, the chosen image
and size, the options, the non-secret identity and the hub's ``JUPYTERHUB_*``
variables for this server; the API token and the git token go in the Secret, which
the LabServer names. Names come from KubeSpawner's ``{user_server}`` slug, so every
(user, server) pair has its own.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from ..identity import Identity
from .models import API_VERSION
from .template import HUB_ENV_PATTERN, pod_variables

__all__ = [
    "API_TOKEN_KEY",
    "GIT_TOKEN_KEY",
    "HUB_LABEL",
    "SPAWN_ANNOTATION",
    "build_hub_secret",
    "build_lab_server",
    "hub_env_from",
    "lab_server_name",
]

#: Keys of the hub's Secret.
API_TOKEN_KEY = "api-token"  # noqa: S105 - a key name
GIT_TOKEN_KEY = "git-token"  # noqa: S105 - a key name
#: Label on the hub's Secret and LabServer: who declared them.
HUB_LABEL = "lab.lsst-spawner.io/declared-by"
#: Annotation on a LabServer: the start that declared it (random, one per start), so a
#: retried create that meets the LabServer its own lost-reply attempt made knows it.
SPAWN_ANNOTATION = "lab.lsst-spawner.io/spawn-id"


def lab_server_name(username: str, servername: str) -> str:
    """The LabServer's name for one server: ``lab-`` and KubeSpawner's ``{user_server}``."""
    return f"lab-{pod_variables(username, servername)['user_server']}"


def hub_env_from(env: Mapping[str, Any]) -> dict[str, str]:
    """The ``JUPYTERHUB_*`` variables of the hub's env for a server, without the token."""
    return {
        name: str(value)
        for name, value in env.items()
        if HUB_ENV_PATTERN.fullmatch(name) and name != "JUPYTERHUB_API_TOKEN"
    }


def _labels(username: str) -> dict[str, str]:
    return {"app.kubernetes.io/part-of": "lsst-spawner", HUB_LABEL: "jupyterhub"}


def build_hub_secret(
    name: str, namespace: str, username: str, api_token: str, git_token: str | None
) -> dict[str, Any]:
    """The Secret with the server's API token (and the user's git token)."""
    data = {API_TOKEN_KEY: api_token}
    if git_token:
        data[GIT_TOKEN_KEY] = git_token
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": _labels(username)},
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def build_lab_server(
    *,
    username: str,
    servername: str,
    namespace: str,
    template: str,
    identity: Identity,
    image: str,
    size: str,
    enable_debug: bool,
    reset_user_env: bool,
    hub_env: Mapping[str, str],
    spawn_id: str | None = None,
) -> dict[str, Any]:
    """The LabServer of one server; its Secret is ``<name>-hub``. ``spawn_id`` names the
    start that declares it (``SPAWN_ANNOTATION``)."""
    name = lab_server_name(username, servername)
    public = identity.to_dict()
    public.pop("git_token", None)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": _labels(username)}
    if spawn_id is not None:
        metadata["annotations"] = {SPAWN_ANNOTATION: spawn_id}
    return {
        "apiVersion": API_VERSION,
        "kind": "LabServer",
        "metadata": metadata,
        "spec": {
            "user": {"name": username, "server": servername},
            "templateRef": {"name": template},
            "image": image,
            "size": size,
            "options": {"enableDebug": enable_debug, "resetUserEnv": reset_user_env},
            "identity": {k: v for k, v in public.items() if v is not None},
            "hub": {"env": dict(hub_env)},
            "secretRef": {"name": f"{name}-hub"},
        },
    }
