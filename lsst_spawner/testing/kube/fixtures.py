"""Pytest fixtures ``kube_api``, ``kube_role`` and ``kubelet``: the emulator, or a real cluster.

``kube_api`` starts a :class:`~lsst_spawner.testing.kube.KubeEmulator` in its own
thread, writes a kubeconfig into the test's temporary directory, sets
``KUBECONFIG`` for the test and yields a :class:`KubeHandle`. The kubeconfig's
user is the hub's service account, ``system:serviceaccount:<namespace>:hub``,
bound to a Role in the test's namespace whose rules are the ``kube_role``
fixture's: by default the Zero to JupyterHub hub Role
(:data:`~lsst_spawner.rbac.Z2JH_HUB_ROLE_RULES`). A test about another Role
overrides ``kube_role`` (``@pytest.mark.parametrize("kube_role", [rules])`` or
a fixture of that name); ``None`` makes the kubeconfig the administrator's.
:attr:`KubeHandle.admin_kubeconfig` is the administrator's either way. When the
environment variable ``LSST_SPAWNER_TEST_KUBECONFIG`` names a kubeconfig, the
handle points at that cluster instead: the test gets a fresh namespace, which
is deleted afterwards, and the inspection helpers go through the API.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from . import KubeEmulator
from .hub_role import HUB_ROLE_NAME, Z2JH_HUB_ROLE_RULES, hub_user_name, write_hub_kubeconfig
from .kubelet import ProcessKubelet

__all__ = ["KubeHandle", "kube_api", "kube_role", "kube_tls", "kubelet", "oci_kubelet"]

REAL_CLUSTER_ENV = "LSST_SPAWNER_TEST_KUBECONFIG"

_LIST_METHODS = {
    "pods": "list_namespaced_pod",
    "configmaps": "list_namespaced_config_map",
    "secrets": "list_namespaced_secret",
    "services": "list_namespaced_service",
    "events": "list_namespaced_event",
    "persistentvolumeclaims": "list_namespaced_persistent_volume_claim",
}


class KubeHandle:
    """What a test needs from the cluster: kubeconfig, namespace and inspection."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        emulator: KubeEmulator | None,
        *,
        admin_kubeconfig: Path | None = None,
        hub_user: str | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.emulator = emulator
        #: A kubeconfig of the cluster's administrator (the same file when the hub is admin).
        self.admin_kubeconfig = admin_kubeconfig or kubeconfig
        #: The user the hub's kubeconfig authenticates as; None when it is the administrator.
        self.hub_user = hub_user

    def set_hub_role(self, rules: Any) -> None:
        """Replace the rules of the hub's Role; RBAC decides the next request by them."""
        emulator = self._emu
        body = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": HUB_ROLE_NAME, "namespace": self.namespace},
            "rules": [dict(rule) for rule in rules],
        }
        emulator.call(lambda: emulator.access.set_object("roles", self.namespace, body))

    @property
    def real(self) -> bool:
        return self.emulator is None

    @property
    def _emu(self) -> KubeEmulator:
        if self.emulator is None:
            pytest.skip("needs the emulator (counters/faults), not a real cluster")
        return self.emulator

    @property
    def counters(self) -> Any:
        return self._emu.counters

    @property
    def faults(self) -> Any:
        return self._emu.faults

    @asynccontextmanager
    async def api_client(self, *, admin: bool = False) -> AsyncIterator[Any]:
        """A ``kubernetes_asyncio`` ApiClient as the hub (or, ``admin=True``, the administrator)."""
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        kubeconfig = self.admin_kubeconfig if admin else self.kubeconfig
        await config.load_kube_config(
            config_file=str(kubeconfig), client_configuration=configuration
        )
        async with client.ApiClient(configuration) as api:
            yield api

    async def list(
        self, resource: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        """Objects of a namespaced resource in ``namespace`` (default: the test's)."""
        namespace = namespace or self.namespace
        if self.emulator is not None:
            return self.emulator.list_objects(resource, namespace, label_selector)
        from kubernetes_asyncio import client

        async with self.api_client() as api:
            method = getattr(client.CoreV1Api(api), _LIST_METHODS[resource])
            kwargs = {"label_selector": label_selector} if label_selector else {}
            result = await method(namespace, _preload_content=False, **kwargs)
            items: list[dict[str, Any]] = (await result.json())["items"]
            return items

    async def get(self, resource: str, name: str, namespace: str | None = None) -> Any:
        """One object as a dict, or None when it does not exist."""
        namespace = namespace or self.namespace
        if self.emulator is not None:
            return self.emulator.get_object(resource, name, namespace)
        for obj in await self.list(resource, namespace):
            if obj["metadata"]["name"] == name:
                return obj
        return None


def _use_kubeconfig(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point subprocesses (``KUBECONFIG``) and this process at the kubeconfig.

    kubernetes_asyncio reads ``KUBECONFIG`` once, at import, into
    ``KUBE_CONFIG_DEFAULT_LOCATION``; an in-process KubeSpawner calls
    ``load_kube_config()`` without arguments, so that default is pointed here too.
    """
    import kubernetes_asyncio.config
    from kubernetes_asyncio.config import kube_config

    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    for module in (kube_config, kubernetes_asyncio.config):
        monkeypatch.setattr(module, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))


@pytest.fixture
def kube_role() -> list[dict[str, Any]] | None:
    """The rules of the hub's Role in ``kube_api``: z2jh's; ``None`` for the administrator."""
    return [dict(rule) for rule in Z2JH_HUB_ROLE_RULES]


@pytest.fixture
def kube_tls() -> bool:
    """Serve ``kube_api``'s emulator over https: kubectl sends a bearer token only over TLS."""
    return False


@pytest.fixture
def kube_api(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kube_role: list[dict[str, Any]] | None,
    kube_tls: bool,
) -> Iterator[KubeHandle]:
    """The emulator (or the real cluster of ``LSST_SPAWNER_TEST_KUBECONFIG``)."""
    namespace = f"lsst-test-{uuid.uuid4().hex[:8]}"
    real = os.environ.get(REAL_CLUSTER_ENV)
    if real:
        yield from _real_cluster(Path(real), namespace, monkeypatch)
        return
    emulator = KubeEmulator(namespaces=("default", namespace), tls=kube_tls).start_in_thread()
    admin = emulator.write_kubeconfig(tmp_path / "kubeconfig-admin", namespace)
    kubeconfig, hub_user = admin, None
    if kube_role is not None:
        kubeconfig = write_hub_kubeconfig(emulator, tmp_path / "kubeconfig", namespace, kube_role)
        hub_user = hub_user_name(namespace)
    _use_kubeconfig(kubeconfig, monkeypatch)
    try:
        yield KubeHandle(kubeconfig, namespace, emulator, admin_kubeconfig=admin, hub_user=hub_user)
    finally:
        emulator.stop_thread()


def _real_cluster(
    kubeconfig: Path, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[KubeHandle]:
    import asyncio

    from kubernetes_asyncio import client

    handle = KubeHandle(kubeconfig, namespace, None)

    async def namespace_call(create: bool) -> None:
        async with handle.api_client(admin=True) as api:
            v1 = client.CoreV1Api(api)
            if create:
                await v1.create_namespace(
                    client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))
                )
            else:
                await v1.delete_namespace(namespace)

    asyncio.run(namespace_call(True))
    _use_kubeconfig(kubeconfig, monkeypatch)
    try:
        yield handle
    finally:
        asyncio.run(namespace_call(False))


@pytest.fixture
def kubelet(kube_api: KubeHandle, tmp_path: Path) -> Iterator[ProcessKubelet | None]:
    """A process kubelet attached to the emulator (None on a real cluster).

    Process mode, every image present. Change ``kubelet.mode = "stub"`` or
    ``kubelet.images = {...}`` (a collection or a callable) before creating pods.
    """
    if kube_api.emulator is None:
        yield None
        return
    emulator = kube_api.emulator
    node = ProcessKubelet(emulator, workdir=tmp_path / "kubelet")
    emulator.run(node.start())
    try:
        yield node
    finally:
        emulator.run(node.stop())


@pytest.fixture
def oci_kubelet(kube_api: KubeHandle, tmp_path: Path) -> Iterator[ProcessKubelet]:
    """A kubelet in ``oci`` mode: every container runs in runc as its security context.

    Fails (never skips) when runc is missing or the tests do not run as root: an OCI
    test that silently skipped would hide that no container ran. Images come from the
    registry their reference names: publish them with
    :func:`~lsst_spawner.testing.kube.images.publish_image`.
    """
    from .oci import OciUnavailableError

    if kube_api.emulator is None:
        pytest.fail("the oci kubelet needs the emulator, not a real cluster", pytrace=False)
    emulator = kube_api.emulator
    try:
        node = ProcessKubelet(emulator, mode="oci", workdir=tmp_path / "kubelet")
    except (OciUnavailableError, PermissionError) as error:
        pytest.fail(f"the OCI kubelet cannot run here: {error}", pytrace=False)
    emulator.run(node.start())
    try:
        yield node
    finally:
        emulator.run(node.stop())
