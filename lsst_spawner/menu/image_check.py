"""The save rule that every image offered exists: each tag resolved to a digest by the registry.

This is the one rule that does I/O, so it is apart from :mod:`.validate`: the
editor runs it before a save, through lsst_spawner's own registry client (the
configured image source), so the credential and realm rules hold.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Protocol

from ..images.sources import ImageSourceError
from .model import ImageState, MenuDocument
from .validate import MenuProblem

__all__ = ["DigestResolver", "check_images_exist", "offered_tags"]


class DigestResolver(Protocol):
    """What the check needs of an image source: ``{tag: digest}`` for the tags that exist."""

    def resolve_digests(self, tags: Iterable[str]) -> Awaitable[dict[str, str]]: ...


def offered_tags(document: MenuDocument) -> dict[str, str]:
    """The tags users may be given, each with the field that names it.

    Shown curated images and pinned tags; a hidden or deprecated image is not
    offered (a deprecated one sends users to its redirect target, itself shown).
    """
    tags: dict[str, str] = {}
    for index, image in enumerate(document.images):
        if image.state is ImageState.SHOWN:
            tags.setdefault(image.tag, f"images[{index}].tag")
    for index, tag in enumerate(document.image_policy.pinned_tags):
        tags.setdefault(tag, f"image_policy.pinned_tags[{index}]")
    return tags


async def check_images_exist(
    document: MenuDocument, source: DigestResolver, where: str
) -> tuple[dict[str, str], list[MenuProblem]]:
    """The digest of each offered tag, and a problem for each tag the registry lacks.

    ``where`` names the repository in messages (``host/repository``). A registry
    that cannot be asked is one problem, with its reason: nothing is saved.
    """
    tags = offered_tags(document)
    try:
        digests = await source.resolve_digests(list(tags))
    except ImageSourceError as error:
        return {}, [MenuProblem("images", f"the registry could not be asked: {error}")]
    problems = [
        MenuProblem(field, f"{where}:{tag} does not exist: the registry has no manifest for it")
        for tag, field in tags.items()
        if tag not in digests
    ]
    return digests, problems
