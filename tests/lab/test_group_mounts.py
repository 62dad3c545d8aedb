"""Group-scoped mounts: the builder's decision, hostile config, check-config and render-pod."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from lsst_spawner.cli import main
from lsst_spawner.lab.spec import LabRequest, build_lab_spec
from lsst_spawner.lab.traits import LabTraits
from lsst_spawner.lab.volumes import SiteMount, SiteVolume, select_site_storage

from .conftest import API_TOKEN, make_identity

#: NeuroHackademy's lecture datasets: read-write for instructors, read-only for students.
GROUP_CONFIG: dict[str, Any] = {
    "lab_volumes": [
        {"name": "home", "nfs": {"server": "nfs.example.org", "path": "/export/home"}},
        {"name": "datasets", "nfs": {"server": "nfs.example.org", "path": "/export/datasets"}},
        {"name": "grading", "persistentVolumeClaim": {"claimName": "grading"}},
    ],
    "lab_volume_mounts": [
        {"mount_path": "/home", "volume": "home"},
        {
            "mount_path": "/datasets",
            "volume": "datasets",
            "read_write_groups": ["instructors"],
            "read_only_groups": ["students"],
        },
        {"mount_path": "/grading", "volume": "grading", "read_write_groups": ["instructors"]},
    ],
}
INSTRUCTOR = {"username": "ana", "groups": [{"name": "instructors", "gid": 5001}]}
STUDENT = {"username": "bob", "groups": [{"name": "students", "gid": 5002}]}
OUTSIDER = {"username": "eve", "groups": [{"name": "visitors", "gid": 5003}]}
BOTH = {
    "username": "tas",
    "groups": [{"name": "students", "gid": 5002}, {"name": "instructors", "gid": 5001}],
}


def site_storage(identity: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(volumes by name, mounts by path) of the lab built for ``identity``."""
    spec = build_lab_spec(
        LabTraits(**GROUP_CONFIG).lab_settings(),
        make_identity(**identity),
        LabRequest(image="sciplat-lab:w_2026_40"),
        api_token=API_TOKEN,
    )
    return {v["name"]: v for v in spec.volumes}, {m["mountPath"]: m for m in spec.volume_mounts}


def test_instructor_gets_read_write() -> None:
    volumes, mounts = site_storage(INSTRUCTOR)
    assert mounts["/datasets"] == {"name": "datasets", "mountPath": "/datasets"}
    assert mounts["/grading"] == {"name": "grading", "mountPath": "/grading"}
    assert {"home", "datasets", "grading"} <= set(volumes)


def test_student_gets_read_only_and_no_instructor_volume() -> None:
    volumes, mounts = site_storage(STUDENT)
    assert mounts["/datasets"] == {"name": "datasets", "mountPath": "/datasets", "readOnly": True}
    assert "/grading" not in mounts
    assert "grading" not in volumes  # no mount names it: not in the pod either
    assert "/home" in mounts


def test_user_in_neither_set_gets_no_mount() -> None:
    volumes, mounts = site_storage(OUTSIDER)
    assert "/datasets" not in mounts
    assert "/grading" not in mounts
    assert "datasets" not in volumes
    assert "grading" not in volumes
    assert "home" in volumes


def test_read_write_wins_for_a_user_in_both() -> None:
    _, mounts = site_storage(BOTH)
    assert "readOnly" not in mounts["/datasets"]


def test_select_site_storage_is_pure_and_covers_init_mounts() -> None:
    volumes = [SiteVolume("data", "emptyDir", {}), SiteVolume("home", "emptyDir", {})]
    lab = [SiteMount("/data", "data", read_only_groups=frozenset({"students"}))]
    init = [SiteMount("/home", "home", read_write_groups=frozenset({"staff"}))]
    kept, mounts, init_mounts = select_site_storage(volumes, lab, init, {"students"})
    assert [v.name for v in kept] == ["data"]
    assert mounts == [
        SiteMount("/data", "data", read_only=True, read_only_groups=lab[0].read_only_groups)
    ]
    assert init_mounts == []
    assert select_site_storage(volumes, lab, init, set()) == ([], [], [])


# --- hostile configuration -----------------------------------------------------------


def problems(mount: dict[str, Any]) -> list[str]:
    config = {
        "lab_volumes": [{"name": "datasets", "emptyDir": {}}],
        "lab_volume_mounts": [{"mount_path": "/datasets", "volume": "datasets", **mount}],
    }
    return [str(p) for p in LabTraits(**config).config_problems()]


@pytest.mark.parametrize(
    ("name", "synced_as"),
    [("Instructors", "'instructors'"), ("TAs & Graders", "'tas-graders-"), ("a\nb", None)],
)
def test_group_name_that_is_not_posix_safe(name: str, synced_as: str | None) -> None:
    found = problems({"read_only_groups": ["students", name]})
    assert len(found) == 1, found
    assert found[0].startswith(
        f"LSSTSpawner.lab_volume_mounts[0].read_only_groups[1]: {name!r} is not a POSIX group name"
    )
    if synced_as:
        assert f"is synced as {synced_as}" in found[0]


def test_same_group_read_only_and_read_write() -> None:
    found = problems({"read_write_groups": ["instructors"], "read_only_groups": ["instructors"]})
    assert found == [
        "LSSTSpawner.lab_volume_mounts[0].read_only_groups: 'instructors' is also in "
        "read_write_groups: a group gets a mount read-write or read-only, not both"
    ]


def test_read_only_flag_with_groups() -> None:
    found = problems({"read_only": False, "read_only_groups": ["students"]})
    assert found == [
        "LSSTSpawner.lab_volume_mounts[0].read_only: cannot be combined with read_write_groups "
        "or read_only_groups: with groups, the groups decide"
    ]


@pytest.mark.parametrize("value", [[], "students", {"students": True}])
def test_groups_must_be_a_non_empty_list(value: object) -> None:
    assert problems({"read_write_groups": value}) == [
        "LSSTSpawner.lab_volume_mounts[0].read_write_groups: must be a non-empty list of "
        "group names"
    ]


def test_hostile_init_mount_groups_named_too() -> None:
    config = {
        "lab_init_enabled": True,
        "lab_volumes": [{"name": "home", "emptyDir": {}}],
        "lab_init_volume_mounts": [
            {"mount_path": "/home", "volume": "home", "read_write_groups": ["Staff:x"]}
        ],
    }
    found = [str(p) for p in LabTraits(**config).config_problems()]
    assert len(found) == 1
    assert found[0].startswith("LSSTSpawner.lab_init_volume_mounts[0].read_write_groups[0]: ")


# --- check-config and render-pod ----------------------------------------------------------

HUB_CONFIG = f"""
c.JupyterHub.spawner_class = "lsst"
c.JupyterHub.authenticator_class = "lsst-github"
c.LSSTGitHubOAuthenticator.client_id = "id"
c.LSSTGitHubOAuthenticator.client_secret = "secret"
c.Authenticator.enable_auth_state = True
c.LSSTSpawner.namespace = "labs"
c.LSSTSpawner.image_source = "static"
c.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
c.LSSTSpawner.static_image_tags = ["recommended", "w_2024_10"]
c.LSSTSpawner.lab_volumes = {GROUP_CONFIG["lab_volumes"]!r}
c.LSSTSpawner.lab_volume_mounts = {GROUP_CONFIG["lab_volume_mounts"]!r}
"""


def test_check_config_flags_unknown_group_only_with_known_groups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.py"
    # Groups are open (any provider group may come): the mounts cannot be checked.
    path.write_text(HUB_CONFIG)
    assert main(["check-config", "-f", str(path)]) == 0, capsys.readouterr().out
    capsys.readouterr()
    # known_groups closes the set: 'students' is not in it, so no user can get the mount.
    path.write_text(HUB_CONFIG + 'c.LSSTGitHubOAuthenticator.known_groups = {"instructors"}\n')
    assert main(["check-config", "-f", str(path)]) == 1
    out = capsys.readouterr().out
    assert (
        "LSSTSpawner.lab_volume_mounts[1].read_only_groups: 'students' is not among the "
        "authenticator's known_groups: no user can be in it"
    ) in out
    assert "read_write_groups" not in out
    # The same rule for the size quota's groups ('*' is everyone, not a group).
    quota = 'c.LSSTSpawner.lab_size_quota = {"*": ["small"], "staff": ["large"]}\n'
    path.write_text(
        HUB_CONFIG
        + quota
        + 'c.LSSTGitHubOAuthenticator.known_groups = {"instructors", "students"}\n'
    )
    assert main(["check-config", "-f", str(path)]) == 1
    out = capsys.readouterr().out
    assert (
        "LSSTSpawner.lab_size_quota['staff']: 'staff' is not among the authenticator's "
        "known_groups: no user can be in it"
    ) in out
    assert "'*'" not in out
    path.write_text(
        HUB_CONFIG + 'c.LSSTGitHubOAuthenticator.known_groups = {"instructors", "students"}\n'
    )
    assert main(["check-config", "-f", str(path)]) == 0, capsys.readouterr().out


def test_check_config_flags_unknown_groups_of_an_init_containers_own_mounts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init = [
        {"name": "init-home", "privilege": "root"},
        {
            "name": "grader",
            "volume_mounts": [
                {"mount_path": "/grading", "volume": "grading", "read_write_groups": ["staff"]}
            ],
        },
    ]
    path = tmp_path / "config.py"
    path.write_text(
        HUB_CONFIG
        + "c.LSSTSpawner.lab_init_enabled = True\n"
        + f"c.LSSTSpawner.lab_init_containers = {init!r}\n"
        + 'c.LSSTGitHubOAuthenticator.known_groups = {"instructors", "students"}\n'
    )
    assert main(["check-config", "-f", str(path)]) == 1
    out = capsys.readouterr().out
    assert (
        "LSSTSpawner.lab_init_containers[1].volume_mounts[0].read_write_groups: 'staff' is not "
        "among the authenticator's known_groups: no user can be in it"
    ) in out, out


def test_render_pod_shows_the_difference_for_two_users(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.py"
    config.write_text(HUB_CONFIG)
    pods = {}
    for who in (INSTRUCTOR, STUDENT):
        identity = make_identity(**who).to_dict()
        auth = tmp_path / f"{who['username']}.json"
        auth.write_text(json.dumps({"identity": identity}))
        args = ["render-pod", "-f", str(config), "--user", str(who["username"])]
        assert main([*args, "--auth-state", str(auth)]) == 0
        objects = list(yaml.safe_load_all(capsys.readouterr().out))
        pods[who["username"]] = next(o for o in objects if o["kind"] == "Pod")

    def site_mounts(pod: dict[str, Any]) -> dict[str, Any]:
        container = pod["spec"]["containers"][0]
        return {m["mountPath"]: m.get("readOnly", False) for m in container["volumeMounts"]}

    ana, bob = site_mounts(pods["ana"]), site_mounts(pods["bob"])
    assert ana["/datasets"] is False
    assert ana["/grading"] is False
    assert bob["/datasets"] is True
    assert "/grading" not in bob
    assert "grading" not in {v["name"] for v in pods["bob"]["spec"]["volumes"]}
