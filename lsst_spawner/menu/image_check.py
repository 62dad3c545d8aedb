"""The save rules that do I/O: every offered image exists, and the spawn form renders.

They are apart from :mod:`.validate` because they ask the outside world: the
existence check resolves each offered tag to a digest through lsst_spawner's own
registry client (so the credential and realm rules hold), and the form check renders
the revision's spawn form with the spawner's renderer and the site's template
(:class:`~lsst_spawner.menu.form_check.SpawnForms`).

Which images are checked to exist is decided once, by :func:`images_checked_in_registry`:
only images that come from the registry (``image_source = "registry"``). A static
source's tags are configuration, not a registry's answer (air-gapped sites, demos):
nothing there to ask.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..images.sources import ImageSourceError
from .model import ImageState, MenuDocument, NodeGroup
from .validate import MenuInvalidError, MenuProblem, check_menu

if TYPE_CHECKING:
    from .form_check import SpawnForms

__all__ = [
    "DigestResolver",
    "check_images_exist",
    "check_save",
    "images_checked_in_registry",
    "offered_tags",
    "save_checker",
]


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
    *,
    forms: SpawnForms | None = None,
    revision: int = 0,
) -> MenuDocument:
    """Everything a save checks (the editor's and ``menu import``'s): the document's rules;
    then, with a registry ``source``, that every offered image exists; then, with
    ``forms``, that the spawn form (as ``revision``) renders for everyone.

    Raises :class:`MenuInvalidError` with every problem by field.
    """
    document = check_menu(data, node_groups)
    if source is not None:
        _, missing = await check_images_exist(document, source, where)
        if missing:
            raise MenuInvalidError(missing)
    if forms is not None:
        broken = await forms.problems(document, revision)
        if broken:
            raise MenuInvalidError(broken)
    return document


def images_checked_in_registry(settings: Any) -> bool:
    """The rule: offered images are checked to exist (and their sizes read) only when the
    spawner's images come from the registry, ``image_source = "registry"``."""
    return getattr(settings, "image_source", None) == "registry"


def save_checker(settings: Any) -> tuple[Any, str]:
    """The image source a save checks offered images against, and how messages name it.

    ``settings`` are the spawner's (``image_source``, registry traits). Under
    :func:`images_checked_in_registry`, its registry source (the caller closes it with
    ``aclose`` when it has one); else ``None``: nothing is asked.
    """
    if not images_checked_in_registry(settings):
        return None, str(getattr(settings, "static_image_base", "") or "the image source")
    source = settings.make_image_source()
    return source, str(source.image_base)
