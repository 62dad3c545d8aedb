"""The pure parts of the lab menu, prepull and spec-change handling in operator mode."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.images.prepull import apply_presence, build_prepull_state
from lsst_spawner.operator.build import MENU_DB_URL_ENV, Rejected, read_template
from lsst_spawner.operator.prepull import published_state, state_to_publish
from lsst_spawner.operator.status import changed_spec_fields, spec_digest

from .site import DIGEST, IMAGE_BASE, site_config, template_for

GPU = {"name": "gpu", "node_selector": {"pool": "gpu"}, "extended_resources": {"nvidia.com/gpu": 1}}


async def _template(tmp_path: Path, **lab_menu: Any) -> dict[str, Any]:
    config = site_config()
    config.LabMenu.db_url = f"sqlite:///{tmp_path / 'menu.sqlite'}"
    config.LabMenu.node_groups = [GPU]
    template = await template_for(config)
    template["spec"]["labMenu"].update(lab_menu)
    return template


async def test_a_lab_menu_template_reads_with_the_operators_database_url(tmp_path: Path) -> None:
    template = await _template(tmp_path)
    assert template["spec"]["labMenu"] == {"nodeGroups": [GPU], "revisionCheckInterval": 1.0}
    site = read_template(template, f"sqlite:///{tmp_path / 'menu.sqlite'}")
    assert site.lab_menu is not None
    assert site.lab_menu.config.LabMenu.node_groups == [GPU]
    with pytest.raises(Rejected, match=MENU_DB_URL_ENV) as missing:
        read_template(template, None)
    assert missing.value.reason == "InvalidTemplate"
    assert read_template(await template_for(site_config())).lab_menu is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"nodeGroups": [{**GPU, "extended_resources": {"kubernetes.io/gpu": 1}}]}, "node_groups"),
        ({"nodeGroups": [GPU, GPU]}, "is defined twice"),
        ({"nodeGroups": [{**GPU, "privileged": True}]}, "node_groups[0]"),
        ({"revisionCheckInterval": 3600}, "revisionCheckInterval"),
        ({"dbUrl": "sqlite:////tmp/elsewhere.sqlite"}, "dbUrl"),
    ],
)
async def test_a_faulty_lab_menu_rejects_the_template_naming_the_field(
    tmp_path: Path, change: dict[str, Any], named: str
) -> None:
    template = await _template(tmp_path, **change)
    with pytest.raises(Rejected) as rejected:
        read_template(template, f"sqlite:///{tmp_path / 'menu.sqlite'}")
    assert rejected.value.reason == "InvalidTemplate"
    assert named in rejected.value.message


def _node(name: str, *images: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {}},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "images": [{"names": [image], "sizeBytes": 1} for image in images],
        },
    }


async def test_the_published_prepull_state_marks_the_menu_as_the_nodes_would() -> None:
    site = read_template(await template_for(site_config(image_menu_weeklies=1)))
    menu = await site.traits.get_menu()
    pinned = f"{IMAGE_BASE}@{DIGEST}"  # w_2026_40, the recommended and radio image
    nodes = [
        _node("node-a", pinned, f"{IMAGE_BASE}:w_2026_39", "other.example/unrelated:1"),
        _node("node-b", f"{IMAGE_BASE}:w_2026_39"),
    ]
    state = build_prepull_state(nodes, {}, [], datetime(2026, 12, 2, tzinfo=UTC))
    body = state_to_publish(state, menu)
    assert "other.example/unrelated:1" not in str(body)  # only the menu's images
    assert body["nodes"][0] == {
        "name": "node-a",
        "imageCount": 3,
        "images": sorted([pinned, f"{IMAGE_BASE}:w_2026_39"]),
    }
    read = published_state(copy.deepcopy(body))
    assert read is not None
    assert read.node_names == ("node-a", "node-b")
    assert apply_presence(menu, read) == apply_presence(menu, state)
    marked = apply_presence(menu, read)
    presence = {image.tag: image.presence for image in (*marked.radio, *marked.dropdown)}
    assert presence["w_2026_40"] == "some"
    assert presence["w_2026_39"] == "all"


@pytest.mark.parametrize(
    "hostile",
    [None, "nodes", {"nodes": "node-a"}, {"nodes": [{"images": []}]}, {"nodes": [None]}],
)
def test_a_malformed_published_state_is_ignored(hostile: Any) -> None:
    assert published_state(hostile) is None


def test_spec_changes_are_named_and_digested() -> None:
    diff = [
        ("change", ("size",), "small", "large"),
        ("change", ("image",), "a", "b"),
        ("add", ("options", "enableDebug"), None, True),
    ]
    assert changed_spec_fields(diff) == ["spec.image", "spec.options.enableDebug", "spec.size"]
    assert spec_digest({"a": 1, "b": [1]}) == spec_digest({"b": [1], "a": 1})
    assert spec_digest({"a": 1}) != spec_digest({"a": 2})
