"""``lsst-spawner doctor`` against the emulator (hub bound to z2jh's Role) and a real registry."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.cli import main
from lsst_spawner.rbac import Z2JH_HUB_ROLE_RULES
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.ports import free_port
from lsst_spawner.testing.registry.fixtures import RegistryFixture

pytestmark = pytest.mark.integration


def write_config(
    tmp_path: Path,
    namespace: str,
    registry: str,
    *,
    repository: str = "lsst-sqre/sciplat-lab",
    recommended: str = "recommended",
    extra: str = "",
) -> str:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        f"""
c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.namespace = {namespace!r}
c.LSSTSpawner.image_source = "registry"
c.LSSTSpawner.registry_host = {registry!r}
c.LSSTSpawner.registry_repository = {repository!r}
c.LSSTSpawner.registry_insecure_hosts = [{registry!r}]
c.LSSTSpawner.image_recommended_tag = {recommended!r}
{extra}
"""
    )
    return str(path)


def doctor(
    config: str, kube_api: KubeHandle, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[str]]:
    started = time.monotonic()
    code = main(["doctor", "-f", config, "--kubeconfig", str(kube_api.kubeconfig)])
    assert time.monotonic() - started < 60  # a generous bound; the goal (10 s) is in the docs
    return code, capsys.readouterr().out.splitlines()


Doctor = Callable[..., tuple[int, list[str]]]


@pytest.fixture
def run(
    tmp_path: Path,
    kube_api: KubeHandle,
    local_registry: RegistryFixture,
    capsys: pytest.CaptureFixture[str],
) -> Doctor:
    """``run(**config)``: doctor on a config for the test's namespace and the local registry."""

    def go(namespace: str | None = None, registry: str | None = None, **kw: str) -> Any:
        config = write_config(
            tmp_path, namespace or kube_api.namespace, registry or local_registry.host_port, **kw
        )
        return doctor(config, kube_api, capsys)

    return go


def problems(lines: list[str]) -> list[str]:
    return [line.removeprefix("PROBLEM: ") for line in lines if line.startswith("PROBLEM: ")]


def test_a_good_setup(run: Doctor, kube_api: KubeHandle, local_registry: RegistryFixture) -> None:
    code, lines = run()
    assert problems(lines) == []
    assert code == 0
    assert lines[-1] == "OK: no problems"
    assert "ok: permission: pods: create, delete, list, watch" in lines
    assert f"ok: namespace: {kube_api.namespace} exists" in lines
    digest = local_registry.digests["recommended"]
    assert (
        f"ok: image: {local_registry.host_port}/lsst-sqre/sciplat-lab:recommended is {digest}"
        in lines
    )
    # The namespace was probed by a dry run: z2jh's hub may not read namespaces, and nothing
    # was written.
    assert kube_api.counters.get("create", "secrets") == 1
    assert kube_api.emulator is not None
    assert kube_api.emulator.list_objects("secrets", kube_api.namespace) == []


def test_a_missing_permission_is_printed_with_the_rule_that_grants_it(
    run: Doctor, kube_api: KubeHandle
) -> None:
    # z2jh's Role without secrets, and with events read-only but no watch.
    kube_api.set_hub_role(
        [
            {
                "apiGroups": [""],
                "resources": ["pods"],
                "verbs": ["get", "watch", "list", "create", "delete"],
            },
            {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list"]},
        ]
    )
    code, lines = run()
    assert code == 1
    ns = kube_api.namespace
    assert problems(lines) == [
        f"permission: the hub cannot create, delete, list secrets in namespace {ns}; add this "
        'rule to its Role: {"apiGroups": [""], "resources": ["secrets"], '
        '"verbs": ["create", "delete", "list"]}',
        f"permission: the hub cannot watch events in namespace {ns}; add this rule to its "
        'Role: {"apiGroups": [""], "resources": ["events"], "verbs": ["watch"]}',
    ]


def test_an_unreachable_registry_and_a_missing_namespace(run: Doctor, kube_api: KubeHandle) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    # The hub gets z2jh's rules in every namespace (a ClusterRoleBinding), so only the
    # namespace's absence is wrong there.
    emulator = kube_api.emulator
    assert emulator is not None
    rbac = "rbac.authorization.k8s.io"
    role = {"metadata": {"name": "z2jh-hub"}, "rules": [dict(r) for r in Z2JH_HUB_ROLE_RULES]}
    binding = {
        "metadata": {"name": "z2jh-hub"},
        "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "z2jh-hub"},
        "subjects": [{"kind": "ServiceAccount", "name": "hub", "namespace": kube_api.namespace}],
    }
    emulator.call(lambda: emulator.access.set_object("clusterroles", None, role))
    emulator.call(lambda: emulator.access.set_object("clusterrolebindings", None, binding))
    code, lines = run(namespace="no-such-namespace", registry=closed)
    assert code == 1
    found = problems(lines)
    assert "namespace: no-such-namespace does not exist" in found
    registry = [p for p in found if p.startswith("registry: ")]
    assert len(registry) == 1
    assert registry[0].startswith(
        f"registry: {closed}/lsst-sqre/sciplat-lab did not answer with the configured credentials: "
    )
    # Every problem at once: the permission checks ran too (in that namespace, all granted).
    assert not [p for p in found if p.startswith("permission: ")]
    assert [line for line in lines if line.startswith("ok: permission: ")]


def test_a_missing_image(run: Doctor, local_registry: RegistryFixture) -> None:
    code, lines = run(recommended="w_2099_01")
    assert code == 1
    assert problems(lines) == [
        f"image: the recommended image {local_registry.host_port}/lsst-sqre/sciplat-lab:w_2099_01 "
        "has no manifest in the registry (LSSTSpawner.image_recommended_tag)"
    ]


def test_settings_problems_are_reported_with_the_cluster_checks(
    run: Doctor, kube_api: KubeHandle
) -> None:
    code, lines = run(extra='c.LSSTSpawner.lab_default_size = "gigantic"\n')
    assert code == 1
    found = problems(lines)
    assert any(p.startswith("settings: ") and "lab_default_size" in p for p in found), found
    assert "registry: not checked" in " ".join(found)
    assert f"ok: namespace: {kube_api.namespace} exists" in lines


def test_an_unreadable_kubeconfig(
    tmp_path: Path, local_registry: RegistryFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "labs", local_registry.host_port)
    code = main(["doctor", "-f", config, "--kubeconfig", str(tmp_path / "missing")])
    assert code == 1
    assert "PROBLEM: kubeconfig: cannot load it" in capsys.readouterr().out
