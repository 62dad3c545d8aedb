"""End to end in a real browser in operator mode: the hub only declares, the operator builds.

The demo as in test_browser.py (real JupyterHub through its proxy, fake GitHub,
process kubelet running the lab's real ``jupyterhub-singleuser``), with
``lab_backend = "operator"``: the hub is bound to operator mode's hub Role (no pod
rights) and the real ``lsst-spawner operator`` runs as a process. The browser logs
in, picks an image, watches the progress page reach the lab, and stops it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lsst_spawner.testing.demo import Demo
from lsst_spawner.testing.hub import free_port
from lsst_spawner.testing.waiting import wait_for

from .test_browser import ARTIFACTS, CHOSEN_TAG, _login, browser, new_page, stop_from_home

pytestmark = pytest.mark.integration

__all__ = ["browser"]  # the fixture, shared with test_browser.py

USER = "annie"
LABSERVERS = "labservers.lab.lsst-spawner.io"


@pytest.fixture(scope="module")
def operator_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workdir: Path = tmp_path_factory.mktemp("demo-operator")
    with Demo(port=free_port(), workdir=workdir, step_delay=0.3, lab_backend="operator") as running:
        yield running


@pytest.fixture
def operator_page(browser: Any, operator_demo: Demo) -> Iterator[Any]:
    yield from new_page(browser)


def test_operator_mode_login_spawn_lab_and_stop(operator_page: Any, operator_demo: Demo) -> None:
    page, demo = operator_page, operator_demo
    assert demo.emulator is not None
    assert demo.hub is not None
    ARTIFACTS.mkdir(exist_ok=True)
    _login(page, demo, USER)
    form = page.locator("#spawn_form")
    form.locator("select[name=image_dropdown]").select_option(CHOSEN_TAG)
    form.locator("input[name=size][value=large]").check()
    form.get_by_role("button", name="Start").click()

    page.wait_for_url(f"{demo.url}/hub/spawn-pending/{USER}*")
    page.wait_for_function(
        "Number(document.getElementById('progress-bar').getAttribute('aria-valuenow')) > 0"
    )
    page.screenshot(path=str(ARTIFACTS / "e2e-operator-progress.png"), full_page=True)
    page.wait_for_url(f"{demo.url}/user/{USER}/**", timeout=90_000)
    page.wait_for_load_state()
    assert "Jupyter" in page.title() or "A Jupyter Server is running" in page.content()

    progress = json.loads(page.evaluate("sessionStorage.getItem('lsst-progress')") or "[]")
    assert progress, "no progress event reached the page"
    assert progress[-1]["event"].get("ready") is True, progress
    assert progress[-1]["bar"] == "100", progress[-1]
    bars = [int(p["bar"]) for p in progress]
    assert bars == sorted(bars), f"the progress bar went backwards: {bars}"
    messages = " | ".join(p["event"].get("message", "") for p in progress)
    # The operator's status events, relayed by the hub (its own first steps may be over
    # before the page connects).
    for expected in ("Accepted: image", "Created your lab pod", "is running"):
        assert expected in messages, (expected, messages)

    # The operator built the lab from the LabServer the hub declared.
    (server,) = demo.emulator.list_objects(LABSERVERS, demo.namespace)
    assert server["spec"]["image"].startswith(f"{demo.image_base}:{CHOSEN_TAG}")
    assert server["status"]["phase"] == "Running"
    (pod,) = [p for p in demo.emulator.list_objects("pods", demo.namespace) if USER in str(p)]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "LabServer"
    assert pod["spec"]["containers"][0]["image"].startswith(f"{demo.image_base}:{CHOSEN_TAG}")
    reasons = [
        e["reason"]
        for e in demo.emulator.list_objects("events", demo.namespace)
        if e["involvedObject"].get("kind") == "LabServer"
    ]
    assert {"Accepted", "PodCreated"} <= set(reasons), reasons

    # The lab answers through the proxy with the browser's session.
    page.goto(f"{demo.url}/user/{USER}/view/no-such-file.txt")
    response = page.goto(f"{demo.url}/user/{USER}/api/status")
    assert response is not None
    assert response.ok, page.content()[:1000]
    assert "started" in json.loads(page.locator("body").inner_text())

    stop_from_home(page, demo.url, timeout=90_000)
    wait_for(
        lambda: (
            not demo.emulator.list_objects(LABSERVERS, demo.namespace)  # type: ignore[union-attr]
            and not any(demo.lab_objects(USER).values())
        ),
        f"the LabServer, pod and Secrets to go (left: {demo.lab_objects(USER)})",
        timeout=60,
        interval=0.2,
    )
    _, user = demo.hub.request("GET", f"/users/{USER}")
    assert user["servers"] == {}
    assert demo.operator is not None
    assert demo.operator.running(), demo.operator.output[-3000:]
    # The hub never asked for a pod: its Role has none, and nothing was refused but that.
    denied = [
        f"{a.user.name} {a.verb} {a.resource}" for a in demo.emulator.access.authorizer.denied
    ]
    assert not [d for d in denied if "pods" in d], denied
