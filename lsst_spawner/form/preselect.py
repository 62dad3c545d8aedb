"""What the options form shows as already chosen, and what it says about stale saved choices.

Pure: the user's saved options and the catalog in, the preselection out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..images.model import MenuImage
from .options import (
    OptionsCatalog,
    OptionsError,
    _resolve_size,
    _saved_tag,
    _shown,
    redirected_image,
    resolve_image,
    resolve_image_class,
)

__all__ = ["Preselection", "preselection"]


@dataclass(frozen=True)
class Preselection:
    """What the form shows as already chosen."""

    image_tag: str | None
    size: str
    enable_debug: bool
    #: True when the preselected image is in the dropdown, not a radio choice.
    in_dropdown: bool
    #: What the form says once about saved choices the lab menu no longer offers.
    notices: tuple[str, ...] = ()


def preselection(saved: object, catalog: OptionsCatalog) -> Preselection:
    """The form's initial choices: the saved options while still valid, else the defaults.

    Never raises and never logs: a stale or hostile saved value is simply not
    preselected.
    """
    menu = catalog.menu
    image: MenuImage | None = None
    size = catalog.default_size
    enable_debug = False
    notices: list[str] = []
    if isinstance(saved, Mapping):
        try:
            if "image_class" in saved and "image" not in saved:
                image = resolve_image_class(menu, saved.get("image_class"))
            else:
                image = resolve_image(menu, saved.get("image"))
        except OptionsError:
            image = None
            if catalog.revision is not None and "image" in saved:
                image, notice = _redirect_notice(catalog, saved.get("image"))
                notices.extend(notice)
        if image is not None and image.shown_as is not None:
            # Listed as its alias: preselect the alias.
            image = menu.find(image.shown_as)
        try:
            size = _resolve_size(catalog, saved.get("size"))
        except OptionsError:
            size = catalog.default_size
            saved_size = saved.get("size")
            if catalog.revision is not None and isinstance(saved_size, str) and saved_size:
                notices.append(
                    f"Your saved profile {_shown(saved_size)} is no longer offered; "
                    f"{size} is selected instead."
                )
        enable_debug = saved.get("enable_debug") is True
    if image is None:
        image = menu.recommended or (menu.radio[0] if menu.radio else None)
    if image is None:
        return Preselection(None, size, enable_debug, in_dropdown=False, notices=tuple(notices))
    radio_tags = {choice.tag for choice in menu.radio}
    if menu.recommended is not None:
        radio_tags.add(menu.recommended.tag)
    in_dropdown = image.tag not in radio_tags
    return Preselection(image.tag, size, enable_debug, in_dropdown, tuple(notices))


def _redirect_notice(catalog: OptionsCatalog, value: object) -> tuple[MenuImage | None, list[str]]:
    """The image preselected for a saved image the menu no longer offers, and the notice."""
    tag = _saved_tag(value)
    if tag is None:
        return None, []
    try:
        image: MenuImage | None = redirected_image(catalog, value)
    except OptionsError:
        image = None
    retired = catalog.retired.get(tag)
    reason = retired.reason if retired is not None else "no longer offered"
    if image is None:
        return None, [f"Your saved image {tag} is {reason}."]
    return image, [f"Your saved image {tag} is {reason}; {image.tag} is selected instead."]
