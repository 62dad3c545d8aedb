"""The emulator's own tests run as its administrator, unless a test is about RBAC."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def kube_role() -> list[dict[str, Any]] | None:
    return None
