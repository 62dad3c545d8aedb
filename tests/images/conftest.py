"""Shared fixtures of the image menu tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.site import forget_sites


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
    update = request.config.getoption("--update-golden", default=False)

    def check(name: str, data: Any) -> None:
        path = GOLDEN_DIR / f"{name}.json"
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        if update:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text)
            return
        assert path.exists(), f"{path} is missing; run pytest tests/images --update-golden"
        assert json.loads(path.read_text()) == json.loads(text), (
            f"{path.name} differs; review and run pytest tests/images --update-golden"
        )

    return check
