"""Fixtures of the emulator tests: they run as its administrator, unless a test is about RBAC;
test images in the real local registry."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

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
