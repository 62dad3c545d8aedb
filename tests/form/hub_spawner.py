"""The spawner the test hub runs: LSSTSpawner with a static menu and static sizes."""

from __future__ import annotations

from menu_fixture import SIZES, make_menu

from lsst_spawner.images.model import ImageMenu
from lsst_spawner.spawner import LSSTSpawner

MENU = make_menu()


class StaticMenuSpawner(LSSTSpawner):
    """Stands in for the image menu and lab size mixins built elsewhere."""

    lab_sizes = list(SIZES)
    lab_size_default = "medium"

    async def get_menu(self) -> ImageMenu:
        return MENU
