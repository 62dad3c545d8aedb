"""What one user sees of a menu document: visibility by group and image states."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .model import CuratedImage, ImageState, MenuDocument, Profile

__all__ = ["SavedImage", "resolve_saved_image", "visible_images", "visible_profiles"]


def _visible(groups: tuple[str, ...], user_groups: frozenset[str]) -> bool:
    return not groups or not user_groups.isdisjoint(groups)


def visible_images(document: MenuDocument, user_groups: Iterable[str]) -> list[CuratedImage]:
    """The curated images offered to a member of ``user_groups``: shown and visible."""
    mine = frozenset(user_groups)
    return [
        image
        for image in document.images
        if image.state is ImageState.SHOWN and _visible(image.groups, mine)
    ]


def visible_profiles(document: MenuDocument, user_groups: Iterable[str]) -> list[Profile]:
    """The profiles offered to a member of ``user_groups``."""
    mine = frozenset(user_groups)
    return [profile for profile in document.profiles if _visible(profile.groups, mine)]


@dataclass(frozen=True)
class SavedImage:
    """Where a saved image choice goes now, and the one-time message saying why."""

    tag: str
    message: str | None = None


def resolve_saved_image(document: MenuDocument, tag: str) -> SavedImage:
    """A deprecated image goes to its redirect target; a hidden one to the default image.

    Tags the document does not curate are left alone (the registry policy
    decides about them).
    """
    image = next((i for i in document.images if i.tag == tag), None)
    default = document.default_image()
    if image is None or image.state is ImageState.SHOWN:
        return SavedImage(tag)
    if image.state is ImageState.DEPRECATED and image.redirect_to is not None:
        return SavedImage(
            image.redirect_to, f"{tag} is deprecated; {image.redirect_to} was chosen instead"
        )
    target = default.tag if default else tag
    return SavedImage(target, f"{tag} is no longer offered; {target} was chosen instead")
