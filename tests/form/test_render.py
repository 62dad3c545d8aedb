"""The options form's HTML: escaping, preselection, loading state, site templates."""

from __future__ import annotations

import re
from pathlib import Path

from menu_fixture import HOSTILE_TAG, IMAGE_BASE, make_catalog

from lsst_spawner.form.render import render_options_form
from lsst_spawner.form.traits import OptionsFormTraits


def checked_radio(html: str, name: str) -> list[str]:
    return re.findall(rf'name="{name}" id="[^"]+" value="([^"]*)"\s*checked', html)


def selected_option(html: str) -> list[str]:
    return re.findall(r'<option value="([^"]*)" selected>', html)


def test_hostile_tag_is_escaped() -> None:
    html = render_options_form(make_catalog(hostile=True), {})
    assert "<script>" not in html
    assert HOSTILE_TAG not in html
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html
    assert "Unknown &#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_hostile_saved_options_are_not_reflected() -> None:
    html = render_options_form(make_catalog(), {"image": HOSTILE_TAG, "size": "<b>x</b>"})
    assert "<script>" not in html
    assert "<b>x</b>" not in html
    assert checked_radio(html, "image_list") == ["recommended"]


def test_form_lists_menu_sizes_and_checkboxes() -> None:
    html = render_options_form(make_catalog(), None)
    assert re.findall(r'name="image_list" id="image-\d+" value="([^"]*)"', html) == [
        "recommended",
        "r23_0_1",
        "w_2024_10",
    ]
    assert re.findall(r'<option value="([^"]*)"', html) == [
        "w_2024_09",
        "d_2024_02_03",
        "w_2024_01",
    ]
    assert "Medium (2 CPU, 8 GiB)" in html
    assert 'name="enable_debug"' in html
    assert 'name="reset_user_env"' in html
    # defaults: recommended image, default size, nothing else checked
    assert checked_radio(html, "image_list") == ["recommended"]
    assert checked_radio(html, "size") == ["medium"]
    assert not re.search(r'name="(enable_debug|reset_user_env)"[^>]*checked', html)
    assert "image list is loading" not in html


def test_previous_radio_choice_is_preselected() -> None:
    saved = {"image": "r23_0_1", "size": "small", "enable_debug": True, "reset_user_env": True}
    html = render_options_form(make_catalog(), saved)
    assert checked_radio(html, "image_list") == ["r23_0_1"]
    assert checked_radio(html, "size") == ["small"]
    assert re.search(r'name="enable_debug" id="enable_debug" checked', html)
    # a reset is never preselected: it must be asked for each time
    assert not re.search(r'name="reset_user_env"[^>]*checked', html)
    assert selected_option(html) == []


def test_previous_dropdown_choice_is_preselected() -> None:
    html = render_options_form(make_catalog(), {"image": f"{IMAGE_BASE}:w_2024_01"})
    assert checked_radio(html, "image_list") == ["::dropdown"]
    assert selected_option(html) == ["w_2024_01"]
    # the cached dropdown text is not changed for the next user
    assert selected_option(render_options_form(make_catalog(), {})) == []


def test_stale_previous_choice_is_not_preselected() -> None:
    html = render_options_form(make_catalog(), {"image": "w_2020_01", "size": "gone"})
    assert checked_radio(html, "image_list") == ["recommended"]
    assert checked_radio(html, "size") == ["medium"]


def test_loading_menu_still_offers_recommended() -> None:
    html = render_options_form(make_catalog(complete=False), {"image": "r23_0_1"})
    assert "The image list is loading" in html
    assert checked_radio(html, "image_list") == ["recommended"]
    assert "<select" not in html


def test_site_template_overrides_builtin(tmp_path: Path) -> None:
    (tmp_path / "options.html.j2").write_text(
        "<p>site form</p>{% for i in radio_images %}<i>{{ i.display_name }}</i>{% endfor %}"
    )
    html = render_options_form(make_catalog(hostile=True), {}, template_path=[str(tmp_path)])
    assert html.startswith("<p>site form</p><i>Recommended (Weekly 2024_10)</i>")


def test_site_template_is_autoescaped_too(tmp_path: Path) -> None:
    (tmp_path / "options.html.j2").write_text("{{ dropdown_images[-1].tag }}")
    html = render_options_form(make_catalog(hostile=True), {}, template_path=[str(tmp_path)])
    assert html == "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"


def test_template_traits_are_checked(tmp_path: Path) -> None:
    assert OptionsFormTraits().config_problems() == []
    traits = OptionsFormTraits(options_template_path=["relative/dir"])
    assert [p.where for p in traits.config_problems()] == ["LSSTSpawner.options_template_path[0]"]
    traits = OptionsFormTraits(
        options_template_path=[str(tmp_path)], options_template_name="missing.html.j2"
    )
    problems = traits.config_problems()
    assert [p.where for p in problems] == ["LSSTSpawner.options_template_name"]
    assert "missing.html.j2" in problems[0].message


def test_an_image_shown_as_its_alias_preselects_the_alias() -> None:
    """w_2024_10 has recommended's digest: the form lists (and preselects) recommended."""
    from dataclasses import replace

    from menu_fixture import SIZES, W10

    from lsst_spawner.form.options import OptionsCatalog

    base = make_catalog().menu
    aliased = replace(W10, choice="radio", shown_as="recommended")
    menu = replace(base, radio=(base.radio[0], base.radio[1]), aliased=(aliased,))
    catalog = OptionsCatalog(menu=menu, sizes=SIZES, default_size="medium")
    html = render_options_form(catalog, {"image": "w_2024_10"})
    assert 'value="w_2024_10"' not in html
    assert checked_radio(html, "image_list") == ["recommended"]
    assert selected_option(html) == []
