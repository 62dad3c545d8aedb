"""Every storage test runs against SQLite and a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.menu import NodeGroup, Profile, node_groups_by_name
from lsst_spawner.menu.storage import MenuStore, default_db_url

NODE_GROUPS = node_groups_by_name(
    [
        NodeGroup(
            name="gpu",
            node_selector={"pool": "gpu"},
            extended_resources={"nvidia.com/gpu": 1},
            max_cpu="8",
            max_memory="64Gi",
        )
    ]
)


def make_profile(name: str, cpu: str = "1", **extra: Any) -> Profile:
    """A valid profile with small guarantees; ``extra`` sets other fields."""
    return Profile(
        name=name,
        cpu_limit=cpu,
        cpu_guarantee="100m",
        memory_limit="4Gi",
        memory_guarantee="1Gi",
        **extra,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def menu_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return default_db_url(tmp_path)
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(menu_db_url: str) -> Iterator[MenuStore]:
    menu_store = MenuStore(menu_db_url, NODE_GROUPS)
    menu_store.upgrade()
    yield menu_store
    menu_store.close()
