"""Fixtures for the lab builder tests: KubeSpawner's base pod, identities, golden files."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kubespawner.objects import make_pod

from lsst_spawner.identity import Identity
from lsst_spawner.lab.models import model_to_dict
from lsst_spawner.testing.golden import golden_checker

GOLDEN_DIR = Path(__file__).parent / "golden"
API_TOKEN = "hubtoken-0123456789abcdef0123"
GIT_TOKEN = "gho_GitTokenValue0123456789"


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, Any], None]:
    """Compare ``data`` with ``golden/<name>.json``, or rewrite it under ``--update-golden``."""
    return golden_checker(request, GOLDEN_DIR, "tests/lab")


def validate(obj: dict[str, Any]) -> None:
    """Validate against the Kubernetes 1.30 OpenAPI schema (strict: no unknown fields)."""
    kubernetes_validate.validate(obj, "1.30", strict=True)


def secret_text(secret: Mapping[str, Any], key: str) -> str:
    """One value of a Secret, decoded."""
    return base64.b64decode(secret["data"][key]).decode()


def secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    """Every key of a Secret, decoded (the env Secret's plain values)."""
    return {key: secret_text(secret, key) for key in secret.get("data") or {}}


def kubespawner_pod(*, env: dict[str, str] | None = None, **overrides: Any) -> dict[str, Any]:
    """KubeSpawner's pod, as ``get_pod_manifest`` makes it, in wire format."""
    base_env = {
        "JUPYTERHUB_API_TOKEN": API_TOKEN,
        "JPY_API_TOKEN": API_TOKEN,
        "JUPYTERHUB_USER": "rra",
        "JUPYTERHUB_API_URL": "http://hub:8081/hub/api",
        "MEM_LIMIT": "1",
    }
    args: dict[str, Any] = {
        "name": "jupyter-rra",
        "cmd": ["jupyterhub-singleuser"],
        "port": 8888,
        "image": "quay.io/jupyter/base-notebook:latest",
        "image_pull_policy": "IfNotPresent",
        "image_pull_secrets": None,
        "node_selector": {"lab-node": "true"},
        "uid": None,
        "gid": None,
        "fs_gid": None,
        "supplemental_gids": None,
        "privileged": False,
        "allow_privilege_escalation": False,
        "container_security_context": {},
        "pod_security_context": {},
        "env": {**base_env, **(env or {})},
        "volumes": [],
        "volume_mounts": [],
        "working_dir": None,
        "labels": {
            "component": "singleuser-server",
            "app.kubernetes.io/component": "singleuser-server",
            "app.kubernetes.io/managed-by": "kubespawner",
            "hub.jupyter.org/username": "rra",
        },
        "annotations": {"hub.jupyter.org/username": "rra"},
        "cpu_limit": None,
        "cpu_guarantee": None,
        "mem_limit": None,
        "mem_guarantee": None,
        "extra_resource_limits": None,
        "extra_resource_guarantees": None,
        "lifecycle_hooks": None,
        "init_containers": None,
        "service_account": None,
        "automount_service_account_token": False,
        "extra_container_config": None,
        "extra_pod_config": None,
        "extra_containers": None,
        "scheduler_name": None,
        "tolerations": [{"key": "lab", "operator": "Exists", "effect": "NoSchedule"}],
        "node_affinity_preferred": None,
        "node_affinity_required": None,
        "pod_affinity_preferred": None,
        "pod_affinity_required": None,
        "pod_anti_affinity_preferred": None,
        "pod_anti_affinity_required": None,
        "priority_class_name": None,
    }
    args.update(overrides)
    result: dict[str, Any] = model_to_dict(make_pod(**args))
    return result


def make_identity(**overrides: Any) -> Identity:
    data: dict[str, Any] = {
        "username": "rra",
        "uid": 4137,
        "gid": 4137,
        "groups": [{"name": "rra", "gid": 4137}, {"name": "lsst-sqre", "gid": 3010}],
        "name": "Russ Allbery",
        "email": "rra@example.org",
        "git_token": GIT_TOKEN,
    }
    data.update(overrides)
    return Identity.from_dict(data)


@pytest.fixture(name="kubespawner_pod")
def _kubespawner_pod() -> Callable[..., dict[str, Any]]:
    return kubespawner_pod


@pytest.fixture(name="make_identity")
def _make_identity() -> Callable[..., Identity]:
    return make_identity
