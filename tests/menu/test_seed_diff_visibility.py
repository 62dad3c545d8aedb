"""Seeding from the traitlets menu, diffs between documents, and what a group sees."""

from __future__ import annotations

from datetime import timedelta

from traitlets.config import Config

from lsst_spawner.checks import spawner_settings
from lsst_spawner.images.menu import MenuPolicy
from lsst_spawner.lab.sizes import LabSize, build_resources, parse_cpu, parse_memory
from lsst_spawner.menu import (
    CuratedImage,
    ImageState,
    MenuDocument,
    check_menu,
    diff_menus,
    resolve_saved_image,
    seed_menu,
    seed_menu_from_settings,
    visible_images,
    visible_profiles,
)

from .conftest import make_profile

POLICY = MenuPolicy(
    recommended_tag="recommended",
    alias_tags=("latest_weekly",),
    releases=2,
    weeklies=3,
    dailies=0,
    pinned_tags=("r23_0_1",),
    dropdown_max_count=50,
    dropdown_max_age=timedelta(days=90),
)
SIZES = [LabSize("small", 1.0, 4 * 2**30), LabSize("medium", 2.0, 8 * 2**30)]


def test_seed_reproduces_the_traitlets_menu() -> None:
    document = seed_menu(SIZES, "medium", 0.25, POLICY)
    assert check_menu(document.to_json_data(), {}) == document
    assert document.menu_policy() == POLICY
    assert [p.name for p in document.profiles] == ["small", "medium"]
    assert document.default_profile() == document.profiles[1]
    for size, profile in zip(SIZES, document.profiles, strict=True):
        resources = build_resources(size, 0.25)
        assert parse_cpu(profile.cpu_limit) == size.cpu
        assert parse_memory(profile.memory_limit) == size.memory
        assert profile.cpu_guarantee == resources["requests"]["cpu"]
        assert parse_memory(profile.memory_guarantee) == int(resources["requests"]["memory"])
        assert profile.node_group is None
        assert profile.groups == ()
    assert [p.memory_guarantee for p in document.profiles] == ["1Gi", "2Gi"]  # readable


def test_seed_from_a_hub_config() -> None:
    config = Config()
    config.JupyterHub.spawner_class = "lsst"
    config.LSSTSpawner.image_source = "static"
    config.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
    config.LSSTSpawner.static_image_tags = ["w_2024_05", "recommended"]
    config.LSSTSpawner.image_menu_weeklies = 7
    config.LSSTSpawner.lab_sizes = [{"name": "tiny", "cpu": "500m", "memory": "2Gi"}]
    config.LSSTSpawner.lab_default_size = "tiny"
    document = seed_menu_from_settings(spawner_settings(config))
    assert document.image_policy.weeklies == 7
    assert [(p.name, p.cpu_limit, p.memory_limit, p.default) for p in document.profiles] == [
        ("tiny", "500m", "2Gi", True)
    ]


def test_diff_names_each_change_by_entry() -> None:
    old = MenuDocument(
        images=(CuratedImage(tag="recommended", default=True), CuratedImage(tag="w_2024_01")),
        profiles=(make_profile("small", default=True), make_profile("medium")),
    )
    new = MenuDocument(
        image_policy=old.image_policy.model_copy(update={"weeklies": 5}),
        images=(
            CuratedImage(tag="recommended", default=True),
            CuratedImage(tag="w_2024_01", state=ImageState.HIDDEN),
        ),
        profiles=(make_profile("small", cpu="2", default=True), make_profile("gpu")),
    )
    assert diff_menus(old, new) == [
        "~ image_policy.weeklies: 2 -> 5",
        "~ images[w_2024_01].state: 'shown' -> 'hidden'",
        "+ profiles[gpu]",
        "- profiles[medium]",
        "~ profiles[small].cpu_limit: '1' -> '2'",
    ]
    assert diff_menus(old, old) == []


def test_diff_reports_reordering() -> None:
    a = MenuDocument(profiles=(make_profile("a", default=True), make_profile("b")))
    b = MenuDocument(profiles=(make_profile("b"), make_profile("a", default=True)))
    assert diff_menus(a, b) == ["~ profiles: order changed"]


def test_two_groups_see_different_menus() -> None:
    document = MenuDocument(
        images=(
            CuratedImage(tag="recommended", default=True),
            CuratedImage(tag="exp_gpu", groups=("gpu-users",)),
            CuratedImage(tag="w_2024_01", state=ImageState.HIDDEN),
        ),
        profiles=(
            make_profile("small", default=True),
            make_profile("gpu", groups=("gpu-users", "staff")),
        ),
    )
    assert [i.tag for i in visible_images(document, ["astro"])] == ["recommended"]
    assert [i.tag for i in visible_images(document, ["gpu-users"])] == ["recommended", "exp_gpu"]
    assert [p.name for p in visible_profiles(document, ["astro"])] == ["small"]
    assert [p.name for p in visible_profiles(document, ["staff"])] == ["small", "gpu"]


def test_saved_images_follow_deprecation_and_hiding() -> None:
    document = MenuDocument(
        images=(
            CuratedImage(tag="recommended", default=True),
            CuratedImage(tag="w_2024_05"),
            CuratedImage(tag="w_2024_01", state=ImageState.DEPRECATED, redirect_to="w_2024_05"),
            CuratedImage(tag="w_2023_50", state=ImageState.HIDDEN),
        ),
        profiles=(make_profile("small", default=True),),
    )
    assert resolve_saved_image(document, "w_2024_05").message is None
    assert resolve_saved_image(document, "d_2024_01_01").tag == "d_2024_01_01"
    moved = resolve_saved_image(document, "w_2024_01")
    assert moved.tag == "w_2024_05"
    assert moved.message == ("w_2024_01 is deprecated; w_2024_05 was chosen instead")
    hidden = resolve_saved_image(document, "w_2023_50")
    assert hidden.tag == "recommended"
    assert "no longer offered" in (hidden.message or "")
