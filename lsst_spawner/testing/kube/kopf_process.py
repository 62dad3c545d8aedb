"""A real kopf operator as a process against the emulator, and the CRDs kopf's peering uses.

``kopf run`` is started with ``python -m kopf`` in its own process group, pointed at the
emulator by a kubeconfig (``KUBECONFIG``), with its output in a file that tests read when
something fails. :func:`peering_crds` are the ``kopf.dev/v1`` KopfPeering and
ClusterKopfPeering definitions from kopf's documentation (``peering.yaml``): kopf needs
them to exist for ``--peering``; ``--standalone`` runs without them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...operator.manifests import kopf_peering_crd

__all__ = ["KopfProcess", "peering_crds"]


def peering_crds() -> list[dict[str, Any]]:
    """kopf's ``ClusterKopfPeering`` and ``KopfPeering`` CRDs (``kopf.dev/v1``)."""
    return [
        kopf_peering_crd("ClusterKopfPeering", "clusterkopfpeerings", "Cluster"),
        kopf_peering_crd(),
    ]


class KopfProcess:
    """``python -m kopf run ARGS`` with ``KUBECONFIG`` set; output to ``log_path``."""

    def __init__(
        self,
        args: Sequence[str],
        kubeconfig: str | os.PathLike[str],
        log_path: str | os.PathLike[str],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.args, self.log_path = list(args), Path(log_path)
        self.env = {**os.environ, **(env or {}), "KUBECONFIG": str(kubeconfig)}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> KopfProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kopf", "run", *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        return self

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM (kopf's graceful stop), then SIGKILL after ``timeout``; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)
        return self.process.returncode

    def __enter__(self) -> KopfProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
