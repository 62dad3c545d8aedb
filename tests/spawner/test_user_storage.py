"""The home claim and the namespace per user, against the emulator with RBAC.

The home claim is created on the first spawn (its creation retried like every
other write), re-used by the next, kept on stop and when JupyterHub deletes the
server; the hub needs only z2jh's Role for it. A namespace per user is created
on the first spawn with the site's annotations; it needs a ClusterRole, and
without one the spawn fails naming the refused request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubespawner import KubeSpawner, clients

from lsst_spawner.offline import OfflineHub, OfflineServer, OfflineUser
from lsst_spawner.spawner import LSSTSpawner
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.oauth.identity import identity_for

from .test_lifecycle import TOKEN, spawner_config

pytestmark = pytest.mark.integration


@pytest.fixture
def stub_node(kubelet: Any) -> Iterator[Any]:
    kubelet.mode = "stub"
    clients.load_config.cache_clear()
    yield kubelet
    clients.load_config.cache_clear()


def make(kube_api: KubeHandle, name: str, **traits: Any) -> LSSTSpawner:
    config = spawner_config(kube_api.namespace)
    for key, value in traits.items():
        setattr(config.LSSTSpawner, key, value)
    user = OfflineUser(name, {"identity": identity_for(name).to_dict()})
    spawner = LSSTSpawner(config=config, user=user, hub=OfflineHub())
    spawner.server = OfflineServer(user)
    spawner.api_token = TOKEN
    spawner.user_options = {"image": "w_2026_46", "size": "small"}
    spawner.lab_options_fresh = True
    return spawner


HOME = {
    "lab_home_claim_enabled": True,
    "lab_home_claim_storage_class": "fast",
    "lab_home_claim_size": "5Gi",
    "lab_home_claim_access_modes": ["ReadWriteMany"],
    "lab_volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "home-{username}"}}],
    "lab_volume_mounts": [{"mount_path": "/home", "volume": "home"}],
}


@pytest.mark.usefixtures("stub_node")
async def test_home_claim_created_retried_reused_and_kept(kube_api: KubeHandle) -> None:
    assert kube_api.emulator is not None
    # The first create answers 503: it is retried within the budget, like every write.
    faults = kube_api.faults
    faults.error_rate(1.0, 503, verbs="create", resources="persistentvolumeclaims", times=1)
    spawner = make(kube_api, "rra", **HOME)
    await spawner.start()
    claim = await kube_api.get("persistentvolumeclaims", "home-rra")
    assert claim is not None
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["resources"] == {"requests": {"storage": "5Gi"}}
    assert claim["metadata"]["labels"]["app.kubernetes.io/component"] == "home"
    uid = claim["metadata"]["uid"]
    messages = [e["message"] for e in spawner.finished_spawn_progress.events]
    assert "Created your home volume claim home-rra" in messages
    pod = await kube_api.get("pods", spawner.pod_name)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["home"]["persistentVolumeClaim"] == {"claimName": "home-rra"}
    assert kube_api.counters.get("create", "persistentvolumeclaims") == 2  # 503, then created

    await spawner.stop()
    assert await kube_api.get("pods", spawner.pod_name) is None
    assert (await kube_api.get("persistentvolumeclaims", "home-rra"))["metadata"]["uid"] == uid

    # The next spawn re-uses it (its create answers 409), whoever made it.
    again = make(kube_api, "rra", **HOME)
    await again.start()
    messages = [e["message"] for e in again.finished_spawn_progress.events]
    assert "Found your home volume claim home-rra" in messages
    await again.stop()
    # JupyterHub deleting the server or the user: KubeSpawner's delete_pvc would delete
    # its claim; the home claim stays.
    again.pvc_name = "home-rra"
    await again.delete_forever()
    assert (await kube_api.get("persistentvolumeclaims", "home-rra"))["metadata"]["uid"] == uid
    assert kube_api.counters.get("delete", "persistentvolumeclaims") == 0


@pytest.mark.usefixtures("stub_node")
async def test_without_home_claims_kubespawner_decides_delete_forever(
    kube_api: KubeHandle,
) -> None:
    """The override only keeps lsst_spawner's claim: KubeSpawner's own delete_pvc still works."""
    spawner = make(kube_api, "rra")
    spawner.pvc_name = "claim-rra"
    calls: list[str] = []

    async def deleted(self: Any, name: str, request_timeout: float) -> bool:
        calls.append(name)
        return True

    original = KubeSpawner._make_delete_pvc_request
    KubeSpawner._make_delete_pvc_request = deleted  # type: ignore[method-assign]
    try:
        await spawner.delete_forever()
    finally:
        KubeSpawner._make_delete_pvc_request = original  # type: ignore[method-assign]
    assert calls == ["claim-rra"]


def _namespace_traits(kube_api: KubeHandle) -> dict[str, Any]:
    return {
        "enable_user_namespaces": True,
        "user_namespace_template": f"{kube_api.namespace}-{{username}}",
        "user_namespace_annotations": {"example.org/owner": "{unescaped_username}"},
        "user_namespace_labels": {"example.org/team": "rubin"},
    }


@pytest.mark.usefixtures("stub_node")
@pytest.mark.parametrize("kube_role", [None])  # the administrator: a ClusterRole's rights
async def test_user_namespace_is_created_on_first_spawn(kube_api: KubeHandle) -> None:
    spawner = make(kube_api, "first.last", **_namespace_traits(kube_api))
    user_ns = spawner.namespace
    assert user_ns.startswith(f"{kube_api.namespace}-first-last---")
    await spawner.start()
    namespace = await kube_api.get("namespaces", user_ns)
    assert namespace is not None
    assert namespace["metadata"]["annotations"] == {"example.org/owner": "first.last"}
    assert namespace["metadata"]["labels"]["example.org/team"] == "rubin"
    assert await kube_api.get("pods", spawner.pod_name, user_ns) is not None
    names = {s["metadata"]["name"] for s in await kube_api.list("secrets", user_ns)}
    assert names == {f"{spawner.pod_name}-secret"}
    await spawner.stop()
    assert await kube_api.get("pods", spawner.pod_name, user_ns) is None
    assert await kube_api.list("secrets", user_ns) == []
    assert await kube_api.get("namespaces", user_ns) is not None  # kept: never deleted
    again = make(kube_api, "first.last", **_namespace_traits(kube_api))
    await again.start()  # the namespace exists: re-used
    await again.stop()


@pytest.mark.usefixtures("stub_node")
async def test_user_namespaces_need_more_than_z2jhs_role(kube_api: KubeHandle) -> None:
    spawner = make(kube_api, "rra", **_namespace_traits(kube_api))
    with pytest.raises(Exception, match=r"creating namespace .*: 403") as refused:
        await spawner.start()
    assert "namespaces" in str(refused.value)
    assert kube_api.counters.get("create", "secrets") == 0
