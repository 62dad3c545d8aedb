"""Shared pieces of the real-hub and reliability tests: spawners, hub configs, waits, census.

The static-menu lab settings are written once (:func:`static_lab_settings`): as a
``Config`` for in-process spawners and as ``jupyterhub_config.py`` text for real hub
processes (here and in tests/operator/test_real_hub.py).
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from typing import Any

import aiohttp
from traitlets.config import Config

from lsst_spawner.offline import OfflineHub, OfflineServer, OfflineUser
from lsst_spawner.spawner import LSSTSpawner
from lsst_spawner.testing import waiting
from lsst_spawner.testing.hub import HubProcess
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.oauth.identity import identity_for

DIGEST = "sha256:" + "e" * 64
TOKEN = "reliability-test-api-token-value"
LAB_KINDS = ("pods", "configmaps", "secrets")


def static_lab_settings(namespace: str) -> dict[str, Any]:
    """``LSSTSpawner`` settings of a lab with a static menu of two tags, in ``namespace``."""
    return {
        "namespace": namespace,
        "image_source": "static",
        "static_image_base": "registry.example.org/sciplat-lab",
        "static_image_tags": ["recommended", "w_2026_46"],
        "static_image_digests": {"recommended": DIGEST, "w_2026_46": DIGEST},
        "lab_spawn_timeout": "60s",
    }


def spawner_config(namespace: str, **overrides: Any) -> Config:
    """:func:`static_lab_settings` with short Kubernetes timeouts, for in-process spawners."""
    c = Config()
    settings = {
        **static_lab_settings(namespace),
        "kubernetes_retry_budget": "20s",
        "kubernetes_request_timeout": "5s",
        **overrides,
    }
    for key, value in settings.items():
        setattr(c.LSSTSpawner, key, value)
    return c


def lab_config_text(namespace: str, **overrides: Any) -> str:
    """``jupyterhub_config.py`` lines selecting LSSTSpawner with :func:`static_lab_settings`."""
    settings = {**static_lab_settings(namespace), **overrides}
    lines = ['c.JupyterHub.spawner_class = "lsst"']
    lines += [f"c.LSSTSpawner.{key} = {value!r}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


#: What a real hub of these tests adds to the lab's settings.
HUB_LINES = """
c.JupyterHub.authenticator_class = "lsst_spawner.testing.oauth.identity.StaticIdentityAuthenticator"
# Labs outlive the hub process: a hub restart (a new hub pod on a cluster) must
# not stop them. The default, True, stops every lab on a graceful shutdown.
c.JupyterHub.cleanup_servers = False
# Answer the spawn request at once (202) instead of waiting up to 10 s for it.
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
"""


def hub_config_text(namespace: str, **overrides: Any) -> str:
    """A real hub's configuration: static identities, labs kept over restarts, the lab."""
    return HUB_LINES + lab_config_text(namespace, **overrides)


def wait_for(
    predicate: Any, timeout: float, what: str, hub: HubProcess, cluster: Any = None
) -> Any:
    """Poll ``predicate`` until it is true (its value), or fail with the hub's log (and the
    operator cluster's output, when given)."""

    def logs() -> str:
        extra = f"\n{cluster.output()[-4000:]}" if cluster is not None else ""
        return f"{hub.log_tail()}{extra}"

    return waiting.wait_for(predicate, what, timeout=timeout, interval=0.2, detail=logs)


def server_model(hub: HubProcess, user: str) -> dict[str, Any] | None:
    """The model of ``user``'s default server, ``None`` when it has none."""
    status, model = hub.request("GET", f"/users/{user}")
    assert status == 200, model
    found: dict[str, Any] | None = model["servers"].get("")
    return found


def through_proxy(hub: HubProcess, user: str) -> int:
    """GET ``user``'s lab through the hub's proxy (the stub kubelet answers any path)."""
    status, token = hub.request("POST", f"/users/{user}/tokens", {"expires_in": 600})
    assert status == 201, token
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{hub.url}/user/{user}/api/status",
        headers={"Authorization": f"token {token['token']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return int(response.status)


def make_spawner(kube_api: KubeHandle, name: str, **overrides: Any) -> LSSTSpawner:
    """An in-process LSSTSpawner for ``name``, with hub stand-ins and a valid identity."""
    user = OfflineUser(name, {"identity": identity_for(name).to_dict()})
    config = spawner_config(kube_api.namespace, **overrides)
    spawner = LSSTSpawner(config=config, user=user, hub=OfflineHub())
    spawner.server = OfflineServer(user)
    spawner.api_token = TOKEN
    spawner.user_options = {"image": "w_2026_46", "size": "small"}
    spawner.lab_options_fresh = True
    return spawner


def lab_census(kube_api: KubeHandle) -> dict[str, list[str]]:
    """Names of the pods, ConfigMaps and Secrets in the test namespace."""
    assert kube_api.emulator is not None
    return {
        kind: sorted(
            o["metadata"]["name"] for o in kube_api.emulator.list_objects(kind, kube_api.namespace)
        )
        for kind in LAB_KINDS
    }


EMPTY = {kind: [] for kind in LAB_KINDS}


async def no_lab_objects(kube_api: KubeHandle) -> None:
    """Poll (every 0.1 s, for 5 s) until the test namespace has no pod, ConfigMap or Secret."""
    await waiting.wait_for_async(
        lambda: lab_census(kube_api),
        "the lab objects to go",
        timeout=5,
        interval=0.1,
        until=lambda census: census == EMPTY,
    )


def transient_faults(kube_api: KubeHandle, rate: float = 0.10) -> None:
    """``rate`` of all requests fail transiently: 500, 503, 429 and connection resets.

    Every verb and resource the spawner and its reflectors use; the four kinds
    share the rate equally.
    """
    faults = kube_api.faults
    share = rate / 4
    # Each rule only sees the requests the rules before it let through.
    faults.error_rate(share, 500)
    faults.error_rate(share / (1 - share), 503)
    faults.error_rate(share / (1 - 2 * share), 429, retry_after=1)
    faults.reset_rate(share / (1 - 3 * share))


async def reachable(url: str) -> bool:
    """Whether the lab at ``url`` answers ``/api/status`` with 200."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url + "/api/status", timeout=aiohttp.ClientTimeout(total=5)) as reply,
        ):
            return reply.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def spawn_once(
    spawner: Any, deadline: float, outcomes: dict[str, int], failures: list[str]
) -> float | None:
    """Start ``spawner``; it must end within ``deadline`` seconds, ready or failed with a
    message. Counts the outcome; returns the seconds to ready, or None when it failed."""
    began = time.monotonic()
    start = asyncio.ensure_future(spawner.start())
    await asyncio.wait({start}, timeout=deadline)
    name = spawner.user.name
    assert start.done(), f"spawn of {name} did not end within its timeout"
    error = start.exception()
    if error is None:
        outcomes["ready"] += 1
        assert start.result().startswith("http://127.")
        return time.monotonic() - began
    outcomes["failed"] += 1
    failures.append(f"{name}: {type(error).__name__}: {error}")
    assert str(error).strip(), f"spawn of {name} failed without a message: {error!r}"
    return None


async def labs_through_outage(labs: list[Any], urls: list[str], until: float) -> int:
    """Until ``until`` (monotonic): every 2 s each lab answers on its address and its
    spawner's ``poll()`` says it runs. Returns how many rounds of checks were made."""
    checks = 0
    while time.monotonic() < until:
        assert all([await reachable(url) for url in urls])
        assert [await lab.poll() for lab in labs] == [None] * len(labs)
        checks += 1
        await asyncio.sleep(2)
    return checks
