"""The LabTemplate: one settings model for both modes, and the same objects in both."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from lsst_spawner.cli import main
from lsst_spawner.crd.settings import TEMPLATE_SETTING_NAMES, settings_from_template
from lsst_spawner.crd.template import expand_pod_template, pod_variables
from lsst_spawner.lab.traits import LabTraits
from lsst_spawner.operator.build import Rejected, read_template
from lsst_spawner.testing.golden import golden_checker

from .site import (
    declared_lab_server,
    in_hub_objects,
    operator_objects,
    site_config,
    template_for,
    without_owner,
)

CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "default-server": ("rra", "", {}),
    "named-server-debug": ("first.last", "big.run", {"image": "r29", "enable_debug": True}),
    "dotted-user-small": ("_odd.user-", "", {"image": "w_2026_39", "size": "small"}),
}


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Any:
    from pathlib import Path

    return golden_checker(request, Path(__file__).parent / "golden", "tests/operator")


@pytest.mark.parametrize("case", sorted(CASES))
async def test_both_modes_build_the_same_objects(case: str, golden: Any) -> None:
    """In-hub LSSTSpawner and the operator's builders, same inputs: equal but for the owner."""
    username, servername, options = CASES[case]
    config = site_config()
    template = await template_for(config)
    hub = await in_hub_objects(config, username, servername, options)
    server = await declared_lab_server(config, username, servername, options)
    operator = await operator_objects(template, server)
    assert without_owner(operator) == hub
    for obj in operator:
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner["kind"] == "LabServer"
        assert owner["name"] == server["metadata"]["name"]
    golden(case, {"labServer": server, "objects": operator})


def test_template_and_traits_give_one_settings_model() -> None:
    """The same values as traits and as template settings freeze to equal LabSettings."""
    values = {
        "lab_sizes": [{"name": "tiny", "cpu": "500m", "memory": "1Gi"}],
        "lab_default_size": "tiny",
        "lab_minimum_uid": 2000,
        "lab_extra_groups": [{"name": "lsstsvc", "gid": 990}],
        "lab_env": {"SITE": "x"},
        "lab_no_activity_timeout": "2h",
    }
    traits = LabTraits(**values)
    from_template, problems = settings_from_template(values)
    assert problems == []
    assert from_template is not None
    assert from_template.lab_settings() == traits.lab_settings()


def test_template_settings_name_every_lab_trait() -> None:
    lab = {name for name in LabTraits.class_trait_names(config=True) if name.startswith("lab_")}
    assert lab - {"lab_size_quota_hook"} <= set(TEMPLATE_SETTING_NAMES)


@pytest.mark.parametrize(
    ("settings", "where", "words"),
    [
        ({"lab_minimum_uid": 0}, "LSSTSpawner.lab_minimum_uid", "never run as root"),
        ({"lab_sizes": "big"}, "LabTemplate t spec.settings.lab_sizes", "expected a dict"),
        ({"hostPath": "/"}, "LabTemplate t spec.settings.hostPath", "not a setting"),
        ({"lab_size_quota_hook": "os.system"}, "spec.settings.lab_size_quota_hook", "not a"),
    ],
)
def test_bad_template_settings_are_named(settings: dict[str, Any], where: str, words: str) -> None:
    obj, problems = settings_from_template(settings, "LabTemplate t")
    assert obj is None
    assert any(where in p.where and words in p.message for p in problems), problems


def test_a_faulty_template_is_rejected_with_its_problems() -> None:
    body = {
        "apiVersion": "lab.lsst-spawner.io/v1alpha1",
        "kind": "LabTemplate",
        "metadata": {"name": "t"},
        "spec": {"settings": {"lab_minimum_uid": 0}, "podTemplate": {}},
    }
    with pytest.raises(Rejected) as caught:
        read_template(body)
    assert caught.value.reason == "InvalidTemplate"
    assert "LSSTSpawner.lab_minimum_uid" in caught.value.message


async def test_pod_variables_are_kubespawners_own() -> None:
    """The template's variables expand as KubeSpawner expands them, for awkward names."""
    from lsst_spawner.crd.from_config import base_pod_for
    from lsst_spawner.crd.template import hub_connection_env

    config = site_config()
    template = (await template_for(config))["spec"]["podTemplate"]
    for username, servername in [("first.last", ""), ("x" * 60, "s" * 40), ("a-b", "My Server")]:
        pod = await base_pod_for(config, username, servername)
        expanded = expand_pod_template(template, username, servername, hub_connection_env(pod))
        pod["metadata"].pop("name")
        tokens = ("JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN")  # in the hub's Secret instead
        lab = pod["spec"]["containers"][0]
        lab["env"] = [e for e in lab["env"] if e["name"] not in tokens]
        expanded["metadata"].pop("name", None)
        key = lambda e: e["name"]  # noqa: E731 - env order is not part of the pod's meaning
        for one in (pod, expanded):
            one["spec"]["containers"][0]["env"].sort(key=key)
        assert expanded == pod, (username, servername)
    assert pod_variables("first.last", "")["user_server"] == "first-last---23e1b5a0"


def test_template_from_config_prints_a_template(tmp_path: Any, capsys: Any) -> None:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        'c.JupyterHub.spawner_class = "lsst"\n'
        'c.LSSTSpawner.image_source = "static"\n'
        'c.LSSTSpawner.static_image_base = "registry.example/sciplat-lab"\n'
        'c.LSSTSpawner.static_image_tags = ["recommended"]\n'
        "c.LSSTSpawner.lab_minimum_uid = 3000\n"
        'c.KubeSpawner.environment = {"WHO": "{unescaped_username}"}\n'
    )
    assert main(["-f", str(path), "template-from-config", "--name", "site"]) == 0
    template = yaml.safe_load(capsys.readouterr().out)
    assert template["kind"] == "LabTemplate"
    assert template["metadata"]["name"] == "site"
    assert template["spec"]["settings"]["lab_minimum_uid"] == 3000
    env = template["spec"]["podTemplate"]["spec"]["containers"][0]["env"]
    assert {"name": "WHO", "value": "{unescaped_username}"} in env
    assert not [e for e in env if e["name"].startswith("JUPYTERHUB_")]
    assert "template-placeholder" not in json.dumps(template)
    assert read_template(template).lab.minimum_uid == 3000


def test_template_from_config_refuses_a_faulty_config(tmp_path: Any, capsys: Any) -> None:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text('c.JupyterHub.spawner_class = "lsst"\nc.LSSTSpawner.lab_minimum_uid = 0\n')
    assert main(["-f", str(path), "template-from-config"]) == 1
    assert "check-config" in capsys.readouterr().err
