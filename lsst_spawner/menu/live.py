"""The hub's live view of the lab menu database: a saved revision is seen within seconds.

:class:`LiveMenu` reads the current revision's number (one primary-key read,
:meth:`~lsst_spawner.menu.storage.MenuStore.current_number`) at most once per
``check_interval`` and the whole revision only when that number moved, in a worker
thread so the hub's event loop never waits on the database. The catalogs built
from a revision are kept per image menu and per set of the user's menu groups, so
a form render between two saves does no menu work at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping

from ..form.options import OptionsCatalog
from ..images.model import ImageMenu
from .catalog import build_menu_catalog, menu_groups
from .current import CurrentMenu
from .model import NodeGroup
from .storage import MenuRevision, MenuStore

__all__ = ["CATALOGS_KEPT", "LiveMenu", "MenuUnavailable"]

#: Catalogs kept per revision (one per image menu and set of menu groups users are in).
CATALOGS_KEPT = 64

Log = logging.Logger | logging.LoggerAdapter[logging.Logger]


class MenuUnavailable(RuntimeError):
    """The menu database could not be read and no revision was read before."""


class LiveMenu:
    """The current revision of ``store`` for one hub process; see the module's docstring."""

    def __init__(
        self,
        store: MenuStore,
        node_groups: Mapping[str, NodeGroup],
        *,
        check_interval: float = 1.0,
        log: Log | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.node_groups = dict(node_groups)
        self.check_interval = check_interval
        self._current = CurrentMenu(store)
        self._log = log or logging.getLogger(__name__)
        self._clock = clock
        self._revision: MenuRevision | None = None
        self._checked_at: float | None = None
        self._failing = False
        self._catalogs: dict[tuple[int, int, frozenset[str]], tuple[ImageMenu, OptionsCatalog]] = {}
        self._groups: tuple[int, frozenset[str]] | None = None
        #: How many times the revision marker was read (tests and benchmarks look at it).
        self.checks = 0

    @property
    def loads(self) -> int:
        """How many times a whole revision was read."""
        return self._current.loads

    async def revision(self) -> MenuRevision | None:
        """The current revision (``None``: an empty database, the traitlets menu applies).

        The marker is read when ``check_interval`` has passed since the last read. A
        database that cannot be read keeps the last revision, with one warning until it
        answers again; with no revision read yet it raises :class:`MenuUnavailable`.
        """
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self.check_interval:
            return self._revision
        self._checked_at = now
        self.checks += 1
        try:
            revision = await asyncio.to_thread(self._current.get)
        except Exception as error:
            if not self._failing:
                self._log.warning(
                    "Cannot read the lab menu database (%s: %s); %s",
                    type(error).__name__,
                    error,
                    "keeping the last revision" if self._revision else "no revision yet",
                )
            self._failing = True
            if self._revision is None:
                self._checked_at = None
                raise MenuUnavailable(
                    "the lab menu cannot be read right now; try again in a minute"
                ) from error
            return self._revision
        if self._failing:
            self._log.info("The lab menu database answers again")
            self._failing = False
        before = self._revision.number if self._revision is not None else None
        if revision is not None and revision.number != before:
            self._log.info("Lab menu revision %d (%s) is current", revision.number, revision.author)
        self._revision = revision
        return revision

    def restricting_groups(self, revision: MenuRevision) -> frozenset[str]:
        """Every group ``revision`` restricts an image or a profile to."""
        if self._groups is None or self._groups[0] != revision.number:
            self._groups = (revision.number, menu_groups(revision.document))
        return self._groups[1]

    def user_menu_groups(
        self, revision: MenuRevision, user_groups: Iterable[str]
    ) -> frozenset[str]:
        """The user's groups that the revision mentions (what decides what they see)."""
        return self.restricting_groups(revision).intersection(user_groups)

    def catalog(
        self, revision: MenuRevision, image_menu: ImageMenu, user_groups: Iterable[str]
    ) -> OptionsCatalog:
        """The catalog of a user in ``user_groups`` under ``revision`` (kept while current)."""
        groups = self.user_menu_groups(revision, user_groups)
        key = (revision.number, id(image_menu), groups)
        kept = self._catalogs.get(key)
        if kept is not None and kept[0] is image_menu:
            return kept[1]
        catalog = build_menu_catalog(
            revision.document, self.node_groups, image_menu, groups, revision=revision.number
        )
        stale = [
            k
            for k, (menu, _) in self._catalogs.items()
            if k[0] != revision.number or menu is not image_menu
        ]
        for old in stale:
            del self._catalogs[old]
        if len(self._catalogs) >= CATALOGS_KEPT:
            self._catalogs.clear()
        self._catalogs[key] = (image_menu, catalog)
        return catalog
