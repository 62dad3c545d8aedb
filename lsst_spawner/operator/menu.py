"""The operator's lab menu: the current revision of the database the hub's editor writes.

With a template's ``spec.labMenu``, the operator polices a LabServer with the catalog
the hub offers the same identity: the current revision read through the hub's own
reader (:class:`~lsst_spawner.menu.live.LiveMenu`, one marker read per
``revisionCheckInterval``, the whole revision only when it changed), its image menu
built by the same cache under the revision's image policy, and the revision's
visibility for the identity's groups (:meth:`~lsst_spawner.menu.live.LiveMenu.catalog`).
A saved revision is what the next LabServer is checked against, without a restart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..form.options import OptionsCatalog
from ..images.model import ImageMenu
from ..menu.hub import LiveMenus
from ..site import site_context
from .build import Rejected, SiteTemplate

if TYPE_CHECKING:
    from ..menu.live import LiveMenu

__all__ = ["MenuNotReadable", "lab_menu_catalog", "template_image_menu"]

#: Marks an image menu with the template's prepull presence (the identity when prepull is off).
Mark = Callable[[ImageMenu], Awaitable[ImageMenu]]


class MenuNotReadable(RuntimeError):
    """The menu database could not be read and no revision was read before (retried)."""


async def _current(menus: LiveMenus, site: SiteTemplate) -> tuple[LiveMenu, Any] | None:
    """The live menu and its current revision; ``None`` without a lab menu or revision."""
    live = menus.live_menu(site.lab_menu) if site.lab_menu is not None else None
    if live is None:
        return None
    try:
        revision = await live.revision()
    except RuntimeError as error:  # MenuUnavailable
        raise MenuNotReadable(str(error)) from None
    return (live, revision) if revision is not None else None


async def template_image_menu(menus: LiveMenus, site: SiteTemplate) -> ImageMenu:
    """The image menu of a template: under the lab menu's current revision's image policy, else
    the template's own (what the prepuller pulls and what LabServers are checked against)."""
    current = await _current(menus, site)
    if current is None:
        return await site.traits.get_menu()
    return await _revision_menu(site, current[1])


async def _revision_menu(site: SiteTemplate, revision: Any) -> ImageMenu:
    cache = site_context(site.traits).revision_menu_cache(site.traits, revision)
    return await cache.get_menu()


async def lab_menu_catalog(
    menus: LiveMenus, site: SiteTemplate, groups: list[str], mark: Mark | None = None
) -> OptionsCatalog | None:
    """The catalog of an identity in ``groups`` under the current revision; ``None`` when the
    template has no lab menu or its database is empty (the template's menu applies, as the hub's
    traitlets menu does until the first save)."""
    current = await _current(menus, site)
    if current is None:
        return None
    live, revision = current
    image_menu = await _revision_menu(site, revision)
    if mark is not None:
        image_menu = await mark(image_menu)
    try:
        return live.catalog(revision, image_menu, groups)
    except ValueError as error:  # MenuUnusable: every visible profile on a removed node group
        raise Rejected("SizeRejected", str(error)) from None
