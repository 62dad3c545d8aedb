"""End to end in a real browser: Debian's Chromium, driven by Playwright, against the demo.

The demo (:class:`lsst_spawner.testing.demo.Demo`) runs a real JupyterHub with
LSSTSpawner, LSSTGitHubOAuthenticator and the fake GitHub, the Kubernetes API
emulator and the process kubelet, which runs the lab's real
``jupyterhub-singleuser``. The browser logs in through the OAuth flow, fills in
the options form, watches the progress page, reaches the lab, stops it from the
hub's home page, and the emulator must then hold nothing of that lab.

Screenshots go to ``test-artifacts/``. A missing Chromium or Playwright fails
these tests (it never skips them): set ``LSST_SPAWNER_CHROMIUM`` to use another
Chromium binary.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.testing.demo import Demo
from lsst_spawner.testing.hub import free_port
from lsst_spawner.testing.waiting import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("LSST_SPAWNER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
USER = "annie"
NAMED_USER = "henrietta"
NAMED_SERVERS = "c.JupyterHub.allow_named_servers = True\n"
CHOSEN_TAG = "r27_0_0"  # in the dropdown: not the default, not even a radio button

# Records every progress event and the progress bar's value after it, in sessionStorage,
# which survives the reload that takes the browser from the progress page to the lab.
RECORD_PROGRESS = """
(() => {
  const Original = window.EventSource;
  if (!Original || !location.pathname.includes('/spawn-pending/')) return;
  window.EventSource = function (url, options) {
    const source = new Original(url, options);
    source.addEventListener('message', (e) => {
      const event = JSON.parse(e.data);
      setTimeout(() => {
        const bar = document.getElementById('progress-bar');
        const log = JSON.parse(sessionStorage.getItem('lsst-progress') || '[]');
        log.push({event: event, bar: bar ? bar.getAttribute('aria-valuenow') : null,
                  width: bar ? bar.style.width : null});
        sessionStorage.setItem('lsst-progress', JSON.stringify(log));
      }, 0);
    });
    return source;
  };
})();
"""


@pytest.fixture(scope="module", params=["process", "oci"])
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """The demo with labs as local processes, then with labs in runc as their user."""
    workdir = tmp_path_factory.mktemp("demo")
    mode = request.param
    with Demo(
        port=free_port(),
        workdir=workdir,
        step_delay=0.3,
        kubelet_mode=mode,
        extra_config=NAMED_SERVERS,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        pytest.fail(f"playwright is not installed (pip install playwright): {error}")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: apt-get install -y chromium "
            "(or set LSST_SPAWNER_CHROMIUM); never `playwright install`"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


def new_page(browser: Any) -> Iterator[Any]:
    """A page in a fresh browser context that records the progress events; closed after."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(30_000)
    context.add_init_script(RECORD_PROGRESS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Any, demo: Demo) -> Iterator[Any]:
    yield from new_page(browser)


def _wait_labs_gone(demo: Demo, user: str, what: str, timeout: float) -> None:
    """Poll until ``user`` has no lab pod, ConfigMap or Secret left."""
    wait_for(
        lambda: demo.lab_objects(user),
        what,
        timeout=timeout,
        interval=0.2,
        until=lambda left: not any(left.values()),
    )


def _login(page: Any, demo: Demo, user: str) -> None:
    page.goto(f"{demo.url}/hub/login")
    page.get_by_role("button", name="Sign in with GitHub (fake)").click()
    page.wait_for_url(f"{demo.github.url}/login/oauth/authorize*")
    page.click(f"#login-{user}")
    page.wait_for_url(f"{demo.url}/hub/spawn*")


def test_login_spawn_lab_and_stop(page: Any, demo: Demo) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    _login(page, demo, USER)

    # The options form: the image menu and the sizes.
    form = page.locator("#spawn_form")
    radios = form.locator("input[name=image_list]")
    labels = [
        form.locator(f"label[for={r.get_attribute('id')}]").inner_text() for r in radios.all()
    ]
    assert any(label.startswith("Recommended") for label in labels), labels
    assert any("Weekly 2026_46" in label for label in labels), labels
    assert any("Daily 2026_11_20" in label for label in labels), labels
    options = form.locator("select[name=image_dropdown] option")
    values = [o.get_attribute("value") for o in options.all()]
    assert CHOSEN_TAG in values, values
    assert "exp_w_2026_46_newpipe" in values, values
    assert radios.first.is_checked(), "the recommended image is not preselected"
    sizes = form.locator("input[name=size]")
    assert [s.get_attribute("value") for s in sizes.all()] == ["small", "medium", "large"]
    assert form.locator("input[name=size][value=medium]").is_checked()
    page.screenshot(path=str(ARTIFACTS / "e2e-options-form.png"), full_page=True)

    # Choose an image from the dropdown (which selects its radio button) and a size.
    form.locator("select[name=image_dropdown]").select_option(CHOSEN_TAG)
    assert form.locator("#image-dropdown-choice").is_checked()
    form.locator("input[name=size][value=large]").check()
    form.get_by_role("button", name="Start").click()

    # The progress page, until the browser is sent on to the lab.
    page.wait_for_url(f"{demo.url}/hub/spawn-pending/{USER}*")
    page.wait_for_function(
        "Number(document.getElementById('progress-bar').getAttribute('aria-valuenow')) > 0"
    )
    page.locator("#progress-details").evaluate("details => { details.open = true; }")
    page.screenshot(path=str(ARTIFACTS / "e2e-progress.png"), full_page=True)
    page.wait_for_url(f"{demo.url}/user/{USER}/**", timeout=60_000)
    page.wait_for_load_state()
    # jupyter_server's own landing page, or JupyterLab's when it is installed.
    assert "Jupyter" in page.title() or "A Jupyter Server is running" in page.content()

    progress = json.loads(page.evaluate("sessionStorage.getItem('lsst-progress')") or "[]")
    assert progress, "no progress event reached the page"
    final = progress[-1]
    assert final["event"].get("ready") is True, progress
    assert final["event"]["progress"] == 100
    assert final["bar"] == "100", final
    assert final["width"] == "100%", final
    bars = [int(p["bar"]) for p in progress]
    assert bars == sorted(bars), f"the progress bar went backwards: {bars}"
    messages = [p["event"].get("message", "") for p in progress]
    # The spawner's own steps, then the pod's events from the process kubelet.
    for expected in ("Release r27.0.0", "Scheduled", "Pulled", "Started"):
        assert any(expected in m for m in messages), (expected, messages)

    # The lab is a real Jupyter server, reached through the proxy with the browser's session.
    pods = demo.emulator.list_objects("pods", demo.namespace) if demo.emulator else []
    (pod,) = [p for p in pods if USER in p["metadata"]["name"]]
    assert pod["spec"]["containers"][0]["image"] == f"{demo.image_base}:{CHOSEN_TAG}"
    # The API answers 403 to a browser that has not logged in to the lab yet; any page
    # behind authentication (a missing file here) runs the lab's OAuth flow with the hub.
    page.goto(f"{demo.url}/user/{USER}/view/no-such-file.txt")
    assert any(c["name"] == f"jupyterhub-user-{USER}" for c in page.context.cookies())
    response = page.goto(f"{demo.url}/user/{USER}/api/status")
    assert response is not None
    assert response.ok, page.content()[:1000]
    status = json.loads(page.locator("body").inner_text())
    assert "started" in status, status
    assert "kernels" in status, status

    # Stop it from the hub's control panel.
    stop_from_home(page, demo.url, timeout=60_000)
    _wait_labs_gone(demo, USER, "the lab's pod, configmap and secret to go", timeout=30)
    _, user = demo.hub.request("GET", f"/users/{USER}") if demo.hub else (0, {})
    assert user["servers"] == {}


def stop_from_home(page: Any, url: str, *, timeout: float) -> None:
    """Click "Stop My Server" on the hub's home page once its script has bound the button.

    The page binds its buttons in the requirejs module ``home``, loaded after the page:
    a click before that did nothing, and under a loaded CI machine the wait for "Start My
    Server" then timed out (seen once in a fresh-clone run).
    """
    page.goto(f"{url}/hub/home")
    page.wait_for_function("() => window.require && window.require.defined('home')")
    page.get_by_role("button", name="Stop My Server").click()
    page.get_by_role("button", name="Start My Server").wait_for(timeout=timeout)


def _start_named(page: Any, demo: Demo, server: str, tag: str | None) -> None:
    """Start ``server`` from its options form (``tag`` from the dropdown, else the default)."""
    page.goto(f"{demo.url}/hub/spawn/{NAMED_USER}/{server}")
    form = page.locator("#spawn_form")
    if tag is not None:
        form.locator("select[name=image_dropdown]").select_option(tag)
    form.get_by_role("button", name="Start").click()
    page.wait_for_url(f"{demo.url}/user/{NAMED_USER}/{server}/**", timeout=60_000)


def test_two_named_servers_one_stopped_other_running(page: Any, demo: Demo) -> None:
    """Two servers of one user with different images; stopping one leaves the other running."""
    ARTIFACTS.mkdir(exist_ok=True)
    _login(page, demo, NAMED_USER)
    _start_named(page, demo, "first", None)  # the recommended image
    _start_named(page, demo, "second", CHOSEN_TAG)
    assert demo.emulator is not None
    pods = {
        p["metadata"]["name"]: p["spec"]["containers"][0]["image"]
        for p in demo.emulator.list_objects("pods", demo.namespace)
        if NAMED_USER in p["metadata"]["name"]
    }
    first, second = f"nb-{NAMED_USER}--first", f"nb-{NAMED_USER}--second"
    assert set(pods) == {first, second}, pods
    assert pods[second] == f"{demo.image_base}:{CHOSEN_TAG}"
    assert pods[first] != pods[second]
    assert "recommended" in pods[first] or demo.image_digests["recommended"] in pods[first]

    page.goto(f"{demo.url}/hub/home")
    page.screenshot(path=str(ARTIFACTS / "e2e-named-servers.png"), full_page=True)
    page.locator("#stop-first").click()
    page.locator("#start-first").wait_for(state="visible", timeout=60_000)

    def first_gone() -> bool:
        objects = demo.lab_objects(NAMED_USER)
        return not any(name.startswith(first) for names in objects.values() for name in names)

    wait_for(
        first_gone,
        f"the first server's objects to go ({demo.lab_objects(NAMED_USER)})",
        timeout=30,
        interval=0.2,
    )
    objects = demo.lab_objects(NAMED_USER)
    assert objects["pods"] == [second], objects
    assert sorted(objects["secrets"]) == [f"{second}-secret"], objects
    # The second lab still answers through the proxy with the browser's session.
    page.goto(f"{demo.url}/user/{NAMED_USER}/second/view/no-such-file.txt")
    response = page.goto(f"{demo.url}/user/{NAMED_USER}/second/api/status")
    assert response is not None
    assert response.ok, page.content()[:1000]
    assert demo.hub is not None
    _, user = demo.hub.request("GET", f"/users/{NAMED_USER}")
    assert set(user["servers"]) == {"second"}, user["servers"]
    assert user["servers"]["second"]["ready"] is True
    status, _ = demo.hub.request("DELETE", f"/users/{NAMED_USER}/servers/second")
    assert status in (202, 204)
    _wait_labs_gone(demo, NAMED_USER, "the second to stop", timeout=60)
