"""The tag grammar: kinds, display names, suffixes, dates, ordering and tag syntax."""

from __future__ import annotations

import random
from datetime import date

import pytest

from lsst_spawner.images import TagKind, is_valid_tag, parse_tag
from lsst_spawner.images.tags import KIND_PRIORITY, alias_display_name

K = TagKind


@pytest.mark.parametrize(
    ("tag", "kind", "display_name"),
    [
        ("r23_0_1", K.RELEASE, "Release r23.0.1"),
        ("r27_0_0", K.RELEASE, "Release r27.0.0"),
        ("r23_0_1_rc2", K.CANDIDATE, "Release Candidate r23.0.1-rc2"),
        ("w_2024_05", K.WEEKLY, "Weekly 2024_05"),
        ("w_2024_5", K.WEEKLY, "Weekly 2024_05"),
        ("d_2024_02_03", K.DAILY, "Daily 2024_02_03"),
        ("exp_w_2024_05", K.EXPERIMENTAL, "Experimental Weekly 2024_05"),
        ("exp_r23_0_1", K.EXPERIMENTAL, "Experimental Release r23.0.1"),
        ("exp_d_2024_02_03_nosudo", K.EXPERIMENTAL, "Experimental Daily 2024_02_03 [nosudo]"),
        ("exp_my_thing", K.EXPERIMENTAL, "Experimental my_thing"),
        ("exp_exp_w_2024_05", K.EXPERIMENTAL, "Experimental exp_w_2024_05"),
        ("recommended", K.ALIAS, "Recommended"),
        ("latest", K.UNKNOWN, "latest"),
        ("w_2024_05_rsp19", K.WEEKLY, "Weekly 2024_05 (RSP Build 19)"),
        ("w_2024_05_c0020.001", K.WEEKLY, "Weekly 2024_05 (SAL Cycle 0020, Build 001)"),
        ("d_2024_02_03_extra_bits", K.DAILY, "Daily 2024_02_03 [extra_bits]"),
        (
            "r23_0_1_rc1_c0020.001_rsp19_20210513",
            K.CANDIDATE,
            "Release Candidate r23.0.1-rc1 (SAL Cycle 0020, Build 001) (RSP Build 19) [20210513]",
        ),
        ("r23_0_1_c0020.001", K.RELEASE, "Release r23.0.1 (SAL Cycle 0020, Build 001)"),
        (
            "w_2024_05_c0020.001_rsp19",
            K.WEEKLY,
            "Weekly 2024_05 (SAL Cycle 0020, Build 001) (RSP Build 19)",
        ),
        # Since DM-54213 the cycle is read before the RSP build: the older order
        # leaves the cycle in the free part (and the tag has no cycle).
        (
            "r23_0_1_rc1_rsp19_c0020.001_20210513",
            K.CANDIDATE,
            "Release Candidate r23.0.1-rc1 (RSP Build 19) [c0020.001_20210513]",
        ),
        # Aliases and unknown tags keep a _c{cycle}; an architecture is shown once.
        ("recommended_c0027", K.ALIAS, "Recommended (SAL Cycle 0027)"),
        ("recommended_c0027-arm64", K.ALIAS, "Recommended (SAL Cycle 0027) [arm64]"),
        ("recommended-amd64", K.ALIAS, "Recommended [amd64]"),
        ("latest-amd64", K.UNKNOWN, "latest [amd64]"),
        ("latest_c0027-amd64", K.UNKNOWN, "latest (SAL Cycle 0027) [amd64]"),
        ("not_a_normal_format", K.UNKNOWN, "not_a_normal_format"),
        ("exp_random_c0027-amd64", K.EXPERIMENTAL, "Experimental random (SAL Cycle 0027) [amd64]"),
        (
            "exp_w_2021_22_c0020.001_rsp19_foo-amd64",
            K.EXPERIMENTAL,
            "Experimental Weekly 2021_22 (SAL Cycle 0020, Build 001) (RSP Build 19) [foo] [amd64]",
        ),
        ("w_2024_05-amd64", K.WEEKLY, "Weekly 2024_05 [amd64]"),
        ("r23_0_1-arm64", K.RELEASE, "Release r23.0.1 [arm64]"),
        # Near misses are unknown, shown as the tag itself.
        ("w_2024_54", K.UNKNOWN, "w_2024_54"),
        ("w_2023_53", K.UNKNOWN, "w_2023_53"),
        ("w_2024_00", K.UNKNOWN, "w_2024_00"),
        ("w_24_05", K.UNKNOWN, "w_24_05"),
        ("w_2024_051", K.UNKNOWN, "w_2024_051"),
        ("d_2024_02_30", K.UNKNOWN, "d_2024_02_30"),
        ("d_2024_13_01", K.UNKNOWN, "d_2024_13_01"),
        ("r23_0", K.UNKNOWN, "r23_0"),
        ("r23_0_1rc1", K.UNKNOWN, "r23_0_1rc1"),
        ("r23_0_1_", K.UNKNOWN, "r23_0_1_"),
        ("exp_", K.UNKNOWN, "exp_"),
        ("W_2024_05", K.UNKNOWN, "W_2024_05"),
        ("", K.UNKNOWN, ""),
        ('"><script>alert(1)</script>', K.UNKNOWN, '"><script>alert(1)</script>'),
    ],
)
def test_kind_and_display_name(tag: str, kind: TagKind, display_name: str) -> None:
    parsed = parse_tag(tag)
    assert parsed.tag == tag
    assert parsed.kind is kind
    assert parsed.display_name == display_name


def test_2020_has_an_iso_week_53() -> None:
    assert parse_tag("w_2020_53").kind is K.WEEKLY


@pytest.mark.parametrize(
    ("tag", "fields"),
    [
        ("r23_0_1", {"version": (23, 0, 1), "candidate": None, "date": None}),
        ("r23_0_1_rc2", {"version": (23, 0, 1), "candidate": 2}),
        (
            "w_2024_05_c0020.001_rsp19_x",
            {"rsp_build": 19, "cycle": 20, "cycle_build": 1, "extra": "x"},
        ),
        ("w_2024_05", {"version": (2024, 5, 0), "date": date(2024, 2, 1)}),
        ("d_2024_02_03", {"version": (2024, 2, 3), "date": date(2024, 2, 3)}),
        ("exp_w_2024_05", {"inner_kind": K.WEEKLY, "date": date(2024, 2, 1)}),
        ("exp_foo", {"inner_kind": K.UNKNOWN, "date": None, "version": None}),
        ("w_2024_05_rsp19_c0020.001", {"rsp_build": 19, "cycle": None, "extra": "c0020.001"}),
        ("recommended_c0027-amd64", {"cycle": 27, "base": "recommended", "architecture": "amd64"}),
        ("latest_c0027", {"kind": K.UNKNOWN, "cycle": 27, "base": "latest"}),
        ("exp_random_c0027", {"cycle": 27, "inner_kind": K.UNKNOWN}),
        ("w_2024_05_c0027", {"cycle": None, "extra": "c0027"}),
        ("d_2024_02_03-amd64", {"architecture": "amd64", "date": date(2024, 2, 3)}),
        ("exp_w_2024_05-arm64", {"architecture": "arm64", "kind": K.EXPERIMENTAL}),
    ],
)
def test_parsed_fields(tag: str, fields: dict[str, object]) -> None:
    parsed = parse_tag(tag)
    for name, value in fields.items():
        assert getattr(parsed, name) == value, name


@pytest.mark.parametrize(
    ("tag", "architecture"),
    [
        ("w_2024_05-amd64", "amd64"),
        ("w_2024_05-arm64", "arm64"),
        ("w_2024_05-ppc64le", "ppc64le"),
        ("latest-s390x", "s390x"),
        ("something-x86_64", "x86_64"),
    ],
)
def test_architecture_tags_are_flagged_and_hidden(tag: str, architecture: str) -> None:
    parsed = parse_tag(tag)
    assert parsed.architecture == architecture
    assert parsed.hidden


@pytest.mark.parametrize("tag", ["w_2024_05", "my-feature", "w_2024_05-nosudo", "-amd64", "v1-2"])
def test_non_architecture_dashes_are_not_hidden(tag: str) -> None:
    parsed = parse_tag(tag)
    assert parsed.architecture is None
    assert not parsed.hidden


def test_configured_aliases() -> None:
    assert parse_tag("latest_weekly", ["latest_weekly"]).kind is K.ALIAS
    assert parse_tag("latest_weekly", ["latest_weekly"]).display_name == "Latest Weekly"
    assert parse_tag("latest_weekly").kind is K.UNKNOWN
    # Variants of a configured alias are aliases: a cycle, an architecture, both.
    cycled = parse_tag("latest_weekly_c0046", ["latest_weekly"])
    assert (cycled.kind, cycled.display_name, cycled.cycle) == (
        K.ALIAS,
        "Latest Weekly (SAL Cycle 0046)",
        46,
    )
    arch = parse_tag("latest_weekly-amd64", ["latest_weekly"])
    assert (arch.kind, arch.hidden, arch.display_name) == (K.ALIAS, True, "Latest Weekly [amd64]")
    # An alias configured with its cycle makes its other variants aliases too.
    assert parse_tag("latest_c0050-arm64", ["latest_c0050"]).kind is K.ALIAS
    assert parse_tag("latest_c0050", ["latest_c0050"]).base == "latest"
    # An alias is whatever the site says, even a name that looks like a weekly.
    assert parse_tag("w_2024_05", {"w_2024_05"}).kind is K.ALIAS


@pytest.mark.parametrize(
    ("tag", "name"),
    [("recommended", "Recommended"), ("latest_weekly", "Latest Weekly"), ("_", "_")],
)
def test_alias_display_name(tag: str, name: str) -> None:
    assert alias_display_name(tag) == name


def test_kind_priority_is_the_menu_order() -> None:
    assert sorted(KIND_PRIORITY, key=KIND_PRIORITY.__getitem__) == [
        K.ALIAS,
        K.RELEASE,
        K.WEEKLY,
        K.DAILY,
        K.CANDIDATE,
        K.EXPERIMENTAL,
        K.UNKNOWN,
    ]


ORDERED = [
    "recommended",
    "r24_0_0",
    "r23_10_0",
    "r23_2_1",
    "r23_2_0_rsp2",
    "r23_2_0_rsp1",
    "r23_2_0",
    "w_2025_01",
    "w_2024_52",
    "w_2024_10",
    "w_2024_05",
    "w_2024_05-amd64",
    "w_2024_05_extra",
    "d_2024_10_01",
    "d_2024_09_30",
    "d_2024_02_03",
    "r24_0_0_rc2",
    "r24_0_0_rc1",
    "r23_0_0_rc9",
    "exp_r23_0_0",
    "exp_w_2024_06",
    "exp_w_2024_05",
    "exp_d_2024_01_01",
    "exp_a",
    "exp_b",
    "abc",
    "latest",
    "zzz",
]


def test_sort_order() -> None:
    shuffled = list(ORDERED)
    random.Random(4).shuffle(shuffled)
    assert sorted(shuffled, key=lambda t: parse_tag(t).sort_key) == ORDERED


@pytest.mark.parametrize(
    "tag",
    ["recommended", "w_2024_05", "a", "_x", "A.b-c_d", "9", "a" * 128, "r23_0_1-amd64"],
)
def test_valid_tags(tag: str) -> None:
    assert is_valid_tag(tag)


@pytest.mark.parametrize(
    "tag",
    [
        "",
        "a" * 129,
        ".hidden",
        "-amd64",
        "w_2024_05:latest",
        "img@sha256:" + "0" * 64,
        "a/b",
        "a b",
        "w_2024_05\n",
        '"><script>alert(1)</script>',
        "ünïcode",
        None,
        5,
        ["w_2024_05"],
    ],
)
def test_invalid_tags(tag: object) -> None:
    assert not is_valid_tag(tag)


def test_parse_never_raises_on_hostile_strings() -> None:
    hostile = ["exp_" * 500, "w_" + "9" * 5000, "\x00", "r" + "1" * 10000 + "_0_0", "-" * 300]
    for tag in hostile:
        assert parse_tag(tag).tag == tag
    assert parse_tag("r" + "1" * 10000 + "_0_0").kind is K.UNKNOWN
    assert parse_tag("w_2024_05_rsp" + "1" * 10000).extra == "rsp" + "1" * 10000


# Variants of one build, in their documented order: cycle, cycle build and RSP
# build newest first (a tag with the suffix before the same tag without it), the
# tag without free text before those with it, the generic image before its
# architecture variants.
VARIANTS = [
    "w_2024_05_c0021.001",
    "w_2024_05_c0020.002_rsp19",
    "w_2024_05_c0020.002",
    "w_2024_05_c0020.002-amd64",
    "w_2024_05_c0020.001",
    "w_2024_05_rsp20",
    "w_2024_05_rsp19",
    "w_2024_05",
    "w_2024_05-amd64",
    "w_2024_05-arm64",
    "w_2024_05_extra",
    "w_2024_05_nosudo",
    "w_2024_05_nosudo-amd64",
]


def test_variants_of_one_build_sort_in_the_documented_order() -> None:
    for seed in range(5):
        shuffled = list(VARIANTS)
        random.Random(seed).shuffle(shuffled)
        assert sorted(shuffled, key=lambda t: parse_tag(t).sort_key) == VARIANTS


def test_cycle_sorts_before_rsp_build() -> None:
    """Nublado's DM-54213 ordering: the newest cycle build wins whatever the RSP build."""
    ordered = [
        "r21_0_1_c0032.005_rsp101",
        "r21_0_1_c0032.004_rsp103",
        "r21_0_1_c0032.004_rsp102",
        "r21_0_1_c0031.004_rsp103",
        "r21_0_1_c0031.004",
        "r21_0_1_rsp103",
        "r21_0_1_rsp29",
        "r21_0_1",
    ]
    assert sorted(reversed(ordered), key=lambda t: parse_tag(t).sort_key) == ordered


def test_aliases_and_unknown_sort_by_base_then_cycle_then_architecture() -> None:
    aliases = {"latest"}
    ordered = ["latest_c0028", "latest_c0027", "latest_c0027-amd64", "latest", "latest-amd64"]
    shuffled = list(reversed(ordered))
    assert sorted(shuffled, key=lambda t: parse_tag(t, aliases).sort_key) == ordered
