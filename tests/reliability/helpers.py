"""Shared pieces of the reliability suite: in-process spawners, faults, object census."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from traitlets.config import Config

from lsst_spawner.offline import OfflineHub, OfflineServer, OfflineUser
from lsst_spawner.spawner import LSSTSpawner
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.oauth.identity import identity_for

DIGEST = "sha256:" + "e" * 64
TOKEN = "reliability-test-api-token-value"
LAB_KINDS = ("pods", "configmaps", "secrets")


def spawner_config(namespace: str, **overrides: Any) -> Config:
    c = Config()
    c.LSSTSpawner.namespace = namespace
    c.LSSTSpawner.image_source = "static"
    c.LSSTSpawner.static_image_base = "registry.example.org/sciplat-lab"
    c.LSSTSpawner.static_image_tags = ["recommended", "w_2026_46"]
    c.LSSTSpawner.static_image_digests = {"recommended": DIGEST, "w_2026_46": DIGEST}
    c.LSSTSpawner.lab_spawn_timeout = "60s"
    c.LSSTSpawner.kubernetes_retry_budget = "20s"
    c.LSSTSpawner.kubernetes_request_timeout = "5s"
    for key, value in overrides.items():
        setattr(c.LSSTSpawner, key, value)
    return c


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
