"""With a registry image source, a save naming a tag the registry lacks is refused with why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from lsst_spawner.menu.storage import MenuStore
from lsst_spawner.testing.registry.fixtures import RegistryFixture

from ..menu.conftest import NODE_GROUPS, make_profile
from .conftest import EditorHub, start_editor_hub

pytestmark = pytest.mark.integration


#: A site's template: the built-in form, and a line per profile that assumes a GPU.
SITE_TEMPLATE = """{% include "options.html.j2" %}
{% for size in sizes %}{% if "gpu" in size.name %}
<p>{{ size.profile.extended_resources[0][0] }}</p>{% endif %}{% endfor %}
"""


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, local_registry: RegistryFixture
) -> Iterator[EditorHub]:
    templates = tmp_path_factory.mktemp("site-templates")
    (templates / "site.html.j2").write_text(SITE_TEMPLATE)
    images = f"""
c.LSSTSpawner.options_template_path = [{str(templates)!r}]
c.LSSTSpawner.options_template_name = "site.html.j2"
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


def test_the_menu_page_shows_each_image_s_compressed_size(
    hub: EditorHub, local_registry: RegistryFixture
) -> None:
    before = _menu(hub)
    menu = before["menu"]
    menu["images"] = [
        {"tag": "recommended", "default": True},
        {"tag": "w_2024_05", "state": "hidden"},
    ]
    status, body = hub.call(
        "POST", "edit", "alice", {"base": str(before["revision"]), "menu": yaml.safe_dump(menu)}
    )
    assert status == 200, body
    status, page = hub.call("GET", "", "bob")
    assert status == 200, page
    # The fixture's images are one 24-byte layer each (push_tags).
    layer = len(b"lsst-spawner test layer\n")
    for tag in ("recommended", "w_2024_05"):
        cell = f'<td class="image-size" data-tag="{tag}" title="{layer} bytes">{layer} B</td>'
        assert cell in page


def test_a_save_whose_form_does_not_render_is_refused(hub: EditorHub) -> None:
    before = _menu(hub)
    menu = before["menu"]
    menu["profiles"].append(make_profile("gpu-nogroup").model_dump(mode="json"))
    status, body = hub.call(
        "POST", "edit", "alice", {"base": str(before["revision"]), "menu": yaml.safe_dump(menu)}
    )
    assert status == 400, body
    index = len(menu["profiles"]) - 1
    assert (
        f"<code>profiles[{index}].name</code>: the spawn form of users in none of the menu&#39;s "
        "groups does not render with this profile: UndefinedError: "
    ) in body
    assert "(template site.html.j2, line 3)" in body
    assert _menu(hub)["revision"] == before["revision"]

    menu["profiles"][-1]["node_group"] = "gpu"  # brings its GPU: the form renders
    status, body = hub.call(
        "POST", "edit", "alice", {"base": str(before["revision"]), "menu": yaml.safe_dump(menu)}
    )
    assert status == 200, body
    assert _menu(hub)["revision"] == before["revision"] + 1


def test_a_rollback_to_a_revision_whose_form_no_longer_renders_is_refused(
    hub: EditorHub,
) -> None:
    # A revision saved before the site's template changed: written to the database
    # directly, past the editor's checks.
    store = MenuStore(hub.db_url, NODE_GROUPS)
    current = store.current()
    assert current is not None
    old = current.document.model_copy(
        update={"profiles": (*current.document.profiles, make_profile("gpu-old"))}
    )
    stale = store.save(old, base=current.number, author="before the template").number
    store.close()
    menu = _menu(hub)["menu"]
    menu["profiles"] = [p for p in menu["profiles"] if p["name"] != "gpu-old"]
    status, body = hub.call(
        "POST", "edit", "alice", {"base": str(stale), "menu": yaml.safe_dump(menu)}
    )
    assert status == 200, body  # without gpu-old, the form renders
    base = _menu(hub)["revision"]
    status, body = hub.call(
        "POST", "rollback", "alice", {"revision": str(stale), "base": str(base)}
    )
    assert status == 400, body
    index = len(old.profiles) - 1
    assert (
        f"revision {stale} is no longer valid: profiles[{index}].name: the spawn form of "
        "users in none of the menu&#39;s groups does not render with this profile"
    ) in body
    assert _menu(hub)["revision"] == base
