"""Menu documents: the schema and every save rule, each with the hostile input itself."""

from __future__ import annotations

from typing import Any

import pytest

from lsst_spawner.menu import (
    MenuInvalidError,
    MenuProblem,
    NodeGroup,
    check_menu,
    node_groups_by_name,
    parse_menu,
)

GPU = NodeGroup(
    name="gpu",
    node_selector={"pool": "gpu"},
    tolerations=({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},),
    extended_resources={"nvidia.com/gpu": 1},
    max_cpu="8",
    max_memory="64Gi",
)
NODE_GROUPS = node_groups_by_name([GPU])


def menu(**changes: Any) -> dict[str, Any]:
    """A valid document as JSON data, with top-level keys replaced."""
    data: dict[str, Any] = {
        "image_policy": {"weeklies": 2, "pinned_tags": ["r23_0_1"]},
        "images": [
            {"tag": "recommended", "default": True},
            {"tag": "w_2024_05", "display_name": "Weekly 5", "groups": ["beta"]},
        ],
        "profiles": [
            {
                "name": "small",
                "cpu_limit": "1",
                "cpu_guarantee": "250m",
                "memory_limit": "4Gi",
                "memory_guarantee": "1Gi",
                "default": True,
            },
            {
                "name": "gpu-large",
                "cpu_limit": 8,
                "cpu_guarantee": 2,
                "memory_limit": "64Gi",
                "memory_guarantee": "16Gi",
                "node_group": "gpu",
                "groups": ["gpu-users"],
            },
        ],
    }
    data.update(changes)
    return data


def problems_of(data: Any) -> list[MenuProblem]:
    with pytest.raises(MenuInvalidError) as caught:
        check_menu(data, NODE_GROUPS)
    return caught.value.problems


def fields_of(data: Any) -> set[str]:
    return {p.field for p in problems_of(data)}


def test_a_valid_menu_passes_and_keeps_its_values() -> None:
    document = check_menu(menu(), NODE_GROUPS)
    assert document.default_profile() is not None
    assert document.default_profile().name == "small"  # type: ignore[union-attr]
    assert document.profiles[1].cpu_limit == "8"
    assert document.menu_policy().recommended_tag == "recommended"
    assert document.menu_policy().pinned_tags == ("r23_0_1",)


def test_not_a_mapping() -> None:
    assert problems_of(["images"]) == [MenuProblem("", "a menu must be a mapping, not list")]


def test_unknown_field_is_named() -> None:
    data = menu()
    data["profiles"][0]["gpus"] = 1
    assert fields_of(data) == {"profiles[0].gpus"}


def test_bad_quantities_name_the_field() -> None:
    data = menu()
    data["profiles"][0]["cpu_limit"] = "lots"
    data["profiles"][1]["memory_guarantee"] = "12 parsecs"
    problems = problems_of(data)
    assert {p.field for p in problems} == {"profiles[0].cpu_limit", "profiles[1].memory_guarantee"}
    assert any("'lots' is not a CPU quantity" in p.message for p in problems)


def test_bad_tag_and_duplicate_pin() -> None:
    data = menu(image_policy={"pinned_tags": ["r23", "r23"], "alias_tags": ["bad tag"]})
    data["images"][1]["tag"] = "-x"
    assert fields_of(data) == {
        "image_policy.pinned_tags",
        "image_policy.alias_tags[0]",
        "images[1].tag",
    }


def test_negative_count_is_refused() -> None:
    assert fields_of(menu(image_policy={"weeklies": -1})) == {"image_policy.weeklies"}


def test_profile_names_are_unique() -> None:
    data = menu()
    data["profiles"][1]["name"] = "small"
    problems = problems_of(data)
    assert problems == [
        MenuProblem("profiles[1].name", "'small' is already profiles[0]; names must be unique")
    ]


def test_image_tags_are_unique() -> None:
    data = menu()
    data["images"][1]["tag"] = "recommended"
    assert fields_of(data) == {"images[1].tag"}


def test_hostile_profile_name_is_refused() -> None:
    data = menu()
    data["profiles"][1]["name"] = "<script>alert(1)</script>"
    assert fields_of(data) == {"profiles[1].name"}


@pytest.mark.parametrize("kind", ["images", "profiles"])
def test_no_default_is_refused(kind: str) -> None:
    data = menu()
    for entry in data[kind]:
        entry["default"] = False
    assert problems_of(data) == [
        MenuProblem(kind, f"exactly one of the {kind} must be the default; none is")
    ]


@pytest.mark.parametrize("kind", ["images", "profiles"])
def test_two_defaults_are_refused(kind: str) -> None:
    data = menu()
    data[kind][1]["default"] = True
    data[kind][1]["groups"] = []
    assert problems_of(data) == [
        MenuProblem(f"{kind}[1].default", f"{kind}[0] is already the default; exactly one may be")
    ]


def test_default_visible_to_everyone_and_shown() -> None:
    data = menu()
    data["images"][0]["groups"] = ["staff"]
    data["images"][0]["state"] = "hidden"
    data["profiles"][0]["groups"] = ["staff"]
    assert fields_of(data) == {"images[0].groups", "images[0].state", "profiles[0].groups"}


def test_no_profiles() -> None:
    assert problems_of(menu(profiles=[])) == [
        MenuProblem("profiles", "at least one profile is required")
    ]


def test_guarantee_over_limit() -> None:
    data = menu()
    data["profiles"][0]["cpu_guarantee"] = "1500m"
    data["profiles"][0]["memory_guarantee"] = "5Gi"
    assert fields_of(data) == {"profiles[0].cpu_guarantee", "profiles[0].memory_guarantee"}


def test_profile_over_its_node_group_bounds() -> None:
    data = menu()
    data["profiles"][1]["cpu_limit"] = "9"
    data["profiles"][1]["memory_limit"] = "65Gi"
    problems = problems_of(data)
    assert {p.field for p in problems} == {"profiles[1].cpu_limit", "profiles[1].memory_limit"}
    assert "9 is more than node group 'gpu' allows (8)" in {p.message for p in problems}


def test_unknown_node_group() -> None:
    data = menu()
    data["profiles"][1]["node_group"] = "tpu"
    assert problems_of(data) == [
        MenuProblem("profiles[1].node_group", "'tpu' is not a configured node group (gpu)")
    ]


def test_deprecated_image_needs_a_shown_redirect_target() -> None:
    data = menu()
    data["images"].append({"tag": "w_2024_01", "state": "deprecated"})
    assert problems_of(data) == [
        MenuProblem("images[2].redirect_to", "a deprecated image needs a redirect target")
    ]
    data["images"][2]["redirect_to"] = "w_2024_01"
    assert fields_of(data) == {"images[2].redirect_to"}
    data["images"][2]["redirect_to"] = "w_2099_01"
    assert problems_of(data)[0].message == "'w_2099_01' is not one of the images"
    data["images"][1]["state"] = "hidden"
    data["images"][2]["redirect_to"] = "w_2024_05"
    assert "a redirect target must be shown" in problems_of(data)[0].message
    data["images"][1]["state"] = "shown"
    check_menu(data, NODE_GROUPS)


def test_redirect_without_deprecation() -> None:
    data = menu()
    data["images"][1]["redirect_to"] = "recommended"
    assert fields_of(data) == {"images[1].redirect_to"}


def test_node_group_extended_resource_names() -> None:
    with pytest.raises(ValueError, match="not an extended resource name"):
        NodeGroup(name="x", extended_resources={"gpu": 1})
    with pytest.raises(ValueError, match="reserved"):
        NodeGroup(name="x", extended_resources={"kubernetes.io/cpu": 1})
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        NodeGroup(name="x", extended_resources={"nvidia.com/gpu": 0})


def test_node_groups_defined_twice() -> None:
    with pytest.raises(ValueError, match="'gpu' is defined twice"):
        node_groups_by_name([GPU, GPU])


def test_parse_menu_returns_problems_without_raising() -> None:
    document, problems = parse_menu({"schema_version": 99})
    assert document is None
    assert [p.field for p in problems] == ["schema_version"]
