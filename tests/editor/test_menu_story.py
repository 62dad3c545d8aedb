"""Issue #16's story end to end: real JupyterHub, the editor service, the registry, Chromium.

The demo (a real hub with LSSTSpawner, the Kubernetes API emulator and the process
kubelet, one of whose nodes carries the gpu node group's label) starts the menu editor
as its service; the spawner's images come from the real local registry. vera, who
holds ``custom:lab-menu:write``, adds a GPU profile on the gpu node group and hides an
image; annie's spawn form changes (the hub reads the revision marker every second);
annie spawns on the new profile and the pod carries the node group's selector,
tolerations and GPU request; vera rolls back and annie's form is restored; annie's
direct POST with a valid token gets 403; a save naming a tag the registry lacks is
refused with the reason. Screenshots go to ``test-artifacts/menu-story-*.png``.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.editor import WRITE_SCOPE
from lsst_spawner.testing.demo import Demo
from lsst_spawner.testing.hub import free_port
from lsst_spawner.testing.kube.kubelet import FakeNode
from lsst_spawner.testing.registry.fixtures import RegistryFixture
from lsst_spawner.testing.waiting import wait_for

# The e2e suite's Chromium fixture (Debian's Chromium; fails when it is missing).
from ..e2e.test_browser import _login, _wait_labs_gone, browser  # noqa: F401

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SERVICE = "lab-menu"
ADMIN, USER = "vera", "annie"
HIDDEN = "w_2024_04"  # a radio choice of the seeded menu, pushed into the registry
GPU_GROUP = {
    "name": "gpu",
    "node_selector": {"pool": "gpu"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "extended_resources": {"nvidia.com/gpu": 1},
    "max_cpu": "8",
    "max_memory": "64Gi",
}
#: How long the user's form may take to change in this test (the hub checks every 1 s;
#: the rest is page loads on a loaded machine). The figure measured is printed.
FORM_WAIT = 30.0


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory, local_registry: RegistryFixture
) -> Iterator[Demo]:
    workdir = tmp_path_factory.mktemp("menu-story")
    hub_config = workdir / "hub" / "jupyterhub_config.py"  # where HubProcess writes it
    command = [sys.executable, "-m", "lsst_spawner.cli", "-f", str(hub_config), "menu-editor"]
    extra = f"""
c.LSSTSpawner.image_source = "registry"
c.LSSTSpawner.registry_host = {local_registry.host_port!r}
c.LSSTSpawner.registry_repository = {local_registry.repository!r}
c.LSSTSpawner.registry_insecure_hosts = {local_registry.insecure!r}
c.LabMenu.db_url = {f"sqlite:///{workdir / 'lab-menu.sqlite'}"!r}
c.LabMenu.node_groups = [{GPU_GROUP!r}]
c.JupyterHub.custom_scopes = {{{WRITE_SCOPE!r}: {{"description": "change the lab menu"}}}}
c.JupyterHub.services.append({{
    "name": {SERVICE!r}, "url": "http://127.0.0.1:{free_port()}", "command": {command!r},
    "oauth_client_allowed_scopes": [{WRITE_SCOPE!r}], "oauth_no_confirm": True,
    "environment": {{"KUBECONFIG": {str(workdir / "kubeconfig")!r}}},
}})
c.JupyterHub.load_roles.append({{
    "name": "lab-menu-service", "scopes": ["list:users", "read:servers", "read:users:groups"],
    "services": [{SERVICE!r}],
}})
c.JupyterHub.load_roles.append(
    {{"name": "user", "scopes": ["self", "access:services!service={SERVICE}"]}}
)
c.JupyterHub.load_roles.append(
    {{"name": "lab-menu-editors", "scopes": [{WRITE_SCOPE!r}], "users": [{ADMIN!r}]}}
)
"""
    nodes = (FakeNode("demo-node-1"), FakeNode("gpu-node-1", labels={"pool": "gpu"}))
    with Demo(
        port=free_port(), workdir=workdir, step_delay=0.1, extra_config=extra, nodes=nodes
    ) as running:
        yield running


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"menu-story-{name}.png"), full_page=True)


def _service(demo: Demo, path: str = "") -> str:
    return f"{demo.url}/services/{SERVICE}/{path}"


def _form_values(page: Any, demo: Demo) -> tuple[set[str], set[str]]:
    """The image tags and profile names annie's spawn form offers now (a fresh load)."""
    page.goto(f"{demo.url}/hub/spawn")
    form = page.locator("#spawn_form")
    images = {r.get_attribute("value") for r in form.locator("input[name=image_list]").all()}
    images |= {
        o.get_attribute("value") for o in form.locator("select[name=image_dropdown] option").all()
    }
    sizes = {s.get_attribute("value") for s in form.locator("input[name=size]").all()}
    return images, sizes


def _until(page: Any, demo: Demo, check: Callable[[set[str], set[str]], bool], what: str) -> float:
    """Reload annie's form until ``check`` holds; the seconds it took."""
    started = time.monotonic()
    wait_for(
        lambda: _form_values(page, demo),
        f"annie's form to change ({what})",
        timeout=FORM_WAIT,
        interval=0.2,
        until=lambda values: check(*values),
    )
    return time.monotonic() - started


def _open_editor(page: Any, demo: Demo, path: str) -> None:
    page.goto(_service(demo, path))
    page.wait_for_selector("h1")


def test_admin_changes_the_menu_the_user_spawns_on_it_and_the_admin_rolls_back(
    browser: Any,  # noqa: F811 - the imported fixture
    demo: Demo,
    local_registry: RegistryFixture,
) -> None:
    assert demo.hub is not None
    assert demo.emulator is not None
    admin = browser.new_context(viewport={"width": 1280, "height": 900})
    admin.set_default_timeout(30_000)
    user = browser.new_context(viewport={"width": 1200, "height": 900})
    user.set_default_timeout(30_000)
    admin_page, user_page = admin.new_page(), user.new_page()
    _login(admin_page, demo, ADMIN)
    _login(user_page, demo, USER)

    # Before: the seeded menu, equal to the traitlets one.
    images, sizes = _form_values(user_page, demo)
    assert HIDDEN in images
    assert sizes == {"small", "medium", "large"}
    _shot(user_page, "user-form-before")

    # 1. vera adds a GPU profile on the gpu node group and hides an image.
    _open_editor(admin_page, demo, "edit")
    row = admin_page.locator("table#profiles tr").last
    row.locator("input[name$='.name']").fill("gpu")
    row.locator("input[name$='.cpu_limit']").fill("4")
    row.locator("input[name$='.cpu_guarantee']").fill("1")
    row.locator("input[name$='.memory_limit']").fill("16Gi")
    row.locator("input[name$='.memory_guarantee']").fill("4Gi")
    row.locator("select[name$='.node_group']").select_option("gpu")
    image = admin_page.locator("table#images tr").last
    image.locator("input[name$='.tag']").fill(HIDDEN)
    image.locator("select[name$='.state']").select_option("hidden")
    admin_page.fill("input[name=comment]", "a GPU profile; hide w_2024_04")
    _shot(admin_page, "admin-edit")
    admin_page.click("button[type=submit]")
    admin_page.wait_for_selector("h1:text('Lab menu')")
    _shot(admin_page, "admin-menu")
    _open_editor(admin_page, demo, "preview")  # the form as a user in no group sees it
    preview = admin_page.locator("#preview-form")
    assert preview.locator("input[name=size][value=gpu]").count() == 1
    assert preview.locator(f"input[name=image_list][value={HIDDEN}]").count() == 0
    _shot(admin_page, "admin-preview")

    # 2. annie's form changes; she spawns on the GPU profile.
    took = _until(user_page, demo, lambda i, s: "gpu" in s and HIDDEN not in i, "the GPU profile")
    print(f"annie's form showed the saved revision after {took:.2f}s")
    _shot(user_page, "user-form-gpu")
    form = user_page.locator("#spawn_form")
    assert "1 nvidia.com/gpu" in form.inner_text()
    form.locator("input[name=size][value=gpu]").check()
    form.get_by_role("button", name="Start").click()
    user_page.wait_for_url(f"{demo.url}/user/{USER}/**", timeout=90_000)
    pods = demo.emulator.list_objects("pods", demo.namespace)
    (pod,) = [p for p in pods if USER in p["metadata"]["name"]]
    spec = pod["spec"]
    assert spec["nodeSelector"] == {"pool": "gpu"}
    assert GPU_GROUP["tolerations"][0] in spec["tolerations"]  # type: ignore[index]
    resources = spec["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1"
    assert resources["requests"]["nvidia.com/gpu"] == "1"
    assert resources["limits"]["cpu"] == "4"
    assert spec.get("nodeName") == "gpu-node-1"
    # The running-labs view: annie's server, its image, profile and node.
    _open_editor(admin_page, demo, "labs")
    row = admin_page.locator("table#labs tr", has_text=USER)
    text = row.inner_text()
    assert "gpu" in text, admin_page.content()
    assert "gpu-node-1" in text
    assert "recommended" in text
    assert "sha256:" in text
    _shot(admin_page, "admin-running-labs")
    status, _ = demo.hub.request("DELETE", f"/users/{USER}/server")
    assert status in (202, 204)
    _wait_labs_gone(demo, USER, "annie's lab to go", timeout=60)

    # 3. vera rolls back to the seed; annie's form is restored.
    _open_editor(admin_page, demo, "history")
    _shot(admin_page, "admin-history")
    rows = admin_page.locator("table#history tr")
    rows.last.locator("button:text('Roll back to this')").click()
    admin_page.wait_for_selector("table#history")
    took = _until(
        user_page, demo, lambda i, s: "gpu" not in s and HIDDEN in i, "the rolled-back menu"
    )
    print(f"annie's form showed the rollback after {took:.2f}s")
    _shot(user_page, "user-form-restored")

    # 4. annie's direct POST, with a valid token of hers, gets 403.
    status, body = demo.hub.request(
        "POST", f"/users/{USER}/tokens", {"note": "menu story", "expires_in": 600}
    )
    assert status == 201, body
    token = body["token"]
    _, current = _api_menu(demo, token)
    data = urllib.parse.urlencode(
        {"base": str(current["revision"]), "menu": json.dumps(current["menu"])}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback
        _service(demo, "edit"),
        data=data,
        method="POST",
        headers={"Authorization": f"token {token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)  # noqa: S310
    assert refused.value.code == 403

    # 5. A save naming a tag missing from the registry is refused with the reason.
    _open_editor(admin_page, demo, "edit")
    image = admin_page.locator("table#images tr").last
    image.locator("input[name$='.tag']").fill("w_2099_01")
    with admin_page.expect_navigation() as navigation:
        admin_page.click("button[type=submit]")
    assert navigation.value.status == 400
    where = f"{local_registry.host_port}/{local_registry.repository}"
    assert f"{where}:w_2099_01 does not exist" in admin_page.content()
    _shot(admin_page, "admin-missing-tag")
    _, after = _api_menu(demo, token)
    assert after["revision"] == current["revision"]
    admin.close()
    user.close()


def _api_menu(demo: Demo, token: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - loopback
        _service(demo, "api/menu"), headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        data: dict[str, Any] = json.loads(response.read())
        return response.status, data
