"""The save rule that every image offered exists: each tag resolved to a digest by the registry.

This is the one rule that does I/O, so it is apart from :mod:`.validate`: the
editor runs it before a save, through lsst_spawner's own registry client (the
configured image source), so the credential and realm rules hold.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from typing import Any, Protocol

from ..images.sources import ImageSourceError
from .model import ImageState, MenuDocument, NodeGroup
from .validate import MenuInvalidError, MenuProblem, check_menu

__all__ = ["DigestResolver", "check_images_exist", "check_save", "offered_tags", "save_checker"]


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


async def check_save(
    data: Any,
    node_groups: Mapping[str, NodeGroup],
    source: DigestResolver | None,
    where: str,
) -> MenuDocument:
    """Everything a save checks (the editor's and ``menu import``'s): the document's rules,
    then, with a registry ``source``, that every offered image exists.

    Raises :class:`MenuInvalidError` with every problem by field.
    """
    document = check_menu(data, node_groups)
    if source is not None:
        _, missing = await check_images_exist(document, source, where)
        if missing:
            raise MenuInvalidError(missing)
    return document


def save_checker(settings: Any) -> tuple[Any, str]:
    """The image source a save checks offered images against, and how messages name it.

    ``settings`` are the spawner's (``image_source``, registry traits). With a
    registry source: its client (the caller closes it with ``aclose``); with a
    static source, ``None`` (its list of tags is the configuration, not a registry).
    """
    if getattr(settings, "image_source", None) != "registry":
        return None, str(getattr(settings, "static_image_base", "") or "the image source")
    source = settings.make_image_source()
    return source, str(source.image_base)
