"""Fixtures of the reliability suite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubespawner import KubeSpawner, clients


@pytest.fixture
async def stub_kubelet(kubelet: Any) -> AsyncIterator[Any]:
    """The kubelet in stub mode; KubeSpawner's shared reflectors stopped afterwards."""
    kubelet.mode = "stub"
    clients.load_config.cache_clear()
    yield kubelet
    await KubeSpawner._stop_all_reflectors()
    clients.load_config.cache_clear()
