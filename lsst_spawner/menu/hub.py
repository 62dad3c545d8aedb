"""Where the spawner meets the lab menu: ``LabMenu`` per spawner, one live view per database.

The spawner's :class:`~lsst_spawner.site.SiteContext` asks :class:`LiveMenus` for the
live menu of a spawner's configuration (``None`` unless ``LabMenu.enabled``) and for
the groups that decide what its user sees. The database stack is imported only
when a menu is enabled.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from ..identity import Identity, IdentityError
from .traits import LabMenu

if TYPE_CHECKING:
    from .live import LiveMenu
    from .storage import MenuRevision

__all__ = ["LiveMenus", "lab_menu_settings"]

#: Where a spawner keeps its ``LabMenu`` settings (built once per spawner).
_SETTINGS_ATTRIBUTE = "_lsst_lab_menu"


def lab_menu_settings(obj: Any) -> LabMenu:
    """The ``LabMenu`` settings of ``obj``'s configuration (``c.LabMenu.*``), built once."""
    settings: LabMenu | None = obj.__dict__.get(_SETTINGS_ATTRIBUTE)
    if settings is None:
        settings = LabMenu(config=obj.config)
        settings.enabled  # noqa: B018 - fixes the default before the fingerprint reads it
        obj.__dict__[_SETTINGS_ATTRIBUTE] = settings
    return settings


class LiveMenus:
    """The live lab menus of this process, one per ``LabMenu`` configuration."""

    def __init__(self) -> None:
        self._live: dict[Hashable, LiveMenu] = {}

    def check(self, obj: Any) -> None:
        """Raise :class:`~lsst_spawner.config.ConfigError` with every ``LabMenu`` problem."""
        lab_menu_settings(obj).raise_for_config_problems()

    def live_menu(self, obj: Any) -> LiveMenu | None:
        """The live menu of ``obj``'s ``LabMenu`` database; ``None`` when the menu is off."""
        settings = lab_menu_settings(obj)
        if not settings.enabled:
            return None
        key = settings.config_fingerprint()
        live = self._live.get(key) if key is not None else None
        if live is None:
            from .live import LiveMenu

            groups, _ = settings.parsed_node_groups()  # problems refused at spawner start
            live = LiveMenu(
                settings.open_store(),
                groups,
                check_interval=settings.revision_check_interval,
                log=obj.log,
            )
            if key is not None:
                self._live[key] = live
        return live

    async def user_groups(self, obj: Any, live: LiveMenu, revision: MenuRevision) -> frozenset[str]:
        """The user's JupyterHub groups and identity groups that ``revision`` restricts to.

        The auth_state is decrypted only when the revision restricts anything to a
        group; a user without a readable identity has their JupyterHub groups only.
        """
        if not live.restricting_groups(revision):
            return frozenset()
        user = obj.user
        groups = {group.name for group in getattr(user, "groups", None) or ()}
        try:
            identity = Identity.from_auth_state(await user.get_auth_state())
        except (IdentityError, AttributeError):
            identity = None
        if identity is not None:
            groups.update(group.name for group in identity.groups)
        return live.user_menu_groups(revision, groups)

    def forget(self) -> None:
        """Close every database connection pool and forget the live menus (tests, shutdown)."""
        menus = list(self._live.values())
        self._live.clear()
        for live in menus:
            live.store.close()
