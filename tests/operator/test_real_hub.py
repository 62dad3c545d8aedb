"""A real JupyterHub process in operator mode: spawn, proxy, hub restart, stop.

The hub runs with operator mode's Role (``kube_role`` of this suite): any pod request
it made (KubeSpawner's reflector on restart, say) would be refused and fail the test.
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.checks import spawner_settings
from lsst_spawner.cli import load_hub_config
from lsst_spawner.crd.from_config import base_pod_for
from lsst_spawner.crd.template import SENTINEL_SERVER, SENTINEL_USER, template_from_settings
from lsst_spawner.testing.hub import HubProcess
from lsst_spawner.testing.oauth.identity import identity_for

from .conftest import TEMPLATES, LabCluster

pytestmark = [pytest.mark.slow, pytest.mark.integration]

USER = "oper"
DIGEST = "sha256:" + "e" * 64


def lab_config(namespace: str) -> str:
    return f"""
c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.namespace = {namespace!r}
c.LSSTSpawner.lab_backend = "operator"
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = "registry.example.org/sciplat-lab"
c.LSSTSpawner.static_image_tags = ["recommended", "w_2026_46"]
c.LSSTSpawner.static_image_digests = {{"recommended": {DIGEST!r}, "w_2026_46": {DIGEST!r}}}
c.LSSTSpawner.lab_spawn_timeout = "90s"
c.LSSTSpawner.http_timeout = 60
"""


def hub_config(namespace: str) -> str:
    return (
        'c.JupyterHub.authenticator_class = "lsst_spawner.testing.oauth.identity.'
        'StaticIdentityAuthenticator"\n'
        "c.JupyterHub.cleanup_servers = False\n"
        'c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}\n' + lab_config(namespace)
    )


def wait_for(predicate: Any, timeout: float, what: str, hub: HubProcess, cluster: Any) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(
        f"{what} within {timeout:g}s\n{hub.log_tail()}\n{cluster.output()[-4000:]}"
    )


def server(hub: HubProcess) -> dict[str, Any] | None:
    status, user = hub.request("GET", f"/users/{USER}")
    assert status == 200, user
    found: dict[str, Any] | None = user["servers"].get("")
    return found


def through_proxy(hub: HubProcess) -> int:
    status, token = hub.request("POST", f"/users/{USER}/tokens", {"expires_in": 600})
    assert status == 201, token
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{hub.url}/user/{USER}/api/status", headers={"Authorization": f"token {token['token']}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return int(response.status)


async def test_a_real_hub_spawns_restarts_and_stops_through_the_operator(
    lab_cluster: LabCluster, kubelet: Any, tmp_path: Path
) -> None:
    kubelet.mode = "stub"
    path = tmp_path / "lab_config.py"
    path.write_text(lab_config(lab_cluster.namespace))
    config = load_hub_config(path)
    pod = await base_pod_for(config, SENTINEL_USER, SENTINEL_SERVER)
    lab_cluster.create(TEMPLATES, template_from_settings(spawner_settings(config), pod, name="lab"))
    lab_cluster.start_operator()
    hub = HubProcess(tmp_path / "hub", hub_config(lab_cluster.namespace))
    hub.start()
    try:
        assert hub.request("POST", f"/users/{USER}")[0] == 201
        identity = {"identity": identity_for(USER).to_dict()}
        assert hub.request("PATCH", f"/users/{USER}", {"auth_state": identity})[0] == 200
        status, body = hub.request(
            "POST", f"/users/{USER}/server", hub.spawn_body({"image": "w_2026_46"})
        )
        assert status == 202, body
        wait_for(lambda: (s := server(hub)) and s["ready"], 120, "lab ready", hub, lab_cluster)
        assert through_proxy(hub) == 200
        assert lab_cluster.phase(f"lab-{USER}") == "Running"

        hub.stop(kill=True)  # the hub dies; the lab does not
        hub.start()
        wait_for(lambda: (s := server(hub)) and s["ready"], 90, "lab kept", hub, lab_cluster)
        assert through_proxy(hub) == 200

        assert hub.request("DELETE", f"/users/{USER}/server")[0] in (202, 204)
        wait_for(lambda: server(hub) is None, 60, "the lab stopped", hub, lab_cluster)
        assert lab_cluster.lab_server(f"lab-{USER}") is None
        assert lab_cluster.emulator.list_objects("pods", lab_cluster.namespace) == []
        assert lab_cluster.owned("secrets", f"lab-{USER}") == []
    finally:
        hub.stop()
