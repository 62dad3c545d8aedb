"""Named servers through JupyterHub's REST API (an in-process hub, the emulator with RBAC).

Two servers of one user with different images get their own pod and Secrets,
their own progress, and stop independently; ``named_server_limit_per_user`` is
honoured; hostile server names are refused naming ``server_name``, by
JupyterHub 6 for new servers and by the spawner for servers JupyterHub keeps
from before its rules (``allow_invalid_named_server_start``), which is what
JupyterHub 5 does for every name.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest

from lsst_spawner.testing.hub.fixtures import InProcessHub
from lsst_spawner.testing.waiting import wait_for_async

pytestmark = pytest.mark.integration

TAGS = ["w_2026_46", "w_2026_45", "recommended"]
USER = "nadia"


async def lab_objects(hub: InProcessHub) -> dict[str, list[str]]:
    return {
        kind: sorted(o["metadata"]["name"] for o in await hub.kube_api.list(kind))
        for kind in ("pods", "secrets")
    }


def path(server: str) -> str:
    return f"/users/{USER}/servers/{urllib.parse.quote(server, safe='')}"


async def start(hub: InProcessHub, server: str, image: str) -> tuple[int, Any]:
    body = hub.spawn_body({"image": image})
    return await hub.request("POST", path(server), body, encoded=True)


async def server_model(hub: InProcessHub, server: str) -> dict[str, Any] | None:
    status, model = await hub.request("GET", f"/users/{USER}")
    assert status == 200, model
    found: dict[str, Any] | None = model["servers"].get(server)
    return found


@pytest.fixture
async def hub(lsst_hub: Any) -> InProcessHub:
    config = {
        "JupyterHub": {
            "allow_named_servers": True,
            "named_server_limit_per_user": 2,
            "allow_invalid_named_server_start": True,
        },
        "KubeSpawner": {"start_timeout": 30, "k8s_api_request_timeout": 5},
    }
    hub: InProcessHub = await lsst_hub(config=config, images=TAGS)
    await hub.add_user(USER)
    return hub


async def test_two_named_servers_run_and_stop_independently(hub: InProcessHub) -> None:
    assert (await start(hub, "gpu", TAGS[0]))[0] in (201, 202)
    # JupyterHub 6 makes new names lowercase slugs; "Big.One" is a server from before
    # (JupyterHub 5 creates such names), which lab names still tell apart.
    hub.app.users[USER]._new_orm_spawner("Big.One", "Big One")
    assert (await start(hub, "Big.One", TAGS[1]))[0] in (201, 202)

    async def both_ready() -> bool:
        models = [await server_model(hub, name) for name in ("gpu", "Big.One")]
        return all(m is not None and m["ready"] for m in models)

    await wait_for_async(both_ready, "both named servers ready")
    user = hub.app.users[USER]
    gpu, big = user.spawners["gpu"], user.spawners["Big.One"]
    assert gpu.pod_name == "nb-nadia--gpu"
    assert big.pod_name.startswith("nb-nadia--big-one---")  # case and '.' escaped, hashed
    pods = {p["metadata"]["name"]: p for p in await hub.kube_api.list("pods")}
    assert set(pods) == {gpu.pod_name, big.pod_name}
    images = {name: pod["spec"]["containers"][0]["image"] for name, pod in pods.items()}
    assert TAGS[0] in images[gpu.pod_name]
    assert TAGS[1] in images[big.pod_name]
    assert pods[big.pod_name]["metadata"]["labels"]["lsst-spawner/server"] == "Big.One"
    assert pods[gpu.pod_name]["metadata"]["labels"]["hub.jupyter.org/servername"] == "gpu"
    assert (await lab_objects(hub))["secrets"] == sorted(f"{pod}-secret" for pod in pods)
    # Each server's progress is its own.
    for spawner in (gpu, big):
        messages = [e["message"] for e in spawner.finished_spawn_progress.events]
        assert any(spawner.pod_name in m for m in messages), messages
        other = big if spawner is gpu else gpu
        assert not any(other.pod_name in m for m in messages), messages

    # The limit of two named servers: a third is refused, by name of the limit.
    status, reply = await start(hub, "third", TAGS[0])
    assert status == 400, reply
    assert "maximum of 2 named servers" in reply["message"]
    assert await server_model(hub, "third") is None

    # Stop one; the other keeps running with its pod and Secrets.
    assert (await hub.request("DELETE", path("gpu"), encoded=True))[0] in (202, 204)

    async def gpu_gone() -> bool:
        return await server_model(hub, "gpu") is None

    await wait_for_async(gpu_gone, "the gpu server stopped")
    await wait_for_async(
        lambda: _only(hub, big.pod_name), "the stopped server's objects deleted, the other's kept"
    )
    still = await server_model(hub, "Big.One")
    assert still is not None
    assert still["ready"]
    assert big.poll is not None
    assert await big.poll() is None


async def _only(hub: InProcessHub, pod: str) -> bool:
    return await lab_objects(hub) == {"pods": [pod], "secrets": [f"{pod}-secret"]}


HOSTILE = [
    # JupyterHub refuses '/' for new servers and cannot route to an old one (404); the
    # spawner's own refusal of it is tested in tests/lab/test_servers.py.
    pytest.param("a/b", "", id="slash"),
    pytest.param("..", "is not a valid server name", id="dotdot"),
    pytest.param("x" * 300, "300 characters is too long", id="300-chars"),
    pytest.param("ünïcode", "is not a valid server name", id="unicode"),
]


@pytest.mark.parametrize(("hostile", "message"), HOSTILE)
async def test_hostile_server_names_are_refused(
    hub: InProcessHub, hostile: str, message: str
) -> None:
    writes_before = sum(hub.kube_api.counters.get(v) for v in ("create", "delete"))
    # A new server: JupyterHub 6 refuses the name itself, naming server_name.
    status, reply = await start(hub, hostile, TAGS[0])
    assert status in (400, 404), reply  # 404: '/' does not route to a server
    if status == 400:
        assert "Invalid server_name" in reply["message"]
    if "/" in hostile:  # JupyterHub never lets a server have '/' in its name
        return
    # A server JupyterHub kept from before its rules (or any name, on JupyterHub 5):
    # the spawner refuses it before any Kubernetes request, naming server_name.
    user = hub.app.users[USER]
    user._new_orm_spawner(hostile, hostile[:20])
    status, reply = await start(hub, hostile, TAGS[0])
    if status == 202:  # the hub answered before the spawn failed: the refusal is the error
        spawner = user.spawners[hostile]
        await wait_for_async(lambda: _done(spawner), "the refused spawn to end")
        text = str(spawner._spawn_future.exception())
    else:
        assert status == 400, reply
        text = reply["message"]
    assert text.startswith("server_name: "), text
    assert message in text
    writes_after = sum(hub.kube_api.counters.get(v) for v in ("create", "delete"))
    assert writes_after == writes_before, "a Kubernetes write was made for a refused server"


async def _done(spawner: Any) -> bool:
    future = getattr(spawner, "_spawn_future", None)
    return future is not None and future.done()
