"""The spawner reads the lab menu: form, validation and pod follow the current revision."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from tornado.web import HTTPError
from traitlets.config import Config

from lsst_spawner.checks import check_config
from lsst_spawner.cli import main
from lsst_spawner.commands import _offline_kubernetes_client
from lsst_spawner.config import ConfigError
from lsst_spawner.identity import Group
from lsst_spawner.menu.storage import MenuStore
from lsst_spawner.site import forget_sites
from lsst_spawner.testing.hub.site import make_site_spawner
from lsst_spawner.testing.oauth.identity import identity_for

from .conftest import make_profile

TAGS = ["recommended", "w_2024_10", "w_2024_09", "w_2024_08", "exp_cuda"]
#: Distinct digests: a tag sharing the recommended tag's digest would be listed as it.
DIGESTS = {tag: f"sha256:{index:064x}" for index, tag in enumerate(TAGS, start=1)}
GPU_GROUP = {
    "name": "gpu",
    "node_selector": {"pool": "gpu"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["a100"]}]}
                ]
            }
        }
    },
    "extended_resources": {"nvidia.com/gpu": 1},
    "max_cpu": "8",
    "max_memory": "64Gi",
}


def hub_config(db_url: str | None, *, interval: float = 0) -> Config:
    c = Config()
    c.JupyterHub.spawner_class = "lsst"
    c.LSSTSpawner.namespace = "labs"
    c.LSSTSpawner.image_source = "static"
    c.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
    c.LSSTSpawner.static_image_tags = TAGS
    c.LSSTSpawner.static_image_digests = DIGESTS
    c.LSSTSpawner.lab_sizes = [
        {"name": "small", "cpu": 1, "memory": "4Gi"},
        {"name": "medium", "cpu": 2, "memory": "8Gi"},
    ]
    c.LSSTSpawner.lab_default_size = "small"
    c.LSSTSpawner.node_selector = {"zone": "a"}  # KubeSpawner's own: must survive
    if db_url is not None:
        c.LabMenu.db_url = db_url
    c.LabMenu.node_groups = [GPU_GROUP]
    c.LabMenu.revision_check_interval = interval
    return c


def menu(**changes: Any) -> dict[str, Any]:
    """The GPU menu: small (default) and gpu (for gpu-users), a hidden and a deprecated image."""
    document: dict[str, Any] = {
        "image_policy": {"releases": 0, "weeklies": 3, "dailies": 0},
        "images": [
            {"tag": "recommended", "default": True},
            {"tag": "w_2024_10"},
            {"tag": "w_2024_09", "state": "hidden"},
            {"tag": "w_2024_08", "state": "deprecated", "redirect_to": "w_2024_10"},
            {"tag": "exp_cuda", "display_name": "CUDA lab", "groups": ["gpu-users"]},
        ],
        "profiles": [
            make_profile("small", default=True).model_dump(mode="json"),
            make_profile("gpu", cpu="4", node_group="gpu", groups=["gpu-users"]).model_dump(
                mode="json"
            ),
        ],
    }
    document.update(changes)
    return document


@pytest.fixture(autouse=True)
def offline_kubeconfig(tmp_path: Path) -> Iterator[None]:
    """KubeSpawner's constructor loads a kubeconfig: render-pod's, naming nothing."""
    with _offline_kubernetes_client(str(tmp_path)):
        yield


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'menu.sqlite'}"


@pytest.fixture
def store(db: str) -> Any:
    from lsst_spawner.menu import node_groups_by_name
    from lsst_spawner.menu.model import NodeGroup

    menu_store = MenuStore(db, node_groups_by_name([NodeGroup.model_validate(GPU_GROUP)]))
    menu_store.upgrade()
    yield menu_store
    menu_store.close()
    forget_sites()


def gpu_user(name: str = "gina") -> Any:
    identity = identity_for(name)
    groups = (*identity.groups, Group("gpu-users", 7001))
    return identity.__class__(**{**identity.__dict__, "groups": groups})


def spawner_for(config: Config, name: str, *, gpu: bool = False, **options: Any) -> Any:
    identity = gpu_user(name) if gpu else identity_for(name)
    return make_site_spawner(config, name, identity=identity, options=options)


async def test_two_groups_see_different_forms(store: MenuStore, db: str) -> None:
    store.save(menu(), base=None, author="alice")
    config = hub_config(db)
    plain = await spawner_for(config, "paul").get_options_form()
    gpu = await spawner_for(config, "gina", gpu=True).get_options_form()
    assert 'value="gpu"' not in plain
    assert 'value="gpu"' in gpu
    assert "exp_cuda" not in plain
    assert 'value="exp_cuda"' in gpu
    assert "CUDA lab" in gpu
    assert "4 CPU, 4Gi RAM, 1 nvidia.com/gpu" in gpu
    for form in (plain, gpu):
        assert 'value="small" checked' in form
        assert 'value="medium"' not in form
        assert "w_2024_09" not in form
        assert "w_2024_08" not in form
        assert 'value="w_2024_10"' in form


@pytest.mark.parametrize(
    ("form", "named"),
    [
        ({"image_list": ["w_2024_09"], "size": ["small"]}, "w_2024_09 is no longer offered"),
        ({"image_list": ["w_2024_08"], "size": ["small"]}, "w_2024_08 is deprecated"),
        ({"image_list": ["exp_cuda"], "size": ["small"]}, "exp_cuda is no longer offered"),
        ({"image_list": ["recommended"], "size": ["gpu"]}, "size 'gpu' is not one of small"),
        ({"image_list": ["recommended"], "size": ["medium"]}, "size 'medium' is not one of"),
    ],
)
async def test_a_hidden_image_or_profile_cannot_be_posted(
    store: MenuStore, db: str, form: dict[str, list[str]], named: str
) -> None:
    store.save(menu(), base=None, author="alice")
    spawner = spawner_for(hub_config(db), "paul")
    with pytest.raises(HTTPError) as caught:
        await spawner.run_options_from_form(form)
    assert getattr(caught.value, "status_code", None) == 400
    assert named in str(caught.value.log_message)


async def test_the_gpu_profile_reaches_the_pod(
    store: MenuStore, db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.save(menu(), base=None, author="alice")
    config = hub_config(db)
    spawner = spawner_for(config, "gina", gpu=True, image="exp_cuda", size="gpu")
    pod = (await spawner.render_lab_objects())[-1]
    kubernetes_validate.validate(pod, "1.30", strict=True)
    body = pod["spec"]
    lab = body["containers"][0]
    assert body["nodeSelector"] == {"zone": "a", "pool": "gpu"}
    assert GPU_GROUP["tolerations"][0] in body["tolerations"]  # type: ignore[index]
    assert body["affinity"] == GPU_GROUP["affinity"]
    assert lab["resources"] == {
        "limits": {"cpu": "4", "memory": str(4 * 2**30), "nvidia.com/gpu": "1"},
        "requests": {"cpu": "100m", "memory": str(2**30), "nvidia.com/gpu": "1"},
    }
    assert lab["image"] == f"ghcr.io/lsst-sqre/sciplat-lab:exp_cuda@{DIGESTS['exp_cuda']}"
    # The small profile: its own guarantees, no node group.
    small = spawner_for(config, "paul", image="recommended", size="small")
    small_pod = (await small.render_lab_objects())[-1]
    assert small_pod["spec"]["nodeSelector"] == {"zone": "a"}
    assert "affinity" not in small_pod["spec"]
    resources = small_pod["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"cpu": "100m", "memory": str(2**30)}


async def test_a_saved_revision_is_what_the_next_render_and_validation_see(
    store: MenuStore, db: str
) -> None:
    config = hub_config(db)
    spawner = spawner_for(config, "paul")
    # An empty database: the traitlets menu (lab_sizes), as seeded.
    assert 'value="medium"' in await spawner.get_options_form()
    first = store.save(menu(), base=None, author="alice")
    form = await spawner.get_options_form()
    assert 'value="medium"' not in form
    assert "w_2024_09" not in form
    shown = menu()
    shown["images"][2] = {"tag": "w_2024_09"}
    store.save(shown, base=first.number, author="alice")
    assert 'value="w_2024_09"' in await spawner.get_options_form()
    options = await spawner.run_options_from_form({"image_list": ["w_2024_09"]})
    assert options["image"] == "w_2024_09"


async def test_the_revision_marker_is_read_at_most_once_per_interval(
    store: MenuStore, db: str
) -> None:
    store.save(menu(), base=None, author="alice")
    spawner = spawner_for(hub_config(db, interval=5), "paul")
    for _ in range(5):
        await spawner.get_options_form()
    live = spawner.site._registry.lab_menus.live_menu(spawner)
    assert live.checks == 1
    assert live.loads == 1


async def test_saved_options_go_to_the_redirect_target_or_the_default_and_the_form_says_so(
    store: MenuStore, db: str
) -> None:
    store.save(menu(), base=None, author="alice")
    config = hub_config(db)
    deprecated = spawner_for(config, "paul", image="w_2024_08", size="medium")
    deprecated.lab_options_fresh = False  # saved options, re-used by the hub
    form = await deprecated.get_options_form()
    assert "Your saved image w_2024_08 is deprecated; w_2024_10 is selected instead." in form
    assert "Your saved profile &#39;medium&#39; is no longer offered; small is selected" in form
    assert 'value="w_2024_10" checked' in form
    options = await deprecated.validate_user_options()
    assert (options.image.tag, options.size) == ("w_2024_10", "small")

    hidden = spawner_for(config, "hana", image="w_2024_09")
    hidden.lab_options_fresh = False
    assert "w_2024_09 is no longer offered; recommended is selected" in (
        await hidden.get_options_form()
    )
    assert (await hidden.validate_user_options()).image.tag == "recommended"
    # Options that are still offered: nothing to say.
    fine = spawner_for(config, "fred", image="w_2024_10", size="small")
    assert "lsst-notice" not in await fine.get_options_form()


async def test_without_a_menu_database_the_traitlets_menu_applies(tmp_path: Path) -> None:
    config = hub_config(None)
    spawner = spawner_for(config, "paul")
    form = await spawner.get_options_form()
    assert 'value="medium"' in form
    assert 'value="w_2024_09"' in form
    assert spawner.site._registry.lab_menus.live_menu(spawner) is None
    assert not (tmp_path / "lsst_spawner_menu.sqlite").exists()
    forget_sites()


def test_render_pod_uses_the_menu_profile(
    store: MenuStore, db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.save(menu(), base=None, author="alice")
    config_file = tmp_path / "config.py"
    config_file.write_text(
        f"c.JupyterHub.spawner_class = 'lsst'\nc.LSSTSpawner.image_source = 'static'\n"
        f"c.LSSTSpawner.static_image_base = 'ghcr.io/lsst-sqre/sciplat-lab'\n"
        f"c.LSSTSpawner.static_image_tags = {TAGS!r}\nc.LabMenu.db_url = {db!r}\n"
        f"c.LabMenu.node_groups = [{GPU_GROUP!r}]\n"
    )
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"size": "small"}))
    args = ["render-pod", "-f", str(config_file), "--user", "rra", "--options", str(options)]
    assert main([*args, "--format", "json"]) == 0
    pod = json.loads(capsys.readouterr().out)[-1]
    assert pod["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "1"
    options.write_text(json.dumps({"size": "medium"}))  # a lab_size, not a profile
    assert main([*args, "--format", "json"]) != 0
    assert "size 'medium' is not one of small" in capsys.readouterr().err
    forget_sites()


@pytest.mark.parametrize(
    ("settings", "where", "message"),
    [
        ({"db_url": "not a url"}, "LabMenu.db_url", "is not a database URL"),
        ({"db_url": "nosuchdb://x/y"}, "LabMenu.db_url", "no database dialect 'nosuchdb'"),
        ({"db_url": "postgresql+pg8000://h/db"}, "LabMenu.db_url", "driver of postgresql+pg8000"),
        ({"revision_check_interval": "10s"}, "LabMenu.revision_check_interval", "between 0 and 5"),
        ({"node_groups": [{"name": "gpu", "max_cpu": "lots"}]}, "LabMenu.node_groups[0]", "lots"),
        ({"db_ulr": "sqlite://"}, "LabMenu.db_ulr", "did you mean db_url"),
        ({"image_platform": "amd64"}, "LabMenu.image_platform", "'amd64' is not a platform"),
    ],
)
def test_check_config_names_what_is_wrong_with_lab_menu(
    settings: dict[str, Any], where: str, message: str
) -> None:
    config = hub_config("sqlite://")
    for key, value in settings.items():
        config.LabMenu[key] = value
    problems, _ = check_config(config)
    found = [p for p in problems if p.where.startswith(where)]
    assert found, problems
    assert message in found[0].message


def test_a_clean_lab_menu_configuration_has_no_problems() -> None:
    problems, _ = check_config(hub_config("sqlite://"))
    assert problems == []


async def test_the_spawner_refuses_to_start_with_a_bad_lab_menu(db: str) -> None:
    config = hub_config(db, interval=60)
    with pytest.raises(ConfigError, match=r"LabMenu\.revision_check_interval"):
        spawner_for(config, "paul")
    forget_sites()


def test_a_profile_keeps_kubespawner_scheduling_and_adds_its_own() -> None:
    from lsst_spawner.lab.sizes import (
        LabProfile,
        apply_profile_scheduling,
        build_profile_scheduling,
    )

    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    theirs = {"key": "site", "operator": "Exists"}
    profile = LabProfile(
        "gpu", 4, 1, 2**32, 2**30,
        node_selector=(("pool", "gpu"),),
        tolerations_json=(json.dumps(toleration), json.dumps(theirs)),
        affinity_json=json.dumps({"nodeAffinity": {}}),
    )  # fmt: skip
    body: dict[str, Any] = {
        "nodeSelector": {"pool": "labs", "zone": "a"},
        "tolerations": [theirs],
        "affinity": {"podAntiAffinity": {}},
    }
    apply_profile_scheduling(body, build_profile_scheduling(profile))
    assert body == {
        "nodeSelector": {"pool": "gpu", "zone": "a"},
        "tolerations": [theirs, toleration],
        "affinity": {"nodeAffinity": {}},
    }
    untouched: dict[str, Any] = {"nodeSelector": {"zone": "a"}}
    apply_profile_scheduling(
        untouched, build_profile_scheduling(LabProfile("s", 1, 1, 2**30, 2**30))
    )
    assert untouched == {"nodeSelector": {"zone": "a"}}


async def test_a_saved_revision_is_seen_once_the_check_interval_has_passed(
    store: MenuStore,
) -> None:
    from lsst_spawner.menu.live import LiveMenu

    now = [100.0]
    live = LiveMenu(store, store.node_groups, check_interval=1.0, clock=lambda: now[0])
    assert await live.revision() is None  # empty: the traitlets menu
    first = store.save(menu(), base=None, author="alice")
    now[0] += 0.5
    assert await live.revision() is None  # within the interval: no database read
    now[0] += 0.5
    seen = await live.revision()
    assert seen is not None
    assert seen.number == first.number
    assert live.checks == 2


async def test_an_unreadable_database_keeps_the_last_revision(
    store: MenuStore, caplog: pytest.LogCaptureFixture
) -> None:
    from lsst_spawner.menu.live import LiveMenu, MenuUnavailable

    store.save(menu(), base=None, author="alice")
    live = LiveMenu(store, store.node_groups, check_interval=0)
    kept = await live.revision()

    def broken() -> int:
        raise OSError("disk on fire")

    store.current_number = broken  # type: ignore[method-assign]
    assert await live.revision() is kept
    assert await live.revision() is kept
    warnings = [r for r in caplog.records if "Cannot read the lab menu database" in r.message]
    assert len(warnings) == 1  # once, until it answers again
    cold = LiveMenu(store, store.node_groups, check_interval=0)
    with pytest.raises(MenuUnavailable, match="cannot be read right now"):
        await cold.revision()


async def test_a_profile_on_a_node_group_the_infra_admins_removed_is_not_offered(
    store: MenuStore, db: str
) -> None:
    document = menu()
    document["profiles"][0]["node_group"] = "gpu"  # the default profile too
    store.save(document, base=None, author="alice")
    config = hub_config(db)
    config.LabMenu.node_groups = []  # removed from the configuration since
    gina = spawner_for(config, "gina", gpu=True)
    with pytest.raises(HTTPError) as refused:
        await gina.get_options_form()
    assert refused.value.status_code == 503
    assert "no lab profile is available" in str(refused.value.log_message)
    document["profiles"].append(make_profile("plain").model_dump(mode="json"))
    store.save(document, base=1, author="alice")
    form = await gina.get_options_form()
    assert 'value="plain" checked' in form
    assert 'value="gpu"' not in form
    assert 'value="small"' not in form


def test_check_config_no_longer_warns_that_size_quotas_do_not_apply_with_the_menu() -> None:
    """The quota applies to the menu's profiles (tests/lab/test_quota.py): no warning."""
    from lsst_spawner.checks import check_config_with_warnings

    config = hub_config("sqlite://")
    config.LSSTSpawner.lab_size_quota = {"*": ["small"]}
    problems, warnings, _ = check_config_with_warnings(config)
    assert (problems, warnings) == ([], [])
