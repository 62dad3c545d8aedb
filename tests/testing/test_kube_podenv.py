"""A container's environment from a lab's objects, resolved the way the kubelet does."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from lsst_spawner.testing.kube.podenv import ContainerConfigError, resolve_lab_env


def objects(env: list[dict[str, Any]], env_from: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"A": "from-cm", "B": "b"}},
        {
            "kind": "Secret",
            "metadata": {"name": "sec"},
            "data": {"tok": base64.b64encode(b"s3cret").decode()},
        },
        {
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {
                "containers": [
                    {"name": "sidecar", "env": [{"name": "A", "value": "sidecar"}]},
                    {"name": "notebook", "env": env, "envFrom": env_from},
                ]
            },
        },
    ]


def test_env_overrides_env_from_and_expands_against_it() -> None:
    env = [
        {"name": "A", "value": "from-env"},
        {"name": "C", "value": "$(B)/x $$(B) $(MISSING)"},
        {"name": "T", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "tok"}}},
    ]
    assert resolve_lab_env(objects(env, [{"configMapRef": {"name": "cm"}}])) == {
        "A": "from-env",
        "B": "b",
        "C": "b/x $(B) $(MISSING)",
        "T": "s3cret",
    }


def test_env_from_prefix_and_optional_sources() -> None:
    env_from = [
        {"configMapRef": {"name": "cm"}, "prefix": "P_"},
        {"configMapRef": {"name": "absent", "optional": True}},
    ]
    assert resolve_lab_env(objects([], env_from)) == {"P_A": "from-cm", "P_B": "b"}


def test_a_missing_config_map_is_a_container_config_error() -> None:
    with pytest.raises(ContainerConfigError, match='configmap "absent" not found'):
        resolve_lab_env(objects([], [{"configMapRef": {"name": "absent"}}]))
