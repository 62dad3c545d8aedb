"""The CRDs: generated from the models, structural, schema-valid, printed by `crds`."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
import yaml

from lsst_spawner.cli import main
from lsst_spawner.crd import build_crds
from lsst_spawner.crd.models import LabServer, LabServerStatus
from lsst_spawner.crd.schema import lab_server_crd, lab_template_crd


def _walk(node: dict[str, Any], path: str = "") -> list[str]:
    """Every departure from a structural schema under ``node``."""
    problems = []
    for banned in ("$ref", "anyOf", "oneOf", "allOf", "$defs", "title", "const"):
        if banned in node:
            problems.append(f"{path}: {banned}")
    typed = "type" in node or node.get("x-kubernetes-int-or-string")
    if not typed and not node.get("x-kubernetes-preserve-unknown-fields"):
        problems.append(f"{path}: no type")
    if "additionalProperties" in node and (
        "properties" in node or not isinstance(node["additionalProperties"], dict)
    ):
        problems.append(f"{path}: additionalProperties with properties, or not a schema")
    if node.get("default", 0) is None:
        problems.append(f"{path}: null default")
    for name, sub in (node.get("properties") or {}).items():
        problems += _walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        problems += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        problems += _walk(node["additionalProperties"], f"{path}{{}}")
    return problems


def _property_names(node: dict[str, Any]) -> list[str]:
    names = []
    for name, sub in (node.get("properties") or {}).items():
        names += [name, *_property_names(sub)]
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            names += _property_names(node[key])
    return names


@pytest.mark.parametrize("crd", build_crds(), ids=lambda crd: crd["spec"]["names"]["kind"])
def test_crds_are_structural_and_schema_valid(crd: dict[str, Any]) -> None:
    kubernetes_validate.validate(crd, "1.30", strict=True)
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    assert _walk(version["schema"]["openAPIV3Schema"]) == []
    assert "$ref" not in json.dumps(crd)


def test_lab_server_columns_show_user_server_image_phase_age() -> None:
    (version,) = lab_server_crd()["spec"]["versions"]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {
        "User": ".spec.user.name",
        "Server": ".spec.user.server",
        "Image": ".spec.image",
        "Phase": ".status.phase",
        "Age": ".metadata.creationTimestamp",
    }


def test_schemas_come_from_the_models() -> None:
    """The spec's and status' fields are the models' wire names; settings are the traits."""
    server = lab_server_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = server["properties"]["spec"]
    assert set(spec["properties"]) == {
        field.alias or name
        for name, field in LabServer.model_fields["spec"].annotation.model_fields.items()  # type: ignore[union-attr]
    }
    status = server["properties"]["status"]["properties"]
    assert set(status) == {f.alias or n for n, f in LabServerStatus.model_fields.items()}
    assert status["events"]["maxItems"] == 50
    assert not [name for name in _property_names(spec) if "token" in name.lower()]
    template = lab_template_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    settings = template["properties"]["spec"]["properties"]["settings"]["properties"]
    assert settings["lab_minimum_uid"] == {
        "type": "integer",
        "description": settings["lab_minimum_uid"]["description"],
    }
    assert settings["lab_spawn_timeout"]["x-kubernetes-int-or-string"] is True


def test_crds_command_prints_both(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds"]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["metadata"]["name"] for d in documents] == [
        "labtemplates.lab.lsst-spawner.io",
        "labservers.lab.lsst-spawner.io",
    ]
