"""The editor in Debian's Chromium (Playwright): an admin's story, with screenshots.

alice logs in through JupyterHub, adds a GPU profile on the gpu node group and hides an
image in the field form, sees the menu, the history and its diff, rolls back, and the
menu is restored. Screenshots of each page (and the menu on a phone-sized screen) go to
``test-artifacts/``. A missing Chromium or Playwright fails these tests (the e2e
suite's ``browser`` fixture).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# The e2e suite's Chromium fixture (Debian's Chromium; fails when it is missing).
from ..e2e.test_browser import browser  # noqa: F401
from .conftest import SERVICE, EditorHub

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _login(page: Any, hub: EditorHub, user: str, path: str) -> None:
    page.goto(f"{hub.url}/hub/login?next=/services/{SERVICE}/{path}")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", "pw")
    page.click("[type=submit]")
    page.wait_for_selector("table#profiles")


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"menu-editor-{name}.png"), full_page=True)


def test_admin_adds_a_gpu_profile_hides_an_image_and_rolls_back(
    browser: Any,  # noqa: F811 - the imported fixture
    hub: EditorHub,
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    _login(page, hub, "alice", "edit")
    _shot(page, "edit")

    new_row = page.locator("table#profiles tr").last
    new_row.locator("input[name$='.name']").fill("gpu-small")
    new_row.locator("input[name$='.cpu_limit']").fill("4")
    new_row.locator("input[name$='.cpu_guarantee']").fill("1")
    new_row.locator("input[name$='.memory_limit']").fill("16Gi")
    new_row.locator("input[name$='.memory_guarantee']").fill("4Gi")
    new_row.locator("select[name$='.node_group']").select_option("gpu")
    new_image = page.locator("table#images tr").last
    new_image.locator("input[name$='.tag']").fill("w_2024_09")
    new_image.locator("select[name$='.state']").select_option("hidden")
    page.fill("input[name=comment]", "gpu profile, hide w_2024_09")
    page.click("button[type=submit]")
    page.wait_for_selector("h1:text('Lab menu')")
    assert page.locator("table#profiles").inner_text().count("gpu-small") == 1
    assert "1 nvidia.com/gpu" in page.locator("table#profiles").inner_text()
    assert "hidden" in page.locator("table#images").inner_text()
    _shot(page, "menu")

    # An invalid edit: the problem is shown under its input, and nothing is saved.
    page.goto(hub.service_url("edit"))
    page.locator("input[name='profiles[0].cpu_guarantee']").fill("99")
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")
    assert navigation.value.status == 400
    error = page.locator("[data-error-for='profiles[0].cpu_guarantee']")
    assert "is more than the limit" in error.inner_text()
    _shot(page, "edit-invalid")

    page.goto(hub.service_url("history"))
    rows = page.locator("table#history tr")
    newest = int(rows.nth(1).locator("td").first.inner_text())
    page.click(f"a[href$='old={newest - 1}&new={newest}']")
    diff = page.locator("#diff").inner_text()
    assert "+ profiles[gpu-small]" in diff
    assert "+ images[w_2024_09]" in diff
    _shot(page, "history")

    rows.nth(2).locator("button:text('Roll back to this')").click()
    page.wait_for_selector("table#history")
    assert "rollback to revision" in page.locator("table#history").inner_text()
    page.goto(hub.service_url(""))
    assert "gpu-small" not in page.locator("table#profiles").inner_text()
    context.close()

    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, storage_state=None, is_mobile=True
    )
    phone_page = phone.new_page()
    _login(phone_page, hub, "bob", "")
    assert "(read-only)" in phone_page.inner_text("header")
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the menu page is {width}px wide on a 390px screen"
    _shot(phone_page, "menu-phone")
    phone.close()
