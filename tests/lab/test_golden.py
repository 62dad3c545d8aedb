"""The whole object set of a lab, for several identities and option sets, against golden files."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from lsst_spawner.lab.spec import LabObjects, LabRequest, build_lab_objects
from lsst_spawner.lab.traits import LabTraits
from lsst_spawner.testing.kube.podenv import resolve_lab_env

from .conftest import API_TOKEN, GIT_TOKEN, kubespawner_pod, make_identity, validate
from .test_group_mounts import GROUP_CONFIG, INSTRUCTOR, STUDENT

SITE_CONFIG: dict[str, Any] = {
    "lab_fs_group": 2000,
    "lab_minimum_uid": 1000,
    "lab_volumes": [
        {"name": "home", "nfs": {"server": "nfs.example.org", "path": "/export/home"}},
        {"name": "project", "persistentVolumeClaim": {"claimName": "project", "readOnly": True}},
        {
            "name": "scratch",
            "hostPath": {"path": "/scratch/{unescaped_username}", "type": "DirectoryOrCreate"},
        },
        {"name": "tmp", "emptyDir": {"sizeLimit": "10Gi"}},
        {"name": "site-config", "configMap": {"name": "lab-site-config"}},
        {"name": "site-certs", "secret": {"secretName": "site-ca"}},
    ],
    "lab_volume_mounts": [
        {"mount_path": "/home", "volume": "home"},
        {"mount_path": "/project", "volume": "project", "read_only": True},
        {"mount_path": "/scratch", "volume": "scratch"},
        {"mount_path": "/tmp", "volume": "tmp"},
        {"mount_path": "/opt/site/config", "volume": "site-config", "read_only": True},
        {"mount_path": "/opt/site/certs", "volume": "site-certs", "read_only": True},
    ],
    "lab_init_enabled": True,
    "lab_init_image": "registry.example/init:1.2.3",
    "lab_init_volume_mounts": [{"mount_path": "/home", "volume": "home"}],
    "lab_extra_users": [{"name": "lsstsvc", "uid": 990, "gid": 990, "gecos": "Service, Rubin"}],
    "lab_extra_groups": [{"name": "lsstsvc", "gid": 990, "members": ["lsstsvc"]}],
    "lab_extra_secrets": [
        {"key": "butler-token", "env": "BUTLER_TOKEN", "hub_env": "HUB_BUTLER_TOKEN"},
        {"key": "db-password", "hub_env": "HUB_DB_PASSWORD"},
    ],
    "lab_env": {"EXTERNAL_INSTANCE_URL": "https://data.example.org"},
    "lab_git_credential_hosts": ["github.com", "gitlab.example.org"],
    "lab_no_activity_timeout": "1d",
    "lab_cull_kernel_idle_timeout": "1h30m",
}
SITE_ENV = {"HUB_BUTLER_TOKEN": "butler-secret-value-42", "HUB_DB_PASSWORD": "db-password-value-43"}

#: Site secrets from the hub's environment and, by reference, from two site Secrets.
SECRET_REF_CONFIG: dict[str, Any] = {
    "lab_extra_secrets": [
        {"key": "butler-token", "env": "BUTLER_TOKEN", "hub_env": "HUB_BUTLER_TOKEN"},
        {
            "key": "db-password",
            "env": "DB_PASSWORD",
            "secret_key_ref": {"name": "site-db", "key": "password"},
        },
        {"key": "db-ca.pem", "secret_key_ref": {"name": "site-db", "key": "ca.pem"}},
        {
            "key": "s3-credentials",
            "secret_key_ref": {"name": "site-s3", "key": "credentials"},
        },
    ],
}

#: The site's own Secrets in the lab namespace, which the kubelet reads for the lab.
SITE_SECRETS = [
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "labs"},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
    for name, data in (
        ("site-db", {"password": "db-by-reference-44", "ca.pem": "---CA---"}),
        ("site-s3", {"credentials": "[default]\nkey = s3-45\n"}),
    )
]

#: Three init containers: the home directory, a user-level one, a privileged one.
INIT_CONFIG: dict[str, Any] = {
    "lab_volumes": [
        {"name": "home", "nfs": {"server": "nfs.example.org", "path": "/export/home"}},
        {"name": "config", "emptyDir": {}},
    ],
    "lab_volume_mounts": [
        {"mount_path": "/home", "volume": "home"},
        {"mount_path": "/opt/config", "volume": "config", "read_only": True},
    ],
    "lab_init_enabled": True,
    "lab_init_allow_privileged": True,
    "lab_init_image": "registry.example/init:1.2.3",
    "lab_init_volume_mounts": [{"mount_path": "/home", "volume": "home"}],
    "lab_init_containers": [
        {"name": "init-home", "privilege": "root"},
        {
            "name": "fetch-config",
            "image": "registry.example/fetch:2.0",
            "command": ["fetch", "--to", "/config"],
            "privilege": "user",
            "volume_mounts": [{"mount_path": "/config", "volume": "config"}],
        },
        {
            "name": "quota",
            "image": "registry.example/quota:1.0",
            "command": ["set-quota"],
            "privilege": "privileged",
            "volume_mounts": [{"mount_path": "/home", "volume": "home"}],
        },
    ],
}

#: Static files, a second writable path, and one with the read-only root turned off.
FILES_CONFIG: dict[str, Any] = {
    "lab_files": [
        {"path": "/etc/lab/motd", "content": "Welcome to the Rubin lab\n"},
        {"path": "/opt/lsst/site.json", "content": '{"site": "example"}\n', "mode": 0o440},
        {"path": "/usr/local/etc/jupyter/jupyter_server_config.json", "content": "{}\n"},
    ],
    "lab_writable_paths": ["/tmp", "/var/tmp"],
}

CASES: dict[str, tuple[dict[str, Any], dict[str, Any], LabRequest]] = {
    "default-rra": ({}, {}, LabRequest(image="registry.example/sciplat-lab:w_2026_40")),
    "minimal-identity-small-debug": (
        {},
        {"groups": [], "name": None, "email": None, "git_token": None, "gid": 5000},
        LabRequest(image="registry.example/sciplat-lab:r29", size="small", debug=True),
    ),
    "site-volumes-init-secrets": (
        SITE_CONFIG,
        {},
        LabRequest(image="registry.example/sciplat-lab@sha256:" + "a" * 64, size="large"),
    ),
    "dotted-username-reset": (
        {"lab_pod_name_template": "lab-{username}"},
        {"username": "first.last", "groups": [{"name": "first_last", "gid": 4137}]},
        LabRequest(image="sciplat-lab:w_2026_41", reset_user_env=True),
    ),
    # One site, two users: datasets read-write for the instructor, read-only for the
    # student, who gets neither the grading mount nor its volume.
    "group-mounts-instructor": (
        GROUP_CONFIG,
        INSTRUCTOR,
        LabRequest(image="sciplat-lab:w_2026_40"),
    ),
    "group-mounts-student": (GROUP_CONFIG, STUDENT, LabRequest(image="sciplat-lab:w_2026_40")),
    "site-secrets-by-reference": (
        SECRET_REF_CONFIG,
        {},
        LabRequest(image="sciplat-lab:w_2026_40"),
    ),
    "init-containers-several": (INIT_CONFIG, {}, LabRequest(image="sciplat-lab:w_2026_40")),
    "static-files-writable-paths": (
        FILES_CONFIG,
        {},
        LabRequest(image="sciplat-lab:w_2026_40"),
    ),
    "read-write-root": (
        {**FILES_CONFIG, "lab_read_only_root_filesystem": False},
        {"groups": [{"name": f"g{i:03d}", "gid": 10_000 + i} for i in range(60)]},
        LabRequest(image="sciplat-lab:w_2026_40"),
    ),
    # A named server: its objects carry the escaped server name and the server label.
    "named-server-gpu": (
        {},
        {},
        LabRequest(image="sciplat-lab:w_2026_41", server_name="GPU.Test"),
    ),
}


def build_case(case: str) -> LabObjects:
    config, identity_overrides, options = CASES[case]
    traits = LabTraits(**config)
    assert traits.config_problems() == []
    return build_lab_objects(
        traits.lab_settings(),
        make_identity(**identity_overrides),
        options,
        base_pod=kubespawner_pod(),
        api_token=API_TOKEN,
        secret_values=traits.lab_extra_secret_values(SITE_ENV),
        namespace="labs",
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_lab_objects_match_golden(case: str, golden: Any) -> None:
    objects = build_case(case)
    for obj in objects.as_list():
        validate(obj)
    # Independent of the builder's own check: no secret value anywhere in the Pod.
    pod_text = json.dumps(objects.pod)
    for secret in (API_TOKEN, GIT_TOKEN, *SITE_ENV.values()):
        assert secret not in pod_text
    golden(case, {"secret": objects.secret, "pod": objects.pod})


@pytest.mark.parametrize("case", sorted(CASES))
def test_lab_environment_matches_golden(case: str, golden: Any) -> None:
    """What the lab process sees, resolved from the objects as the kubelet does.

    Independent of where each variable is written (``env``, ``envFrom``,
    ``secretKeyRef``): a change of layout must leave these files as they are.
    """
    golden(f"{case}.env", resolve_lab_env([*SITE_SECRETS, *build_case(case).as_list()]))


def test_kubespawner_settings_survive() -> None:
    traits = LabTraits()
    base = kubespawner_pod()
    objects = build_lab_objects(
        traits.lab_settings(),
        make_identity(),
        LabRequest(image="sciplat-lab:w_2026_40"),
        base_pod=base,
        api_token=API_TOKEN,
    )
    spec = objects.pod["spec"]
    assert spec["nodeSelector"] == {"lab-node": "true"}
    assert spec["tolerations"] == base["spec"]["tolerations"]
    assert objects.pod["metadata"]["labels"]["component"] == "singleuser-server"
    assert objects.pod["metadata"]["annotations"] == {"hub.jupyter.org/username": "rra"}
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env["JUPYTERHUB_API_URL"]["value"] == "http://hub:8081/hub/api"
    assert env["JUPYTERHUB_API_TOKEN"] == {
        "name": "JUPYTERHUB_API_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "nb-rra-secret", "key": "jupyterhub-api-token"}},
    }
    # KubeSpawner's MEM_LIMIT is replaced by the size's, not duplicated.
    assert [e["name"] for e in spec["containers"][0]["env"]].count("MEM_LIMIT") == 1
    assert env["MEM_LIMIT"]["value"] == str(8 * 2**30)
    assert resolve_lab_env(objects.as_list())["MEM_LIMIT"] == str(8 * 2**30)
