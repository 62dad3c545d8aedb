"""Render the options form from the cached menu: Jinja2, autoescaped, overridable by sites."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from ..images.model import ImageMenu
from .options import DROPDOWN_CHOICE, OptionsCatalog
from .preselect import preselection

__all__ = ["BUILTIN_TEMPLATE_DIR", "DEFAULT_TEMPLATE_NAME", "render_options_form"]

#: The directory of lsst_spawner's own templates, searched after any site directory.
BUILTIN_TEMPLATE_DIR = Path(__file__).parent / "templates"
DEFAULT_TEMPLATE_NAME = "options.html.j2"
#: Renders the ``<option>`` elements of the dropdown; rendered once per menu and template.
DROPDOWN_TEMPLATE_NAME = "options_dropdown.html.j2"


@lru_cache(maxsize=8)
def template_environment(search_path: tuple[str, ...] = ()) -> Environment:
    """A Jinja2 environment searching ``search_path`` first, then the built-in templates.

    Autoescaping is always on: tags and descriptions come from a registry, so
    they are untrusted text. Cached per search path, so a form request only
    renders.
    """
    loader = ChoiceLoader(
        [FileSystemLoader(list(search_path)), FileSystemLoader(str(BUILTIN_TEMPLATE_DIR))]
    )
    return Environment(
        loader=loader,
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


# A large repository puts thousands of entries in the dropdown. They depend only on the
# menu, so their HTML is rendered once per menu (the cache replaces the menu object on
# each refresh) and the user's preselection is marked in the cached text.
_dropdown_cache: dict[tuple[int, tuple[str, ...]], tuple[weakref.ref[ImageMenu], str]] = {}


def _dropdown_options(menu: ImageMenu, environment: Environment, key: tuple[str, ...]) -> str:
    cache_key = (id(menu), key)
    cached = _dropdown_cache.get(cache_key)
    if cached is not None and cached[0]() is menu:
        return cached[1]
    html = environment.get_template(DROPDOWN_TEMPLATE_NAME).render(dropdown_images=menu.dropdown)
    for stale in [k for k, (ref, _) in _dropdown_cache.items() if ref() is None]:
        del _dropdown_cache[stale]
    _dropdown_cache[cache_key] = (weakref.ref(menu), html)
    return html


def _mark_selected(options_html: str, tag: str | None) -> Markup:
    if tag is not None:
        marker = f'value="{escape(tag)}"'
        options_html = options_html.replace(marker + ">", marker + " selected>", 1)
    return Markup(options_html)  # noqa: S704 - rendered by the autoescaping environment


def render_options_form(
    catalog: OptionsCatalog,
    saved_options: object = None,
    *,
    template_path: Sequence[str] = (),
    template_name: str = DEFAULT_TEMPLATE_NAME,
) -> str:
    """Return the form's HTML for this menu and these sizes.

    ``saved_options`` are the user's previous options (``spawner.user_options``);
    their image, size and debug choice are preselected while still valid.
    Pure: no I/O beyond reading the (cached) template.
    """
    menu = catalog.menu
    chosen = preselection(saved_options, catalog)
    radio = list(menu.radio)
    if menu.recommended is not None and all(i.tag != menu.recommended.tag for i in radio):
        radio.insert(0, menu.recommended)
    key = tuple(template_path)
    environment = template_environment(key)
    dropdown_html = _dropdown_options(menu, environment, key)
    template = environment.get_template(template_name)
    return template.render(
        dropdown_options_html=_mark_selected(
            dropdown_html, chosen.image_tag if chosen.in_dropdown else None
        ),
        menu=menu,
        radio_images=radio,
        dropdown_images=list(menu.dropdown),
        loading=not menu.complete,
        sizes=catalog.sizes,
        selected_image=chosen.image_tag,
        selected_in_dropdown=chosen.in_dropdown,
        selected_size=chosen.size,
        enable_debug=chosen.enable_debug,
        dropdown_choice=DROPDOWN_CHOICE,
        notices=chosen.notices,
        over_quota=catalog.over_quota,
    )
