"""The editor's running-labs view: each user's servers with image, profile, node and activity.

JupyterHub's admin page leaves the profile empty. This view joins what the hub says
(``GET /hub/api/users?state=active``: servers, ``user_options``, start and last
activity) with the lab pods (the KubeSpawner annotations ``hub.jupyter.org/username``
and ``servername``; image, node and the kubelet's ``imageID``). :func:`join_running_labs`
is pure; :func:`fetch_running_labs` is the I/O edge.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["RunningLab", "fetch_running_labs", "join_running_labs"]

_USER = "hub.jupyter.org/username"
_SERVER = "hub.jupyter.org/servername"


@dataclass(frozen=True)
class RunningLab:
    """One running server of one user, as the view shows it."""

    user: str
    server: str
    profile: str
    image_tag: str
    image_digest: str
    node: str
    pod: str
    started: datetime | None
    last_activity: datetime | None

    def age(self, now: datetime) -> str:
        """How long it has run, such as ``3h 12m`` (empty when the hub does not say)."""
        if self.started is None:
            return ""
        minutes = max(0, int((now - self.started).total_seconds() // 60))
        days, minutes = divmod(minutes, 24 * 60)
        hours, minutes = divmod(minutes, 60)
        return f"{days}d {hours}h" if days else f"{hours}h {minutes}m"


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _image(pod: Mapping[str, Any]) -> tuple[str, str]:
    """The lab container's tag and digest: from the pinned reference, else the kubelet's."""
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    lab = next((c for c in containers if c.get("name") == "notebook"), containers[0])
    reference = str(lab.get("image") or "")
    name, _, digest = reference.partition("@")
    tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
    if not digest:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") == lab.get("name") and "@" in str(status.get("imageID")):
                digest = str(status["imageID"]).rpartition("@")[2]
    return tag, digest


def join_running_labs(
    users: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> list[RunningLab]:
    """Every active server of ``users`` (hub API models) with its pod's details, if found."""
    by_server: dict[tuple[str, str], Mapping[str, Any]] = {}
    for pod in pods:
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        if _USER in annotations:
            by_server[(annotations[_USER], annotations.get(_SERVER, ""))] = pod
    labs = []
    for user in users:
        for server_name, server in sorted((user.get("servers") or {}).items()):
            options = server.get("user_options") or {}
            pod = by_server.get((user["name"], server_name), {})
            tag, digest = _image(pod) if pod else ("", "")
            labs.append(
                RunningLab(
                    user=str(user["name"]),
                    server=server_name,
                    profile=str(options.get("size") or ""),
                    image_tag=tag or str(options.get("image") or options.get("image_class") or ""),
                    image_digest=digest,
                    node=str((pod.get("spec") or {}).get("nodeName") or "") if pod else "",
                    pod=str((pod.get("metadata") or {}).get("name") or "") if pod else "",
                    started=_time(server.get("started")),
                    last_activity=_time(server.get("last_activity")),
                )
            )
    return sorted(labs, key=lambda lab: (lab.user, lab.server))


async def fetch_running_labs(
    api_url: str, api_token: str, namespace: str, kubeconfig: str | None = None
) -> list[RunningLab]:
    """Ask the hub for active users and Kubernetes for the namespace's lab pods, then join.

    The service's token needs ``list:users`` and ``read:servers``; Kubernetes access is
    the kubeconfig's (``KUBECONFIG``) or, in a cluster, the pod's service account, which
    z2jh's hub Role allows to list pods.
    """
    from kubernetes_asyncio import client, config
    from tornado.httpclient import AsyncHTTPClient

    response = await AsyncHTTPClient().fetch(
        f"{api_url.rstrip('/')}/users?state=active",
        headers={"Authorization": f"token {api_token}"},
        request_timeout=10,
    )
    users = json.loads(response.body)
    configuration = client.Configuration()
    try:
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except config.ConfigException:
        config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    async with client.ApiClient(configuration) as api_client:
        api = client.CoreV1Api(api_client)
        listed: Any = await api.list_namespaced_pod(
            namespace, label_selector="component=singleuser-server", _preload_content=False
        )
        pods = (await listed.json())["items"]  # the raw response: plain JSON
    return join_running_labs(users, pods)
