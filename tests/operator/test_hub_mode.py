"""LSSTSpawner with ``lab_backend = "operator"``: the hub only declares; its Role has no pods."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubespawner import clients
from traitlets.config import Config

from lsst_spawner.checks import spawner_settings
from lsst_spawner.crd.declare import SPAWN_ANNOTATION
from lsst_spawner.crd.from_config import base_pod_for
from lsst_spawner.crd.template import SENTINEL_SERVER, SENTINEL_USER, template_from_settings
from lsst_spawner.offline import OfflineHub, OfflineServer, OfflineUser
from lsst_spawner.spawner import LSSTSpawner
from lsst_spawner.testing.oauth.identity import identity_for

from .conftest import TEMPLATES, LabCluster, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "operator-mode-api-token-value"
DIGEST = "sha256:" + "d" * 64


def hub_config(namespace: str) -> Config:
    c = Config()
    c.JupyterHub.spawner_class = "lsst"
    c.LSSTSpawner.namespace = namespace
    c.LSSTSpawner.lab_backend = "operator"
    c.LSSTSpawner.image_source = "static"
    c.LSSTSpawner.static_image_base = "registry.example.org/sciplat-lab"
    c.LSSTSpawner.static_image_tags = ["recommended", "w_2026_46"]
    c.LSSTSpawner.static_image_digests = {"recommended": DIGEST, "w_2026_46": DIGEST}
    c.LSSTSpawner.lab_spawn_timeout = "90s"
    c.LSSTSpawner.kubernetes_retry_budget = "20s"
    return c


def named_spawner(servername: str) -> type[LSSTSpawner]:
    return type("LSSTSpawner", (LSSTSpawner,), {"name": property(lambda self: servername)})


def make_spawner(
    cluster: LabCluster, username: str, servername: str = "", **options: Any
) -> LSSTSpawner:
    user = OfflineUser(username, {"identity": identity_for(username).to_dict()})
    cls = named_spawner(servername) if servername else LSSTSpawner
    spawner = cls(config=hub_config(cluster.namespace), user=user, hub=OfflineHub())
    spawner.server = OfflineServer(user)
    spawner.api_token = TOKEN
    spawner.user_options = options
    spawner.lab_options_fresh = True
    return spawner


async def install_template(cluster: LabCluster) -> None:
    config = hub_config(cluster.namespace)
    pod = await base_pod_for(config, SENTINEL_USER, SENTINEL_SERVER)
    template = template_from_settings(spawner_settings(config), pod, name="lab")
    cluster.create(TEMPLATES, template)
    clients.load_config.cache_clear()  # the spawners below load the hub's kubeconfig


async def test_start_poll_progress_stop_through_the_operator(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    kubelet.mode = "stub"
    await install_template(lab_cluster)
    lab_cluster.start_operator()
    spawner = make_spawner(lab_cluster, "rra", image="w_2026_46", size="small")
    events: list[dict[str, Any]] = []

    async def follow() -> None:
        async for event in spawner.progress():
            events.append(event)

    start = spawner.start()
    follower = asyncio.create_task(follow())
    url = await asyncio.wait_for(start, 120)
    await asyncio.wait_for(follower, 30)
    assert url.startswith("http://127.")
    assert await spawner.poll() is None
    name = spawner.get_state()["lab_server"]
    assert name == "lab-rra"
    server = lab_cluster.lab_server(name)
    assert TOKEN not in json.dumps(server)
    assert server["spec"]["image"].endswith(f":w_2026_46@{DIGEST}")
    messages = " | ".join(e["message"] for e in events)
    assert "Accepted" in messages
    assert "running" in messages
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress)
    # The hub never touched a pod (its Role has no pod rights at all).
    assert lab_cluster.kube.counters.get("create", "pods") == 1  # the operator's
    # A restarted hub finds the lab from the saved state.
    again = make_spawner(lab_cluster, "rra")
    again.load_state(spawner.get_state())
    assert await again.poll() is None
    await again.stop()
    assert lab_cluster.lab_server(name) is None
    assert lab_cluster.owned("pods", name) == []
    assert lab_cluster.owned("secrets", name) == []
    assert await again.poll() == 0


async def test_a_create_whose_reply_was_lost_is_not_mistaken_for_a_leftover(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    """The LabServer's and the Secret's creates are carried out but their replies lost:
    the retries meet them (409). The LabServer carries this start's spawn id, so it is
    kept, not deleted as a leftover (which failed a spawn at N=3,000 after 120 s waiting
    for the operator to clean it up); the Secret is replaced. The lab starts, once."""
    kubelet.mode = "stub"
    await install_template(lab_cluster)
    lab_cluster.start_operator()
    faults, counters = lab_cluster.emulator.faults, lab_cluster.kube.counters
    lost = [
        faults.lost_reply_rate(1.0, verbs="create", resources=resource, times=1)
        for resource in ("labservers.lab.lsst-spawner.io", "secrets")
    ]
    spawner = make_spawner(lab_cluster, "lost", image="w_2026_46")
    url = await asyncio.wait_for(spawner.start(), 120)
    assert url.startswith("http://127.")
    assert [rule.fired for rule in lost] == [1, 1]
    assert counters.get("create", "labservers.lab.lsst-spawner.io") == 2  # one retry
    assert counters.get("delete", "labservers.lab.lsst-spawner.io") == 0
    assert counters.get("create", "pods") == 1
    server = lab_cluster.lab_server("lab-lost")
    assert server["metadata"]["annotations"][SPAWN_ANNOTATION]
    assert server["status"]["phase"] == "Running"
    await spawner.stop()
    assert lab_cluster.lab_server("lab-lost") is None
    assert lab_cluster.owned("secrets", "lab-lost") == []


async def test_a_leftover_lab_server_of_another_start_is_cleaned_up_first(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    """A LabServer of the same name from an earlier start (another spawn id) is deleted,
    and the new start waits for the operator's cleanup, then declares its own."""
    kubelet.mode = "stub"
    await install_template(lab_cluster)
    lab_cluster.start_operator()
    first = make_spawner(lab_cluster, "again", image="w_2026_46")
    await asyncio.wait_for(first.start(), 120)
    old = lab_cluster.lab_server("lab-again")["metadata"]
    second = make_spawner(lab_cluster, "again", image="w_2026_46")  # the hub forgot it
    await asyncio.wait_for(second.start(), 120)
    new = lab_cluster.lab_server("lab-again")["metadata"]
    assert new["uid"] != old["uid"]
    assert new["annotations"][SPAWN_ANNOTATION] != old["annotations"][SPAWN_ANNOTATION]
    await second.stop()


async def test_named_servers_are_separate_lab_servers(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    kubelet.mode = "stub"
    await install_template(lab_cluster)
    lab_cluster.start_operator()
    first = make_spawner(lab_cluster, "rra", "analysis", image="w_2026_46")
    url = await asyncio.wait_for(first.start(), 120)
    assert url
    name = first.get_state()["lab_server"]
    server = lab_cluster.lab_server(name)
    assert server["spec"]["user"] == {"name": "rra", "server": "analysis"}
    assert name != "lab-rra"
    await first.stop()
    assert lab_cluster.lab_server(name) is None


async def test_a_rejected_lab_server_fails_the_start_with_the_operators_reason(
    lab_cluster: LabCluster, kubelet: Any
) -> None:
    """The menu changed under the hub: the operator's menu refuses the image; start says why."""
    kubelet.mode = "stub"
    await install_template(lab_cluster)
    template = lab_cluster.get(TEMPLATES, "lab")
    template["spec"]["settings"]["static_image_tags"] = ["recommended"]
    template["spec"]["settings"]["static_image_digests"] = {"recommended": DIGEST}
    lab_cluster.emulator.call(
        lambda: lab_cluster.emulator.store.replace(
            TEMPLATES, lab_cluster.namespace, "lab", template
        )
    )
    lab_cluster.start_operator()
    spawner = make_spawner(lab_cluster, "rra", image="w_2026_46")
    with pytest.raises(Exception, match="not offered"):
        await asyncio.wait_for(spawner.start(), 120)
    wait_for(lambda: lab_cluster.lab_server("lab-rra") is None, "the rejected LabServer deleted")
    assert lab_cluster.emulator.list_objects("pods", lab_cluster.namespace) == []
