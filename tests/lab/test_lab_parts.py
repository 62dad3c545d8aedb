"""Site secrets by reference, init containers, static files, writable paths: hostile input.

Each refusal is shown with the hostile configuration itself, through the same
checks check-config and hub start run, and, where a rule depends on the user,
at spawn time through the same rule function.
"""

from __future__ import annotations

from typing import Any

import pytest
from traitlets.config import Config

from lsst_spawner.checks import check_config
from lsst_spawner.lab.errors import LabSpecError
from lsst_spawner.lab.files import LabFile
from lsst_spawner.lab.init import InitContainer, InitSettings
from lsst_spawner.lab.limits import MAX_OBJECT_DATA_BYTES
from lsst_spawner.lab.secrets import ExtraSecret, SecretRef, SecretSettings
from lsst_spawner.lab.spec import LabRequest, LabSettings, build_lab_objects, build_lab_spec
from lsst_spawner.lab.traits import LabTraits
from lsst_spawner.testing.kube.podenv import resolve_lab_env

from .conftest import API_TOKEN, kubespawner_pod, make_identity, secret_text, validate
from .test_env_layout import build

OPTIONS = LabRequest(image="sciplat-lab:w_2026_40")


def problems(**config: Any) -> list[str]:
    return [str(p) for p in LabTraits(**config).config_problems()]


def ref_secret(**ref: Any) -> dict[str, Any]:
    return {"key": "butler", "env": "BUTLER", "secret_key_ref": ref}


# --- site secrets by reference ------------------------------------------------------


def test_a_secret_by_reference_is_never_copied_and_reaches_env_and_file() -> None:
    objects = build(lab_extra_secrets=[ref_secret(name="site-butler", key="token")])
    assert "butler" not in objects.secret["data"]
    container = objects.pod["spec"]["containers"][0]
    by_name = {e["name"]: e for e in container["env"]}
    assert by_name["BUTLER"]["valueFrom"] == {
        "secretKeyRef": {"name": "site-butler", "key": "token"}
    }
    volume = next(v for v in objects.pod["spec"]["volumes"] if v["name"] == "lab-secrets")
    assert volume["projected"]["sources"][1] == {
        "secret": {"name": "site-butler", "items": [{"key": "token", "path": "butler"}]}
    }
    for obj in objects.as_list():
        validate(obj)
    site = {
        "kind": "Secret",
        "metadata": {"name": "site-butler"},
        "data": {"token": "YnV0bGVyLTQy"},
    }
    assert resolve_lab_env([site, *objects.as_list()])["BUTLER"] == "butler-42"


@pytest.mark.parametrize(
    ("ref", "where", "message"),
    [
        (
            {"name": "butler", "key": "token", "namespace": "kube-system"},
            "secret_key_ref.namespace",
            "'kube-system': a lab can only read Secrets in the lab namespace",
        ),
        ({"name": "kube-system/butler", "key": "token"}, "secret_key_ref.name", "not a Secret"),
        ({"name": "../butler", "key": "token"}, "secret_key_ref.name", "not a Secret name"),
        ({"name": "Butler", "key": "token"}, "secret_key_ref.name", "not a Secret name"),
        ({"name": "x" * 254, "key": "token"}, "secret_key_ref.name", "not a Secret name"),
        ({"name": "butler", "key": "../token"}, "secret_key_ref.key", "not a Secret key"),
        ({"name": "butler", "key": ".."}, "secret_key_ref.key", "not a Secret key"),
        ({"name": "butler", "key": ""}, "secret_key_ref.key", "not a Secret key"),
        ({"name": "butler"}, "secret_key_ref.key", "None is not a Secret key"),
        ({"name": "butler", "key": "token", "other": 1}, "secret_key_ref", "must be a dict"),
    ],
)
def test_a_hostile_secret_reference_is_refused_naming_the_field(
    ref: dict[str, Any], where: str, message: str
) -> None:
    found = problems(lab_extra_secrets=[ref_secret(**ref)])
    assert len(found) == 1, found
    assert found[0].startswith(f"LSSTSpawner.lab_extra_secrets[0].{where}: ")
    assert message in found[0]


def check_config_problems(**traits: Any) -> list[str]:
    """What ``lsst-spawner check-config`` reports for ``c.LSSTSpawner.<trait> = value``."""
    config = Config()
    config.JupyterHub.spawner_class = "lsst"
    config.LSSTSpawner.image_source = "static"
    config.LSSTSpawner.static_image_base = "ghcr.io/lsst-sqre/sciplat-lab"
    config.LSSTSpawner.static_image_tags = ["recommended"]
    for name, value in traits.items():
        setattr(config.LSSTSpawner, name, value)
    found, checked = check_config(config)
    assert "LSSTSpawner" in checked
    return [str(p) for p in found]


def test_a_reference_to_the_lab_namespace_itself_is_accepted() -> None:
    secrets = [ref_secret(name="butler", key="token", namespace="labs")]
    assert check_config_problems(namespace="labs", lab_extra_secrets=secrets) == []
    other = check_config_problems(namespace="jhub", lab_extra_secrets=secrets)
    assert other == [
        "LSSTSpawner.lab_extra_secrets[0].secret_key_ref.namespace: 'labs': a lab can only "
        "read Secrets in the lab namespace ('jhub'); copy the Secret there"
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"key": "b", "hub_env": "HUB_B", "secret_key_ref": {"name": "s", "key": "k"}},
            "give exactly one of hub_env and secret_key_ref",
        ),
        ({"key": "b"}, "give exactly one of hub_env and secret_key_ref"),
        ({"key": "env.HOME", "hub_env": "HUB_B"}, "'env.HOME' is reserved"),
        ({"key": "file.0", "hub_env": "HUB_B"}, "'file.0' is reserved"),
        ({"key": "..", "hub_env": "HUB_B"}, "'..' is not a file name"),
    ],
)
def test_hostile_extra_secrets_are_refused(entry: dict[str, Any], message: str) -> None:
    found = problems(lab_extra_secrets=[entry])
    assert len(found) == 1, found
    assert found[0].startswith("LSSTSpawner.lab_extra_secrets[0]")
    assert message in found[0]


def test_the_builder_refuses_a_reserved_key_without_the_checks() -> None:
    settings = LabTraits().lab_settings()
    hostile = LabSettings(
        sizes=settings.sizes,
        default_size=settings.default_size,
        secrets=SecretSettings(extra=(ExtraSecret("file.0", ref=SecretRef("s", "k")),)),
    )
    with pytest.raises(LabSpecError, match=r"key 'file\.0' is reserved"):
        build_lab_spec(hostile, make_identity(), OPTIONS, api_token=API_TOKEN)


# --- init containers ------------------------------------------------------------------


def init_config(*containers: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"lab_init_enabled": True, "lab_init_containers": list(containers), **more}


def test_the_default_list_is_the_home_directory_container() -> None:
    objects = build(lab_init_enabled=True)
    (init,) = objects.pod["spec"]["initContainers"]
    assert init["name"] == "init-home"
    assert init["securityContext"]["runAsUser"] == 0
    assert init["securityContext"]["capabilities"] == {
        "drop": ["ALL"],
        "add": ["CHOWN", "DAC_OVERRIDE", "FOWNER"],
    }
    assert "initContainers" not in build().pod["spec"]


def test_init_containers_run_in_their_order_before_kubespawners() -> None:
    traits = LabTraits(
        **init_config(
            {"name": "init-home", "privilege": "root"},
            {"name": "second", "image": "x:1", "privilege": "user"},
        )
    )
    base = kubespawner_pod(init_containers=[{"name": "site-init", "image": "site:1"}])
    objects = build_lab_objects(
        traits.lab_settings(), make_identity(), OPTIONS, base_pod=base, api_token=API_TOKEN
    )
    names = [c["name"] for c in objects.pod["spec"]["initContainers"]]
    assert names == ["init-home", "second", "site-init"]
    second = objects.pod["spec"]["initContainers"][1]["securityContext"]
    assert second["runAsUser"] == 4137
    assert second["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize(
    ("entry", "where", "message"),
    [
        (
            {"name": "mounter", "privilege": "privileged"},
            "privilege",
            "a privileged container needs LSSTSpawner.lab_init_allow_privileged = True",
        ),
        (
            {"name": "mounter", "privilege": "root", "capabilities": ["SYS_ADMIN"]},
            "capabilities",
            "capabilities ['SYS_ADMIN'] needs LSSTSpawner.lab_init_allow_privileged = True",
        ),
        (
            {"name": "mounter", "privilege": "root", "capabilities": ["ALL"]},
            "capabilities",
            "needs LSSTSpawner.lab_init_allow_privileged = True",
        ),
        (
            {"name": "mounter", "privilege": "user", "capabilities": ["CHOWN"]},
            "capabilities",
            "only a 'root' container adds capabilities",
        ),
        (
            {"name": "mounter", "privilege": "root", "capabilities": ["CAP_CHOWN"]},
            "capabilities",
            "'CAP_CHOWN' is not a capability name",
        ),
        ({"name": "mounter", "privilege": "superuser"}, "privilege", "'superuser' is not one of"),
        ({"name": "Mounter"}, "name", "'Mounter' is not a DNS label"),
        ({"name": "mounter", "image": " "}, "image", "must be a non-empty image reference"),
        ({"name": "mounter", "command": "rm -rf /"}, "command", "must be a list of strings"),
        ({"name": "mounter", "privileged": True}, "", "must be a dict with"),
    ],
)
def test_a_hostile_init_container_is_refused_naming_the_field(
    entry: dict[str, Any], where: str, message: str
) -> None:
    found = problems(**init_config({"name": "init-home", "privilege": "root"}, entry))
    assert len(found) == 1, found
    assert found[0].startswith(f"LSSTSpawner.lab_init_containers[1]{'.' + where if where else ''}")
    assert message in found[0]


def test_privileged_init_containers_pass_with_the_site_trait() -> None:
    config = init_config(
        {"name": "mounter", "privilege": "privileged"},
        {"name": "admin", "privilege": "root", "capabilities": ["SYS_ADMIN"]},
        lab_init_allow_privileged=True,
    )
    assert problems(**config) == []
    mounter, admin = build(**config).pod["spec"]["initContainers"]
    assert mounter["securityContext"]["privileged"] is True
    assert admin["securityContext"]["capabilities"]["add"] == ["SYS_ADMIN"]


def test_duplicate_init_container_names_and_unknown_volumes_are_refused() -> None:
    found = problems(
        **init_config(
            {"name": "init-home", "privilege": "root"},
            {"name": "init-home", "volume_mounts": [{"mount_path": "/x", "volume": "nope"}]},
        )
    )
    assert found == [
        "LSSTSpawner.lab_init_containers[1].name: 'init-home' is also "
        "LSSTSpawner.lab_init_containers[0]",
        "LSSTSpawner.lab_init_containers[1].volume_mounts[0].volume: 'nope' is not a defined "
        "volume",
    ]


def test_the_builder_refuses_a_privileged_container_without_the_trait() -> None:
    # Settings made without the trait checks (a library user, the operator): still refused.
    settings = LabTraits().lab_settings()
    hostile = LabSettings(
        sizes=settings.sizes,
        default_size=settings.default_size,
        init=InitSettings(
            enabled=True, containers=(InitContainer(name="x", privilege="privileged"),)
        ),
    )
    message = r"lab_init_containers\[0\]\.privilege: a privileged container needs"
    with pytest.raises(LabSpecError, match=message):
        build_lab_spec(hostile, make_identity(), OPTIONS, api_token=API_TOKEN)


def test_a_kubespawner_init_container_may_not_take_a_name_of_ours() -> None:
    found = check_config_problems(
        init_containers=[{"name": "fetch", "image": "x:1"}],
        **init_config({"name": "fetch", "image": "y:1"}),
    )
    assert len(found) == 1, found
    assert "init container (LSSTSpawner.lab_init_containers[0])" in found[0]


# --- static files ---------------------------------------------------------------------


def files(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"lab_files": list(entries)}


def test_files_are_written_read_only_from_the_lab_secret() -> None:
    objects = build(**files({"path": "/etc/motd", "content": "hi\n", "mode": 0o440}))
    assert secret_text(objects.secret, "file.0") == "hi\n"
    container = objects.pod["spec"]["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/motd")
    assert mount == {
        "name": "lab-files",
        "mountPath": "/etc/motd",
        "subPath": "file.0",
        "readOnly": True,
    }
    volume = next(v for v in objects.pod["spec"]["volumes"] if v["name"] == "lab-files")
    assert volume["secret"]["items"] == [{"key": "file.0", "path": "file.0", "mode": 0o440}]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc/passwd", "collides with the built-in mount LSSTSpawner.lab_passwd_path"),
        ("/etc/group", "collides with the built-in mount LSSTSpawner.lab_group_path"),
        ("/etc", "collides with the built-in mount LSSTSpawner.lab_passwd_path"),
        ("/etc/lab/secrets/token", "built-in mount LSSTSpawner.lab_secret_directory"),
        ("/etc/lab/secrets", "built-in mount LSSTSpawner.lab_secret_directory"),
        ("/run/lab/x", "built-in mount LSSTSpawner.lab_runtime_directory"),
        ("/tmp/x", "a writable path (LSSTSpawner.lab_writable_paths)"),
        ("/home", "a site mount (LSSTSpawner.lab_volume_mounts)"),
        ("/home/x/.bashrc", "a site mount (LSSTSpawner.lab_volume_mounts)"),
        ("/etc/../etc/passwd", "is not normalized"),
        ("etc/motd", "must be an absolute path"),
        ("/", "'/' cannot be a mount path"),
    ],
)
def test_a_file_on_a_built_in_or_mounted_path_is_refused(path: str, message: str) -> None:
    config = {
        **files({"path": path, "content": "x"}),
        "lab_volumes": [{"name": "home", "emptyDir": {}}],
        "lab_volume_mounts": [{"mount_path": "/home", "volume": "home"}],
    }
    found = problems(**config)
    assert len(found) == 1, found
    assert found[0].startswith("LSSTSpawner.lab_files[0].path: ")
    assert message in found[0]


def test_a_file_at_the_home_directory_is_refused() -> None:
    found = problems(
        lab_home_directory="/srv/{unescaped_username}",
        **files({"path": "/srv", "content": "x"}),
    )
    assert found == [
        "LSSTSpawner.lab_files[0].path: '/srv' collides with the home directory "
        "(LSSTSpawner.lab_home_directory) ('/srv/sample.user')"
    ]


def test_a_file_in_one_users_home_is_refused_at_spawn_by_the_same_rule() -> None:
    # check-config sees sample users' homes only; the spawn checks the user's own.
    config = {
        "lab_home_directory": "/srv/{unescaped_username}",
        **files({"path": "/srv/rra/.bashrc", "content": "x"}),
    }
    assert problems(**config) == []
    with pytest.raises(LabSpecError) as info:
        build(**config)
    assert str(info.value) == (
        "LSSTSpawner.lab_files[0].path: '/srv/rra/.bashrc' collides with the home directory "
        "(LSSTSpawner.lab_home_directory) ('/srv/rra')"
    )


def test_colliding_files_are_refused() -> None:
    found = problems(
        **files(
            {"path": "/opt/a", "content": "1"},
            {"path": "/opt/a", "content": "2"},
            {"path": "/opt/a/b", "content": "3"},
        )
    )
    assert found == [
        "LSSTSpawner.lab_files[1].path: '/opt/a' is also the path of LSSTSpawner.lab_files[0]",
        "LSSTSpawner.lab_files[2].path: '/opt/a/b' collides with LSSTSpawner.lab_files[0] "
        "('/opt/a')",
    ]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"path": "/opt/a", "content": "x", "mode": 0o4755}, "mode: 2541 must be permission bits"),
        ({"path": "/opt/a", "content": "x", "mode": "0644"}, "mode: '0644' must be permission"),
        ({"path": "/opt/a", "content": b"x"}, "content: must be a string"),
        ({"path": "/opt/a", "content": "x", "owner": "root"}, "must be a dict with"),
    ],
)
def test_hostile_file_entries_are_refused(entry: dict[str, Any], message: str) -> None:
    found = problems(**files(entry))
    assert len(found) == 1, found
    assert found[0].startswith("LSSTSpawner.lab_files[0]")
    assert message in found[0]


def test_files_beyond_one_mib_are_refused_naming_the_file() -> None:
    half = "x" * (MAX_OBJECT_DATA_BYTES // 2)
    found = problems(
        **files(
            {"path": "/opt/a", "content": half},
            {"path": "/opt/b", "content": half},
            {"path": "/opt/c", "content": "y"},
        )
    )
    assert found == [
        "LSSTSpawner.lab_files[2].content: the files add up to 1024.0 KiB with this one, over "
        "the 1024.0 KiB a Kubernetes Secret may hold"
    ]
    # Within the limit in all, the whole Secret (with the NSS files and tokens) is still
    # measured at spawn: refused there, naming the largest keys.
    assert (
        problems(**files({"path": "/opt/a", "content": half}, {"path": "/opt/b", "content": half}))
        == []
    )
    with pytest.raises(LabSpecError, match=r"nb-rra-secret would hold .* \(largest keys: file\.0"):
        build(**files({"path": "/opt/a", "content": half}, {"path": "/opt/b", "content": half}))


def test_the_builder_refuses_a_file_on_etc_passwd_without_the_checks() -> None:
    settings = LabTraits().lab_settings()
    hostile = LabSettings(
        sizes=settings.sizes,
        default_size=settings.default_size,
        files=(LabFile("/etc/passwd", "root::0:0::/:/bin/sh\n"),),
    )
    with pytest.raises(LabSpecError, match=r"lab_files\[0\]\.path: '/etc/passwd' collides"):
        build_lab_spec(hostile, make_identity(), OPTIONS, api_token=API_TOKEN)


# --- read-only root and writable paths --------------------------------------------------


def test_the_lab_root_is_read_only_with_tmp_an_empty_dir() -> None:
    objects = build()
    container = objects.pod["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    assert mount == {"name": "lab-writable-0", "mountPath": "/tmp"}
    assert {"name": "lab-writable-0", "emptyDir": {}} in objects.pod["spec"]["volumes"]


def test_turned_off_the_root_is_writable_and_no_writable_volumes_are_added() -> None:
    objects = build(lab_read_only_root_filesystem=False)
    container = objects.pod["spec"]["containers"][0]
    assert "readOnlyRootFilesystem" not in container["securityContext"]
    assert not any(v["name"].startswith("lab-writable-") for v in objects.pod["spec"]["volumes"])


def test_a_site_mount_at_a_writable_path_takes_its_place() -> None:
    objects = build(
        lab_volumes=[{"name": "scratch", "emptyDir": {"sizeLimit": "10Gi"}}],
        lab_volume_mounts=[{"mount_path": "/tmp", "volume": "scratch"}],
    )
    mounts = [m for m in objects.pod["spec"]["containers"][0]["volumeMounts"]]
    assert [m["name"] for m in mounts if m["mountPath"] == "/tmp"] == ["scratch"]
    assert not any(v["name"].startswith("lab-writable-") for v in objects.pod["spec"]["volumes"])


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["/etc"], "[0]: '/etc' collides with LSSTSpawner.lab_passwd_path ('/etc/passwd')"),
        (["/run/lab"], "[0]: '/run/lab' collides with LSSTSpawner.lab_runtime_directory"),
        (["/run/lab/x"], "[0]: '/run/lab/x' collides with LSSTSpawner.lab_runtime_directory"),
        (["/tmp", "/tmp/x"], "[1]: '/tmp/x' collides with LSSTSpawner.lab_writable_paths[0]"),
        (["/tmp", "/tmp"], "[1]: '/tmp' collides with LSSTSpawner.lab_writable_paths[0]"),
        (["tmp"], "[0]: 'tmp' must be an absolute path"),
    ],
)
def test_hostile_writable_paths_are_refused(paths: list[str], message: str) -> None:
    found = problems(lab_writable_paths=paths)
    assert len(found) == 1, found
    assert found[0].startswith("LSSTSpawner.lab_writable_paths")
    assert message in found[0]


def test_a_built_in_directory_may_sit_inside_a_writable_path() -> None:
    # The demo's runtime directory lives under /tmp: mounted inside the emptyDir.
    objects = build(lab_runtime_directory="/tmp/lab/run")
    mounts = [m["mountPath"] for m in objects.pod["spec"]["containers"][0]["volumeMounts"]]
    assert "/tmp" in mounts
    assert "/tmp/lab/run" in mounts


def test_a_site_volume_may_not_take_a_writable_volume_name() -> None:
    found = problems(
        lab_volumes=[{"name": "lab-writable-0", "emptyDir": {}}],
        lab_volume_mounts=[{"mount_path": "/scratch", "volume": "lab-writable-0"}],
    )
    assert "LSSTSpawner.lab_volumes[0].name: 'lab-writable-0' is reserved for the lab" in found


@pytest.mark.parametrize(
    ("mount_path", "trait"), [("/tmp", "lab_writable_paths"), ("/etc/motd", "lab_files")]
)
def test_a_kubespawner_mount_on_a_writable_path_or_file_is_refused(
    mount_path: str, trait: str
) -> None:
    found = check_config_problems(
        volume_mounts=[{"name": "x", "mountPath": mount_path}],
        volumes=[{"name": "x", "emptyDir": {}}],
        lab_files=[{"path": "/etc/motd", "content": "hi"}],
    )
    assert len(found) == 1, found
    assert found[0].startswith("KubeSpawner.volume_mounts[0].mountPath: ")
    assert f"LSSTSpawner.{trait}" in found[0]


@pytest.mark.parametrize(
    ("mode", "fs_group", "warned"),
    [(0o444, None, False), (0o440, None, True), (0o440, 2000, False), (0o400, 2000, True)],
)
def test_a_file_the_user_cannot_read_is_warned_about(
    mode: int, fs_group: int | None, warned: bool
) -> None:
    traits = LabTraits(lab_files=[{"path": "/etc/motd", "content": "x", "mode": mode}])
    traits.lab_fs_group = fs_group
    found = [str(w) for w in traits.config_warnings()]
    expected = [w for w in found if w.startswith("LSSTSpawner.lab_files[0].mode: ")]
    assert bool(expected) is warned, found
    assert traits.config_problems() == [], "a warning, not a problem"
