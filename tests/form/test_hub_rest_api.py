"""Each rejection through a real JupyterHub's REST API, with no Kubernetes write made.

Runs ``jupyterhub`` 6 (and configurable-http-proxy) as a process whose spawner is
LSSTSpawner with a static menu and whose Kubernetes API is a local recorder.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from kube_recorder import KubeRecorder
from menu_fixture import DIGEST_W10, HOSTILE_TAG, IMAGE_BASE, UNLISTED_DIGEST

from lsst_spawner.rbac import Z2JH_HUB_ROLE_RULES
from lsst_spawner.testing.hub import HubProcess
from lsst_spawner.testing.identity_auth import identity_for
from lsst_spawner.testing.kube.podenv import resolve_lab_env
from lsst_spawner.testing.kube.rbac import UserInfo, rule_allows
from lsst_spawner.testing.kube.rbac_api import request_attributes

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent


def stop_server(hub: HubProcess, name: str, timeout: float = 60) -> None:
    """Stop the user's server. JupyterHub 5 refuses while a spawn is pending (6 cancels it),
    and these spawns never finish (nothing runs the pods), so wait for the spawn to time out."""
    deadline = time.monotonic() + timeout
    while True:
        status, reply = hub.request("DELETE", f"/users/{name}/server")
        if status in (202, 204):
            return
        pending = status == 400 and "pending spawn" in str(reply)
        assert pending, reply
        assert time.monotonic() < deadline, f"still pending after {timeout:g}s: {reply}"
        time.sleep(1)


class Hub(HubProcess):
    """The module's hub, with the Kubernetes API recorder its spawner writes to."""

    def __init__(
        self, workdir: Path, config: str, *, recorder: KubeRecorder, **kwargs: Any
    ) -> None:
        super().__init__(workdir, config, **kwargs)
        self.recorder = recorder


def create_user(hub: Hub, name: str) -> None:
    """Create the user and give it an identity, as an admin would over the REST API."""
    assert hub.request("POST", f"/users/{name}")[0] in (201, 409)
    identity = identity_for(name).to_dict()
    status, reply = hub.request("PATCH", f"/users/{name}", {"auth_state": {"identity": identity}})
    assert status == 200, reply


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("hub")
    recorder = KubeRecorder().start()
    try:
        recorder.write_kubeconfig(str(tmp / "kubeconfig"))
        config = f"""
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "hub_spawner.StaticMenuSpawner"
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 2}}
c.KubeSpawner.namespace = "lsst-form-test"
c.KubeSpawner.k8s_api_host = "{recorder.url}"
c.KubeSpawner.start_timeout = 20
c.KubeSpawner.k8s_api_request_timeout = 5
"""
        with Hub(
            tmp,
            config,
            recorder=recorder,
            python_path=[HERE],
            env={"KUBECONFIG": str(tmp / "kubeconfig")},
        ) as hub:
            yield hub
    finally:
        recorder.stop()


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


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_rest_api_rejects_bad_user_options(hub: Hub, options: dict[str, Any], message: str) -> None:
    name = "reject-user"
    create_user(hub, name)
    before = hub.recorder.snapshot()
    status, reply = hub.request("POST", f"/users/{name}/server", hub.spawn_body(options))
    assert 400 <= status < 500, reply
    assert message in reply["message"]
    assert hub.recorder.snapshot() == before == [], "a Kubernetes object was written"
    status, model = hub.request("GET", f"/users/{name}")
    assert model["servers"] == {}


def test_rest_api_valid_options_reach_the_pod(hub: Hub) -> None:
    """The positive control: the same hub and recorder do see a pod for valid options."""
    name = "accept-user"
    create_user(hub, name)
    options = {"image": "w_2024_10", "size": "small", "enable_debug": True}
    status, reply = hub.request("POST", f"/users/{name}/server", hub.spawn_body(options))
    assert status in (201, 202), reply
    deadline = time.monotonic() + 20
    pods: list[Any] = []
    while not pods and time.monotonic() < deadline:
        pods = [w for w in hub.recorder.snapshot() if w[0] == "POST" and w[1].endswith("/pods")]
        time.sleep(0.1)
    assert pods, f"no pod was created:\n{hub.log_path.read_text()[-3000:]}"
    pod = pods[0][2]
    container = pod["spec"]["containers"][0]
    assert container["image"] == f"{IMAGE_BASE}:w_2024_10@{DIGEST_W10}"
    assert [e for e in container["env"] if "valueFrom" not in e] == [], "plain env in the pod"
    # The lab's env Secret and Secret, written before the pod.
    names = {pod["metadata"]["name"] + suffix for suffix in ("-env", "-secret")}
    written = [w[2] for w in hub.recorder.snapshot() if w[0] == "POST" and isinstance(w[2], dict)]
    env = resolve_lab_env([pod, *(b for b in written if b["metadata"]["name"] in names)])
    assert env["JUPYTER_IMAGE_SPEC"] == f"{IMAGE_BASE}:w_2024_10@{DIGEST_W10}"
    assert env["JUPYTER_IMAGE"] == f"{IMAGE_BASE}:w_2024_10"
    assert env["IMAGE_DESCRIPTION"] == "Weekly 2024_10"
    assert env["IMAGE_DIGEST"] == DIGEST_W10
    assert env["DEBUG"] == "TRUE"
    stop_server(hub, name)
    # Every request of that spawn and stop is one z2jh's hub Role allows.
    requests = [("GET", path) for path in hub.recorder.gets]
    requests += [(method, path) for method, path, _ in hub.recorder.snapshot()]
    assert any(method == "DELETE" for method, _ in requests), "the stop was recorded"
    assert [r for r in requests if not z2jh_hub_role_allows(*r)] == []


def z2jh_hub_role_allows(method: str, path: str) -> bool:
    """Whether z2jh's hub Role grants a request (discovery is every authenticated user's)."""
    url = urlsplit(path)
    attrs = request_attributes(UserInfo("hub"), method, url.path, dict(parse_qsl(url.query)))
    return not attrs.resource_request or any(rule_allows(r, attrs) for r in Z2JH_HUB_ROLE_RULES)


def test_rest_api_reused_saved_options_fall_back(hub: Hub) -> None:
    """The hub saves even rejected options; a later spawn without options re-uses them."""
    name = "stale-user"
    create_user(hub, name)
    bad = {"image": "w_2023_01", "size": "small"}
    status, reply = hub.request("POST", f"/users/{name}/server", hub.spawn_body(bad))
    assert status == 400
    assert "w_2023_01 is not offered" in reply["message"]
    before = len(hub.recorder.snapshot())
    status, reply = hub.request("POST", f"/users/{name}/server")  # no body: re-use saved
    assert status in (201, 202), reply
    deadline = time.monotonic() + 20
    pods: list[Any] = []
    while not pods and time.monotonic() < deadline:
        pods = [
            w for w in hub.recorder.snapshot()[before:] if w[0] == "POST" and w[1].endswith("/pods")
        ]
        time.sleep(0.1)
    assert pods, f"no pod was created:\n{hub.log_path.read_text()[-3000:]}"
    container = pods[0][2]["spec"]["containers"][0]
    assert container["image"] == f"{IMAGE_BASE}:recommended@{DIGEST_W10}"
    assert "Saved user option image is no longer valid" in hub.log_path.read_text()
    stop_server(hub, name)


def hub_major(hub: Hub) -> int:
    status, info = hub.request("GET", "/")
    assert status == 200, info
    return int(str(info["version"]).split(".")[0])


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
def test_rest_api_rejects_malformed_bodies_before_any_kubernetes_write(
    hub: Hub, options: bytes, message: str
) -> None:
    """Regression: the spawner read a body JupyterHub 6 decodes (invalid UTF-8 becomes
    U+FFFD) as "no options", so the lab started with the saved options or the defaults
    (201) instead of refusing the request. JupyterHub 5 refuses such a body itself."""
    name = "malformed-user"
    create_user(hub, name)
    before = hub.recorder.snapshot()
    body = b'{"user_options": ' + options + b"}" if hub_major(hub) >= 6 else options
    status, reply = hub.request("POST", f"/users/{name}/server", body)
    if hub_major(hub) >= 6:
        assert status == 400, reply
        assert message in reply["message"]
    else:  # JupyterHub 5 decodes the body strictly and fails the request itself
        assert status >= 400, reply
    assert hub.recorder.snapshot() == before, "a Kubernetes object was written"
    status, model = hub.request("GET", f"/users/{name}")
    assert model["servers"] == {}
