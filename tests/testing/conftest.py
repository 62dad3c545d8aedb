"""Fixtures of the emulator tests: they run as its administrator, unless a test is about RBAC;
test images in the real local registry."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from lsst_spawner.testing.kube import KubeEmulator
from lsst_spawner.testing.kube.images import publish_image


@pytest.fixture(scope="session")
def images(local_registry: Any) -> dict[str, str]:
    """Test images in the real local registry: their references, by role."""
    url = local_registry.registry.url

    async def publish() -> dict[str, str]:
        return {
            "shell": await publish_image(url, "oci/shell", "1", entrypoint=["/bin/sh", "-c"]),
            "plain": await publish_image(url, "oci/plain", "1"),
            "configured": await publish_image(
                url,
                "oci/configured",
                "1",
                entrypoint=["/bin/sh", "-c"],
                cmd=['echo "cmd ran as $(id -u) in $(pwd) with $IMAGE_VAR"'],
                env={"IMAGE_VAR": "from-image", "SHARED": "image"},
                user="4321:4322",
                working_dir="/tmp",
            ),
        }

    return asyncio.run(publish())


@pytest.fixture
def kube_role() -> list[dict[str, Any]] | None:
    return None


@pytest.fixture
def emulator() -> Iterator[KubeEmulator]:
    """An emulator in its own thread (namespaces ``default`` and ``other``, RBAC on) with the
    made-up ``widgets.example.test`` CRD of widgets_crd.py; the CRD, GC and kopf tests use it."""
    from .widgets_crd import CRDS, call, ok, widget_crd

    emulator = KubeEmulator(namespaces=("default", "other")).start_in_thread()
    ok(call(emulator, "POST", CRDS, widget_crd()), 201)
    yield emulator
    emulator.stop_thread()
