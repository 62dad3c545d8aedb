"""The lab's init containers really run, and a lab that cannot start fails fast (issue 18).

With the process kubelet and the OCI kubelet (runc): the spawner's init-home and a
site's init container run in order before the lab, and what they write the lab sees;
an init container that fails, or a site Secret the lab reads that is missing, stops
the spawn within ``lab_start_failure_grace`` with a message naming it, and leaves
nothing behind.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubespawner import clients
from tornado.web import HTTPError
from traitlets.config import Config

from lsst_spawner.offline import OfflineHub, OfflineServer, OfflineUser
from lsst_spawner.spawner import LSSTSpawner
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.oauth.identity import identity_for

from .test_lifecycle import TOKEN, lab_kubelet, lab_objects, spawner_config, stub_kubelet

__all__ = ["lab_kubelet", "stub_kubelet"]  # fixtures

#: The lab: saves what it was given to read (argv[2]) in ./seen.txt, then serves ./ on argv[1].
LAB = (
    "import http.server, os, sys\n"
    "path = sys.argv[2]\n"
    "text = open(path).read() if os.path.exists(path) else 'missing'\n"
    "owner = os.stat(os.path.dirname(path)).st_uid if os.path.exists(path) else -1\n"
    "open('seen.txt', 'w').write(f'{text.strip()}|{owner}')\n"
    "http.server.ThreadingHTTPServer("
    "(sys.argv[1], 8888), http.server.SimpleHTTPRequestHandler).serve_forever()\n"
)


def make(kube_api: KubeHandle, config: Config, name: str = "rra") -> LSSTSpawner:
    clients.load_config.cache_clear()  # KubeSpawner's client, for this test's emulator
    identity = identity_for(name)
    user = OfflineUser(name, {"identity": identity.to_dict()})
    spawner = LSSTSpawner(config=config, user=user, hub=OfflineHub())
    spawner.server = OfflineServer(user)
    spawner.api_token = TOKEN
    spawner.user_options = {"image": "w_2026_46", "size": "small"}
    spawner.lab_options_fresh = True
    spawner.start_timeout = 300  # what KubeSpawner would wait out
    return spawner


def home_of(node: Any) -> str:
    """The home the init containers prepare: the lab's own in runc (an emptyDir mounted at
    /home); in process mode (commands on the host) a directory in the pod's scratch."""
    return '"$HOME_DIRECTORY"' if node.mode == "oci" else "./home-rra"


@pytest.fixture
def lab_init_image(lab_kubelet: Any, request: pytest.FixtureRequest) -> str | None:
    """The init image of the OCI runs (in the real registry); None for the process kubelet."""
    return str(request.getfixturevalue("init_image")) if lab_kubelet.mode == "oci" else None


def init_config(kube_api: KubeHandle, image: str | None) -> Config:
    config = spawner_config(kube_api.namespace)
    config.LSSTSpawner.lab_init_enabled = True
    if image is not None:
        config.LSSTSpawner.lab_init_image = image
    config.LSSTSpawner.lab_volumes = [{"name": "homes", "emptyDir": {}}]
    config.LSSTSpawner.lab_volume_mounts = [{"mount_path": "/home", "volume": "homes"}]
    config.LSSTSpawner.lab_init_volume_mounts = [{"mount_path": "/home", "volume": "homes"}]
    config.LSSTSpawner.lab_start_failure_grace = "1s"
    return config


async def served(url: str, path: str) -> str:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(f"http://{url}/{path}") as response:
                    if response.status == 200:
                        return await response.text()
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"the lab never served {path}")


async def test_the_labs_init_containers_run_in_order_and_the_lab_sees_their_work(
    kube_api: KubeHandle, lab_kubelet: Any, lab_init_image: str | None
) -> None:
    home = home_of(lab_kubelet)
    config = init_config(kube_api, lab_init_image)
    config.LSSTSpawner.lab_init_containers = [
        {
            "name": "init-home",
            "privilege": "root",
            "command": [
                "/bin/sh",
                "-c",
                f'mkdir -p {home} && chown "$EXTERNAL_UID:$EXTERNAL_GID" {home}',
            ],
        },
        {
            "name": "site-fetch",
            "privilege": "user",
            "command": ["/bin/sh", "-c", f'echo "fetched as $(id -u)" > {home}/from-init'],
        },
    ]
    spawner = make(kube_api, config)
    inside = "/home/rra/from-init" if lab_kubelet.mode == "oci" else "home-rra/from-init"
    spawner.cmd = [sys.executable, "-c", LAB, "0.0.0.0", inside]
    events: list[dict[str, Any]] = []

    async def follow() -> None:
        async for event in spawner.progress():
            events.append(event)

    follower = asyncio.create_task(follow())
    try:
        url = urlsplit(await asyncio.wait_for(spawner.start(), 120))
        await asyncio.wait_for(follower, 30)
        text, owner = (await served(url.netloc, "seen.txt")).split("|")
        identity = identity_for("rra")
        if lab_kubelet.mode == "oci":  # as the user, in the home init-home gave the user
            assert (text, owner) == (f"fetched as {identity.uid}", str(identity.uid))
        else:  # host processes: no user switch
            assert text.startswith("fetched as ")
        pod = await kube_api.get("pods", "nb-rra")
        statuses = pod["status"]["initContainerStatuses"]
        assert [s["name"] for s in statuses] == ["init-home", "site-fetch"]
        assert {s["state"]["terminated"]["reason"] for s in statuses} == {"Completed"}
    finally:
        await spawner.stop(now=True)
    messages = [event["message"] for event in events]
    percentages = [event["progress"] for event in events]
    assert percentages == sorted(percentages)
    started = [m for m in messages if m.startswith("Started: Started container")]
    assert started == [
        "Started: Started container init-home",
        "Started: Started container site-fetch",
        "Started: Started container notebook",
    ]
    # The init steps come after scheduling and before the lab's own image is pulled.
    at = {m: p for m, p in zip(messages, percentages, strict=True)}
    lab_pulled = next(p for m, p in at.items() if m.startswith("Pulled") and "sciplat-lab" in m)
    assert at["Started: Started container site-fetch"] < lab_pulled
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}


async def test_a_failing_init_container_fails_the_spawn_naming_it_and_its_exit_code(
    kube_api: KubeHandle, lab_kubelet: Any, lab_init_image: str | None
) -> None:
    config = init_config(kube_api, lab_init_image)
    config.LSSTSpawner.lab_init_containers = [
        {"name": "init-home", "privilege": "root", "command": ["/bin/sh", "-c", "true"]},
        {"name": "site-fetch", "privilege": "user", "command": ["/bin/sh", "-c", "exit 4"]},
    ]
    spawner = make(kube_api, config)
    with pytest.raises(HTTPError) as refused:
        await asyncio.wait_for(spawner.start(), 120)  # not start_timeout (300 s)
    assert refused.value.status_code == 503
    message = refused.value.jupyterhub_message  # type: ignore[attr-defined]
    assert message.startswith(
        "Your lab could not start: its init container site-fetch (exit code 4) failed "
        "[InitContainerFailed]"
    ), message
    assert "restarted" in message  # KubeSpawner's OnFailure: the kubelet kept trying
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}


def site_secret_config(kube_api: KubeHandle) -> Config:
    config = spawner_config(kube_api.namespace)
    config.LSSTSpawner.lab_extra_secrets = [
        {
            "key": "butler-token",
            "env": "BUTLER_TOKEN",
            "secret_key_ref": {"name": "site-butler", "key": "token"},
        }
    ]
    config.LSSTSpawner.lab_start_failure_grace = "1s"
    return config


async def create_secret(kube_api: KubeHandle, data: dict[str, str]) -> None:
    body = {
        "metadata": {"name": "site-butler"},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
    async with kube_api.api_client(admin=True) as api:
        await client.CoreV1Api(api).create_namespaced_secret(kube_api.namespace, body)


@pytest.mark.parametrize("secret", [None, {"other": "x"}], ids=["no-secret", "no-key"])
async def test_a_missing_site_secret_fails_the_spawn_fast_naming_the_secret_and_key(
    kube_api: KubeHandle, lab_kubelet: Any, secret: dict[str, str] | None
) -> None:
    # Process kubelet: the env secretKeyRef, CreateContainerConfigError. OCI kubelet: the
    # secret directory's projected volume first, FailedMount, as a real kubelet.
    if secret is not None:
        await create_secret(kube_api, secret)
    spawner = make(kube_api, site_secret_config(kube_api))
    spawner.cmd = [sys.executable, "-c", LAB, "0.0.0.0", "/nowhere"]
    with pytest.raises(HTTPError) as refused:
        await asyncio.wait_for(spawner.start(), 120)
    assert refused.value.status_code == 503
    message = refused.value.jupyterhub_message  # type: ignore[attr-defined]
    reason = "FailedMount" if lab_kubelet.mode == "oci" else "CreateContainerConfigError"
    assert message.startswith(
        f"Your lab could not start: the Secret site-butler (key token) it reads is missing "
        f"[{reason}]"
    ), message
    said = {
        (None, "process"): 'secret "site-butler" not found',
        (None, "oci"): 'secret "site-butler" not found',
        (
            "no-key",
            "process",
        ): f"couldn't find key token in Secret {kube_api.namespace}/site-butler",
        ("no-key", "oci"): "references non-existent secret key: token",
    }[("no-key" if secret else None, lab_kubelet.mode)]
    assert said in message
    # The lab's pod and Secret are gone; the site's own Secret is left alone.
    left = await lab_objects(kube_api)
    assert left == {
        "pods": [],
        "configmaps": [],
        "secrets": ["site-butler"] if secret is not None else [],
    }


async def test_a_site_secret_created_within_the_grace_lets_the_lab_start(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    config = site_secret_config(kube_api)
    config.LSSTSpawner.lab_start_failure_grace = "60s"
    spawner = make(kube_api, config)
    start = asyncio.ensure_future(spawner.start())

    async def held() -> bool:
        pod = await kube_api.get("pods", "nb-rra")
        statuses = (pod or {}).get("status", {}).get("containerStatuses") or [{}]
        waiting = statuses[0].get("state", {}).get("waiting") or {}
        return pod is not None and (
            waiting.get("reason") == "CreateContainerConfigError"
            or any(
                e["reason"] == "FailedMount"
                for e in await kube_api.list("events")
                if e["involvedObject"]["name"] == "nb-rra"
            )
        )

    for _ in range(600):
        if await held() or start.done():
            break
        await asyncio.sleep(0.05)
    assert not start.done()
    await create_secret(kube_api, {"token": "b-42"})
    try:
        url = await asyncio.wait_for(start, 120)
        assert url.startswith("http://127.")
    finally:
        await spawner.stop(now=True)
