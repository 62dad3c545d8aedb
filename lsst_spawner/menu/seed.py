"""A first revision made from today's traitlets menu, so nothing changes until an admin saves.

``lab_sizes`` become profiles (limits as configured, guarantees at
``lab_size_request_ratio`` as the spawner computes them) and the image menu
traits become the image policy, with the recommended tag as the default image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..images.menu import MenuPolicy
from ..lab.sizes import LabSize, build_resources, format_memory, parse_sizes
from .model import CuratedImage, ImagePolicy, MenuDocument, Profile

__all__ = ["seed_menu", "seed_menu_from_settings"]


def seed_menu(
    sizes: Sequence[LabSize], default_size: str, request_ratio: float, policy: MenuPolicy
) -> MenuDocument:
    """The document equal to a traitlets menu: sizes, their default, the image policy."""
    profiles = []
    for size in sizes:
        resources = build_resources(size, request_ratio)
        profiles.append(
            Profile(
                name=size.name,
                cpu_limit=resources["limits"]["cpu"],
                cpu_guarantee=resources["requests"]["cpu"],
                memory_limit=format_memory(size.memory),
                memory_guarantee=format_memory(int(resources["requests"]["memory"])),
                default=size.name == default_size,
            )
        )
    image_policy = ImagePolicy.from_menu_policy(policy)
    recommended = CuratedImage(tag=policy.recommended_tag, default=True)
    return MenuDocument(image_policy=image_policy, images=(recommended,), profiles=tuple(profiles))


def seed_menu_from_settings(settings: Any) -> MenuDocument:
    """:func:`seed_menu` from a configured spawner (``lab_sizes``, image menu traits)."""
    sizes, _ = parse_sizes(settings.lab_sizes, settings.lab_default_size)
    return seed_menu(
        sizes,
        settings.lab_default_size,
        settings.lab_size_request_ratio,
        settings.image_menu_policy(),
    )
