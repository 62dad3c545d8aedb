"""A real kopf operator as a process against the emulator, and what operator mode needs in it.

``kopf run`` (or any command, such as ``lsst-spawner operator``: :data:`OPERATOR_COMMAND`)
is started in its own process group, pointed at the emulator by a kubeconfig
(``KUBECONFIG``), with its output in a file that tests read when something fails.
:func:`peering_crds` are the ``kopf.dev/v1`` KopfPeering and ClusterKopfPeering
definitions from kopf's documentation (``peering.yaml``): kopf needs them to exist for
``--peering``; ``--standalone`` runs without them. :func:`install_operator_mode` puts
operator mode into an emulator as ``manifests --operator`` puts it into a cluster.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...crd import build_crds
from ...crd.models import GROUP
from ...operator.manifests import (
    OPERATOR_CLUSTER_RULES,
    OPERATOR_ROLE_RULES,
    PEERING_NAME,
    kopf_peering_crd,
)
from .authn import service_account_user

if TYPE_CHECKING:
    from .server import KubeEmulator

__all__ = [
    "KOPF_COMMAND",
    "OPERATOR_ACCOUNT",
    "OPERATOR_COMMAND",
    "TEMPLATES",
    "KopfProcess",
    "install_operator_mode",
    "lab_template_from_config",
    "peering_crds",
]

#: ``kopf run`` (the default command of :class:`KopfProcess`).
KOPF_COMMAND = (sys.executable, "-m", "kopf", "run")
#: ``lsst-spawner operator``.
OPERATOR_COMMAND = (sys.executable, "-m", "lsst_spawner.cli", "operator")
#: The operator's service account (as ``manifests --operator`` names it).
OPERATOR_ACCOUNT = "lsst-spawner-operator"


def peering_crds() -> list[dict[str, Any]]:
    """kopf's ``ClusterKopfPeering`` and ``KopfPeering`` CRDs (``kopf.dev/v1``)."""
    return [
        kopf_peering_crd("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"),
        kopf_peering_crd(),
    ]


def install_operator_mode(
    emulator: KubeEmulator, namespace: str, kubeconfig: str | os.PathLike[str]
) -> Path:
    """Operator mode in ``emulator``: the LabServer/LabTemplate and peering CRDs, the
    ``KopfPeering`` object, and the operator's service account in ``namespace`` bound
    to the Role and ClusterRole ``manifests --operator`` prints. Writes the operator's
    kubeconfig to ``kubeconfig`` and returns its path. Safe from any thread.
    """
    create = emulator.create_object
    for crd in [*build_crds(), *peering_crds()]:
        create("customresourcedefinitions", crd, None)
    peering = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfPeering",
        "metadata": {"name": PEERING_NAME},
    }
    create("kopfpeerings.kopf.dev", peering, namespace)
    ref = {"apiGroup": "rbac.authorization.k8s.io", "name": OPERATOR_ACCOUNT}
    subject = [{"kind": "ServiceAccount", "name": OPERATOR_ACCOUNT, "namespace": namespace}]
    meta = {"name": OPERATOR_ACCOUNT}
    create("roles", {"metadata": meta, "rules": OPERATOR_ROLE_RULES}, namespace)
    binding = {"metadata": meta, "roleRef": {**ref, "kind": "Role"}, "subjects": subject}
    create("rolebindings", binding, namespace)
    create("clusterroles", {"metadata": meta, "rules": OPERATOR_CLUSTER_RULES}, None)
    cluster_binding = {"metadata": meta, "roleRef": {**ref, "kind": "ClusterRole"}}
    create("clusterrolebindings", {**cluster_binding, "subjects": subject}, None)
    user = service_account_user(namespace, OPERATOR_ACCOUNT)
    token = emulator.call(emulator.access.authn.issue, user)
    return emulator.write_kubeconfig(kubeconfig, namespace, token=token)


async def lab_template_from_config(
    config_text: str, path: str | os.PathLike[str], namespace: str, name: str = "lab"
) -> dict[str, Any]:
    """The LabTemplate ``template-from-config`` writes for a hub configuration's text
    (written to ``path`` first, as the command reads a file)."""
    import asyncio

    from ...checks import spawner_settings
    from ...cli import load_hub_config
    from ...crd.from_config import base_pod_for
    from ...crd.template import SENTINEL_SERVER, SENTINEL_USER, template_from_settings

    file = Path(path)

    def write() -> None:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(config_text)

    await asyncio.to_thread(write)
    config = load_hub_config(file)
    pod = await base_pod_for(config, SENTINEL_USER, SENTINEL_SERVER)
    return template_from_settings(spawner_settings(config), pod, name=name, namespace=namespace)


#: The LabTemplates' resource in the emulator.
TEMPLATES = f"labtemplates.{GROUP}"


class KopfProcess:
    """``command ARGS`` (default ``python -m kopf run``) with ``KUBECONFIG`` set; output to
    ``log_path``. ``KUBERNETES_SERVICE_HOST`` is removed from the environment, so the
    process uses the kubeconfig even when the tests run in a pod."""

    def __init__(
        self,
        args: Sequence[str],
        kubeconfig: str | os.PathLike[str],
        log_path: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
        command: Sequence[str] = KOPF_COMMAND,
    ) -> None:
        self.args, self.log_path, self.command = list(args), Path(log_path), list(command)
        self.env = {**os.environ, **(env or {}), "KUBECONFIG": str(kubeconfig)}
        self.env.pop("KUBERNETES_SERVICE_HOST", None)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> KopfProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.command, *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, timeout: float = 20) -> None:
        """SIGKILL to the process group: no cleanup, as a node failure would."""
        if self.running():
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM (kopf's graceful stop), then SIGKILL after ``timeout``; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(timeout)
        return self.process.returncode

    def __enter__(self) -> KopfProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
