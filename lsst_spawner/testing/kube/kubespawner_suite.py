"""Run KubeSpawner's own cluster tests, unmodified, against the emulator and the OCI kubelet.

``python -m lsst_spawner.testing.kube.kubespawner_suite CHECKOUT [--python PY] [-- ARGS]``
(``scripts/kubespawner-tests.sh`` wraps it). ``CHECKOUT`` is a checkout of
jupyterhub/kubespawner at the tag of the installed version; nothing is fetched.
The runner:

1. starts Debian's ``docker-registry`` on loopback and publishes the images
   KubeSpawner's tests name (``quay.io/jupyterhub/jupyterhub``,
   ``quay.io/jupyterhub/singleuser``, ``python:3.12-slim``) as image configs whose
   ``PATH`` finds this machine's ``jupyterhub``, ``jupyterhub-singleuser`` and ``python3``;
2. starts the emulator and an OCI kubelet whose registry mirrors send ``quay.io`` and
   ``docker.io`` to that registry, and writes a kubeconfig;
3. runs ``PY -m pytest CHECKOUT/tests`` in ``CHECKOUT`` (its own pytest settings) with
   ``KUBECONFIG`` pointing at the emulator, and exits with pytest's status.

``PY`` must have KubeSpawner's test dependencies (``kubernetes``, ``pytest-asyncio<0.23``).
Needs root, runc and docker-registry, like the OCI tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..registry import LocalRegistry
from .images import publish_image
from .kubelet import ProcessKubelet
from .server import KubeEmulator

__all__ = ["main", "publish_kubespawner_images"]

NAMESPACES = ("default", "kubespawner-test", "kubespawner-another")


async def publish_kubespawner_images(url: str) -> None:
    """The images KubeSpawner's tests reference, as configs for this machine's programs."""
    await publish_image(url, "jupyterhub/jupyterhub", "latest", working_dir="/tmp")
    # The real image runs as 1000 with JupyterLab, whose default URL (/lab) makes "/"
    # redirect; this machine has no JupyterLab, so the config names that URL itself.
    await publish_image(
        url,
        "jupyterhub/singleuser",
        "latest",
        user="1000",
        env={"HOME": "/tmp", "JUPYTERHUB_DEFAULT_URL": "/lab"},
        working_dir="/tmp",
    )
    await publish_image(url, "library/python", "3.12-slim", cmd=["python3"])


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m lsst_spawner.testing.kube.kubespawner_suite")
    parser.add_argument("checkout", help="a jupyterhub/kubespawner checkout (its tests/ is run)")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter with KubeSpawner's test dependencies (default: this one)",
    )
    args, rest = parser.parse_known_args(argv)
    return args, [a for a in rest if a != "--"]


def main(argv: list[str] | None = None) -> int:
    args, pytest_args = parse_args(argv)
    checkout = Path(args.checkout).resolve()
    if not (checkout / "tests" / "conftest.py").is_file():
        print(f"{checkout} has no tests/conftest.py: not a kubespawner checkout", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="lsst-kubespawner-suite-"))
    registry = LocalRegistry().start()
    emulator = KubeEmulator(namespaces=NAMESPACES).start_in_thread()
    kubelet = ProcessKubelet(
        emulator,
        mode="oci",
        workdir=work / "kubelet",
        mirrors={"quay.io": registry.host_port, "docker.io": registry.host_port},
    )
    try:
        emulator.run(publish_kubespawner_images(registry.url))
        emulator.run(kubelet.start())
        kubeconfig = emulator.write_kubeconfig(work / "kubeconfig", "default")
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        print(f"emulator {emulator.url}, registry {registry.url}, kubeconfig {kubeconfig}")
        command = [args.python, "-m", "pytest", "tests", "-p", "no:cacheprovider", *pytest_args]
        return subprocess.call(command, cwd=checkout, env=env)
    finally:
        asyncio.run_coroutine_threadsafe(kubelet.stop(), emulator.loop).result(60)
        emulator.stop_thread()
        registry.stop()


if __name__ == "__main__":
    sys.exit(main())
