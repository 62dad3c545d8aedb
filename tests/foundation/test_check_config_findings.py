"""The hostile-input findings of issue 13: each one a check-config problem naming the trait.

Each passed ``check-config`` before and then broke every spawn, or crashed. Now
``check-config``, hub start (the spawner's constructor) and the spawn run the
same checks (``lsst_spawner.lab.traits.to_settings``), so none gets past the first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from lsst_spawner.auth.github import LSSTGitHubOAuthenticator
from lsst_spawner.checks import check_config
from lsst_spawner.cli import main
from lsst_spawner.commands import _offline_kubernetes_client
from lsst_spawner.config import ConfigError, Duration
from lsst_spawner.lab.errors import LabSpecError
from lsst_spawner.lab.spec import LabRequest, build_lab_objects
from lsst_spawner.lab.traits import LabTraits
from lsst_spawner.offline import OfflineHub, OfflineUser
from lsst_spawner.spawner import LSSTSpawner
from lsst_spawner.testing.oauth.identity import identity_for

CONFIG = """
c.JupyterHub.spawner_class = "lsst"
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
c.LSSTSpawner.static_image_tags = ["recommended", "w_2024_10"]
"""


def base_config() -> Config:
    c = Config()
    exec(CONFIG, {"c": c})  # noqa: S102 - the test's own config text
    return c


def problems_of(c: Config) -> list[str]:
    problems, checked = check_config(c)
    assert "LSSTSpawner" in checked
    return sorted(str(p) for p in problems)


@pytest.fixture
def offline_kubernetes(tmp_path: Path) -> Iterator[None]:
    with _offline_kubernetes_client(str(tmp_path)):
        yield


def start_spawner(c: Config) -> LSSTSpawner:
    """What the hub does for each user: the constructor checks the whole configuration."""
    user = OfflineUser("rra", {"identity": identity_for("rra").to_dict()})
    return LSSTSpawner(config=c, user=user, hub=OfflineHub())


# --- KubeSpawner traits that take the lab's own names and paths ---------------------

BUILTIN_PATHS = {
    "/etc/passwd": "LSSTSpawner.lab_passwd_path",
    "/etc/group": "LSSTSpawner.lab_group_path",
    "/etc/lab/secrets": "LSSTSpawner.lab_secret_directory",
    "/run/lab": "LSSTSpawner.lab_runtime_directory",
}


@pytest.mark.parametrize("key", ["mountPath", "mount_path"])
@pytest.mark.parametrize("path", sorted(BUILTIN_PATHS))
def test_kubespawner_mount_at_a_builtin_path_is_a_problem(key: str, path: str) -> None:
    c = base_config()
    c.KubeSpawner.volumes = [{"name": "extra", "emptyDir": {}}]
    c.KubeSpawner.volume_mounts = [
        {"name": "extra", key: "/srv/fine"},
        {"name": "extra", key: path},
    ]
    assert problems_of(c) == [
        f"KubeSpawner.volume_mounts[1].mountPath: {path!r} is the mount path of the lab's own "
        f"mount ({BUILTIN_PATHS[path]}); choose another"
    ]


def test_kubespawner_mount_at_a_site_mount_path_is_a_problem() -> None:
    c = base_config()
    c.LSSTSpawner.lab_volumes = [{"name": "home", "emptyDir": {}}]
    c.LSSTSpawner.lab_volume_mounts = [{"mount_path": "/home", "volume": "home"}]
    c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home"}]
    assert problems_of(c) == [
        "KubeSpawner.volume_mounts[0].mountPath: '/home' is the mount path of the lab's own "
        "site mount (LSSTSpawner.lab_volume_mounts); choose another"
    ]


@pytest.mark.parametrize("name", ["lab-nss", "lab-secrets", "lab-runtime", "home"])
def test_kubespawner_volume_named_like_a_lab_volume_is_a_problem(name: str) -> None:
    c = base_config()
    c.LSSTSpawner.lab_volumes = [{"name": "home", "emptyDir": {}}]
    c.LSSTSpawner.lab_volume_mounts = [{"mount_path": "/home", "volume": "home"}]
    c.KubeSpawner.volumes = [{"name": name, "emptyDir": {}}]
    found = problems_of(c)
    assert len(found) == 1, found
    assert found[0].startswith(f"KubeSpawner.volumes[0].name: {name!r} is the volume name")


def test_kubespawner_init_container_named_like_ours_is_a_problem() -> None:
    c = base_config()
    c.KubeSpawner.init_containers = [{"name": "init-home", "image": "busybox"}]
    assert problems_of(c) == []  # our init container is off: no clash
    c.LSSTSpawner.lab_init_enabled = True
    assert problems_of(c) == [
        "KubeSpawner.init_containers[0].name: 'init-home' is the init container name of the "
        "lab's own init container (LSSTSpawner.lab_init_containers[0]); choose another"
    ]


async def test_hub_start_refuses_the_same_collision(offline_kubernetes: None) -> None:
    c = base_config()
    c.KubeSpawner.volumes = [{"name": "extra", "emptyDir": {}}]
    c.KubeSpawner.volume_mounts = [{"name": "extra", "mountPath": "/etc/passwd"}]
    with pytest.raises(ConfigError, match=r"KubeSpawner\.volume_mounts\[0\]\.mountPath"):
        start_spawner(c)


async def test_a_clean_configuration_does_not_hide_a_colliding_one(
    offline_kubernetes: None,
) -> None:
    """The once-per-configuration check tells configurations apart by KubeSpawner's mounts too."""
    clean = base_config()
    clean.KubeSpawner.volume_mounts = [{"name": "extra", "mountPath": "/srv/extra"}]
    clean.KubeSpawner.volumes = [{"name": "extra", "emptyDir": {}}]
    start_spawner(clean)
    colliding = base_config()
    colliding.KubeSpawner.volume_mounts = [{"name": "extra", "mountPath": "/etc/group"}]
    colliding.KubeSpawner.volumes = [{"name": "extra", "emptyDir": {}}]
    with pytest.raises(ConfigError, match=r"KubeSpawner\.volume_mounts\[0\]\.mountPath"):
        start_spawner(colliding)


async def test_what_check_config_passes_the_spawn_builds(offline_kubernetes: None) -> None:
    """A KubeSpawner mount and volume beside the lab's: check-config, hub start and spawn agree."""
    c = base_config()
    c.KubeSpawner.volumes = [{"name": "scratch", "emptyDir": {}}]
    c.KubeSpawner.volume_mounts = [{"name": "scratch", "mountPath": "/etc/passwd.d"}]
    assert problems_of(c) == []
    spawner = start_spawner(c)
    identity = identity_for("rra")
    objects = build_lab_objects(
        spawner.lab_settings(),
        identity,
        LabRequest(image="ghcr.io/lsst-sqre/sciplat-lab:w_2024_10"),
        base_pod={
            "metadata": {},
            "spec": {
                "containers": [
                    {"name": "notebook", "volumeMounts": [dict(c.KubeSpawner.volume_mounts[0])]}
                ],
                "volumes": [dict(c.KubeSpawner.volumes[0])],
            },
        },
        api_token="hubtoken-0123456789abcdef",
    )
    mounts = [m["mountPath"] for m in objects.pod["spec"]["containers"][0]["volumeMounts"]]
    assert "/etc/passwd.d" in mounts
    assert "/etc/passwd" in mounts


def test_the_spawn_still_refuses_a_collision_that_bypassed_the_checks() -> None:
    """A hook may change KubeSpawner's pod after the checks; the builder still refuses it."""
    with pytest.raises(LabSpecError, match=r"KubeSpawner\.volume_mounts defines mount paths"):
        build_lab_objects(
            LabTraits().lab_settings(),
            identity_for("rra"),
            LabRequest(image="ghcr.io/lsst-sqre/sciplat-lab:w_2024_10"),
            base_pod={
                "metadata": {},
                "spec": {
                    "containers": [
                        {
                            "name": "notebook",
                            "volumeMounts": [{"name": "x", "mountPath": "/run/lab"}],
                        }
                    ]
                },
            },
            api_token="hubtoken-0123456789abcdef",
        )


# --- numbers, durations and size names -----------------------------------------------


def test_a_size_with_cpu_1e306_is_a_problem() -> None:
    c = base_config()
    c.LSSTSpawner.lab_sizes = [{"name": "medium", "cpu": 1e306, "memory": "4Gi"}]
    assert problems_of(c) == ["LSSTSpawner.lab_sizes[0].cpu: 1e+306 is more than 1,000,000 cores"]


def test_render_pod_refuses_cpu_1e306_with_a_message_not_an_overflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        CONFIG + "c.LSSTSpawner.lab_sizes = [{'name': 'medium', 'cpu': 1e306, 'memory': '4Gi'}]\n"
    )
    assert main(["render-pod", "-f", str(path), "--user", "rra"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "the configuration has 1 problem(s); run `lsst-spawner check-config`" in captured.err


def duration_traits(cls: type[Any]) -> list[str]:
    return sorted(name for name, t in cls.class_traits().items() if isinstance(t, Duration))


@pytest.mark.parametrize("value", ["1e300", 1e300, "9999999999999999d", "100000000000s"])
def test_every_duration_set_to_an_overflowing_value_is_a_problem(value: Any) -> None:
    names = duration_traits(LSSTSpawner)
    assert {"image_dropdown_max_age", "lab_spawn_timeout", "kubernetes_retry_budget"} <= set(names)
    c = base_config()
    for name in names:
        setattr(c.LSSTSpawner, name, value)
    assert problems_of(c) == [
        f"LSSTSpawner.{name}: a duration must be at most 36500d (100 years), not {value!r}"
        for name in names
    ]


def test_authenticator_durations_are_bounded_too() -> None:
    assert duration_traits(LSSTGitHubOAuthenticator) == ["refresh_grace_period"]
    c = base_config()
    c.JupyterHub.authenticator_class = "lsst-github"
    c.LSSTGitHubOAuthenticator.refresh_grace_period = "1e300"
    c.LSSTGitHubOAuthenticator.enable_auth_state = True
    found = [p for p in problems_of(c) if "refresh_grace_period" in p]
    assert found == [
        "LSSTGitHubOAuthenticator.refresh_grace_period: a duration must be at most 36500d "
        "(100 years), not '1e300'"
    ]


@pytest.mark.parametrize("name", ["big one", "a/b", "<b>small</b>", "x" * 100])
def test_size_names_outside_the_grammar_are_problems(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(
        CONFIG
        + f"c.LSSTSpawner.lab_sizes = [{{'name': {name!r}, 'cpu': 1, 'memory': '4Gi'}}]\n"
        + f"c.LSSTSpawner.lab_default_size = {name!r}\n"
    )
    assert main(["check-config", "-f", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("LSSTSpawner.lab_sizes[0].name: ")
    assert lines[0].endswith(
        "is not a size name: use 1 to 63 of A-Z a-z 0-9 _ . -, starting with a letter or digit"
    )
