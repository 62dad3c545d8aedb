"""ImageMenuTraits: defaults, the static source, config checks and the shared menu."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import pytest
from traitlets import TraitError
from traitlets.config import Config

from lsst_spawner.config import ConfigError
from lsst_spawner.images.menu import MenuPolicy
from lsst_spawner.images.registry_config import RegistrySourceTraits
from lsst_spawner.images.sources import ImageSource
from lsst_spawner.images.static import StaticImageSource
from lsst_spawner.images.traits import ImageMenuTraits

BASE = "ghcr.io/lsst-sqre/sciplat-lab"
DIGEST = "sha256:" + "cd" * 32


class LSSTSpawner(ImageMenuTraits):
    """Stands in for the real class: config is read from ``c.LSSTSpawner``."""


class FakeRegistrySource:
    image_base = "registry.example.org/lab"

    async def list_tags(self) -> list[str]:
        return ["recommended", "w_2024_10"]

    async def resolve_digests(self, tags: Iterable[str]) -> dict[str, str]:
        return {}


class WithRegistry(ImageMenuTraits, RegistrySourceTraits):
    made = 0

    def make_registry_source(self) -> ImageSource:
        type(self).made += 1
        return FakeRegistrySource()


def spawner(cls: type[ImageMenuTraits] = LSSTSpawner, **values: object) -> ImageMenuTraits:
    config = Config()
    for name, value in values.items():
        setattr(config.LSSTSpawner, name, value)
    config.WithRegistry = config.LSSTSpawner
    return cls(config=config)


def static(**values: object) -> ImageMenuTraits:
    values.setdefault("image_source", "static")
    values.setdefault("static_image_base", BASE)
    values.setdefault("static_image_tags", ["recommended", "w_2024_10", "w_2024_09", "r23_0_1"])
    return spawner(**values)


def test_defaults() -> None:
    s = spawner()
    assert s.image_source == "registry"
    assert s.image_recommended_tag == "recommended"
    assert s.menu_refresh_interval == 300.0
    assert s.image_menu_cold_start_timeout == 5.0
    policy = s.image_menu_policy()
    assert (
        policy.releases,
        policy.weeklies,
        policy.dailies,
        policy.candidates,
        policy.experimentals,
    ) == (1, 2, 3, 0, 0)
    assert policy.dropdown_max_count == 0
    assert policy.dropdown_max_age == timedelta(0)


def test_every_trait_has_help() -> None:
    own = {
        name: trait
        for name, trait in ImageMenuTraits.class_traits(config=True).items()
        if name not in ImageMenuTraits.__mro__[1].class_traits(config=True)
    }
    assert len(own) >= 16
    for name, trait in own.items():
        assert 20 < len(trait.help) < 400, name


def test_policy_from_traits() -> None:
    s = spawner(
        image_recommended_tag="latest_weekly",
        image_alias_tags=["latest"],
        image_menu_releases=0,
        image_menu_weeklies=4,
        image_menu_dailies=1,
        image_menu_candidates=2,
        image_menu_experimentals=3,
        image_pinned_tags=["w_2024_01"],
        image_dropdown_max_count=50,
        image_dropdown_max_age="90d",
    )
    assert s.image_menu_policy() == MenuPolicy(
        recommended_tag="latest_weekly",
        alias_tags=("latest",),
        releases=0,
        weeklies=4,
        dailies=1,
        candidates=2,
        experimentals=3,
        pinned_tags=("w_2024_01",),
        dropdown_max_count=50,
        dropdown_max_age=timedelta(days=90),
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("image_source", "docker"),
        ("image_menu_weeklies", -1),
        ("image_dropdown_max_count", -5),
        ("menu_refresh_interval", "0s"),
        ("menu_refresh_interval", "soon"),
        ("image_menu_cold_start_timeout", "-1s"),
    ],
)
def test_bad_values_are_refused_at_assignment(name: str, value: object) -> None:
    with pytest.raises(TraitError):
        spawner(**{name: value})


def test_static_source() -> None:
    s = static(static_image_digests={"w_2024_10": DIGEST})
    source = s.make_image_source()
    assert isinstance(source, StaticImageSource)
    assert isinstance(source, ImageSource)
    assert source.image_base == BASE
    assert s.config_problems() == []


async def test_static_source_answers() -> None:
    source = StaticImageSource(BASE, ["a", "b", "a"], {"a": DIGEST, "zzz": DIGEST})
    assert await source.list_tags() == ["a", "b"]
    assert await source.resolve_digests(["a", "b", "zzz"]) == {"a": DIGEST}


async def test_get_menu_from_static_config() -> None:
    s = static(static_image_digests={"recommended": DIGEST, "w_2024_10": DIGEST})
    menu = await s.get_menu()
    assert menu.complete
    assert menu.recommended is not None
    assert menu.recommended.display_name == "Recommended (Weekly 2024_10)"
    assert menu.recommended.pinned_reference == f"{BASE}:recommended@{DIGEST}"
    # Another spawner with the same configuration reads the same menu.
    assert (
        await static(static_image_digests={"recommended": DIGEST, "w_2024_10": DIGEST}).get_menu()
        is menu
    )
    # One with other tags does not.
    other = await static(static_image_tags=["recommended", "w_2024_11"]).get_menu()
    assert other is not menu
    assert other.find("w_2024_11") is not None


async def test_registry_source_comes_from_the_registry_mixin() -> None:
    WithRegistry.made = 0
    s = spawner(WithRegistry)
    assert isinstance(s.make_image_source(), FakeRegistrySource)
    assert s.config_problems() == []
    menu = await s.get_menu()
    assert menu.find("w_2024_10") is not None
    assert menu.image_base == "registry.example.org/lab"


def test_registry_without_the_registry_mixin() -> None:
    s = spawner()
    with pytest.raises(ConfigError, match="make_registry_source"):
        s.make_image_source()
    assert [str(p) for p in s.config_problems()] == [
        'LSSTSpawner.image_source: "registry" needs make_registry_source() '
        '(RegistrySourceTraits), which LSSTSpawner lacks; mix it in or use "static"'
    ]


@pytest.mark.parametrize(
    ("values", "where", "fragment"),
    [
        ({"static_image_tags": []}, "LSSTSpawner.static_image_tags", "at least one tag"),
        (
            {"static_image_tags": ["recommended", '"><script>alert(1)</script>']},
            "LSSTSpawner.static_image_tags[1]",
            "is not a Docker tag",
        ),
        (
            {"static_image_tags": ["recommended", "w_2024_10", "w_2024_10"]},
            "LSSTSpawner.static_image_tags[2]",
            "listed twice",
        ),
        ({"static_image_base": ""}, "LSSTSpawner.static_image_base", "is required"),
        (
            {"static_image_base": BASE + ":w_2024_10"},
            "LSSTSpawner.static_image_base",
            "without tag or digest",
        ),
        (
            {"static_image_base": BASE + "@" + DIGEST},
            "LSSTSpawner.static_image_base",
            "without tag or digest",
        ),
        (
            {"static_image_digests": {"w_2024_10": "sha256:nothex"}},
            "LSSTSpawner.static_image_digests['w_2024_10']",
            "is not a manifest digest",
        ),
        (
            {"static_image_digests": {"w_1999_01": DIGEST}},
            "LSSTSpawner.static_image_digests['w_1999_01']",
            "not in static_image_tags",
        ),
        (
            {"image_recommended_tag": "w_2030_01"},
            "LSSTSpawner.image_recommended_tag",
            "not in static_image_tags",
        ),
        (
            {"image_recommended_tag": "bad tag"},
            "LSSTSpawner.image_recommended_tag",
            "is not a Docker tag",
        ),
        (
            {"image_alias_tags": ["latest", "a/b"]},
            "LSSTSpawner.image_alias_tags[1]",
            "is not a Docker tag",
        ),
        (
            {"image_pinned_tags": ["w_2024_10:evil"]},
            "LSSTSpawner.image_pinned_tags[0]",
            "is not a Docker tag",
        ),
        (
            {"image_dropdown_filters": {"weekly": {"age": "1e300"}}},
            "LSSTSpawner.image_dropdown_filters['weekly']['age']",
            "at most 36500d (100 years)",
        ),
        (
            {"image_dropdown_filters": {"weekly": {"number": -2}}},
            "LSSTSpawner.image_dropdown_filters['weekly']['number']",
            "whole number",
        ),
        (
            {"image_dropdown_filters": {"nightly": {"number": 2}}},
            "LSSTSpawner.image_dropdown_filters['nightly']",
            "is not a kind",
        ),
        (
            {"image_cycle": 27},
            "LSSTSpawner.image_recommended_tag",
            "'recommended' has no SAL cycle, so with image_cycle = 27 it would never be "
            "offered; use a tag of the cycle, such as 'recommended_c0027'",
        ),
        (
            {"image_cycle": 27, "image_recommended_tag": "recommended_c0026"},
            "LSSTSpawner.image_recommended_tag",
            "has cycle 26",
        ),
        (
            {
                "image_cycle": 27,
                "image_recommended_tag": "recommended_c0027",
                "image_alias_tags": ["latest_c0027", "latest_weekly_c0026"],
            },
            "LSSTSpawner.image_alias_tags[1]",
            "'latest_weekly_c0026' is of SAL cycle 26",
        ),
        (
            {
                "image_cycle": 27,
                "image_recommended_tag": "recommended_c0027",
                "image_pinned_tags": ["w_2024_10"],
            },
            "LSSTSpawner.image_pinned_tags[0]",
            "'w_2024_10' has no SAL cycle",
        ),
        (
            {"static_image_digests": {"w_2024_10": "sha512:" + "a" * 64}},
            "LSSTSpawner.static_image_digests['w_2024_10']",
            "or sha512: and 128",
        ),
    ],
)
def test_config_problems_name_the_trait(
    values: dict[str, object], where: str, fragment: str
) -> None:
    problems = static(**values).config_problems()
    assert any(p.where == where and fragment in p.message for p in problems), problems
    with pytest.raises(ConfigError, match="configuration problem"):
        static(**values).raise_for_config_problems()


def test_config_problems_cooperate_with_other_mixins() -> None:
    from lsst_spawner.config import CheckedConfigurable, ConfigProblem

    class Other(CheckedConfigurable):
        def config_problems(self) -> list[ConfigProblem]:
            return [*super().config_problems(), ConfigProblem("LSSTSpawner.other", "bad")]

    class Both(ImageMenuTraits, Other):
        pass

    config = Config()
    config.Both.image_source = "static"
    config.Both.static_image_tags = []
    wheres = {p.where for p in Both(config=config).config_problems()}
    assert {"LSSTSpawner.other", "LSSTSpawner.static_image_tags"} <= wheres


def test_a_consistent_cycle_configuration_has_no_problems() -> None:
    traits = static(
        image_cycle=27,
        image_recommended_tag="recommended_c0027",
        image_alias_tags=["latest_c0027", "latest"],
        static_image_tags=["recommended_c0027", "w_2024_10_c0027.001"],
        static_image_digests={"w_2024_10_c0027.001": "sha512:" + "a" * 128},
        image_dropdown_filters={"weekly": {"number": 5, "age": "90d"}},
    )
    assert traits.config_problems() == []
    policy = traits.image_menu_policy()
    assert policy.cycle == 27
    assert [kind.value for kind, _ in policy.dropdown_filters] == ["weekly"]


def test_an_overflowing_dropdown_age_does_not_break_the_policy() -> None:
    """image_dropdown_max_age = "1e300" used to raise OverflowError on every form.

    It is refused where every duration is (the trait, so hub start and check-config), and the
    longest duration accepted builds a policy.
    """
    with pytest.raises(TraitError, match=r"image_dropdown_max_age: a duration must be at most"):
        static(image_dropdown_max_age="1e300")
    policy = static(image_dropdown_max_age="36500d").image_menu_policy()
    assert policy.dropdown_max_age == timedelta(days=36500)
