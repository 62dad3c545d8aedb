"""LSSTSpawner against the Kubernetes API emulator: spawn, progress, stop, nothing left behind."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from kubespawner import clients
from traitlets.config import Config

from lsst_spawner.offline import OfflineHub, OfflineServer, OfflineUser
from lsst_spawner.rbac import Z2JH_HUB_ROLE_RULES, HubFeatures, required_rules
from lsst_spawner.spawner import LSSTSpawner
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.kube.podenv import resolve_lab_env
from lsst_spawner.testing.oauth.identity import identity_for

DIGEST = "sha256:" + "c" * 64
#: Where the menu's images come from; the OCI runs point it (and DIGEST) at the real registry.
IMAGE_BASE = "registry.example.org/sciplat-lab"
TOKEN = "lifecycle-test-api-token-value"


def spawner_config(namespace: str) -> Config:
    c = Config()
    c.LSSTSpawner.namespace = namespace
    c.LSSTSpawner.image_source = "static"
    c.LSSTSpawner.static_image_base = IMAGE_BASE
    c.LSSTSpawner.static_image_tags = ["recommended", "w_2026_46", "w_2026_45"]
    c.LSSTSpawner.static_image_digests = {"recommended": DIGEST, "w_2026_46": DIGEST}
    c.LSSTSpawner.lab_spawn_timeout = "60s"
    c.LSSTSpawner.kubernetes_retry_budget = "20s"
    c.LSSTSpawner.kubernetes_request_timeout = "5s"
    return c


def make_spawner(
    kube_api: KubeHandle, name: str, cls: type[LSSTSpawner] = LSSTSpawner, **options: Any
) -> LSSTSpawner:
    user = OfflineUser(name, {"identity": identity_for(name).to_dict()})
    spawner = cls(config=spawner_config(kube_api.namespace), user=user, hub=OfflineHub())
    spawner.server = OfflineServer(user)
    spawner.api_token = TOKEN
    spawner.user_options = options
    spawner.lab_options_fresh = True
    return spawner


@pytest.fixture(params=["z2jh", "lsst-spawner rbac"])
def kube_role(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    """Every test here runs with the hub bound to z2jh's hub Role, then to the printed one."""
    if request.param == "z2jh":
        return [dict(rule) for rule in Z2JH_HUB_ROLE_RULES]
    return required_rules(HubFeatures())


def _use_oci(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The OCI kubelet, with the menu pointed at the stand-in lab in the real registry."""
    base, digests = request.getfixturevalue("lab_stand_in")
    monkeypatch.setattr(sys.modules[__name__], "IMAGE_BASE", base)
    monkeypatch.setattr(sys.modules[__name__], "DIGEST", digests["w_2026_46"])
    return request.getfixturevalue("oci_kubelet")


@pytest.fixture(params=["stub", "oci"])
def stub_kubelet(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The kubelet of most tests: stub mode, then again the OCI mode (the lab in runc)."""
    if request.param == "oci":
        node = _use_oci(request, monkeypatch)
    else:
        node = request.getfixturevalue("kubelet")
        node.mode = "stub"
    clients.load_config.cache_clear()
    yield node
    clients.load_config.cache_clear()


def secret_values(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


@pytest.fixture(params=["process", "oci"])
def lab_kubelet(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A kubelet that runs the lab's command: a local process, or in runc."""
    if request.param == "oci":
        return _use_oci(request, monkeypatch)
    return request.getfixturevalue("kubelet")


async def lab_objects(kube_api: KubeHandle) -> dict[str, list[str]]:
    return {
        kind: sorted(o["metadata"]["name"] for o in await kube_api.list(kind))
        for kind in ("pods", "configmaps", "secrets")
    }


async def test_spawn_and_stop_leave_nothing_behind(kube_api: KubeHandle, stub_kubelet: Any) -> None:
    spawner = make_spawner(kube_api, "rra", image="w_2026_46", size="small")
    progress_events: list[dict[str, Any]] = []

    async def follow() -> None:
        async for event in spawner.progress():
            progress_events.append(event)

    start = spawner.start()
    follower = asyncio.create_task(follow())
    url = await asyncio.wait_for(start, 60)
    await asyncio.wait_for(follower, 30)
    assert url.startswith("http://127.")
    assert spawner.lab_spawn is None, "the attempt (with the Secret's values) ends with the start"
    assert spawner.lab_spec is None
    assert spawner.lab_objects is None
    assert await lab_objects(kube_api) == {
        "pods": ["nb-rra"],
        "configmaps": [],
        "secrets": ["nb-rra-secret"],
    }
    pod = await kube_api.get("pods", "nb-rra")
    assert pod["spec"]["containers"][0]["image"].endswith(f":w_2026_46@{DIGEST}")
    assert TOKEN not in json.dumps(pod)
    # One write besides the pod, the lab's Secret (z2jh's hub Role grants no ConfigMaps).
    assert [kube_api.counters.get("create", kind) for kind in ("configmaps", "secrets")] == [0, 1]
    assert "envFrom" not in pod["spec"]["containers"][0]
    secret = await kube_api.get("secrets", "nb-rra-secret")
    env = resolve_lab_env([secret, pod])
    assert env["JUPYTERHUB_API_TOKEN"] == TOKEN
    assert env["JUPYTERHUB_USER"] == "rra"
    assert env["USER"] == "rra"
    assert env["CONTAINER_SIZE"].startswith("small")

    percentages = [event["progress"] for event in progress_events]
    assert percentages == sorted(percentages)
    assert percentages[-1] == 100
    messages = " | ".join(event["message"] for event in progress_events)
    for expected in ("Checked your identity", "Image: Weekly 2026_46", "/etc/passwd", "Scheduled"):
        assert expected in messages
    assert all({"timestamp", "severity"} <= set(event) for event in progress_events)

    await spawner.stop(now=True)
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}


async def _collect(events: Any) -> list[dict[str, Any]]:
    return [event async for event in events]


async def test_a_progress_page_that_connects_after_start_returned_sees_the_whole_spawn(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    # JupyterHub keeps the spawn pending (adding the proxy route) after start() returned; a
    # progress page that connects then once saw only "ready" (found by the browser e2e test
    # under load): it is shown every step and the pod's events, then ready.
    spawner = make_spawner(kube_api, "rra", image="w_2026_46", size="small")
    start = spawner.start()
    early_page = asyncio.create_task(_collect(spawner.progress()))
    await asyncio.wait_for(start, 60)
    early = await asyncio.wait_for(early_page, 30)
    assert spawner.lab_spawn is None
    late = await _collect(spawner.progress())
    messages = [event["message"] for event in late]
    assert any("Image: Weekly 2026_46" in m for m in messages), messages
    assert any(m.startswith("Scheduled") for m in messages), messages
    percentages = [event["progress"] for event in late]
    assert percentages == sorted(percentages)
    assert percentages.count(100) == 1, "only the last event is at 100"
    # Both pages are shown the same spawn: the same events at the same percentages.
    assert late == early
    # It keeps the steps only: nothing of the Secret's values.
    assert TOKEN not in json.dumps(late)
    assert TOKEN not in json.dumps(vars(spawner.finished_spawn_progress), default=str)
    await spawner.stop(now=True)


async def test_the_lab_process_gets_the_environment_its_objects_describe(
    kube_api: KubeHandle, lab_kubelet: Any
) -> None:
    # A real process (as the e2e tests' jupyterhub-singleuser): it saves its environment,
    # then serves its directory on the pod's address (0.0.0.0 is replaced by the kubelet).
    script = (
        "import http.server, json, os, sys\n"
        "json.dump(dict(os.environ), open('env.json', 'w'))\n"
        "http.server.ThreadingHTTPServer("
        "(sys.argv[1], 8888), http.server.SimpleHTTPRequestHandler).serve_forever()\n"
    )
    clients.load_config.cache_clear()
    spawner = make_spawner(kube_api, "rra", image="w_2026_46", size="small")
    spawner.cmd = [sys.executable, "-c", script, "0.0.0.0"]
    spawner.environment = {"SITE_PLAIN": "plain", "SITE_BIN": "$(HOME)/bin"}
    try:
        url = urlsplit(await asyncio.wait_for(spawner.start(), 60))
        async with aiohttp.ClientSession() as http:
            # The pod runs once its process started; it listens a moment later.
            for _ in range(100):
                try:
                    async with http.get(f"http://{url.netloc}/env.json") as response:
                        if response.status == 200:
                            seen = await response.json(content_type=None)
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
        objects = [
            await kube_api.get("secrets", "nb-rra-secret"),
            await kube_api.get("pods", "nb-rra"),
        ]
        expected = resolve_lab_env(objects)
        ip = url.hostname or ""
        assert {k: seen.get(k) for k in expected} == {
            k: v.replace("0.0.0.0", ip) for k, v in expected.items()
        }
        assert seen["JUPYTERHUB_API_TOKEN"] == TOKEN
        assert seen["USER"] == "rra"
        assert seen["HOME"] == "/home/rra"
        assert seen["JUPYTERHUB_USER"] == "rra"
        assert seen["SITE_PLAIN"] == "plain"
        assert seen["SITE_BIN"] == "/home/rra/bin"
        in_pod = {e["name"]: e for e in objects[1]["spec"]["containers"][0]["env"]}
        assert in_pod["SITE_PLAIN"] == {"name": "SITE_PLAIN", "value": "plain"}
    finally:
        await spawner.stop(now=True)
        clients.load_config.cache_clear()
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}


def writes(kube_api: KubeHandle) -> int:
    """Every write request the emulator has received (failed ones included)."""
    return sum(kube_api.counters.get(verb) for verb in ("create", "update", "patch", "delete"))


@pytest.fixture
def stub_only(kube_api: KubeHandle, request: pytest.FixtureRequest) -> Any:
    node = request.getfixturevalue("kubelet")
    node.mode = "stub"
    clients.load_config.cache_clear()
    yield node
    clients.load_config.cache_clear()


async def test_a_spawn_writes_one_object_more_than_kubespawner(
    kube_api: KubeHandle, stub_only: Any
) -> None:
    from kubespawner import KubeSpawner

    user = OfflineUser("plain", None)
    plain = KubeSpawner(config=spawner_config(kube_api.namespace), user=user, hub=OfflineHub())
    plain.namespace = kube_api.namespace
    plain.server = OfflineServer(user)
    plain.api_token = TOKEN
    plain.image = f"{IMAGE_BASE}:w_2026_46"
    before = writes(kube_api)
    await asyncio.wait_for(plain.start(), 60)
    kubespawner_writes = writes(kube_api) - before
    before = writes(kube_api)
    await plain.stop(now=True)
    kubespawner_stop_writes = writes(kube_api) - before

    spawner = make_spawner(kube_api, "rra", image="w_2026_46")
    before = writes(kube_api)
    await asyncio.wait_for(spawner.start(), 60)
    assert writes(kube_api) - before == kubespawner_writes + 1 == 2
    before = writes(kube_api)
    await spawner.stop(now=True)
    # The pod and the Secret; no delete of a pre-0.1.0 -env Secret this lab never had.
    assert writes(kube_api) - before == kubespawner_stop_writes + 1 == 2
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}


async def _create_env_secret(kube_api: KubeHandle, name: str) -> None:
    from kubernetes_asyncio import client

    body = {"metadata": {"name": name}, "data": {"OLD": "eWVz"}, "immutable": True}
    async with kube_api.api_client(admin=True) as api:
        await client.CoreV1Api(api).create_namespaced_secret(kube_api.namespace, body)


@pytest.mark.parametrize("pod_gone", [False, True])
async def test_a_lab_of_the_two_secret_layout_is_stopped_cleanly_after_an_upgrade(
    kube_api: KubeHandle, stub_only: Any, pod_gone: bool
) -> None:
    # A lab as a hub before 0.1.0 started it: its env in nb-rra-env, read with envFrom.
    await _create_env_secret(kube_api, "nb-rra-env")
    old = make_spawner(kube_api, "rra", image="w_2026_46")
    old.extra_container_config = {"envFrom": [{"secretRef": {"name": "nb-rra-env"}}]}
    await asyncio.wait_for(old.start(), 60)
    assert (await lab_objects(kube_api))["secrets"] == ["nb-rra-env", "nb-rra-secret"]
    state = old.get_state()
    if pod_gone:  # the pod died or was deleted: the hub cannot see which layout it had
        from kubernetes_asyncio import client

        async with kube_api.api_client(admin=True) as api:
            await client.CoreV1Api(api).delete_namespaced_pod("nb-rra", kube_api.namespace)

    # The upgraded hub loads the saved state and stops the lab.
    user = OfflineUser("rra", {"identity": identity_for("rra").to_dict()})
    upgraded = LSSTSpawner(config=spawner_config(kube_api.namespace), user=user, hub=OfflineHub())
    upgraded.load_state(state)
    await upgraded.stop(now=True)
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}


async def test_rejected_options_create_nothing(kube_api: KubeHandle, stub_kubelet: Any) -> None:
    from tornado.web import HTTPError

    spawner = make_spawner(kube_api, "rra", image="other.registry.io/evil:latest")
    with pytest.raises(HTTPError) as info:
        await spawner.start()
    assert info.value.status_code == 400
    assert kube_api.counters.get("create", "pods") == 0
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}


async def test_a_failed_start_deletes_the_secret(kube_api: KubeHandle, stub_kubelet: Any) -> None:
    # Every pod create is refused with a non-transient error after the Secret exists:
    # the start fails and the Secret is deleted again.
    kube_api.faults.error_rate(1.0, 403, verbs=("create",), resources=("pods",))
    spawner = make_spawner(kube_api, "rra")
    with pytest.raises(Exception, match="403"):
        await asyncio.wait_for(spawner.start(), 60)
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}


async def test_when_the_secret_is_refused_nothing_is_left(
    kube_api: KubeHandle, stub_kubelet: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = "nb-rra-secret"
    from lsst_spawner.testing.kube import ApiError

    assert kube_api.emulator is not None
    store = kube_api.emulator.store
    create = store.create

    def refuse(resource: str, namespace: Any, body: Any, **kwargs: Any) -> Any:
        if resource == "secrets" and body["metadata"]["name"] == refused:
            raise ApiError(403, "refused by the test", "Forbidden")
        return create(resource, namespace, body, **kwargs)

    monkeypatch.setattr(store, "create", refuse)
    spawner = make_spawner(kube_api, "rra")
    with pytest.raises(Exception, match="403"):
        await asyncio.wait_for(spawner.start(), 60)
    assert kube_api.counters.get("create", "pods") == 0
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}


async def test_a_token_copied_into_the_environment_fails_before_any_write(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    from tornado.web import HTTPError

    spawner = make_spawner(kube_api, "rra")
    spawner.environment = {"TOKEN_COPY": TOKEN}  # a site's mistake: the env would hold it
    with pytest.raises(HTTPError) as info:
        await asyncio.wait_for(spawner.start(), 60)
    assert info.value.status_code == 500
    assert "$.pod.spec.containers[0].env[" in str(info.value.log_message)
    assert "].value: api_token" in str(info.value.log_message)
    assert TOKEN not in str(info.value.log_message)
    assert [kube_api.counters.get("create", kind) for kind in ("configmaps", "secrets")] == [0, 0]
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}
    assert spawner.lab_spawn is None


async def test_transient_faults_are_retried(kube_api: KubeHandle, stub_kubelet: Any) -> None:
    kube_api.faults.error_rate(1.0, 503, verbs=("create",), resources=("secrets",), times=2)
    kube_api.faults.error_rate(1.0, 500, verbs=("create",), resources=("secrets",), times=1)
    spawner = make_spawner(kube_api, "rra")
    await asyncio.wait_for(spawner.start(), 60)
    assert kube_api.counters.faults_injected("error") >= 3
    await spawner.stop(now=True)
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}


async def test_stop_after_a_template_change_uses_the_saved_pod_name(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    spawner = make_spawner(kube_api, "rra")
    await asyncio.wait_for(spawner.start(), 60)
    state = spawner.get_state()
    assert state["pod_name"] == "nb-rra"

    # A restarted hub with a new template: the lab it finds keeps its old names.
    config = spawner_config(kube_api.namespace)
    config.LSSTSpawner.lab_pod_name_template = "lab-{username}"
    user = OfflineUser("rra", {"identity": identity_for("rra").to_dict()})
    restarted = LSSTSpawner(config=config, user=user, hub=OfflineHub())
    assert restarted.pod_name == "lab-rra"
    restarted.load_state(state)
    assert restarted.pod_name == "nb-rra"
    await restarted.stop(now=True)
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}


async def test_the_created_pod_is_the_rendered_manifest(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    spawner = make_spawner(kube_api, "rra", image="w_2026_46")
    await asyncio.wait_for(spawner.start(), 60)
    created = await kube_api.get("pods", "nb-rra")
    probe = make_spawner(kube_api, "rra", image="w_2026_46")
    expected = (await probe.render_lab_objects())[1]
    for key in ("labels", "annotations"):
        assert created["metadata"].get(key) == expected["metadata"].get(key)
    lab, wanted = created["spec"]["containers"][0], expected["spec"]["containers"][0]
    for key in ("image", "env", "envFrom", "volumeMounts", "securityContext", "resources"):
        assert lab.get(key) == wanted.get(key), key
    for key in ("volumes", "securityContext"):
        assert created["spec"][key] == expected["spec"][key], key
    await spawner.stop(now=True)


async def test_a_modify_pod_hook_gets_a_v1pod_and_its_change_is_kept(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    from kubernetes_asyncio.client import V1Pod

    seen: list[Any] = []

    def hook(spawner: Any, pod: Any) -> Any:
        seen.append(pod)
        pod.metadata.labels["site/hooked"] = "yes"
        return pod

    spawner = make_spawner(kube_api, "rra", image="w_2026_46")
    spawner.modify_pod_hook = hook
    await asyncio.wait_for(spawner.start(), 60)
    assert len(seen) == 1
    assert isinstance(seen[0], V1Pod)
    pod = await kube_api.get("pods", "nb-rra")
    assert pod["metadata"]["labels"]["site/hooked"] == "yes"
    assert pod["spec"]["securityContext"]["runAsUser"] == identity_for("rra").uid
    await spawner.stop(now=True)
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}


class CountingUser(OfflineUser):
    """An OfflineUser that counts how often its auth_state is decrypted (read)."""

    reads = 0

    async def get_auth_state(self) -> dict[str, Any] | None:
        self.reads += 1
        return await super().get_auth_state()


async def test_the_auth_state_jupyterhub_decrypted_for_the_spawn_is_used_once(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    stored = {"identity": identity_for("rra").to_dict()}
    user = CountingUser("rra", stored)
    spawner = LSSTSpawner(config=spawner_config(kube_api.namespace), user=user, hub=OfflineHub())
    spawner.server = OfflineServer(user)
    spawner.api_token = TOKEN
    spawner.user_options = {"image": "w_2026_46"}
    spawner.lab_options_fresh = True
    hooked: list[Any] = []
    spawner.auth_state_hook = lambda s, state: hooked.append(state)
    # What JupyterHub does before start(): decrypt auth_state and run the hook with it.
    given = {"identity": {**identity_for("rra").to_dict(), "name": "From The Hook"}}
    await spawner.run_auth_state_hook(given)
    assert hooked == [given], "the site's auth_state_hook still runs"
    await asyncio.wait_for(spawner.start(), 60)
    assert user.reads == 0, "not decrypted a second time"
    assert spawner.lab_spawn is None, "the attempt (and the auth_state) is gone once the lab runs"
    pod = await kube_api.get("pods", "nb-rra")
    assert "From The Hook" in json.dumps(pod["spec"]["containers"][0]["env"])
    await spawner.stop(now=True)
    # A start without the hook (an older hub, or a direct call) reads it itself.
    await asyncio.wait_for(spawner.start(), 60)
    assert user.reads == 1
    await spawner.stop(now=True)


async def test_only_the_pod_is_kept_while_the_spawn_waits_for_it(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    seen: dict[str, Any] = {}

    class Watching(LSSTSpawner):
        async def _make_create_pod_request(self, pod: Any, request_timeout: float) -> bool:
            attempt = self.lab_spawn
            assert attempt is not None
            seen.update(spec=attempt.spec, objects=attempt.objects, pod=pod, sent=json.dumps(pod))
            return await super()._make_create_pod_request(pod, request_timeout)

    spawner = make_spawner(kube_api, "rra", Watching, image="w_2026_46")
    await asyncio.wait_for(spawner.start(), 60)
    assert seen["spec"] is None, "the spec (with the secret values) is released before the wait"
    assert seen["objects"] is None
    sent = json.loads(seen["sent"])
    assert sent["metadata"]["name"] == "nb-rra"
    assert TOKEN not in seen["sent"]
    assert seen["pod"] == {}, "the manifest KubeSpawner keeps is emptied once the pod exists"
    created = await kube_api.get("pods", "nb-rra")
    assert created["spec"]["containers"][0]["image"] == sent["spec"]["containers"][0]["image"]
    await spawner.stop(now=True)
    assert await lab_objects(kube_api) == {"pods": [], "configmaps": [], "secrets": []}


async def test_a_pod_whose_create_is_retried_is_sent_whole_each_time(
    kube_api: KubeHandle, stub_kubelet: Any
) -> None:
    """The manifest is emptied only after the create succeeded, not after a failed attempt."""
    sent: list[dict[str, Any]] = []

    class Flaky(LSSTSpawner):
        async def _make_create_pod_request(self, pod: Any, request_timeout: float) -> bool:
            sent.append(json.loads(json.dumps(pod)))
            if len(sent) == 1:
                # What a transient failure returns to KubeSpawner's backoff: try again.
                return False
            return await super()._make_create_pod_request(pod, request_timeout)

    spawner = make_spawner(kube_api, "rra", Flaky, image="w_2026_46")
    await asyncio.wait_for(spawner.start(), 60)
    assert len(sent) == 2
    assert sent[0] == sent[1]
    assert sent[1]["metadata"]["name"] == "nb-rra"
    await spawner.stop(now=True)


async def test_services_and_after_pod_created_hook_read_the_created_pod(
    kube_api: KubeHandle, stub_kubelet: Any, kube_role: list[dict[str, Any]]
) -> None:
    """KubeSpawner's steps after the create read the reflector's pod, not the emptied manifest."""
    if kube_role == required_rules(HubFeatures()):  # the printed Role, for services this time
        kube_api.set_hub_role(required_rules(HubFeatures(services=True)))
    hooked: list[Any] = []
    spawner = make_spawner(kube_api, "rra", image="w_2026_46")
    spawner.services_enabled = True
    spawner.after_pod_created_hook = lambda s, pod: hooked.append(pod)
    await asyncio.wait_for(spawner.start(), 60)
    assert len(hooked) == 1
    assert hooked[0]["metadata"]["name"] == "nb-rra"
    assert hooked[0]["metadata"]["uid"]
    service = await kube_api.get("services", "nb-rra")
    assert service["spec"]["ports"][0]["port"] == 8888
    await spawner.stop(now=True)
