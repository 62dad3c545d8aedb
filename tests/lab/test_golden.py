"""The whole object set of a lab, for several identities and option sets, against golden files."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lsst_spawner.lab.spec import LabObjects, LabRequest, build_lab_objects
from lsst_spawner.lab.traits import LabTraits
from lsst_spawner.testing.kube.podenv import resolve_lab_env

from .conftest import API_TOKEN, GIT_TOKEN, kubespawner_pod, make_identity, secret_data, validate
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
    golden(case, {"envSecret": objects.env_secret, "secret": objects.secret, "pod": objects.pod})


@pytest.mark.parametrize("case", sorted(CASES))
def test_lab_environment_matches_golden(case: str, golden: Any) -> None:
    """What the lab process sees, resolved from the objects as the kubelet does.

    Independent of where each variable is written (``env``, ``envFrom``,
    ``secretKeyRef``): a change of layout must leave these files as they are.
    """
    golden(f"{case}.env", resolve_lab_env(build_case(case).as_list()))


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
    data = secret_data(objects.env_secret)
    assert data["JUPYTERHUB_API_URL"] == "http://hub:8081/hub/api"
    assert env["JUPYTERHUB_API_TOKEN"] == {
        "name": "JUPYTERHUB_API_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "nb-rra-secret", "key": "jupyterhub-api-token"}},
    }
    # KubeSpawner's MEM_LIMIT is replaced by the size's, not duplicated.
    assert "MEM_LIMIT" not in env
    assert data["MEM_LIMIT"] == str(8 * 2**30)
    assert resolve_lab_env(objects.as_list())["MEM_LIMIT"] == str(8 * 2**30)
