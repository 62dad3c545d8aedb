"""Fixtures of the spawner tests: the stand-in lab image in the real local registry."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lsst_spawner.testing.kube.images import publish_lab_stand_in

#: The tags the spawner tests' static menu offers.
LAB_TAGS = ["recommended", "w_2026_46", "w_2026_45"]


@pytest.fixture(scope="session")
def lab_stand_in(local_registry: Any) -> tuple[str, dict[str, str]]:
    """The stand-in lab published under :data:`LAB_TAGS`: (image base, digests by tag)."""
    url = local_registry.registry.url
    digests = asyncio.run(publish_lab_stand_in(url, "oci/sciplat-lab", LAB_TAGS))
    return f"{local_registry.host_port}/oci/sciplat-lab", digests


@pytest.fixture(scope="session")
def init_image(local_registry: Any) -> str:
    """An init image in the real local registry: a shell, run by the OCI kubelet."""
    from lsst_spawner.testing.kube.images import publish_image

    url = local_registry.registry.url
    return asyncio.run(publish_image(url, "oci/lab-init", "1", entrypoint=["/bin/sh", "-c"]))
