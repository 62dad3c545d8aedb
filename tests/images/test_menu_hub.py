"""The image menu through JupyterHub's REST API: the cycle filter, sha512 pins, classes.

JupyterHub runs in process (``lsst_hub``) with LSSTSpawner, a static image source
and ``image_cycle = 27``, against the Kubernetes emulator. An image of another
cycle, or of none, is answered 400 and nothing is written; an image pinned by a
``sha512:`` digest and an ``image_class`` reach the pod.
"""

from __future__ import annotations

from typing import Any

import pytest

from lsst_spawner.testing.hub.fixtures import InProcessHub

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
CONFIG = {
    # Long enough for a refusal in start() to come back as the answer (400), not as 202.
    "JupyterHub": {"tornado_settings": {"slow_spawn_timeout": 5}},
    "LSSTSpawner": {
        "image_source": "static",
        "static_image_base": BASE,
        "static_image_tags": TAGS,
        "static_image_digests": DIGESTS,
        "image_cycle": 27,
        "image_recommended_tag": "recommended_c0027",
        "image_alias_tags": ["latest_c0027"],
        "lab_spawn_timeout": "60s",
    },
}

REFUSED = [
    ("w_2026_10_c0026.001", "other-cycle"),
    ("w_2026_11", "no-cycle"),
    ("recommended", "alias-without-cycle"),
    (f"{BASE}@sha256:{'b' * 64}", "digest-of-other-cycle"),
]


async def pods(hub: InProcessHub) -> list[Any]:
    return list(await hub.kube_api.list("pods"))


async def test_cycle_filter_sha512_pin_and_image_class_through_the_rest_api(
    lsst_hub: Any,
) -> None:
    hub = await lsst_hub(config=CONFIG)
    for image, user in REFUSED:
        await hub.add_user(user)
        status, reply = await hub.start(user, {"image": image})
        assert status == 400, (image, status, reply)
        assert "not offered" in reply["message"] or "not the digest" in reply["message"]
        assert await pods(hub) == [], f"a pod was created for {image}"
    _, reply = await hub.start("other-cycle", {"image": "w_2026_10_c0026.001"})
    assert "only images of SAL cycle 27" in reply["message"]

    # An image the menu holds by a sha512 digest, pinned by it.
    pinned = f"{BASE}:w_2026_09_c0027.003@{D512}"
    pod = await hub.spawn("pin512", {"image": pinned})
    assert pod["spec"]["containers"][0]["image"] == pinned

    # An image class resolves at spawn time to the newest offered weekly of the cycle.
    pod = await hub.spawn("classy", {"image_class": "latest-weekly"})
    assert pod["spec"]["containers"][0]["image"] == f"{BASE}:w_2026_10_c0027.001@{D_W10}"
