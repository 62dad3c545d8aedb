"""The cycle filter, the per-kind dropdown filters and the newest image of each kind."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from lsst_spawner.images import TagKind
from lsst_spawner.images.filters import DropdownFilter, parse_dropdown_filters
from lsst_spawner.images.menu import MenuPolicy, build_menu, placeholder_menu

BASE = "lighthouse.ceres/library/sketchbook"
NOW = datetime(2077, 11, 1, tzinfo=UTC)


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


# Nublado's cycle test repository (tests/data/registry/docker-cycle.json), digests renumbered.
CYCLE_DIGESTS = {
    "recommended": digest(1),
    "recommended_c0050": digest(2),
    "latest_c0050": digest(3),
    "w_2077_44": digest(4),
    "w_2077_44_c0051.001": digest(5),
    "w_2077_43_c0050.004": digest(3),
    "w_2077_43_c0050.003": digest(6),
    "w_2077_43_c0050.002": digest(2),
    "w_2077_43_c0050.001": digest(7),
    "w_2077_45_c0049.001": digest(8),
    "exp_w_2077_41_c0050.002_testing": digest(9),
    "exp_w_2077_42_c0049.001_testing": digest(10),
}
CYCLE_POLICY = MenuPolicy(
    recommended_tag="recommended_c0050",
    alias_tags=("latest_c0050",),
    releases=0,
    weeklies=3,
    dailies=0,
    cycle=50,
)


def cycle_menu(policy: MenuPolicy = CYCLE_POLICY):
    return build_menu(BASE, list(CYCLE_DIGESTS), CYCLE_DIGESTS, policy, NOW)


def test_only_images_of_the_cycle_are_offered() -> None:
    menu = cycle_menu()
    offered = {image.tag for image in menu.offered}
    assert offered == {
        "recommended_c0050",
        "latest_c0050",
        "w_2077_43_c0050.004",
        "w_2077_43_c0050.003",
        "w_2077_43_c0050.002",
        "w_2077_43_c0050.001",
        "exp_w_2077_41_c0050.002_testing",
    }
    for other in ("recommended", "w_2077_44", "w_2077_44_c0051.001", "w_2077_45_c0049.001"):
        assert menu.find(other) is None, other
    assert menu.cycle == 50


def test_aliases_resolve_only_to_images_of_the_cycle_with_flat_names() -> None:
    menu = cycle_menu()
    assert [(image.tag, image.display_name) for image in menu.radio] == [
        ("recommended_c0050", "Recommended (Weekly 2077_43, SAL Cycle 0050, Build 002)"),
        ("latest_c0050", "Latest (Weekly 2077_43, SAL Cycle 0050, Build 004)"),
        ("w_2077_43_c0050.003", "Weekly 2077_43 (SAL Cycle 0050, Build 003)"),
    ]
    # The newest weeklies the aliases point at are shown as the aliases.
    assert {(image.tag, image.shown_as) for image in menu.aliased} == {
        ("w_2077_43_c0050.004", "latest_c0050"),
        ("w_2077_43_c0050.002", "recommended_c0050"),
    }


def test_an_alias_sharing_a_digest_with_an_image_of_another_cycle_stays_unresolved() -> None:
    digests = {**CYCLE_DIGESTS, "latest_c0050": digest(5)}  # w_2077_44_c0051.001's
    menu = build_menu(BASE, list(digests), digests, CYCLE_POLICY, NOW)
    latest = menu.find("latest_c0050")
    assert latest is not None
    assert latest.display_name == "Latest (SAL Cycle 0050)"


def test_without_a_cycle_every_image_is_offered() -> None:
    policy = MenuPolicy(recommended_tag="recommended_c0050", alias_tags=("latest_c0050",))
    menu = cycle_menu(policy)
    assert menu.find("w_2077_44") is not None
    assert menu.find("w_2077_45_c0049.001") is not None


def test_placeholder_menu_of_a_cycle() -> None:
    menu = placeholder_menu(BASE, CYCLE_POLICY)
    assert menu.recommended is not None
    assert menu.recommended.display_name == "Recommended (SAL Cycle 0050)"
    assert menu.cycle == 50


def test_newest_offered_image_of_each_kind() -> None:
    menu = cycle_menu()
    assert menu.latest[TagKind.WEEKLY].tag == "w_2077_43_c0050.004"
    assert menu.latest[TagKind.EXPERIMENTAL].tag == "exp_w_2077_41_c0050.002_testing"
    assert TagKind.RELEASE not in menu.latest
    assert TagKind.ALIAS not in menu.latest


# --- dropdown filters ------------------------------------------------------------

TAGS = [
    "recommended",
    "r28_0_0",
    "r27_0_1",
    "r27_0_0",
    "r26_0_0",
    "r28_0_0_rc1",
    "r27_0_0_rc1",
    "w_2077_44",
    "w_2077_43_rsp20",
    "w_2077_42_rsp19",
    "w_2077_41",
    "w_2077_30",
    "d_2077_10_31",
    "d_2077_10_30",
    "d_2077_09_01",
    "exp_w_2077_44_a",
    "exp_w_2077_20_b",
]
POLICY = MenuPolicy(releases=0, weeklies=0, dailies=0)


def dropdown(filters: dict[str, dict[str, object]], policy: MenuPolicy = POLICY) -> list[str]:
    parsed, problems = parse_dropdown_filters(filters)
    assert problems == []
    policy = MenuPolicy(**{**policy.__dict__, "dropdown_filters": tuple(sorted(parsed.items()))})
    menu = build_menu(BASE, TAGS, {}, policy, NOW)
    return [image.tag for image in menu.dropdown]


def test_number_per_kind() -> None:
    tags = dropdown({"weekly": {"number": 2}, "release": {"number": 1}})
    assert [t for t in tags if t.startswith("w_")] == ["w_2077_44", "w_2077_43_rsp20"]
    assert [t for t in tags if t.startswith("r") and "rc" not in t] == ["r28_0_0"]
    assert "d_2077_09_01" in tags  # other kinds unfiltered


def test_age_per_kind() -> None:
    tags = dropdown({"daily": {"age": "7d"}, "experimental": {"age": "30d"}})
    assert [t for t in tags if t.startswith("d_")] == ["d_2077_10_31", "d_2077_10_30"]
    assert [t for t in tags if t.startswith("exp_")] == ["exp_w_2077_44_a"]
    assert "w_2077_30" in tags


def test_cutoff_version_leaves_out_older_releases_and_candidates_of_the_cutoff() -> None:
    tags = dropdown(
        {"release": {"cutoff_version": "27.0.1"}, "candidate": {"cutoff_version": "28.0.0-rc1"}}
    )
    assert [t for t in tags if t.startswith("r") and "rc" not in t] == ["r28_0_0", "r27_0_1"]
    assert [t for t in tags if "rc" in t] == ["r28_0_0_rc1"]
    # A candidate precedes its release: 27.0.0 leaves out r27_0_0_rc1.
    tags = dropdown({"candidate": {"cutoff_version": "r27_0_0"}})
    assert [t for t in tags if "rc" in t] == ["r28_0_0_rc1"]


def test_cutoff_date_and_the_later_of_date_and_age_wins() -> None:
    tags = dropdown({"weekly": {"cutoff_date": "2077-10-10"}})
    assert [t for t in tags if t.startswith("w_")] == [
        "w_2077_44",
        "w_2077_43_rsp20",
        "w_2077_42_rsp19",
        "w_2077_41",
    ]
    # 15 days before 2077-11-01 is later than the cutoff date: the age decides.
    tags = dropdown({"weekly": {"cutoff_date": "2077-01-01", "age": "15d"}})
    assert [t for t in tags if t.startswith("w_")] == [
        "w_2077_44",
        "w_2077_43_rsp20",
        "w_2077_42_rsp19",
    ]


def test_cutoff_build_ignores_tags_without_a_build() -> None:
    tags = dropdown({"weekly": {"cutoff_build": 20}})
    assert [t for t in tags if t.startswith("w_")] == [
        "w_2077_44",
        "w_2077_43_rsp20",
        "w_2077_41",
        "w_2077_30",
    ]


def test_filters_combine_and_the_global_limits_still_apply() -> None:
    policy = MenuPolicy(releases=0, weeklies=0, dailies=0, dropdown_max_count=3)
    tags = dropdown({"release": {"cutoff_version": "27.0.0", "number": 2}}, policy)
    assert tags == ["r28_0_0", "r27_0_1", "w_2077_44"]


def test_filter_values_are_parsed() -> None:
    filters, problems = parse_dropdown_filters(
        {
            "weekly": {"number": 3, "age": "90d", "cutoff_date": "2026-01-31"},
            "release": {"cutoff_version": "27.0.0-rc2", "cutoff_build": 5},
        }
    )
    assert problems == []
    assert filters[TagKind.WEEKLY] == DropdownFilter(
        number=3, age=timedelta(days=90), cutoff_date=date(2026, 1, 31)
    )
    assert filters[TagKind.RELEASE] == DropdownFilter(
        cutoff_version=(27, 0, 0, 0, 2), cutoff_build=5
    )


@pytest.mark.parametrize(
    ("raw", "where", "message"),
    [
        ({"weekly": {"age": "1e300"}}, "['weekly']['age']", "at most 36500d (100 years)"),
        ({"weekly": {"age": "forever"}}, "['weekly']['age']", "cannot parse duration"),
        ({"weekly": {"number": -1}}, "['weekly']['number']", "whole number"),
        ({"weekly": {"number": True}}, "['weekly']['number']", "whole number"),
        ({"weekly": {"number": "3"}}, "['weekly']['number']", "whole number"),
        ({"release": {"cutoff_version": "27"}}, "['release']['cutoff_version']", "a version"),
        ({"daily": {"cutoff_date": "2026-02-30"}}, "['daily']['cutoff_date']", "a date"),
        ({"daily": {"cutoff_date": "yesterday"}}, "['daily']['cutoff_date']", "a date"),
        ({"daily": {"cutoff_build": 1.5}}, "['daily']['cutoff_build']", "whole number"),
        ({"daily": {"newest": 3}}, "['daily']['newest']", "is not a filter"),
        ({"alias": {"number": 1}}, "['alias']", "is not a kind"),
        ({"weekly": 3}, "['weekly']", "must be a dict of filters"),
        (["weekly"], "", "must be a dict by kind"),
    ],
)
def test_bad_filter_values_are_problems_naming_the_key(
    raw: object, where: str, message: str
) -> None:
    _, problems = parse_dropdown_filters(raw)
    assert [p[0] for p in problems] == [where]
    assert message in problems[0][1]
