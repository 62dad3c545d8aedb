"""The leftover sweep: lab Secrets whose pod is gone and that no spawn owns are deleted.

First against the emulator with z2jh's Role (what it deletes and what it leaves),
then with a real ``jupyterhub`` process killed (SIGKILL) between creating a lab's
Secrets and creating its pod: after the restart the sweep deletes them within
its interval.
"""

from __future__ import annotations

import base64
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.hub_start import make_hub_start_spawner, start_with_hub
from lsst_spawner.kube.retries import RetryPolicy
from lsst_spawner.kube.sweep import SpawnRegistry, sweep_once
from lsst_spawner.testing.hub import HubProcess
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.oauth.identity import identity_for

from .helpers import hub_config_text, lab_census, wait_for

pytestmark = pytest.mark.integration

LABELS = {"app.kubernetes.io/part-of": "lsst-spawner"}


def secret(name: str, instance: str | None) -> dict[str, Any]:
    labels = dict(LABELS)
    if instance:
        labels["app.kubernetes.io/instance"] = instance
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": labels},
        "data": {"x": base64.b64encode(b"1").decode()},
    }


async def test_sweep_deletes_only_leftovers(
    kube_api: KubeHandle, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = kube_api.emulator
    assert emulator is not None
    ns = kube_api.namespace
    running_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "nb-alive", "labels": {**LABELS, "app.kubernetes.io/instance": "x"}},
        "spec": {"containers": [{"name": "notebook", "image": "lab:1"}]},
    }
    for obj in (
        secret("nb-gone-env", "nb-gone"),
        secret("nb-gone-secret", "nb-gone"),
        secret("nb-alive-secret", "nb-alive"),
        secret("nb-starting-secret", "nb-starting"),
        secret("site-secret", None),  # the project's label, no lab: not a lab object
    ):
        emulator.call(lambda obj=obj: emulator.store.create("secrets", ns, obj))
    emulator.call(lambda: emulator.store.create("pods", ns, running_pod))
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "home-rra", "labels": {**LABELS, "app.kubernetes.io/instance": "z"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    emulator.call(lambda: emulator.store.create("persistentvolumeclaims", ns, claim))
    registry = SpawnRegistry()
    registry.begin(f"{ns}/nb-starting")  # a spawn in progress: Secrets written, no pod yet
    policy = RetryPolicy(budget=10, request_timeout=5, log=logging.getLogger("sweep-test"))
    async with kube_api.api_client() as client:
        from kubernetes_asyncio.client import CoreV1Api

        with caplog.at_level(logging.INFO, "sweep-test"):
            deleted = await sweep_once(CoreV1Api(client), ns, policy, registry)
    assert sorted(deleted) == [f"{ns}/nb-gone-env", f"{ns}/nb-gone-secret"]
    left = sorted(s["metadata"]["name"] for s in await kube_api.list("secrets"))
    assert left == ["nb-alive-secret", "nb-starting-secret", "site-secret"]
    assert await kube_api.get("persistentvolumeclaims", "home-rra") is not None
    logged = [r.getMessage() for r in caplog.records if "Leftover sweep" in r.getMessage()]
    assert logged == [
        f"Leftover sweep: deleted secret {ns}/{name}: its lab pod nb-gone is gone and no spawn "
        "owns it"
        for name in ("nb-gone-env", "nb-gone-secret")
    ]
    # A spawn that ended after the sweep began is not taken for a leftover either.
    registry.end(f"{ns}/nb-starting")
    ended = SpawnRegistry(clock=lambda: 0.0)
    ended.begin(f"{ns}/nb-starting")
    ended.end(f"{ns}/nb-starting")
    assert ended.busy_since(f"{ns}/nb-starting", 0.0)


USER = "sweepy"


def hub_config(kube_api: KubeHandle, interval: str) -> str:
    return hub_config_text(
        kube_api.namespace, kubernetes_retry_budget="120s", lab_sweep_interval=interval
    )


@pytest.mark.slow
def test_hub_killed_between_the_secrets_and_the_pod_is_swept_after_restart(
    kube_api: KubeHandle, kubelet: Any, tmp_path: Path, record_property: Any
) -> None:
    assert kube_api.emulator is not None
    kubelet.mode = "stub"
    # Every pod create fails (503, retried): the spawn stays between its Secrets and its pod.
    pods_refused = kube_api.faults.error_rate(1.0, 503, verbs="create", resources="pods")
    hub = HubProcess(tmp_path / "hub", hub_config(kube_api, "4s"))
    hub.start()
    try:
        assert hub.request("POST", f"/users/{USER}")[0] == 201
        identity = {"identity": identity_for(USER).to_dict()}
        assert hub.request("PATCH", f"/users/{USER}", {"auth_state": identity})[0] == 200
        status, body = hub.request(
            "POST", f"/users/{USER}/server", hub.spawn_body({"image": "w_2026_46"})
        )
        assert status == 202, body
        wait_for(
            lambda: len(lab_census(kube_api)["secrets"]) == 1 and pods_refused.fired >= 1,
            30,
            "the spawn to reach its pod",
            hub,
        )
        hub.stop(kill=True)
        leftovers = lab_census(kube_api)
        assert leftovers["pods"] == []
        assert leftovers["secrets"] == [f"nb-{USER}-secret"]
        kube_api.faults.remove(pods_refused)
        # The restarted hub finds the interrupted server and stops it; that stop's two
        # Secret deletions (the Secret, and the -env a pre-0.1.0 lab would have, as the pod is
        # gone) fail (403: a Role edited meanwhile, an admission webhook...), so only the
        # sweep can delete the Secret.
        refused = kube_api.faults.error_rate(1.0, 403, verbs="delete", resources="secrets", times=2)
        hub.start()
        restarted = time.monotonic()
        wait_for(
            lambda: lab_census(kube_api)["secrets"] == [],
            30,
            "the sweep to delete the leftover Secrets",
            hub,
        )
        assert refused.fired == 2, "the restarted hub did not try to delete the Secrets"
        seconds = round(time.monotonic() - restarted, 1)
        record_property("seconds_from_restart_to_swept", seconds)
        log = hub.log_tail(50000)
        for name in (f"nb-{USER}-secret",):
            assert (
                f"Leftover sweep: deleted secret {kube_api.namespace}/{name}: its lab pod "
                f"nb-{USER} is gone and no spawn owns it"
            ) in log
        # The user can start again.
        status, body = hub.request(
            "POST", f"/users/{USER}/server", hub.spawn_body({"image": "w_2026_46"})
        )
        assert status in (201, 202), body
        wait_for(lambda: lab_census(kube_api)["pods"] == [f"nb-{USER}"], 60, "a new pod", hub)
        time.sleep(5)  # a sweep round while the lab runs leaves its Secret alone
        assert lab_census(kube_api)["secrets"] == [f"nb-{USER}-secret"]
    finally:
        hub.stop()


@pytest.mark.slow
def test_a_leftover_is_swept_after_a_hub_start_with_no_spawn(
    kube_api: KubeHandle, kubelet: Any, tmp_path: Path
) -> None:
    """The hub (a snippet directory, as sites configure it) sweeps with nobody spawning.

    No user has a server, so JupyterHub makes no spawner at start: the sweep starts
    from the hub's start (lsst_spawner.hub_start), under z2jh's Role.
    """
    emulator = kube_api.emulator
    assert emulator is not None
    kubelet.mode = "stub"
    ns = kube_api.namespace
    emulator.call(
        lambda: emulator.store.create("secrets", ns, secret("nb-ghost-secret", "nb-ghost"))
    )
    snippets = tmp_path / "config.d"
    snippets.mkdir()
    (snippets / "10-site.py").write_text(hub_config(kube_api, "2s"))
    hub = HubProcess(
        tmp_path / "hub",
        f"from lsst_spawner.config import load_config_dir\nload_config_dir(c, {str(snippets)!r})\n",
    )
    hub.start()
    try:
        wait_for(
            lambda: lab_census(kube_api)["secrets"] == [],
            30,
            "the hub to sweep the leftover Secret without a spawn",
            hub,
        )
        log = hub.log_tail(50000)
        assert "background tasks started with the hub" in log
        assert (
            f"Leftover sweep: deleted secret {ns}/nb-ghost-secret: its lab pod nb-ghost is gone "
            "and no spawn owns it"
        ) in log
        status, users = hub.request("GET", "/users")
        assert status == 200
        assert all(user["servers"] == {} for user in users), "a server was started"
        # Once per hub: one sweep task for the namespace, whatever starts it.
        assert log.count(f"Leftover sweep of namespace {ns} every 2s") == 1
    finally:
        hub.stop()


async def test_start_with_hub_does_nothing_outside_a_starting_hub() -> None:
    """check-config, tools and tests load configurations too: no task, no spawner."""

    class Plain:
        pass

    class App:
        spawner_class = Plain

    assert start_with_hub() is False  # a running loop, but no hub starting on it
    assert make_hub_start_spawner(App()) is None  # a class that does not ask for it


def test_operator_mode_starts_no_hub_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    """In operator mode the hub's Role cannot list Secrets: no sweep, so no 403 every round."""
    from jupyterhub.app import JupyterHub

    from lsst_spawner.kube import sweep

    started: list[Any] = []
    monkeypatch.setattr(JupyterHub, "initialized", classmethod(lambda cls: True))
    monkeypatch.setattr(sweep, "start_sweep", lambda *args: started.append(args) or True)

    class Spawner:
        lab_backend = "operator"
        enable_user_namespaces = False
        namespace = "labs"
        api = None
        lab_sweep_interval = 2.0

        def kube_retry_policy(self) -> RetryPolicy:
            return RetryPolicy(budget=10, request_timeout=5)

    assert sweep.start_hub_sweep(Spawner()) is False
    Spawner.lab_backend = "hub"
    assert sweep.start_hub_sweep(Spawner()) is True
    assert [args[1] for args in started] == ["labs"]
