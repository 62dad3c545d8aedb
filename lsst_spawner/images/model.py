"""The image menu's data model, shared by the menu policy, the cache, the form and the CLI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

__all__ = ["ImageMenu", "MenuImage", "TagKind"]


class TagKind(StrEnum):
    """Kinds of image tags, in menu order (see ``lsst_spawner.images.tags``)."""

    ALIAS = "alias"
    RELEASE = "release"
    WEEKLY = "weekly"
    DAILY = "daily"
    CANDIDATE = "candidate"
    EXPERIMENTAL = "experimental"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class MenuImage:
    """One image a user may choose.

    Slotted: a menu of a large repository holds ten thousand of these.
    """

    tag: str
    kind: TagKind
    display_name: str
    #: ``{image_base}:{tag}``
    reference: str
    #: ``sha256:...`` when known.
    digest: str | None = None
    #: ``radio`` for the short list of choices, ``dropdown`` for the others.
    choice: Literal["radio", "dropdown"] = "dropdown"
    #: The alias tag this image is shown as, when it shares the alias's digest
    #: (the menu lists the alias, not the image a second time).
    shown_as: str | None = None
    #: On how many of the lab's eligible nodes the image is: ``all``, ``some`` or
    #: ``none``; ``None`` when not known (prepull off). See ``images.prepull``.
    presence: Literal["all", "some", "none"] | None = None
    #: The nodes that have it, when ``presence`` is ``some`` (a preferred affinity).
    present_on: tuple[str, ...] = ()

    @property
    def slower_to_start(self) -> bool:
        """True when prepull knows the image is not on every eligible node."""
        return self.presence is not None and self.presence != "all"

    @property
    def pinned_reference(self) -> str:
        """``{image_base}:{tag}@{digest}`` when the digest is known, else :attr:`reference`."""
        return f"{self.reference}@{self.digest}" if self.digest else self.reference


@dataclass(frozen=True)
class ImageMenu:
    """The menu users see: built in the background, read by every form request."""

    image_base: str
    radio: tuple[MenuImage, ...] = ()
    dropdown: tuple[MenuImage, ...] = ()
    recommended: MenuImage | None = None
    #: When the source last answered; ``None`` for a menu not yet built.
    refreshed_at: datetime | None = None
    #: ``False`` while the first refresh has not finished (the form says "loading").
    complete: bool = True
    #: Tags the source listed that are not valid Docker tags (left out of the
    #: menu): the first few by name, and how many there were.
    invalid_tags: tuple[str, ...] = ()
    invalid_tag_count: int = 0
    #: Offered images not listed because an alias with their digest is (``shown_as``).
    aliased: tuple[MenuImage, ...] = ()
    #: The SAL cycle every offered image belongs to, when the site set one.
    cycle: int | None = None
    #: The newest offered image of each kind, for the image classes (``latest-weekly``).
    latest: Mapping[TagKind, MenuImage] = field(default_factory=dict, compare=False)
    _by_tag: dict[str, MenuImage] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {image.tag: image for image in (*self.aliased, *self.dropdown, *self.radio)}
        if self.recommended is not None:
            index.setdefault(self.recommended.tag, self.recommended)
        object.__setattr__(self, "_by_tag", index)

    @property
    def images(self) -> tuple[MenuImage, ...]:
        """Every image offered, radio choices first."""
        return (*self.radio, *self.dropdown)

    @property
    def offered(self) -> tuple[MenuImage, ...]:
        """Every image a user may ask for: :attr:`images` and those shown as an alias."""
        return (*self.radio, *self.dropdown, *self.aliased)

    def find(self, tag: str) -> MenuImage | None:
        """The offered image with this tag, or ``None``."""
        return self._by_tag.get(tag)
