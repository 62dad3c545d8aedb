"""The image menu through a real JupyterHub's REST API: the cycle filter, sha512 pins, classes.

A real ``jupyterhub`` runs LSSTSpawner with a static image source and
``image_cycle = 27`` against the Kubernetes emulator. An image of another cycle,
or of none, is answered 400 and nothing is written; an image pinned by a
``sha512:`` digest and an ``image_class`` reach the pod.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.testing.hub import HubProcess
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.oauth.identity import identity_for

pytestmark = pytest.mark.integration

BASE = "registry.example.org/lsst/sciplat-lab"
D512 = "sha512:" + "5" * 128
D_W10 = "sha256:" + "a" * 64
TAGS = [
    "recommended_c0027",
    "latest_c0027",
    "w_2026_09_c0027.003",
    "w_2026_10_c0027.001",
    "w_2026_10_c0026.001",
    "w_2026_11",
    "recommended",
]
DIGESTS = {
    "recommended_c0027": D512,
    "w_2026_09_c0027.003": D512,
    "w_2026_10_c0027.001": D_W10,
    "w_2026_10_c0026.001": "sha256:" + "b" * 64,
    "recommended": "sha256:" + "c" * 64,
}


def hub_config(kube_api: KubeHandle) -> str:
    return f"""
c.JupyterHub.authenticator_class = "lsst_spawner.testing.oauth.identity.StaticIdentityAuthenticator"
c.JupyterHub.spawner_class = "lsst"
# Long enough for a refusal in start() to come back as the answer (400), not as 202.
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 5}}
c.LSSTSpawner.namespace = {kube_api.namespace!r}
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = {BASE!r}
c.LSSTSpawner.static_image_tags = {TAGS!r}
c.LSSTSpawner.static_image_digests = {DIGESTS!r}
c.LSSTSpawner.image_cycle = 27
c.LSSTSpawner.image_recommended_tag = "recommended_c0027"
c.LSSTSpawner.image_alias_tags = ["latest_c0027"]
c.LSSTSpawner.lab_spawn_timeout = "60s"
"""


def create_user(hub: HubProcess, name: str) -> None:
    assert hub.request("POST", f"/users/{name}")[0] in (201, 409)
    identity = {"identity": identity_for(name).to_dict()}
    assert hub.request("PATCH", f"/users/{name}", {"auth_state": identity})[0] == 200


def pods(kube_api: KubeHandle) -> list[Any]:
    assert kube_api.emulator is not None
    return list(kube_api.emulator.list_objects("pods", kube_api.namespace))


def pod_image(kube_api: KubeHandle, hub: HubProcess, user: str) -> str:
    assert kube_api.emulator is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pod = kube_api.emulator.get_object("pods", f"nb-{user}", kube_api.namespace)
        if pod is not None:
            return str(pod["spec"]["containers"][0]["image"])
        time.sleep(0.2)
    raise AssertionError(f"no pod for {user}\n{hub.log_tail()}")


REFUSED = [
    ("w_2026_10_c0026.001", "other-cycle"),
    ("w_2026_11", "no-cycle"),
    ("recommended", "alias-without-cycle"),
    (f"{BASE}@sha256:{'b' * 64}", "digest-of-other-cycle"),
]


def test_cycle_filter_sha512_pin_and_image_class_through_the_rest_api(
    kube_api: KubeHandle, tmp_path: Path
) -> None:
    with HubProcess(tmp_path / "hub", hub_config(kube_api)) as hub:
        for image, user in REFUSED:
            create_user(hub, user)
            status, reply = hub.request(
                "POST", f"/users/{user}/server", hub.spawn_body({"image": image})
            )
            assert status == 400, (image, status, reply)
            assert "not offered" in reply["message"] or "not the digest" in reply["message"]
            assert pods(kube_api) == [], f"a pod was created for {image}"
        _, reply = hub.request(
            "POST", "/users/other-cycle/server", hub.spawn_body({"image": "w_2026_10_c0026.001"})
        )
        assert "only images of SAL cycle 27" in reply["message"]

        # An image the menu holds by a sha512 digest, pinned by it.
        create_user(hub, "pin512")
        pinned = f"{BASE}:w_2026_09_c0027.003@{D512}"
        status, reply = hub.request(
            "POST", "/users/pin512/server", hub.spawn_body({"image": pinned})
        )
        assert status in (201, 202), reply
        assert pod_image(kube_api, hub, "pin512") == pinned

        # An image class resolves at spawn time to the newest offered weekly of the cycle.
        create_user(hub, "classy")
        status, reply = hub.request(
            "POST", "/users/classy/server", hub.spawn_body({"image_class": "latest-weekly"})
        )
        assert status in (201, 202), reply
        assert pod_image(kube_api, hub, "classy") == f"{BASE}:w_2026_10_c0027.001@{D_W10}"
