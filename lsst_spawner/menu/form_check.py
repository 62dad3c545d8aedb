"""The spawn form a menu document gives users, and the save rule that it renders.

:class:`SpawnForms` builds a document's form as the spawner does: the image menu under
the document's policy (:func:`~lsst_spawner.menu.catalog.image_cache_policy`, from the
configured image source), :func:`~lsst_spawner.menu.catalog.build_menu_catalog` for a
set of groups, and the spawner's renderer
(:func:`~lsst_spawner.form.render.render_options_form`) with the site's template
(``options_template_path``, ``options_template_name``). The editor's preview and the
save check both render through it, so what is refused on save is what would have
broken users' spawn pages.

A save renders the form for everyone the document distinguishes (:func:`audiences`),
without and with saved options naming a retired image (the form then shows a notice);
any failure is a problem naming who is affected and, when one profile alone breaks the
form, that profile.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..form.options import OptionsCatalog
from ..form.render import DEFAULT_TEMPLATE_NAME, render_options_form
from ..images.cache import MenuCache
from ..images.menu import MenuPolicy
from ..images.model import ImageMenu
from .catalog import (
    MenuUnusable,
    build_menu_catalog,
    image_cache_policy,
    menu_groups,
    size_choice,
)
from .model import MenuDocument, NodeGroup
from .validate import MenuProblem

__all__ = ["IMAGE_MENUS_KEPT", "MAX_AUDIENCES", "SpawnForms", "audiences"]

#: Image menu caches kept, one per image policy (the current one, a few others).
IMAGE_MENUS_KEPT = 4
#: Groups rendered one by one at most; beyond, only everyone and all groups together.
MAX_AUDIENCES = 50


def audiences(document: MenuDocument) -> list[tuple[str, frozenset[str]]]:
    """Who to render the form for, named: everyone (in none of the document's groups),
    the members of each group it mentions, and members of all of them."""
    groups = sorted(menu_groups(document))
    found: list[tuple[str, frozenset[str]]] = [("users in none of the menu's groups", frozenset())]
    if len(groups) <= MAX_AUDIENCES:
        found += [(f"members of {group!r}", frozenset([group])) for group in groups]
    if len(groups) > 1:
        found.append(("members of every group of the menu", frozenset(groups)))
    return found


def _describe(error: BaseException) -> str:
    """What went wrong, and where in a template when it was a template's line."""
    where = ""
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if not frame.filename.endswith(".py"):
            where = f" (template {Path(frame.filename).name}, line {frame.lineno})"
            break
    return f"{type(error).__name__}: {str(error)[:300]}{where}"


class SpawnForms:
    """Renders the spawn form of menu documents; see the module's docstring.

    ``settings`` are the spawner's offline settings (image source, menu policy, cache
    timing and form template traits), as ``lsst-spawner check-config`` reads them.
    """

    def __init__(self, settings: Any, node_groups: dict[str, NodeGroup]) -> None:
        self.settings = settings
        self.node_groups = node_groups
        self._caches: dict[MenuPolicy, MenuCache] = {}

    async def image_menu(self, document: MenuDocument) -> ImageMenu:
        """The image menu under the document's policy (built in the background, once)."""
        policy = image_cache_policy(document, self.settings.image_menu_policy())
        cache = self._caches.get(policy)
        if cache is None:
            if len(self._caches) >= IMAGE_MENUS_KEPT:
                self.close()
            cache = MenuCache(
                self.settings.make_image_source(), policy, self.settings.image_cache_settings()
            )
            self._caches[policy] = cache
        return await cache.get_menu()

    def render_catalog(self, catalog: OptionsCatalog, saved_options: object = None) -> str:
        """The form's HTML, rendered as the spawner renders it (the site's template)."""
        return render_options_form(
            catalog,
            saved_options,
            template_path=tuple(getattr(self.settings, "options_template_path", ())),
            template_name=getattr(self.settings, "options_template_name", DEFAULT_TEMPLATE_NAME),
        )

    async def render(
        self, document: MenuDocument, groups: Iterable[str], *, revision: int | None = None
    ) -> str:
        """The form for a member of ``groups``; raises ``ValueError``
        (:class:`~lsst_spawner.menu.catalog.MenuUnusable`) when it offers them nothing."""
        catalog = build_menu_catalog(
            document, self.node_groups, await self.image_menu(document), groups, revision=revision
        )
        return self.render_catalog(catalog)

    async def problems(self, document: MenuDocument, revision: int = 0) -> list[MenuProblem]:
        """Why the document's form (as ``revision``) would not render for someone; empty
        when it renders for everyone."""
        image_menu = await self.image_menu(document)
        problems: list[MenuProblem] = []
        for who, groups in audiences(document):
            try:
                catalog = build_menu_catalog(
                    document, self.node_groups, image_menu, groups, revision=revision
                )
            except MenuUnusable:
                problems.append(MenuProblem("profiles", f"the spawn form offers {who} no profile"))
                continue
            menu = catalog.menu
            if menu.recommended is None and not (menu.radio or menu.dropdown):
                problems.append(
                    MenuProblem("images", f"the spawn form offers {who} no image to choose")
                )
                continue
            problems.extend(self._render_problems(document, catalog, who))
        return problems

    def _render_problems(
        self, document: MenuDocument, catalog: OptionsCatalog, who: str
    ) -> list[MenuProblem]:
        # A saved choice of a retired image makes the form show a notice: render that too.
        retired = next(iter(catalog.retired), None)
        saved: list[object] = [None]
        if retired is not None:
            saved.append({"image": retired, "size": catalog.default_size})
        for options in saved:
            try:
                self.render_catalog(catalog, options)
            except Exception as error:  # a site template can raise anything
                return self._blame(document, catalog, who, options, error)
        return []

    def _blame(
        self,
        document: MenuDocument,
        catalog: OptionsCatalog,
        who: str,
        options: object,
        error: Exception,
    ) -> list[MenuProblem]:
        """The problem under each profile of the form that alone breaks it while another
        profile of the menu alone does not; else one problem about the form."""
        when = " with a saved choice of a retired image" if options else ""
        offered = {size.name for size in catalog.sizes}
        failing: list[MenuProblem] = []
        renders = False
        for index, profile in enumerate(document.profiles):
            size = size_choice(profile, self.node_groups)
            if size is None:
                continue
            try:
                self.render_catalog(
                    replace(catalog, sizes=(size,), default_size=size.name), options
                )
                renders = True
            except Exception as own:
                if profile.name in offered:
                    failing.append(
                        MenuProblem(
                            f"profiles[{index}].name",
                            f"the spawn form of {who}{when} does not render with this profile: "
                            f"{_describe(own)}",
                        )
                    )
        if renders and failing:
            return failing
        return [
            MenuProblem("", f"the spawn form of {who}{when} does not render: {_describe(error)}")
        ]

    def close(self) -> None:
        """Stop the image menus' background refreshes."""
        for cache in self._caches.values():
            cache.cancel_refresh()
        self._caches.clear()
