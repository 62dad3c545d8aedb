"""The menu editor as the service a real JupyterHub starts: read, write scope, CSRF, API.

One hub (with the editor as a managed service) serves the module. alice holds
``custom:lab-menu:write`` through a role; bob is an ordinary user who may
only read.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import yaml

from lsst_spawner.editor import WRITE_SCOPE
from lsst_spawner.menu.storage import MenuStore

from .conftest import SERVICE, EditorHub

pytestmark = pytest.mark.integration


def _current(hub: EditorHub) -> dict[str, Any]:
    status, text = hub.call("GET", "api/menu", "bob")
    assert status == 200, text
    data: dict[str, Any] = json.loads(text)
    return data


def test_the_service_seeds_the_menu_from_the_traitlets_config(hub: EditorHub) -> None:
    current = _current(hub)
    assert current["author"] == "lsst-spawner (seed)"
    assert [p["name"] for p in current["menu"]["profiles"]] == ["small", "medium", "large"]
    status, page = hub.call("GET", "", "bob")
    assert status == 200
    assert "Lab menu" in page
    assert "(read-only)" in page
    # A static source is no registry: no size is read, and the page says why.
    assert (
        '<td class="image-size" data-tag="recommended">unknown: the image source is a static '
        "list (image_source &#34;static&#34;)</td>"
    ) in page


def test_reading_needs_a_hub_identity(hub: EditorHub) -> None:
    for path in ("api/menu", "api/profile-list"):
        response = requests.get(hub.service_url(path), allow_redirects=False, timeout=30)
        assert response.status_code == 403
        assert response.json()["error"] == "a JupyterHub token or login is required"
    forged = requests.get(
        hub.service_url("api/menu"), headers={"Authorization": "token forged"}, timeout=30
    )
    assert forged.status_code == 403
    response = requests.get(hub.service_url(""), allow_redirects=False, timeout=30)
    assert response.status_code == 302
    assert "/hub/api/oauth2/authorize" in response.headers["Location"]


def test_a_non_admin_post_with_a_valid_token_is_403(hub: EditorHub) -> None:
    before = _current(hub)
    text = yaml.safe_dump(before["menu"])
    for path, data in (
        ("edit", {"base": str(before["revision"]), "menu": text}),
        ("rollback", {"base": str(before["revision"]), "revision": "1"}),
    ):
        status, body = hub.call("POST", path, "bob", data)
        assert status == 403, body
        assert WRITE_SCOPE in body
    assert hub.call("GET", "edit", "bob")[0] == 403
    assert _current(hub)["revision"] == before["revision"]


def test_writer_saves_a_gpu_profile_and_profile_list_carries_the_node_group(
    hub: EditorHub,
) -> None:
    before = _current(hub)
    menu = before["menu"]
    menu["profiles"].append(
        {
            "name": "gpu",
            "cpu_limit": "4",
            "cpu_guarantee": "1",
            "memory_limit": "32Gi",
            "memory_guarantee": "8Gi",
            "node_group": "gpu",
        }
    )
    status, body = hub.call(
        "POST",
        "edit",
        "alice",
        {"base": str(before["revision"]), "menu": yaml.safe_dump(menu), "comment": "gpu"},
    )
    assert status == 200, body  # redirected to the menu page, which shows the profile
    assert "gpu" in body
    after = _current(hub)
    assert (after["revision"], after["author"], after["comment"]) == (
        before["revision"] + 1,
        "alice",
        "gpu",
    )
    status, text = hub.call("GET", "api/profile-list", "bob")
    assert status == 200
    gpu = next(p for p in json.loads(text) if p["slug"] == "gpu")
    override = gpu["kubespawner_override"]
    assert override["node_selector"] == {"pool": "gpu"}
    assert override["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert override["extra_resource_limits"] == {"nvidia.com/gpu": "1"}
    assert override["cpu_limit"] == 4.0
    assert override["mem_limit"] == 32 * 2**30
    assert "ghcr.io/lsst-sqre/sciplat-lab:recommended" in text


def test_invalid_save_shows_errors_by_field_and_changes_nothing(hub: EditorHub) -> None:
    before = _current(hub)
    menu = before["menu"]
    menu["profiles"][0]["cpu_guarantee"] = "64"
    menu["profiles"].append(dict(menu["profiles"][1]))
    status, body = hub.call(
        "POST", "edit", "alice", {"base": str(before["revision"]), "menu": yaml.safe_dump(menu)}
    )
    assert status == 400
    assert "<code>profiles[0].cpu_guarantee</code>: 64 is more than the limit" in body
    duplicate = len(menu["profiles"]) - 1
    message = "&#39;medium&#39; is already profiles[1]"  # as Jinja2 escapes it
    assert f"<code>profiles[{duplicate}].name</code>: {message}" in body
    status, body = hub.call(
        "POST", "edit", "alice", {"base": str(before["revision"]), "menu": "a: [b"}
    )
    assert status == 400
    assert "not YAML" in body
    assert _current(hub)["revision"] == before["revision"]


def test_a_stale_base_is_a_conflict_with_the_diff(hub: EditorHub) -> None:
    before = _current(hub)
    menu = before["menu"]
    stale = str(before["revision"] - 1)
    status, body = hub.call("POST", "edit", "alice", {"base": stale, "menu": yaml.safe_dump(menu)})
    assert status == 409
    assert f"was saved after your base revision {stale}" in body
    status, body = hub.call("POST", "edit", "alice", {"base": "999", "menu": yaml.safe_dump(menu)})
    assert status == 400
    assert "there is no revision 999" in body
    assert _current(hub)["revision"] == before["revision"]


def test_rollback_and_history_with_diff(hub: EditorHub) -> None:
    before = _current(hub)
    status, body = hub.call(
        "POST", "rollback", "alice", {"revision": "1", "base": str(before["revision"])}
    )
    assert status == 200, body
    after = _current(hub)
    assert after["revision"] == before["revision"] + 1
    assert after["restored_from"] == 1
    store = MenuStore(hub.db_url)
    assert store.get(after["revision"]).document == store.get(1).document
    store.close()
    status, page = hub.call(
        "GET", f"history?old={before['revision']}&new={after['revision']}", "bob"
    )
    assert status == 200
    assert "- profiles[gpu]" in page
    # The audit trail: who, when, and what each revision changed, in the history table.
    table = page.split('<table id="history">', 1)[1]
    assert "(restores revision 1)" in table
    assert "<code>+ profiles[gpu]</code>" in table  # alice's earlier save
    assert "first revision" in table
    assert "Roll back to this" not in page  # bob cannot write: no rollback buttons


def test_browser_form_post_needs_the_xsrf_token(hub: EditorHub) -> None:
    """A logged-in browser (OAuth cookie) must send the form's XSRF token."""
    session = requests.Session()
    login = session.get(f"{hub.url}/hub/login", timeout=30)
    xsrf = session.cookies.get("_xsrf", path="/hub/")
    assert login.status_code == 200
    response = session.post(
        f"{hub.url}/hub/login?next=/services/{SERVICE}/edit",
        data={"username": "alice", "password": "pw", "_xsrf": xsrf},
        timeout=30,
    )
    assert response.status_code == 200, response.text[-2000:]
    assert 'name="_xsrf"' in response.text  # the edit form, reached through OAuth
    before = _current(hub)
    form = {"base": str(before["revision"]), "menu": yaml.safe_dump(before["menu"])}
    forged = session.post(hub.service_url("edit"), data=form, timeout=30)
    assert forged.status_code == 403
    token = response.text.split('name="_xsrf" value="', 1)[1].split('"', 1)[0]
    form["menu"] = form["menu"].replace("weeklies: 2", "weeklies: 3")
    accepted = session.post(hub.service_url("edit"), data={**form, "_xsrf": token}, timeout=30)
    assert accepted.status_code == 200, accepted.text[-2000:]
    assert _current(hub)["menu"]["image_policy"]["weeklies"] == 3
    assert _current(hub)["author"] == "alice"


def test_the_field_form_shows_each_problem_at_its_input(hub: EditorHub) -> None:
    status, page = hub.call("GET", "edit", "alice")
    assert status == 200
    assert 'name="profiles[0].cpu_limit"' in page
    before = _current(hub)
    rows = len(before["menu"]["profiles"]) + 1
    form = {
        "format": "form",
        "base": str(before["revision"]),
        "profiles.rows": str(rows),
        "profiles.default": "0",
        "images.rows": "1",
        "images.default": "0",
        "images[0].tag": "recommended",
        "images[0].state": "shown",
    }
    for row, profile in enumerate(before["menu"]["profiles"]):
        for name in ("name", "cpu_limit", "cpu_guarantee", "memory_limit", "memory_guarantee"):
            form[f"profiles[{row}].{name}"] = str(profile[name])
    form["profiles[0].delete"] = "1"
    form["profiles[1].cpu_limit"] = "<script>x</script>"
    form["profiles.default"] = "1"
    status, body = hub.call("POST", "edit", "alice", form)
    assert status == 400
    assert '<div class="error" data-error-for="profiles[1].cpu_limit">' in body
    assert "<script>x</script>" not in body  # the typed value comes back escaped
    assert "&lt;script&gt;x&lt;/script&gt;" in body
    assert _current(hub)["revision"] == before["revision"]
    form["profiles[1].cpu_limit"] = "3"
    status, body = hub.call("POST", "edit", "alice", dict(form, comment="by form"))
    assert status == 200, body
    after = _current(hub)
    assert after["comment"] == "by form"
    assert [p["name"] for p in after["menu"]["profiles"]] == [
        p["name"] for p in before["menu"]["profiles"][1:]
    ]
    assert after["menu"]["profiles"][0]["cpu_limit"] == "3"
    assert after["menu"]["profiles"][0]["default"] is True


def test_the_preview_shows_the_form_a_group_or_a_user_would_see(hub: EditorHub) -> None:
    before = _current(hub)
    menu = before["menu"]
    menu["profiles"] = [p for p in menu["profiles"] if p["name"] != "gpu-preview"]
    menu["profiles"].append(
        {
            "name": "gpu-preview",
            "cpu_limit": "4",
            "cpu_guarantee": "1",
            "memory_limit": "16Gi",
            "memory_guarantee": "4Gi",
            "node_group": "gpu",
            "groups": ["gpu-users"],
        }
    )
    menu["images"] = [i for i in menu["images"] if i["tag"] != "w_2024_09"]
    menu["images"].append({"tag": "w_2024_09", "state": "hidden"})
    status, body = hub.call(
        "POST", "edit", "alice", {"base": str(before["revision"]), "menu": yaml.safe_dump(menu)}
    )
    assert status == 200, body
    number = _current(hub)["revision"]

    status, page = hub.call("GET", f"preview?revision={number}&groups=gpu-users", "bob")
    assert status == 200, page
    assert 'id="preview-form" disabled' in page
    assert 'value="gpu-preview"' in page
    assert "1 nvidia.com/gpu" in page
    assert 'value="w_2024_10"' in page
    assert 'value="w_2024_09"' not in page  # hidden from everyone
    status, page = hub.call("GET", f"preview?revision={number}", "bob")
    assert status == 200, page
    assert 'value="gpu-preview"' not in page

    # As a user: their JupyterHub groups, asked of the hub with the service's token.
    status, _ = hub.request("POST", "/groups/gpu-users", {"users": ["bob"]})
    assert status in (201, 409)
    status, page = hub.call("GET", f"preview?revision={number}&user=bob", "alice")
    assert status == 200, page
    assert "bob, in the groups gpu-users" in page
    assert 'value="gpu-preview"' in page
    status, page = hub.call("GET", f"preview?revision={number}&user=nobody-here", "alice")
    assert "the hub has no user &#39;nobody-here&#39;" in page
    assert hub.call("GET", "preview?revision=9999", "bob")[0] == 404
