"""Shared fixtures of the image menu tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lsst_spawner.site import forget_sites


@pytest.fixture(autouse=True)
def _no_shared_menu_caches() -> Iterator[None]:
    """Each test starts without process-wide menu caches and leaves none behind."""
    forget_sites()
    yield
    forget_sites()
