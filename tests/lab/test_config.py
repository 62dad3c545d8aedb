"""Volumes, sizes, paths and timeouts: every problem reported with the trait's name."""

from __future__ import annotations

from typing import Any

import pytest
from traitlets import TraitError

from lsst_spawner.kube.traits import KubeTraits
from lsst_spawner.lab.sizes import LabSize, build_resources, build_size_env, parse_cpu, parse_memory
from lsst_spawner.lab.traits import LabTraits

HOME = {"name": "home", "nfs": {"server": "nfs.example.org", "path": "/export/home"}}


def problems(**config: Any) -> list[str]:
    return [str(p) for p in LabTraits(**config).config_problems()]


def test_defaults_have_no_problems() -> None:
    assert problems() == []
    settings = LabTraits().lab_settings()
    assert [s.name for s in settings.sizes] == ["small", "medium", "large"]


# --- volumes and mounts -----------------------------------------------------------


@pytest.mark.parametrize(
    ("mounts", "expected"),
    [
        (
            [{"mount_path": "/home", "volume": "home"}, {"mount_path": "/home", "volume": "home"}],
            "LSSTSpawner.lab_volume_mounts[1].mount_path: '/home' is also mounted by "
            "LSSTSpawner.lab_volume_mounts[0]",
        ),
        (
            [{"mount_path": "/etc/passwd", "volume": "home"}],
            "LSSTSpawner.lab_volume_mounts[0].mount_path: '/etc/passwd' collides with the built-in "
            "mount '/etc/passwd' (LSSTSpawner.lab_passwd_path)",
        ),
        (
            [{"mount_path": "/etc", "volume": "home"}],
            "LSSTSpawner.lab_volume_mounts[0].mount_path: '/etc' collides with the built-in mount "
            "'/etc/passwd'",
        ),
        (
            [{"mount_path": "/etc/lab/secrets/extra", "volume": "home"}],
            "collides with the built-in mount '/etc/lab/secrets' "
            "(LSSTSpawner.lab_secret_directory)",
        ),
        (
            [{"mount_path": "/run/lab", "volume": "home"}],
            "(LSSTSpawner.lab_runtime_directory)",
        ),
        (
            [{"mount_path": "home", "volume": "home"}],
            "LSSTSpawner.lab_volume_mounts[0].mount_path: 'home' must be an absolute path",
        ),
        (
            [{"mount_path": "/home/../etc", "volume": "home"}],
            "LSSTSpawner.lab_volume_mounts[0].mount_path: '/home/../etc' is not normalized "
            "(write '/etc')",
        ),
        ([{"mount_path": "/home/", "volume": "home"}], "'/home/' is not normalized"),
        ([{"mount_path": "//home", "volume": "home"}], "'//home' is not normalized"),
        ([{"mount_path": "/", "volume": "home"}], "'/' cannot be a mount path"),
        ([{"mount_path": "/a:b", "volume": "home"}], "must not contain ':'"),
        (
            [{"mount_path": "/home", "volume": "homes"}],
            "LSSTSpawner.lab_volume_mounts[0].volume: 'homes' is not a defined volume",
        ),
        (
            [{"mount_path": "/home", "volume": "home", "sub_path": "../other"}],
            "LSSTSpawner.lab_volume_mounts[0].sub_path: '../other' must not contain '..'",
        ),
        (
            [{"mount_path": "/home", "volume": "home", "sub_path": "/abs"}],
            "LSSTSpawner.lab_volume_mounts[0].sub_path",
        ),
        (
            [{"mount_path": "/home", "volume": "home", "sub_path": "{user}"}],
            "LSSTSpawner.lab_volume_mounts[0].sub_path: unknown placeholder {user}",
        ),
        (
            [{"mount_path": "/home", "volume": "home", "read_only": "yes"}],
            "LSSTSpawner.lab_volume_mounts[0].read_only: must be true or false",
        ),
        (
            [{"mount_path": "/home", "volume": "home", "readOnly": True}],
            "LSSTSpawner.lab_volume_mounts[0]: unknown keys ['readOnly']",
        ),
    ],
)
def test_bad_mounts_are_reported(mounts: list[dict[str, Any]], expected: str) -> None:
    found = problems(lab_volumes=[HOME], lab_volume_mounts=mounts)
    assert any(expected in p for p in found), found


@pytest.mark.parametrize(
    ("volumes", "expected"),
    [
        ([HOME, HOME], "LSSTSpawner.lab_volumes[1].name: duplicate volume name 'home'"),
        ([{**HOME, "name": "lab-nss"}], "LSSTSpawner.lab_volumes[0].name: 'lab-nss' is reserved"),
        ([{**HOME, "name": "Home_Dir"}], "'Home_Dir' is not a DNS label"),
        (
            [{"name": "home", "nfs": {"server": "s", "path": "/p"}, "emptyDir": {}}],
            "LSSTSpawner.lab_volumes[0]: needs exactly one source",
        ),
        (
            [{"name": "home", "gitRepo": {"repository": "x"}}],
            "needs exactly one source among nfs, hostPath",
        ),
        (
            [{"name": "home", "nfs": {"path": "/p"}}],
            "LSSTSpawner.lab_volumes[0].nfs: missing server",
        ),
        (
            [{"name": "home", "nfs": {"server": "s", "path": "/export/{uid}/{bad}"}}],
            "LSSTSpawner.lab_volumes[0].nfs.path: unknown placeholder {bad}",
        ),
        (
            [HOME, {"name": "unused", "emptyDir": {}}],
            "LSSTSpawner.lab_volumes[1].name: volume 'unused' is not mounted",
        ),
    ],
)
def test_bad_volumes_are_reported(volumes: list[dict[str, Any]], expected: str) -> None:
    found = problems(
        lab_volumes=volumes, lab_volume_mounts=[{"mount_path": "/home", "volume": "home"}]
    )
    assert any(expected in p for p in found), found


def test_volume_used_only_by_init_container_counts_as_used() -> None:
    config = {
        "lab_volumes": [HOME],
        "lab_init_enabled": True,
        "lab_init_volume_mounts": [{"mount_path": "/home", "volume": "home"}],
    }
    assert problems(**config) == []
    assert problems(**{**config, "lab_init_enabled": False}) == [
        "LSSTSpawner.lab_init_volume_mounts: set, but lab_init_enabled is False: the init "
        "container does not run"
    ]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        lab_volumes=[HOME, {"name": "unused", "emptyDir": {}}],
        lab_volume_mounts=[
            {"mount_path": "relative", "volume": "home"},
            {"mount_path": "/x", "volume": "nope"},
        ],
        lab_sizes=[{"name": "s", "cpu": "lots", "memory": "4GB"}],
        lab_size_request_ratio=0,
    )
    assert len(found) >= 6, found


def test_username_expansion_in_volumes_and_sub_paths() -> None:
    from lsst_spawner.lab.spec import LabRequest, build_lab_objects

    from .conftest import API_TOKEN, kubespawner_pod, make_identity

    traits = LabTraits(
        lab_volumes=[{"name": "home", "hostPath": {"path": "/data/{username}"}}],
        lab_volume_mounts=[
            {"mount_path": "/home", "volume": "home", "sub_path": "{unescaped_username}/{uid}"}
        ],
    )
    objects = build_lab_objects(
        traits.lab_settings(),
        make_identity(username="first.last"),
        LabRequest(image="i:t"),
        base_pod=kubespawner_pod(),
        api_token=API_TOKEN,
    )
    volume = next(v for v in objects.pod["spec"]["volumes"] if v["name"] == "home")
    assert volume["hostPath"]["path"].startswith("/data/first-last---")  # KubeSpawner's safe slug
    mount = next(
        m for m in objects.pod["spec"]["containers"][0]["volumeMounts"] if m["name"] == "home"
    )
    assert mount["subPath"] == "first.last/4137"


# --- built-in paths -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"lab_secret_directory": "/run/lab/secrets"}, "LSSTSpawner.lab_runtime_directory: "),
        ({"lab_group_path": "/etc/passwd"}, "LSSTSpawner.lab_group_path: '/etc/passwd' collides"),
        ({"lab_runtime_directory": "run/lab"}, "LSSTSpawner.lab_runtime_directory: 'run/lab' must"),
    ],
)
def test_bad_builtin_paths_are_reported(config: dict[str, Any], expected: str) -> None:
    found = problems(**config)
    assert any(p.startswith(expected) for p in found), found


# --- sizes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "default", "expected"),
    [
        ([{"name": "s", "cpu": 1, "memory": "4GB"}], "s", "LSSTSpawner.lab_sizes[0].memory: '4GB'"),
        ([{"name": "s", "cpu": 1, "memory": "-4Gi"}], "s", "LSSTSpawner.lab_sizes[0].memory"),
        ([{"name": "s", "cpu": 1, "memory": "lots"}], "s", "LSSTSpawner.lab_sizes[0].memory"),
        ([{"name": "s", "cpu": 1, "memory": 1000}], "s", "less than 1Mi"),
        ([{"name": "s", "cpu": "2x", "memory": "4Gi"}], "s", "LSSTSpawner.lab_sizes[0].cpu: '2x'"),
        ([{"name": "s", "cpu": 0, "memory": "4Gi"}], "s", "LSSTSpawner.lab_sizes[0].cpu"),
        ([{"name": "s", "cpu": True, "memory": "4Gi"}], "s", "LSSTSpawner.lab_sizes[0].cpu"),
        (
            [{"name": "s", "cpu": float("nan"), "memory": "4Gi"}],
            "s",
            "LSSTSpawner.lab_sizes[0].cpu",
        ),
        (
            [{"name": "s", "cpu": 1, "memory": "4Gi"}, {"name": "s", "cpu": 2, "memory": "8Gi"}],
            "s",
            "LSSTSpawner.lab_sizes[1].name: duplicate size name 's'",
        ),
        (
            [{"name": "s", "cpu": 1, "memory": "4Gi"}],
            "huge",
            "LSSTSpawner.lab_default_size: 'huge' is not among the sizes (s)",
        ),
        ([], "s", "LSSTSpawner.lab_sizes: at least one size is required"),
        ([{"name": "s", "cpu": 1, "memory": "4Gi", "gpu": 1}], "s", "unknown keys ['gpu']"),
    ],
)
def test_bad_sizes_are_reported(sizes: list[Any], default: str, expected: str) -> None:
    found = problems(lab_sizes=sizes, lab_default_size=default)
    assert any(expected in p for p in found), found


def test_quantities_parse_exactly() -> None:
    assert parse_memory("4Gi") == 4 * 2**30
    assert parse_memory("1.5Gi") == 3 * 2**29
    assert parse_memory("8G") == 8 * 10**9
    assert parse_memory(2**30) == 2**30
    assert parse_cpu("1500m") == 1.5
    assert parse_cpu(0.5) == 0.5


def test_size_resources_and_env() -> None:
    size = LabSize("medium", 2.0, 8 * 2**30)
    assert build_resources(size, 0.25) == {
        "limits": {"cpu": "2", "memory": str(8 * 2**30)},
        "requests": {"cpu": "500m", "memory": str(2 * 2**30)},
    }
    assert build_size_env(size, 0.25) == {
        "CPU_LIMIT": "2",
        "CPU_GUARANTEE": "0.5",
        "MEM_LIMIT": "8589934592",
        "MEM_GUARANTEE": "2147483648",
        "CONTAINER_SIZE": "medium (2 CPU, 8Gi RAM)",
    }


@pytest.mark.parametrize("ratio", [0, -0.5, 1.5])
def test_bad_request_ratio(ratio: float) -> None:
    assert any(
        p.startswith("LSSTSpawner.lab_size_request_ratio: ")
        for p in problems(lab_size_request_ratio=ratio)
    )


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"lab_fs_group": 0}, "lab_fs_group"),
        ({"lab_minimum_uid": 0}, "lab_minimum_uid"),
        ({"lab_max_groups": 5000}, "lab_max_groups"),
        ({"lab_git_credential_hosts": ["https://github.com/"]}, "lab_git_credential_hosts[0]"),
        ({"lab_init_enabled": True, "lab_init_image": " "}, "lab_init_image"),
    ],
)
def test_bad_numbers_and_hosts(config: dict[str, Any], where: str) -> None:
    assert any(p.startswith(f"LSSTSpawner.{where}: ") for p in problems(**config))


# --- timeouts ---------------------------------------------------------------------------


def test_durations_accept_strings_and_become_lab_env() -> None:
    traits = LabTraits(
        lab_no_activity_timeout="1h30m",
        lab_cull_kernel_idle_timeout=600,
        lab_spawn_timeout="15m",
    )
    assert KubeTraits(kubernetes_retry_budget="90s").kubernetes_retry_budget == 90
    assert traits.lab_spawn_timeout == 900
    env = dict(traits.lab_settings().env)
    assert env["NO_ACTIVITY_TIMEOUT"] == "5400"
    assert env["CULL_KERNEL_IDLE_TIMEOUT"] == "600"


@pytest.mark.parametrize("value", ["soon", "-5s", "0s", "1e300", 1e300, "99999999999d"])
def test_bad_durations_name_the_trait(value: str) -> None:
    with pytest.raises(TraitError, match=r"LSSTSpawner\.kubernetes_request_timeout"):
        KubeTraits(kubernetes_request_timeout=value)


# --- bounds: sizes and quantities (issue 13) ----------------------------------------


@pytest.mark.parametrize("name", ["big one", "a/b", "<b>small</b>", "x" * 100, "-small", "ä"])
def test_size_names_outside_the_grammar_are_problems(name: str) -> None:
    small = {"name": "small", "cpu": 1, "memory": "4Gi"}
    found = problems(
        lab_sizes=[small, {"name": name, "cpu": 1, "memory": "4Gi"}], lab_default_size="small"
    )
    assert len(found) == 1, found
    assert found[0].startswith("LSSTSpawner.lab_sizes[1].name: ")
    assert "is not a size name: use 1 to 63 of A-Z a-z 0-9 _ . -" in found[0]
    assert len(found[0]) < 250  # a 100-character name is cut, not repeated whole


@pytest.mark.parametrize("name", ["a", "x" * 63, "Large.2-cpu_x", "4xl"])
def test_size_names_of_the_grammar_can_be_picked_by_users(name: str) -> None:
    from lsst_spawner.form.options import OptionsCatalog, SizeChoice, parse_user_options
    from lsst_spawner.images.model import ImageMenu, MenuImage, TagKind

    sizes = [{"name": name, "cpu": 1, "memory": "4Gi"}]
    assert problems(lab_sizes=sizes, lab_default_size=name) == []
    image = MenuImage("w_2026_40", TagKind.WEEKLY, "Weekly", "r.example.org/lab:w_2026_40")
    menu = ImageMenu(image_base="r.example.org/lab", radio=(image,), recommended=image)
    catalog = OptionsCatalog(menu=menu, sizes=(SizeChoice(name),), default_size=name)
    assert parse_user_options({"image": "w_2026_40", "size": name}, catalog).size == name


@pytest.mark.parametrize(
    ("size", "where", "message"),
    [
        ({"cpu": 1e306}, "cpu", "more than 1,000,000 cores"),
        ({"cpu": 10**400}, "cpu", "more than 1,000,000 cores"),  # float(10**400) overflows
        ({"cpu": "9" * 400}, "cpu", "more than 1,000,000 cores"),  # float("9" * 400) is inf
        ({"cpu": "1000001"}, "cpu", "more than 1,000,000 cores"),
        ({"memory": "99999999999999999999Pi"}, "memory", "more than 1Ei"),
        ({"memory": 2**61}, "memory", "more than 1Ei"),
    ],
)
def test_overflowing_quantities_are_problems(
    size: dict[str, Any], where: str, message: str
) -> None:
    entry = {"name": "huge", "cpu": 1, "memory": "4Gi", **size}
    small = {"name": "small", "cpu": 1, "memory": "4Gi"}
    found = problems(lab_sizes=[small, entry], lab_default_size="small")
    assert len(found) == 1, found
    assert found[0].startswith(f"LSSTSpawner.lab_sizes[1].{where}: ")
    assert message in found[0]


def test_the_largest_quantities_build_resources() -> None:
    size = LabSize("max", parse_cpu(1_000_000), parse_memory(2**60))
    resources = build_resources(size, 0.25)
    assert resources["limits"] == {"cpu": "1000000", "memory": str(2**60)}
    assert build_size_env(size, 1.0)["CPU_LIMIT"] == "1e+06"


def test_lab_env_values_over_the_kernel_limit_are_problems() -> None:
    found = problems(lab_env={"SITE_BANNER": "x" * (128 * 1024)})
    assert found == [
        "LSSTSpawner.lab_env['SITE_BANNER']: 131085 bytes is over the kernel's limit of "
        "131072 bytes on one environment string (NAME=value): the lab could not start"
    ]
    assert problems(lab_env={"SITE_BANNER": "x" * (128 * 1024 - 13)}) == []


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"lab_minimum_gid": 0}, "LSSTSpawner.lab_minimum_gid"),
        ({"lab_minimum_gid": 2**32}, "LSSTSpawner.lab_minimum_gid"),
        ({"lab_minimum_uid": 2**40}, "LSSTSpawner.lab_minimum_uid"),
        ({"lab_allowed_system_gids": [100, 0]}, "LSSTSpawner.lab_allowed_system_gids[1]"),
        ({"lab_allowed_system_gids": [-5]}, "LSSTSpawner.lab_allowed_system_gids[0]"),
    ],
)
def test_out_of_range_id_floors_are_problems(config: dict[str, Any], where: str) -> None:
    found = problems(**config)
    assert len(found) == 1, found
    assert found[0].startswith(where + ": ")


def test_minimum_ids_default_to_login_defs() -> None:
    traits = LabTraits()
    assert (traits.lab_minimum_uid, traits.lab_minimum_gid) == (1000, 1000)
    settings = traits.lab_settings()
    assert (settings.minimum_uid, settings.minimum_gid) == (1000, 1000)
    assert settings.allowed_system_gids == frozenset()
