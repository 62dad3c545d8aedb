"""A real JupyterHub process in operator mode: spawn, proxy, hub restart, stop.

The hub runs with operator mode's Role (``kube_role`` of this suite): any pod request
it made (KubeSpawner's reflector on restart, say) would be refused and fail the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.checks import spawner_settings
from lsst_spawner.cli import load_hub_config
from lsst_spawner.crd.from_config import base_pod_for
from lsst_spawner.crd.template import SENTINEL_SERVER, SENTINEL_USER, template_from_settings
from lsst_spawner.testing.hub import HubProcess
from lsst_spawner.testing.oauth.identity import identity_for

from ..reliability.helpers import (
    hub_config_text,
    lab_config_text,
    server_model,
    through_proxy,
    wait_for,
)
from .conftest import TEMPLATES, LabCluster

pytestmark = [pytest.mark.slow, pytest.mark.integration]

USER = "oper"
#: The lab of these tests: in operator mode, with time for the operator's round trips.
OPERATOR_LAB = {"lab_backend": "operator", "lab_spawn_timeout": "90s", "http_timeout": 60}


def lab_config(namespace: str) -> str:
    return lab_config_text(namespace, **OPERATOR_LAB)


def hub_config(namespace: str) -> str:
    return hub_config_text(namespace, **OPERATOR_LAB)


def server(hub: HubProcess) -> dict[str, Any] | None:
    return server_model(hub, USER)


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
        assert through_proxy(hub, USER) == 200
        assert lab_cluster.phase(f"lab-{USER}") == "Running"

        hub.stop(kill=True)  # the hub dies; the lab does not
        hub.start()
        wait_for(lambda: (s := server(hub)) and s["ready"], 90, "lab kept", hub, lab_cluster)
        assert through_proxy(hub, USER) == 200

        assert hub.request("DELETE", f"/users/{USER}/server")[0] in (202, 204)
        wait_for(lambda: server(hub) is None, 60, "the lab stopped", hub, lab_cluster)
        assert lab_cluster.lab_server(f"lab-{USER}") is None
        assert lab_cluster.emulator.list_objects("pods", lab_cluster.namespace) == []
        assert lab_cluster.owned("secrets", f"lab-{USER}") == []
    finally:
        hub.stop()
