"""Operator-mode fixtures: the emulator with the CRDs, the real operator as a process.

The hub's kubeconfig (``kube_api.kubeconfig``) is bound to operator mode's hub Role
(``HUB_OPERATOR_ROLE_RULES``) for the whole suite; the operator runs as its own
service account with the Role and ClusterRole ``manifests --operator`` prints.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lsst_spawner.crd.declare import API_TOKEN_KEY, GIT_TOKEN_KEY, build_hub_secret
from lsst_spawner.operator.manifests import HUB_OPERATOR_ROLE_RULES
from lsst_spawner.testing import waiting
from lsst_spawner.testing.kube.fixtures import KubeHandle
from lsst_spawner.testing.kube.kopf_process import (
    OPERATOR_COMMAND,
    KopfProcess,
    install_operator_mode,
)
from lsst_spawner.testing.ports import free_port

T = TypeVar("T")
LABSERVERS = "labservers.lab.lsst-spawner.io"
TEMPLATES = "labtemplates.lab.lsst-spawner.io"


@pytest.fixture
def kube_role() -> list[dict[str, Any]]:
    """The hub's Role in operator mode: LabServers, Secrets create/delete, Events."""
    return [dict(rule) for rule in HUB_OPERATOR_ROLE_RULES]


def wait_for(fn: Callable[[], T | None], what: str, timeout: float = 60, log: Any = None) -> T:
    """Poll ``fn`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    detail = (lambda: f"--- operator output ---\n{log()[-6000:]}") if log is not None else None
    return waiting.wait_for(fn, what, timeout=timeout, detail=detail)


class LabCluster:
    """The emulator with operator mode installed, and helpers to drive it as its users."""

    def __init__(self, kube: KubeHandle, tmp_path: Path) -> None:
        self.kube = kube
        assert kube.emulator is not None
        self.emulator = kube.emulator
        self.namespace = kube.namespace
        self.tmp_path = tmp_path
        self.operators: list[KopfProcess] = []
        self.operator_kubeconfig = install_operator_mode(
            self.emulator, self.namespace, tmp_path / "operator.kubeconfig"
        )

    # --- the operator ------------------------------------------------------------------

    def start_operator(self, *args: str, name: str = "operator") -> KopfProcess:
        port = free_port()
        operator = KopfProcess(
            [
                "--namespace",
                self.namespace,
                "--liveness",
                f"http://127.0.0.1:{port}/healthz",
                "--heartbeat",
                "1",
                *(args or ("--standalone",)),
            ],
            self.operator_kubeconfig,
            self.tmp_path / f"{name}.log",
            command=OPERATOR_COMMAND,
        )
        operator.liveness_port = port  # type: ignore[attr-defined]
        self.operators.append(operator.start())
        return operator

    def output(self) -> str:
        return "\n".join(f"=== {op.log_path.name}\n{op.output}" for op in self.operators)

    def stop(self) -> None:
        for operator in self.operators:
            operator.stop()

    # --- objects -----------------------------------------------------------------------

    def create(self, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.emulator.create_object(resource, body, self.namespace)

    def get(self, resource: str, name: str) -> Any:
        return self.emulator.get_object(resource, name, self.namespace)

    def lab_server(self, name: str) -> Any:
        return self.get(LABSERVERS, name)

    def declare_secret(
        self,
        created: dict[str, Any],
        api_token: str = "hubtoken-1",  # noqa: S107 - a test value
        git: str = "",
    ) -> None:
        """The hub's Secret of a created LabServer, with an owner reference to it."""
        name = created["metadata"]["name"]
        secret = build_hub_secret(
            created["spec"]["secretRef"]["name"], self.namespace, "u", api_token, git or None
        )
        secret["metadata"]["ownerReferences"] = [
            {
                "apiVersion": "lab.lsst-spawner.io/v1alpha1",
                "kind": "LabServer",
                "name": name,
                "uid": created["metadata"]["uid"],
            }
        ]
        self.create("secrets", secret)

    def declare(
        self,
        server: dict[str, Any],
        api_token: str = "hubtoken-1",  # noqa: S107 - a test value
        git: str = "",
    ) -> Any:
        """What the hub does: the LabServer, then its Secret owned by it."""
        created = self.create(LABSERVERS, server)
        self.declare_secret(created, api_token, git)
        return created

    def phase(self, name: str) -> str | None:
        obj = self.lab_server(name)
        return ((obj or {}).get("status") or {}).get("phase")

    def wait_phase(self, name: str, *phases: str, timeout: float = 60) -> Any:
        return wait_for(
            lambda: self.lab_server(name) if self.phase(name) in phases else None,
            f"labserver {name} in phase {'/'.join(phases)} (now {self.lab_server(name)})",
            timeout=timeout,
            log=self.output,
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        return [
            event
            for event in self.emulator.list_objects("events", self.namespace)
            if event["involvedObject"].get("name") == name
        ]

    def wait_event(self, name: str, reason: str, timeout: float = 60) -> dict[str, Any]:
        return wait_for(
            lambda: next((e for e in self.events(name) if e["reason"] == reason), None),
            f"a {reason} Event on {name} (have {[e['reason'] for e in self.events(name)]})",
            timeout=timeout,
            log=self.output,
        )

    def owned(self, resource: str, name: str) -> list[dict[str, Any]]:
        return self.emulator.list_objects(
            resource, self.namespace, label_selector=f"lab.lsst-spawner.io/server={name}"
        )


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


@pytest.fixture
def lab_cluster(kube_api: KubeHandle, tmp_path: Path) -> Iterator[LabCluster]:
    cluster = LabCluster(kube_api, tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()


__all__ = ["API_TOKEN_KEY", "GIT_TOKEN_KEY", "LabCluster", "decoded", "wait_for"]


@pytest.fixture(autouse=True)
async def _stop_shared_reflectors() -> Any:
    """The hub's shared reflectors (the LabServer watch) watch this test's emulator."""
    yield
    from kubespawner import KubeSpawner

    await KubeSpawner._stop_all_reflectors()
