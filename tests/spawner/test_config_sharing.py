"""One SiteContext per configuration: one check, one LabSettings, one menu cache, not per user."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from lsst_spawner.commands import _offline_kubernetes_client
from lsst_spawner.config import ConfigError
from lsst_spawner.images.cache import CacheSettings
from lsst_spawner.images.menu import MenuPolicy
from lsst_spawner.images.static import StaticImageSource
from lsst_spawner.lab.traits import LabTraits
from lsst_spawner.offline import OfflineHub, OfflineUser
from lsst_spawner.site import SiteRegistry, forget_sites, site_context
from lsst_spawner.spawner import LSSTSpawner
from lsst_spawner.testing.oauth.identity import identity_for


def config(**lab: Any) -> Config:
    c = Config()
    c.LSSTSpawner.image_source = "static"
    c.LSSTSpawner.static_image_base = "registry.example.org/sciplat-lab"
    c.LSSTSpawner.static_image_tags = ["recommended", "w_2026_46"]
    for name, value in lab.items():
        setattr(c.LSSTSpawner, name, value)
    return c


def spawner(c: Config, name: str, **kwargs: Any) -> LSSTSpawner:
    user = OfflineUser(name, {"identity": identity_for(name).to_dict()})
    return LSSTSpawner(config=c, user=user, hub=OfflineHub(), **kwargs)


@pytest.fixture
def offline_kubernetes(tmp_path: Path) -> Iterator[None]:
    """KubeSpawner's constructor loads a kubeconfig: give it one that points at nothing."""
    with _offline_kubernetes_client(str(tmp_path)):
        yield


@pytest.fixture(autouse=True)
def fresh_sites() -> Iterator[None]:
    """Each test starts as a fresh hub process would: nothing checked, nothing shared."""
    forget_sites()
    yield
    forget_sites()


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch, offline_kubernetes: None) -> list[str]:
    """Records each full configuration check of an LSSTSpawner, with its lab_sizes."""
    calls: list[str] = []
    original = LSSTSpawner.config_problems

    def counting(self: LSSTSpawner) -> Any:
        calls.append(repr(self.lab_sizes))
        return original(self)

    monkeypatch.setattr(LSSTSpawner, "config_problems", counting)
    return calls


SIZES = [{"name": "tiny", "cpu": 1, "memory": "2Gi"}]


async def test_one_check_and_one_settings_object_for_every_user(checks: list[str]) -> None:
    c = config(lab_sizes=SIZES, lab_default_size="tiny")
    spawners = [spawner(c, f"user{i}") for i in range(5)]
    assert len(checks) == 1
    settings = {id(s.lab_settings_cached()) for s in spawners}
    assert len(settings) == 1
    assert spawners[0].lab_settings_cached().default_size == "tiny"
    assert [s.pod_name for s in spawners] == [f"nb-user{i}" for i in range(5)]


async def test_an_equal_config_object_shares_the_check(checks: list[str]) -> None:
    sizes = [{"name": "solo", "cpu": 1, "memory": "1Gi"}]
    first = spawner(config(lab_sizes=sizes, lab_default_size="solo"), "a")
    second = spawner(config(lab_sizes=sizes, lab_default_size="solo"), "b")
    assert len(checks) == 1
    assert first.lab_settings_cached() is second.lab_settings_cached()


async def test_a_different_value_is_checked_and_gets_its_own_settings(checks: list[str]) -> None:
    small = spawner(config(lab_sizes=SIZES, lab_default_size="tiny"), "a")
    other = [{"name": "huge", "cpu": 8, "memory": "64Gi"}]
    big = spawner(config(lab_sizes=other, lab_default_size="huge"), "b")
    assert len(checks) == 2
    assert small.lab_settings_cached().default_size == "tiny"
    assert big.lab_settings_cached().default_size == "huge"


async def test_a_value_given_to_one_spawner_alone_is_checked_for_it(checks: list[str]) -> None:
    c = config(lab_sizes=SIZES, lab_default_size="tiny")
    spawner(c, "a")
    with pytest.raises(ConfigError, match=r"LSSTSpawner\.lab_default_size"):
        spawner(c, "b", lab_default_size="missing")
    assert len(checks) == 2


async def test_a_configuration_with_problems_is_checked_every_time(
    checks: list[str], tmp_path: Path
) -> None:
    missing = tmp_path / "templates"
    c = config(lab_sizes=SIZES, lab_default_size="tiny")
    c.LSSTSpawner.options_template_path = [str(missing)]
    for name in ("a", "b"):
        with pytest.raises(ConfigError, match="does not exist"):
            spawner(c, name)
    assert len(checks) == 2
    # Fixed on disk while the hub runs: the next spawner is built.
    missing.mkdir()
    (missing / "options.html.j2").write_text("{{ form }}")
    assert spawner(c, "c").pod_name == "nb-c"
    assert len(checks) == 3


def test_lab_traits_alone_share_settings_by_configuration() -> None:
    one = LabTraits(lab_shell="/bin/zsh")
    two = LabTraits(lab_shell="/bin/zsh")
    three = LabTraits(lab_shell="/bin/sh")

    def settings(traits: LabTraits) -> Any:
        return site_context(traits).lab_settings(traits)

    assert settings(one) is settings(two)
    assert settings(three).nss.shell == "/bin/sh"
    assert settings(one).nss.shell == "/bin/zsh"


async def test_spawners_of_one_configuration_share_one_site(checks: list[str]) -> None:
    c = config(lab_sizes=SIZES, lab_default_size="tiny")
    first, second = spawner(c, "a"), spawner(c, "b")
    assert first.site is second.site
    assert first.site.fingerprint is second.site.fingerprint
    assert first.kube_retry_policy() is second.kube_retry_policy()
    assert first.site is not spawner(config(lab_shell="/bin/sh"), "c").site


async def test_the_site_is_fixed_when_the_spawner_is_built(checks: list[str]) -> None:
    """Defaults read later (stored in _trait_values by traitlets) do not move a spawner."""
    c = config(lab_sizes=SIZES, lab_default_size="tiny")
    first = spawner(c, "a")
    site = first.site
    first.lab_spawn_timeout  # noqa: B018 - reading a default stores it
    first.image_menu_releases  # noqa: B018
    assert first.site is site
    assert spawner(c, "b").site is site


async def test_the_retry_policy_comes_from_the_kubernetes_traits(checks: list[str]) -> None:
    c = config(kubernetes_retry_budget="42s", kubernetes_request_timeout="7s")
    c.LSSTSpawner.lab_delete_timeout = "9s"
    one = spawner(c, "a")
    policy = one.kube_retry_policy()
    assert (policy.budget, policy.request_timeout) == (42, 7)
    assert policy.log is one.log
    assert one.lab_delete_policy().budget == 9
    assert one.lab_delete_policy().request_timeout == 7


async def test_the_menu_cache_key_is_built_once_per_configuration(
    checks: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    original = LSSTSpawner.image_menu_policy

    def counting(self: LSSTSpawner) -> Any:
        built.append(self.user.name)
        return original(self)

    monkeypatch.setattr(LSSTSpawner, "image_menu_policy", counting)
    c = config(lab_sizes=SIZES, lab_default_size="tiny")
    first, second = spawner(c, "a"), spawner(c, "b")
    assert first.image_menu_cache() is second.image_menu_cache()
    assert first.image_menu_cache() is first.image_menu_cache()
    assert built == ["a"]
    other = config(lab_sizes=SIZES, lab_default_size="tiny", image_recommended_tag="w_2026_46")
    assert spawner(other, "c").image_menu_cache() is not first.image_menu_cache()
    assert built == ["a", "c"]


async def test_one_menu_cache_per_source_policy_and_timing() -> None:
    registry = SiteRegistry()
    made: list[StaticImageSource] = []
    policy, timing = MenuPolicy(), CacheSettings(refresh_interval=3600, cold_start_timeout=0.05)
    base = "registry.example.org/sciplat-lab"

    def make(tags: tuple[str, ...]) -> StaticImageSource:
        source = StaticImageSource(base, tags)
        made.append(source)
        return source

    first = registry.menu_cache((("a",), policy, timing), lambda: make(("recommended",)))
    same = registry.menu_cache((("a",), policy, timing), lambda: make(("recommended",)))
    assert same is first
    assert len(made) == 1
    # A different source configuration, policy or timing is a different menu:
    # later arguments are never silently ignored.
    other_source = registry.menu_cache((("b",), policy, timing), lambda: make(("w_2024_01",)))
    other_policy = registry.menu_cache(
        (("a",), MenuPolicy(weeklies=5), timing), lambda: make(("recommended",))
    )
    other_timing = registry.menu_cache(
        (("a",), policy, CacheSettings(refresh_interval=60)), lambda: make(("recommended",))
    )
    assert len({id(first), id(other_source), id(other_policy), id(other_timing)}) == 4
    assert len(made) == 4
    try:
        assert (await other_source.get_menu()).find("w_2024_01") is not None
        assert (await first.get_menu()).find("w_2024_01") is None
    finally:
        registry.forget()


async def test_closing_the_registry_waits_until_every_refresh_has_ended() -> None:
    """A process that stops (the operator) must not leave a refresh task running: kopf would
    wait 5 s for it before exiting."""
    registry = SiteRegistry()
    timing = CacheSettings(refresh_interval=3600, cold_start_timeout=0.05)
    base = "registry.example.org/sciplat-lab"
    caches = [
        registry.menu_cache(
            ((name,), MenuPolicy(), timing), lambda tags=tags: StaticImageSource(base, tags)
        )
        for name, tags in (("a", ("recommended",)), ("b", ("w_2024_01",)))
    ]
    for cache in caches:
        await cache.get_menu()
    refreshes = [task for task in asyncio.all_tasks() if task.get_name().startswith("image menu")]
    assert len(refreshes) == 2
    await registry.close()
    assert all(task.done() for task in refreshes)
    again = registry.menu_cache((("a",), MenuPolicy(), timing), lambda: StaticImageSource(base, ()))
    assert again is not caches[0], "a closed registry forgets its caches"


async def test_two_configurations_with_one_source_share_its_menu_cache(checks: list[str]) -> None:
    """Sizes differ, the source and policy do not: one background refresh, not two."""
    small = spawner(config(lab_sizes=SIZES, lab_default_size="tiny"), "a")
    other = [{"name": "huge", "cpu": 8, "memory": "64Gi"}]
    big = spawner(config(lab_sizes=other, lab_default_size="huge"), "b")
    assert small.site is not big.site
    assert small.image_menu_cache() is big.image_menu_cache()


def test_a_full_registry_starts_over() -> None:
    registry = SiteRegistry(limit=2)
    objects = [LabTraits(lab_shell=f"/bin/sh{i}") for i in range(3)]
    sites = [registry.site_for(obj) for obj in objects]
    assert len({id(site) for site in sites}) == 3
    assert registry.site_for(objects[0]) is sites[0], "an object keeps its site"
    assert registry.site_for(LabTraits(lab_shell="/bin/sh2")) is sites[2]
