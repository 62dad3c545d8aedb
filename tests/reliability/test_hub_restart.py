"""A real hub killed (SIGKILL) while a spawn is pending, and a hub restarted gracefully.

JupyterHub records the server in its database before it calls ``start()``.
On restart, ``init_spawners`` polls every spawner that has a server record;
KubeSpawner's ``poll`` finds the pod by name in the pod reflector (the name
comes from the saved state, or from ``lab_pod_name_template``), reports it
running while it is Pending or Running, and the hub then waits up to
``http_timeout`` for the lab to answer at the pod's address. The lab becomes
ready under the restarted hub, its route is added to the new proxy, and a
stop deletes the pod, ConfigMap and Secret.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.testing.hub import HubProcess
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.oauth.identity import identity_for

from .helpers import EMPTY, hub_config_text, lab_census, server_model, through_proxy, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.integration]

USER = "restart"


def hub_config(kube_api: KubeHandle) -> str:
    return hub_config_text(kube_api.namespace, http_timeout=60)


def server(hub: HubProcess) -> dict[str, Any] | None:
    return server_model(hub, USER)


def test_hub_killed_while_a_spawn_is_pending(
    kube_api: KubeHandle, kubelet: Any, tmp_path: Path, record_property: Any
) -> None:
    assert kube_api.emulator is not None
    kubelet.mode = "stub"
    kubelet.step_delay = 1.5  # about 9 s from pod creation to Running
    hub = HubProcess(tmp_path / "hub", hub_config(kube_api))
    hub.start()
    try:
        assert hub.request("POST", f"/users/{USER}")[0] == 201
        identity = {"identity": identity_for(USER).to_dict()}
        assert hub.request("PATCH", f"/users/{USER}", {"auth_state": identity})[0] == 200
        status, body = hub.request(
            "POST", f"/users/{USER}/server", hub.spawn_body({"image": "w_2026_46"})
        )
        assert status == 202, body

        # Kill the hub once the pod exists but is not running yet.
        def pod_pending() -> bool:
            pod = kube_api.emulator.get_object("pods", f"nb-{USER}", kube_api.namespace)
            return pod is not None and pod["status"]["phase"] == "Pending"

        wait_for(pod_pending, 30, "the pod to be created", hub)
        assert server(hub)["pending"] == "spawn"
        hub.stop(kill=True)
        killed = time.monotonic()
        assert lab_census(kube_api)["pods"] == [f"nb-{USER}"]

        hub.start()
        ready = wait_for(
            lambda: (s := server(hub)) is not None and s["ready"],
            90,
            "the restarted hub to find the lab ready",
            hub,
        )
        assert ready
        kill_to_ready = round(time.monotonic() - killed, 1)
        record_property("seconds_from_kill_to_ready", kill_to_ready)
        print("hub restart: lab ready", kill_to_ready, "s after the SIGKILL")
        assert "still running" in hub.log_tail(20000)
        assert through_proxy(hub, USER) == 200

        # A graceful restart with cleanup_servers = False keeps the lab as well.
        hub.stop()
        assert lab_census(kube_api)["pods"] == [f"nb-{USER}"]
        hub.start()
        wait_for(lambda: (s := server(hub)) is not None and s["ready"], 60, "the lab ready", hub)
        assert through_proxy(hub, USER) == 200

        assert hub.request("DELETE", f"/users/{USER}/server")[0] in (202, 204)
        wait_for(lambda: server(hub) is None, 60, "the lab to stop", hub)
        wait_for(lambda: lab_census(kube_api) == EMPTY, 30, "the lab's objects to go", hub)
    finally:
        hub.stop()
