"""The operator's policy, whoever wrote the LabServer: each hostile input is refused by name."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lsst_spawner.form.catalog import OptionsCatalog, SizeChoice
from lsst_spawner.operator.build import Rejected, parse_lab_server, police, read_template

from .site import NAMESPACE, declared_lab_server, operator_objects, site_config, template_for


async def _server_and_template(**lsst: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    config = site_config(**lsst)
    return await declared_lab_server(config, "rra", "", {}), await template_for(config)


def _set(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


HOSTILE: dict[str, tuple[str, Any, str, str]] = {
    "unlisted image": ("spec.image", "evil.example/miner:latest", "ImageRejected", "repository"),
    "unlisted tag": ("spec.image", "w_2020_01", "ImageRejected", "not offered"),
    "wrong digest": (
        "spec.image",
        "registry.example/sciplat-lab:w_2026_40@sha256:" + "c" * 64,
        "ImageRejected",
        "digest",
    ),
    "uid 0": ("spec.identity.uid", 0, "IdentityRejected", "uid"),
    "uid below the minimum": ("spec.identity.uid", 999, "IdentityRejected", "uid"),
    "no gid": ("spec.identity.gid", None, "IdentityRejected", "gid"),
    "gid 0": ("spec.identity.gid", 0, "IdentityRejected", "gid"),
    "size not offered": ("spec.size", "huge", "SizeRejected", "huge"),
    "hostPath volume": (
        "spec.volumes",
        [{"name": "root", "hostPath": {"path": "/"}}],
        "ForbiddenFields",
        "spec.volumes",
    ),
    "privileged flag": ("spec.privileged", True, "ForbiddenFields", "spec.privileged"),
    "security context": (
        "spec.options.securityContext",
        {"privileged": True},
        "ForbiddenFields",
        "securityContext",
    ),
    "foreign template": (
        "spec.templateRef.namespace",
        "kube-system",
        "ForeignNamespace",
        "kube-system",
    ),
    "foreign secret": ("spec.secretRef.namespace", "other", "ForeignNamespace", "other"),
    "env beyond the hub's": (
        "spec.hub.env",
        {"LD_PRELOAD": "/tmp/x.so"},
        "ForbiddenFields",
        "LD_PRELOAD",
    ),
    "token in hub env": (
        "spec.hub.env",
        {"JUPYTERHUB_API_TOKEN": "stolen"},
        "ForbiddenFields",
        "JUPYTERHUB_API_TOKEN",
    ),
    "unsafe username": ("spec.identity.username", "root\nx", "IdentityRejected", "username"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_lab_servers_are_rejected(case: str) -> None:
    path, value, reason, words = HOSTILE[case]
    server, template = await _server_and_template()
    assert await operator_objects(template, server)  # the unaltered resource builds
    hostile = copy.deepcopy(server)
    _set(hostile, path, value)
    with pytest.raises(Rejected) as caught:
        await operator_objects(template, hostile)
    assert caught.value.reason == reason, caught.value
    assert words in caught.value.message


async def test_size_quota_is_enforced() -> None:
    server, template = await _server_and_template(lab_size_quota={"*": ["small"]})
    hostile = copy.deepcopy(server)
    hostile["spec"]["size"] = "large"
    with pytest.raises(Rejected) as caught:
        await operator_objects(template, hostile)
    assert caught.value.reason == "SizeRejected"
    assert "quota" in caught.value.message
    hostile["spec"]["size"] = "small"
    assert await operator_objects(template, hostile)


async def test_pod_fields_come_only_from_the_template() -> None:
    """What the pod holds beyond the builders' own parts is the template's, expanded."""
    server, template = await _server_and_template()
    objects = await operator_objects(template, server)
    pod = objects[-1]
    lab = pod["spec"]["containers"][0]
    assert lab["securityContext"]["allowPrivilegeEscalation"] is False
    assert lab["securityContext"]["runAsUser"] == 4137
    host_paths = [v for v in pod["spec"]["volumes"] if "hostPath" in v]
    assert host_paths == [{"name": "scratch", "hostPath": {"path": "/scratch/rra"}}]
    assert pod["spec"]["nodeSelector"] == {"lab-node": "true"}


async def test_size_quota_applies_to_the_lab_menus_profiles_too() -> None:
    """With the lab menu's catalog (its profiles, not the template's sizes), the quota holds."""
    server, template = await _server_and_template(lab_size_quota={"*": ["small"]})
    site = read_template(template)
    menu = await site.traits.get_menu()
    profiles = OptionsCatalog(
        menu=menu, sizes=(SizeChoice("small"), SizeChoice("heavy")), default_size="small"
    )
    hostile = copy.deepcopy(server)
    hostile["spec"]["size"] = "heavy"
    hostile["metadata"]["uid"] = "0000-uid"
    with pytest.raises(Rejected) as caught:
        await police(parse_lab_server(hostile), site, menu, namespace=NAMESPACE, catalog=profiles)
    assert caught.value.reason == "SizeRejected"
    assert "quota" in caught.value.message
    hostile["spec"]["size"] = "small"
    policed = await police(
        parse_lab_server(hostile), site, menu, namespace=NAMESPACE, catalog=profiles
    )
    assert policed.options.size == "small"
