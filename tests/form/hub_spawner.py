"""The spawner the test hub runs: LSSTSpawner with a static menu and static sizes."""

from __future__ import annotations

from typing import Any

from menu_fixture import make_menu
from traitlets import default

from lsst_spawner.images.model import ImageMenu
from lsst_spawner.spawner import LSSTSpawner

MENU = make_menu()


class StaticMenuSpawner(LSSTSpawner):
    """LSSTSpawner with a fixed menu and the two sizes the tests use."""

    @default("image_source")
    def _static_source(self) -> str:
        return "static"

    @default("static_image_base")
    def _static_base(self) -> str:
        return MENU.image_base

    @default("static_image_tags")
    def _static_tags(self) -> list[str]:
        return [image.tag for image in MENU.images]

    @default("lab_sizes")
    def _two_sizes(self) -> list[dict[str, Any]]:
        return [
            {"name": "small", "cpu": 1, "memory": "4Gi"},
            {"name": "medium", "cpu": 2, "memory": "8Gi"},
        ]

    async def get_menu(self) -> ImageMenu:
        return MENU
