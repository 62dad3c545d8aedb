"""The menu policy: radio choices, aliases, pinned tags, the dropdown and its filters."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lsst_spawner.images import ImageMenu, TagKind
from lsst_spawner.images.menu import (
    INVALID_TAGS_KEPT,
    MenuPolicy,
    build_menu,
    is_valid_digest,
    placeholder_menu,
    tags_needing_digests,
)
from lsst_spawner.testing.measure import deep_size

BASE = "ghcr.io/lsst-sqre/sciplat-lab"
NOW = datetime(2024, 3, 20, 12, tzinfo=UTC)


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


TAGS = [
    "recommended",
    "latest_weekly",
    "r23_0_0",
    "r23_0_1",
    "r22_0_0",
    "r24_0_0_rc1",
    "r24_0_0_rc2",
    "w_2024_08",
    "w_2024_10",
    "w_2024_09",
    "w_2024_10-amd64",
    "w_2024_10-arm64",
    "w_2023_40",
    "d_2024_03_19",
    "d_2024_03_18",
    "d_2024_03_17",
    "d_2024_03_16",
    "d_2023_01_01",
    "exp_w_2024_10_nosudo",
    "exp_my_test",
    "something_else",
]
DIGESTS = {
    "recommended": digest(10),
    "latest_weekly": digest(10),
    "w_2024_10": digest(10),
    "w_2024_09": digest(9),
}
POLICY = MenuPolicy(alias_tags=("latest_weekly",))


def build(policy: MenuPolicy = POLICY, tags: list[str] = TAGS, digests=DIGESTS) -> ImageMenu:
    return build_menu(BASE, tags, digests, policy, NOW)


def radio_tags(menu: ImageMenu) -> list[str]:
    return [image.tag for image in menu.radio]


def dropdown_tags(menu: ImageMenu) -> list[str]:
    return [image.tag for image in menu.dropdown]


def test_default_menu() -> None:
    menu = build()
    # w_2024_10 has the digest of recommended and latest_weekly: shown as them.
    assert radio_tags(menu) == [
        "recommended",
        "latest_weekly",
        "r23_0_1",
        "w_2024_09",
        "d_2024_03_19",
        "d_2024_03_18",
        "d_2024_03_17",
    ]
    assert dropdown_tags(menu) == [
        "r23_0_0",
        "r22_0_0",
        "w_2024_08",
        "w_2023_40",
        "d_2024_03_16",
        "d_2023_01_01",
        "r24_0_0_rc2",
        "r24_0_0_rc1",
        "exp_w_2024_10_nosudo",
        "exp_my_test",
        "something_else",
    ]
    assert {image.choice for image in menu.radio} == {"radio"}
    assert {image.choice for image in menu.dropdown} == {"dropdown"}
    assert [(image.tag, image.shown_as) for image in menu.aliased] == [("w_2024_10", "recommended")]
    assert menu.complete
    assert menu.refreshed_at == NOW
    assert menu.invalid_tag_count == 0


def test_recommended_and_aliases_show_the_tag_they_point_at() -> None:
    menu = build()
    assert menu.recommended is not None
    assert menu.recommended.tag == "recommended"
    assert menu.recommended.display_name == "Recommended (Weekly 2024_10)"
    assert menu.recommended.kind is TagKind.ALIAS
    assert menu.recommended.digest == digest(10)
    assert menu.recommended.pinned_reference == f"{BASE}:recommended@{digest(10)}"
    latest = menu.find("latest_weekly")
    assert latest is not None
    assert latest.display_name == "Latest Weekly (Weekly 2024_10)"


def test_alias_without_known_target_keeps_its_own_name() -> None:
    menu = build(digests={"recommended": digest(77)})
    assert menu.recommended is not None
    assert menu.recommended.display_name == "Recommended"
    assert menu.recommended.digest == digest(77)


def test_alias_never_points_at_an_architecture_tag_or_alias() -> None:
    digests = {"recommended": digest(5), "latest_weekly": digest(5), "w_2024_10-amd64": digest(5)}
    menu = build(digests=digests)
    assert menu.recommended is not None
    assert menu.recommended.display_name == "Recommended"


def test_alias_points_at_the_first_tag_in_menu_order_with_its_digest() -> None:
    digests = {"recommended": digest(1), "w_2024_10": digest(1), "r23_0_1": digest(1)}
    menu = build(digests=digests)
    assert menu.recommended is not None
    assert menu.recommended.display_name == "Recommended (Release r23.0.1)"


def test_recommended_tag_may_be_a_real_tag() -> None:
    menu = build(replace(POLICY, recommended_tag="w_2024_09"))
    assert menu.recommended is not None
    assert menu.recommended.tag == "w_2024_09"
    assert menu.recommended.kind is TagKind.WEEKLY
    assert menu.recommended.display_name == "Recommended (Weekly 2024_09)"
    assert radio_tags(menu)[0] == "w_2024_09"
    # The plain "recommended" tag is then just an unknown tag in the dropdown.
    assert "recommended" in dropdown_tags(menu)
    assert radio_tags(menu).count("w_2024_09") == 1


def test_recommended_not_listed_by_the_source() -> None:
    menu = build(tags=[t for t in TAGS if t != "recommended"])
    assert menu.recommended is None
    assert radio_tags(menu)[0] == "latest_weekly"


@pytest.mark.parametrize(
    ("knob", "count", "expected"),
    [
        ("releases", 0, []),
        ("releases", 2, ["r23_0_1", "r23_0_0"]),
        ("releases", 10, ["r23_0_1", "r23_0_0", "r22_0_0"]),
        ("weeklies", 0, []),
        ("weeklies", 3, ["w_2024_09", "w_2024_08"]),  # w_2024_10 is shown as recommended
        ("dailies", 1, ["d_2024_03_19"]),
        ("dailies", 0, []),
        ("candidates", 1, ["r24_0_0_rc2"]),
        ("candidates", 2, ["r24_0_0_rc2", "r24_0_0_rc1"]),
        ("experimentals", 1, ["exp_w_2024_10_nosudo"]),
    ],
)
def test_count_knobs(knob: str, count: int, expected: list[str]) -> None:
    zero = {k: 0 for k in ("releases", "weeklies", "dailies", "candidates", "experimentals")}
    policy = replace(POLICY, **{**zero, knob: count})
    menu = build(policy)
    assert radio_tags(menu) == ["recommended", "latest_weekly", *expected]
    for tag in expected:
        assert tag not in dropdown_tags(menu)


def test_pinned_tags_come_after_aliases_even_hidden_or_unknown() -> None:
    policy = replace(
        POLICY, pinned_tags=("something_else", "w_2024_10-arm64", "r22_0_0", "not_listed")
    )
    menu = build(policy)
    assert radio_tags(menu)[:5] == [
        "recommended",
        "latest_weekly",
        "something_else",
        "w_2024_10-arm64",
        "r22_0_0",
    ]
    assert "not_listed" not in radio_tags(menu)
    assert "something_else" not in dropdown_tags(menu)


def test_a_pinned_tag_that_is_also_newest_is_shown_once() -> None:
    menu = build(replace(POLICY, pinned_tags=("w_2024_10",)))
    assert radio_tags(menu).count("w_2024_10") == 1
    assert radio_tags(menu)[2] == "w_2024_10"
    # The weekly count still fills from the newest weeklies.
    assert "w_2024_09" in radio_tags(menu)


def test_architecture_tags_are_hidden() -> None:
    menu = build()
    offered = {image.tag for image in menu.images}
    assert "w_2024_10-amd64" not in offered
    assert "w_2024_10-arm64" not in offered
    assert menu.find("w_2024_10-amd64") is None


def test_dropdown_max_count() -> None:
    menu = build(replace(POLICY, dropdown_max_count=3))
    assert dropdown_tags(menu) == ["r23_0_0", "r22_0_0", "w_2024_08"]


def test_dropdown_max_age_drops_old_dated_tags_only() -> None:
    menu = build(replace(POLICY, dropdown_max_age=timedelta(days=30)))
    tags = dropdown_tags(menu)
    # Dated and older than 2024-02-19: gone.
    assert "w_2023_40" not in tags
    assert "d_2023_01_01" not in tags
    # Dated and recent, or undated: kept.
    assert "w_2024_08" in tags
    assert "d_2024_03_16" in tags
    assert "r22_0_0" in tags
    assert "something_else" in tags
    assert "exp_my_test" in tags


def test_age_and_count_together() -> None:
    policy = replace(POLICY, dropdown_max_age=timedelta(days=30), dropdown_max_count=3)
    assert dropdown_tags(build(policy)) == ["r23_0_0", "r22_0_0", "w_2024_08"]
    policy = replace(policy, releases=3)
    assert dropdown_tags(build(policy)) == ["w_2024_08", "d_2024_03_16", "r24_0_0_rc2"]


def test_radio_choices_ignore_the_age_limit() -> None:
    menu = build(replace(POLICY, dropdown_max_age=timedelta(days=1), weeklies=5))
    assert "w_2023_40" in radio_tags(menu)


def test_digests_are_attached_and_bad_ones_ignored() -> None:
    digests = {
        "w_2024_10": digest(10),
        "w_2024_09": "sha256:not-hex",
        "r23_0_1": "md5:" + "0" * 32,
        "d_2024_03_19": digest(3).upper(),
        "not_a_listed_tag": digest(4),
    }
    menu = build(digests=digests)
    found = {image.tag: image.digest for image in menu.images}
    assert found["w_2024_10"] == digest(10)
    assert found["w_2024_09"] is None
    assert found["r23_0_1"] is None
    assert found["d_2024_03_19"] is None
    assert "not_a_listed_tag" not in found


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (digest(1), True),
        ("sha512:" + "a" * 128, True),
        ("sha256:" + "a" * 63, False),
        ("sha256:" + "A" * 64, False),
        ("sha256:" + "a" * 64 + "\n", False),
        ("", False),
        (None, False),
    ],
)
def test_is_valid_digest(value: object, valid: bool) -> None:
    assert is_valid_digest(value) is valid


def test_invalid_tags_are_left_out_and_recorded() -> None:
    hostile = '"><script>alert(1)</script>'
    junk = [f"bad tag {n}" for n in range(INVALID_TAGS_KEPT + 5)]
    menu = build(tags=[*TAGS, hostile, "a/b", *junk])
    assert menu.find(hostile) is None
    assert all(hostile not in image.display_name for image in menu.images)
    assert menu.invalid_tag_count == INVALID_TAGS_KEPT + 7
    assert menu.invalid_tags[:2] == (hostile, "a/b")
    assert len(menu.invalid_tags) == INVALID_TAGS_KEPT


def test_non_string_tags_from_a_misbehaving_source() -> None:
    menu = build(tags=[*TAGS, None, ["w_2024_11"], 7])  # type: ignore[list-item]
    assert menu.invalid_tag_count == 3
    assert len(menu.images) == len(build().images)


def test_duplicate_tags_count_once() -> None:
    assert build(tags=TAGS + TAGS) == build()


def test_empty_source() -> None:
    menu = build(tags=[], digests={})
    assert menu.radio == ()
    assert menu.dropdown == ()
    assert menu.recommended is None


def test_references() -> None:
    image = build().find("w_2024_09")
    assert image is not None
    assert image.reference == f"{BASE}:w_2024_09"
    assert image.pinned_reference == f"{BASE}:w_2024_09@{digest(9)}"


def test_tags_needing_digests_are_few() -> None:
    needed = tags_needing_digests(TAGS, POLICY)
    menu = build()
    radio = [*radio_tags(menu), *(image.tag for image in menu.aliased)]
    # The radio choices, then the newest of each kind shown with count 0.
    assert sorted(needed) == sorted([*radio, "r24_0_0_rc2", "exp_w_2024_10_nosudo"])


def test_tags_needing_digests_of_a_large_repository() -> None:
    tags = [f"w_{2000 + n // 52}_{n % 52 + 1:02d}" for n in range(10_000 // 2)]
    tags += [f"d_{2000 + n // 365}_{(n // 28) % 12 + 1:02d}_{n % 28 + 1:02d}" for n in range(5_000)]
    needed = tags_needing_digests(["recommended", *tags], MenuPolicy())
    assert len(needed) == 1 + 2 + 3


def test_placeholder_menu_offers_the_recommended_image() -> None:
    menu = placeholder_menu(BASE, POLICY)
    assert not menu.complete
    assert menu.refreshed_at is None
    assert menu.recommended is not None
    assert menu.recommended.tag == "recommended"
    assert menu.recommended.display_name == "Recommended"
    assert menu.recommended.reference == f"{BASE}:recommended"
    assert [image.tag for image in menu.radio] == ["recommended"]
    assert menu.find("recommended") is menu.recommended


def test_placeholder_with_a_real_recommended_tag() -> None:
    menu = placeholder_menu(BASE, replace(POLICY, recommended_tag="r23_0_1"))
    assert menu.recommended is not None
    assert menu.recommended.kind is TagKind.RELEASE
    assert menu.recommended.display_name == "Recommended (Release r23.0.1)"


def test_menu_for_ten_thousand_tags_is_under_five_megabytes() -> None:
    tags = [f"w_{2000 + n // 52}_{n % 52 + 1:02d}_rsp{n % 7}" for n in range(4_000)]
    tags += [f"d_{2000 + n // 336}_{(n // 28) % 12 + 1:02d}_{n % 28 + 1:02d}" for n in range(4_000)]
    tags += [f"exp_w_2024_05_feature_branch_{n}" for n in range(2_000)]
    assert len(set(tags)) == 10_000
    menu = build_menu(BASE, tags, {}, MenuPolicy(), NOW)
    assert len(menu.images) == 10_000
    size = deep_size(menu)
    assert size < 5 * 1024 * 1024, size


def test_menu_records_for_the_cli() -> None:
    from lsst_spawner.images.menu import menu_records

    records = menu_records(build())
    assert records[0] == {
        "tag": "recommended",
        "kind": "alias",
        "display_name": "Recommended (Weekly 2024_10)",
        "digest": digest(10),
        "choice": "radio",
        "recommended": True,
    }
    assert [r["tag"] for r in records] == [
        *radio_tags(build()),
        *dropdown_tags(build()),
        "w_2024_10",
    ]
    assert records[-1]["choice"] == "aliased"
    assert records[-1]["shown_as"] == "recommended"
    assert records[-2]["choice"] == "dropdown"
    assert records[-1]["recommended"] is False
