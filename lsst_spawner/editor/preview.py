"""The editor's live preview: the spawn form a revision gives a chosen group (or user).

The preview builds the same catalog the spawner builds
(:func:`lsst_spawner.menu.catalog.build_menu_catalog`) from the same image source and
policy, and renders it with the spawner's own form renderer and template, so an admin
sees exactly what members of those groups will see.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..form.render import render_options_form
from ..images.cache import MenuCache
from ..images.menu import MenuPolicy
from ..images.model import ImageMenu
from ..menu.catalog import build_menu_catalog, image_cache_policy
from ..menu.model import NodeGroup
from ..menu.storage import MenuRevision

__all__ = ["PREVIEW_CACHES", "FormPreview"]

#: Image menu caches kept, one per image policy previewed (the current one, a few others).
PREVIEW_CACHES = 4


class FormPreview:
    """Renders a revision's spawn form as members of some groups would see it.

    ``settings`` are the spawner's offline settings (image source, menu policy, cache
    timing and form template traits), as ``lsst-spawner menu-editor`` reads them.
    """

    def __init__(self, settings: Any, node_groups: dict[str, NodeGroup]) -> None:
        self.settings = settings
        self.node_groups = node_groups
        self._caches: dict[MenuPolicy, MenuCache] = {}

    async def image_menu(self, revision: MenuRevision) -> ImageMenu:
        """The image menu under the revision's policy (built in the background, once)."""
        policy = image_cache_policy(revision.document, self.settings.image_menu_policy())
        cache = self._caches.get(policy)
        if cache is None:
            if len(self._caches) >= PREVIEW_CACHES:
                for old in self._caches.values():
                    old.cancel_refresh()
                self._caches.clear()
            cache = MenuCache(
                self.settings.make_image_source(), policy, self.settings.image_cache_settings()
            )
            self._caches[policy] = cache
        return await cache.get_menu()

    async def render(self, revision: MenuRevision, groups: Iterable[str]) -> str:
        """The form's HTML for a member of ``groups``; raises ``ValueError``
        (:class:`~lsst_spawner.menu.catalog.MenuUnusable`) when it offers them nothing."""
        catalog = build_menu_catalog(
            revision.document,
            self.node_groups,
            await self.image_menu(revision),
            groups,
            revision=revision.number,
        )
        return render_options_form(
            catalog,
            None,
            template_path=getattr(self.settings, "options_template_path", ()),
            template_name=getattr(self.settings, "options_template_name", "options.html.j2"),
        )

    def close(self) -> None:
        for cache in self._caches.values():
            cache.cancel_refresh()
        self._caches.clear()
