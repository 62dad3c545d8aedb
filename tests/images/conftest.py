"""Shared fixtures of the image menu tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.site import forget_sites
from lsst_spawner.testing.golden import golden_checker


@pytest.fixture(autouse=True)
def _no_shared_menu_caches() -> Iterator[None]:
    """Each test starts without process-wide menu caches and leaves none behind."""
    forget_sites()
    yield
    forget_sites()


GOLDEN_DIR = Path(__file__).parent / "golden"


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, Any], None]:
    """Compare ``data`` with ``golden/<name>.json``, or rewrite it under ``--update-golden``."""
    return golden_checker(request, GOLDEN_DIR, "tests/images")
