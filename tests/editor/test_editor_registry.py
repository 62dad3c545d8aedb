"""With a registry image source, a save naming a tag the registry lacks is refused with why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from lsst_spawner.testing.registry.fixtures import RegistryFixture

from .conftest import EditorHub, start_editor_hub

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, local_registry: RegistryFixture
) -> Iterator[EditorHub]:
    images = f"""
c.LSSTSpawner.image_source = "registry"
c.LSSTSpawner.registry_host = {local_registry.host_port!r}
c.LSSTSpawner.registry_repository = {local_registry.repository!r}
c.LSSTSpawner.registry_insecure_hosts = {local_registry.insecure!r}
"""
    yield from start_editor_hub(tmp_path_factory, images)


def _menu(hub: EditorHub) -> dict[str, Any]:
    status, text = hub.call("GET", "api/menu", "bob")
    assert status == 200, text
    data: dict[str, Any] = json.loads(text)
    return data


def test_a_tag_missing_from_the_registry_is_refused(
    hub: EditorHub, local_registry: RegistryFixture
) -> None:
    before = _menu(hub)
    menu = before["menu"]
    menu["images"].append({"tag": "w_2099_01", "display_name": "from the future"})
    status, body = hub.call(
        "POST", "edit", "alice", {"base": str(before["revision"]), "menu": yaml.safe_dump(menu)}
    )
    assert status == 400, body
    where = f"{local_registry.host_port}/{local_registry.repository}"
    assert f"<code>images[1].tag</code>: {where}:w_2099_01 does not exist" in body
    assert _menu(hub)["revision"] == before["revision"]

    menu["images"][-1]["tag"] = "w_2024_04"  # pushed into the registry by the fixture
    status, body = hub.call(
        "POST", "edit", "alice", {"base": str(before["revision"]), "menu": yaml.safe_dump(menu)}
    )
    assert status == 200, body
    assert [i["tag"] for i in _menu(hub)["menu"]["images"]] == ["recommended", "w_2024_04"]
    status, text = hub.call("GET", "api/profile-list", "bob")
    assert f"{where}:w_2024_04" in text
