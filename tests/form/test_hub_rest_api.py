"""Each rejection through JupyterHub's REST API, with no Kubernetes write made.

Runs JupyterHub in process (the ``lsst_hub`` fixture, on pytest-jupyterhub's
``hub_app``) with LSSTSpawner and a static menu as its spawner, against the
Kubernetes API emulator and a stub kubelet.
"""

from __future__ import annotations

from typing import Any

import pytest
from menu_fixture import DIGEST_W10, HOSTILE_TAG, IMAGE_BASE, UNLISTED_DIGEST

from lsst_spawner.testing.hub.fixtures import InProcessHub
from lsst_spawner.testing.kube.podenv import resolve_lab_env

WRITES = ("create", "update", "patch", "delete", "deletecollection")


def kube_writes(hub: InProcessHub) -> int:
    """Write requests the emulator has received (every resource)."""
    return sum(hub.kube_api.counters.get(verb) for verb in WRITES)


async def create_user(hub: InProcessHub, name: str) -> None:
    """Create the user and give it an identity, as an admin would over the REST API."""
    await hub.add_user(name)


@pytest.fixture
async def hub(lsst_hub: Any) -> InProcessHub:
    config = {
        "JupyterHub": {"spawner_class": "hub_spawner.StaticMenuSpawner"},
        "KubeSpawner": {"start_timeout": 20, "k8s_api_request_timeout": 5},
    }
    return await lsst_hub(config=config)


BAD_OPTIONS = [
    pytest.param(
        {"image": "w_2024_10", "shell": "/bin/sh"}, "unknown option 'shell'", id="unknown-key"
    ),
    pytest.param({"image": "../"}, "not from this hub's image repository", id="dotdot"),
    pytest.param({"image": "a" * 200}, "200 characters long", id="200-char-tag"),
    pytest.param(
        {"image": "other.registry/x:tag"},
        "not from this hub's image repository",
        id="other-registry",
    ),
    pytest.param(
        {"image": f"{IMAGE_BASE}@{UNLISTED_DIGEST}"},
        "not the digest of any image offered",
        id="unlisted-digest",
    ),
    pytest.param(
        {"image": f"r23_0_1@{DIGEST_W10}"},
        "not the digest of image tag r23_0_1",
        id="digest-of-other-tag",
    ),
    pytest.param({"image": HOSTILE_TAG}, "not a valid tag or image reference", id="hostile-tag"),
    pytest.param({"image": "w_2023_01"}, "image tag w_2023_01 is not offered", id="unlisted-tag"),
    pytest.param({"size": "huge"}, "size 'huge' is not one of small, medium", id="unknown-size"),
    pytest.param(
        {"enable_debug": "true"}, "enable_debug must be true or false", id="string-checkbox"
    ),
    pytest.param({"reset_user_env": 1}, "reset_user_env must be true or false", id="int-checkbox"),
    pytest.param(
        {"image": ["w_2024_10"]}, "image must be a string, not list", id="list-not-string"
    ),
]


async def test_rest_api_rejects_bad_user_options(hub: InProcessHub) -> None:
    """Every case of BAD_OPTIONS, on one hub (each case is one request; a hub takes seconds)."""
    name = "reject-user"
    await create_user(hub, name)
    failures = []
    for case in BAD_OPTIONS:
        options, message = case.values
        status, reply = await hub.request("POST", f"/users/{name}/server", hub.spawn_body(options))
        _, model = await hub.request("GET", f"/users/{name}")
        if not (400 <= status < 500 and message in reply["message"]):
            failures.append(f"{case.id}: {status} {reply}")
        elif model["servers"] != {}:
            failures.append(f"{case.id}: a server exists: {model['servers']}")
    assert failures == []
    assert kube_writes(hub) == 0, "a Kubernetes object was written"


async def test_rest_api_valid_options_reach_the_pod(hub: InProcessHub) -> None:
    """The positive control: the same hub and emulator do see a pod for valid options."""
    name = "accept-user"
    await create_user(hub, name)
    options = {"image": "w_2024_10", "size": "small", "enable_debug": True}
    pod = await hub.spawn(name, options)
    container = pod["spec"]["containers"][0]
    assert container["image"] == f"{IMAGE_BASE}:w_2024_10@{DIGEST_W10}"
    assert "envFrom" not in container
    # The lab's Secret, written before the pod.
    names = {pod["metadata"]["name"] + "-secret"}
    written = [*await hub.kube_api.list("configmaps"), *await hub.kube_api.list("secrets")]
    env = resolve_lab_env([pod, *(b for b in written if b["metadata"]["name"] in names)])
    assert env["JUPYTER_IMAGE_SPEC"] == f"{IMAGE_BASE}:w_2024_10@{DIGEST_W10}"
    assert env["JUPYTER_IMAGE"] == f"{IMAGE_BASE}:w_2024_10"
    assert env["IMAGE_DESCRIPTION"] == "Weekly 2024_10"
    assert env["IMAGE_DIGEST"] == DIGEST_W10
    assert env["DEBUG"] == "TRUE"
    await hub.stop(name)


async def test_rest_api_reused_saved_options_fall_back(
    hub: InProcessHub, caplog: pytest.LogCaptureFixture
) -> None:
    """The hub saves even rejected options; a later spawn without options re-uses them."""
    name = "stale-user"
    await create_user(hub, name)
    bad = {"image": "w_2023_01", "size": "small"}
    status, reply = await hub.request("POST", f"/users/{name}/server", hub.spawn_body(bad))
    assert status == 400
    assert "w_2023_01 is not offered" in reply["message"]
    pod = await hub.spawn(name)  # no body: re-use saved
    container = pod["spec"]["containers"][0]
    assert container["image"] == f"{IMAGE_BASE}:recommended@{DIGEST_W10}"
    assert "Saved user option image is no longer valid" in caplog.text
    await hub.stop(name)


MALFORMED_BODIES = [
    pytest.param(
        b'{"image": "\xff\xfe"}', "not a valid tag or image reference", id="invalid-utf8-image"
    ),
    pytest.param(
        b'{"image": "w_2024_10", "shell": "/bin/sh\xff"}',
        "unknown option 'shell'",
        id="unknown-key-next-to-a-stray-byte",
    ),
]


@pytest.mark.parametrize(("options", "message"), MALFORMED_BODIES)
async def test_rest_api_rejects_malformed_bodies_before_any_kubernetes_write(
    hub: InProcessHub, options: bytes, message: str
) -> None:
    """Regression: the spawner read a body JupyterHub 6 decodes (invalid UTF-8 becomes
    U+FFFD) as "no options", so the lab started with the saved options or the defaults
    (201) instead of refusing the request. JupyterHub 5 refuses such a body itself."""
    import jupyterhub

    name = "malformed-user"
    await create_user(hub, name)
    hub_6 = int(jupyterhub.__version__.split(".")[0]) >= 6
    body = b'{"user_options": ' + options + b"}" if hub_6 else options
    status, reply = await hub.request("POST", f"/users/{name}/server", body)
    if hub_6:
        assert status == 400, reply
        assert message in reply["message"]
    else:  # JupyterHub 5 decodes the body strictly and fails the request itself
        assert status >= 400, reply
    assert kube_writes(hub) == 0, "a Kubernetes object was written"
    _, model = await hub.request("GET", f"/users/{name}")
    assert model["servers"] == {}
