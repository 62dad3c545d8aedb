"""The current menu for a hub process: one marker read per use, the document only when it changed.

:class:`CurrentMenu` asks the store for the current revision's number (one
primary-key read) and loads the whole revision only when that number moved,
so a form render costs one indexed query. :func:`menu_profile_list` turns it
into the callable KubeSpawner's ``profile_list`` accepts, for hubs on plain
KubeSpawner.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .model import NodeGroup
from .profile_list import build_profile_list
from .storage import MenuRevision, MenuStore

__all__ = ["CurrentMenu", "menu_profile_list"]


class CurrentMenu:
    """The newest revision of ``store``, reloaded only when its number changes."""

    def __init__(self, store: MenuStore) -> None:
        self.store = store
        self._revision: MenuRevision | None = None
        self._lock = threading.Lock()
        #: How many times a whole revision was read (tests and benchmarks look at it).
        self.loads = 0

    def get(self) -> MenuRevision | None:
        """The current revision (blocking: call from a thread in an event loop)."""
        number = self.store.current_number()
        with self._lock:
            if number is None:
                self._revision = None
            elif self._revision is None or self._revision.number != number:
                self._revision = self.store.get(number)
                self.loads += 1
            return self._revision

    async def aget(self) -> MenuRevision | None:
        """:meth:`get` in a worker thread, so the hub's event loop never waits on the database."""
        return await asyncio.to_thread(self.get)


def menu_profile_list(
    store: MenuStore,
    node_groups: Mapping[str, NodeGroup] | None = None,
    *,
    image_repository: str | None = None,
) -> Callable[[Any], Awaitable[list[dict[str, Any]]]]:
    """A ``c.KubeSpawner.profile_list`` callable: the current menu as the user's groups see it.

    The user's JupyterHub groups decide visibility. An empty database gives an
    empty list, which KubeSpawner treats as no profiles.
    """
    current = CurrentMenu(store)
    groups_by_name = dict(node_groups if node_groups is not None else store.node_groups)

    async def profile_list(spawner: Any) -> list[dict[str, Any]]:
        revision = await current.aget()
        if revision is None:
            return []
        user_groups = [group.name for group in getattr(spawner.user, "groups", [])]
        return build_profile_list(
            revision.document,
            groups_by_name,
            user_groups=user_groups,
            image_repository=image_repository,
        )

    return profile_list
