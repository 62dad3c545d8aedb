"""``lsst-spawner manifests --operator``: schema-valid, applied to the emulator, RBAC as meant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from lsst_spawner.cli import main
from lsst_spawner.testing.kube import KubeEmulator
from lsst_spawner.testing.kube.authn import service_account_user

from .conftest import LABSERVERS

pytestmark = pytest.mark.integration

#: Kinds the emulator does not serve: schema-checked only (the first test).
_NOT_SERVED = {"ServiceAccount", "Deployment"}
_PLURALS = {
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "NetworkPolicy": "networkpolicies",
    "CustomResourceDefinition": "customresourcedefinitions",
    "KopfPeering": "kopfpeerings.kopf.dev",
}


def _manifests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        'c.JupyterHub.spawner_class = "lsst"\n'
        'c.LSSTSpawner.namespace = "labs"\n'
        'c.LSSTSpawner.lab_backend = "operator"\n'
        'c.LSSTSpawner.image_source = "static"\n'
        'c.LSSTSpawner.static_image_base = "registry.example/sciplat-lab"\n'
        'c.LSSTSpawner.static_image_tags = ["recommended"]\n'
    )
    args = ["-f", str(config), "manifests", "--operator", "--hub-namespace", "hub"]
    assert main([*args, "--operator-image", "registry.example/lsst-spawner:1"]) == 0
    return list(yaml.safe_load_all(capsys.readouterr().out))


def test_operator_manifests_are_schema_valid_and_complete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    documents = _manifests(tmp_path, capsys)
    kinds = [(d["kind"], d["metadata"]["name"]) for d in documents]
    for expected in [
        ("CustomResourceDefinition", "labservers.lab.lsst-spawner.io"),
        ("CustomResourceDefinition", "labtemplates.lab.lsst-spawner.io"),
        ("ServiceAccount", "lsst-spawner-operator"),
        ("Role", "lsst-spawner-operator"),
        ("ClusterRole", "lsst-spawner-operator"),
        ("Deployment", "lsst-spawner-operator"),
        ("Role", "lsst-spawner-hub-operator-mode"),
    ]:
        assert expected in kinds
    for document in documents:
        if document["apiVersion"] != "kopf.dev/v1":
            kubernetes_validate.validate(document, "1.30", strict=True)
    (hub_role,) = [
        d
        for d in documents
        if d["metadata"]["name"] == "lsst-spawner-hub-operator-mode" and d["kind"] == "Role"
    ]
    resources = {r for rule in hub_role["rules"] for r in rule["resources"]}
    assert resources == {"labservers", "secrets", "events", "labtemplates"}
    (templates,) = [r for r in hub_role["rules"] if r["resources"] == ["labtemplates"]]
    assert templates["verbs"] == ["get"]  # the published prepull state, nothing more
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    (menu_url,) = container["env"]
    assert menu_url["name"] == "LSST_SPAWNER_MENU_DB_URL"
    assert menu_url["valueFrom"]["secretKeyRef"] == {
        "name": "lsst-spawner-menu-db",
        "key": "url",
        "optional": True,
    }
    assert container["image"] == "registry.example/lsst-spawner:1"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def _request(emulator: KubeEmulator, token: str, method: str, path: str, body: Any = None) -> int:
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback
        emulator.url + path,
        data,
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_operator_manifests_apply_and_give_the_hub_only_its_role(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    documents = _manifests(tmp_path, capsys)
    emulator = KubeEmulator(namespaces=("labs", "hub")).start_in_thread()
    try:
        ordered = sorted(documents, key=lambda d: d["kind"] != "CustomResourceDefinition")
        for document in ordered:
            if document["kind"] in _NOT_SERVED:
                continue
            namespace = document["metadata"].get("namespace")
            emulator.create_object(_PLURALS[document["kind"]], document, namespace)
        hub = emulator.call(emulator.access.authn.issue, service_account_user("hub", "hub"))
        labs = "/apis/lab.lsst-spawner.io/v1alpha1/namespaces/labs/labservers"
        assert _request(emulator, hub, "GET", labs) == 200
        assert _request(emulator, hub, "GET", "/api/v1/namespaces/labs/pods") == 403
        assert _request(emulator, hub, "GET", "/api/v1/nodes") == 403
        templates = "/apis/lab.lsst-spawner.io/v1alpha1/namespaces/labs/labtemplates"
        assert _request(emulator, hub, "GET", f"{templates}/lab") == 404  # allowed, not there
        assert _request(emulator, hub, "GET", templates) == 403  # get only, no list
        assert _request(emulator, hub, "GET", "/api/v1/namespaces/labs/secrets/x") == 403
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
        assert _request(emulator, hub, "POST", "/api/v1/namespaces/labs/secrets", secret) == 201
        operator = emulator.call(
            emulator.access.authn.issue, service_account_user("labs", "lsst-spawner-operator")
        )
        assert _request(emulator, operator, "GET", "/api/v1/namespaces/labs/pods") == 200
        assert _request(emulator, operator, "GET", "/api/v1/nodes") == 200  # the prepuller
        assert _request(emulator, operator, "GET", labs) == 200
        assert _request(emulator, operator, "DELETE", f"{labs}/none") == 403
        assert emulator.list_objects(LABSERVERS, "labs") == []
    finally:
        emulator.stop_thread()
