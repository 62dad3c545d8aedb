"""The menu policy: which tags users see, as radio choices or in the dropdown.

Pure functions of (tags, digests, policy, now): no I/O, so the cache runs them
in a worker thread and tests call them directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from .model import ImageMenu, MenuImage, TagKind
from .tags import RECOMMENDED_TAG, ParsedTag, alias_display_name, is_valid_tag, parse_tag

__all__ = [
    "INVALID_TAGS_KEPT",
    "MenuPolicy",
    "build_menu",
    "is_valid_digest",
    "menu_records",
    "placeholder_menu",
    "tags_needing_digests",
]

#: How many invalid tags an :class:`ImageMenu` records by name (all are counted).
INVALID_TAGS_KEPT = 20

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")

# The radio kinds, in menu order, with the policy field giving each one's count.
_RADIO_KINDS = (
    (TagKind.RELEASE, "releases"),
    (TagKind.WEEKLY, "weeklies"),
    (TagKind.DAILY, "dailies"),
    (TagKind.CANDIDATE, "candidates"),
    (TagKind.EXPERIMENTAL, "experimentals"),
)


@dataclass(frozen=True)
class MenuPolicy:
    """What the menu shows; built from ``ImageMenuTraits`` (see its trait help)."""

    recommended_tag: str = RECOMMENDED_TAG
    alias_tags: tuple[str, ...] = ()
    releases: int = 1
    weeklies: int = 2
    dailies: int = 3
    candidates: int = 0
    experimentals: int = 0
    pinned_tags: tuple[str, ...] = ()
    #: Most dropdown entries; 0 for no limit.
    dropdown_max_count: int = 0
    #: Dropdown leaves out dated (weekly, daily) tags older than this; 0 for no limit.
    dropdown_max_age: timedelta = timedelta(0)

    @property
    def aliases(self) -> frozenset[str]:
        """Tags parsed as aliases: the configured ones and the recommended tag.

        The recommended tag is an alias unless it is itself a release, weekly
        or other dated tag (a site may recommend ``w_2024_10`` directly).
        """
        aliases = set(self.alias_tags)
        if parse_tag(self.recommended_tag).kind in (TagKind.UNKNOWN, TagKind.ALIAS):
            aliases.add(self.recommended_tag)
        return frozenset(aliases)


def is_valid_digest(digest: object) -> bool:
    """Whether ``digest`` looks like a manifest digest (``sha256:`` + 64 hex digits)."""
    return isinstance(digest, str) and _DIGEST.fullmatch(digest) is not None


@dataclass(frozen=True)
class _Selection:
    parsed: dict[str, ParsedTag]
    invalid: list[str]
    #: The radio tags in menu order, with the recommended tag first when listed.
    radio: list[str]
    #: Each visible non-alias kind, newest first.
    by_kind: dict[TagKind, list[ParsedTag]]


def _select(tags: Iterable[str], policy: MenuPolicy) -> _Selection:
    aliases = policy.aliases
    parsed: dict[str, ParsedTag] = {}
    invalid: list[str] = []
    for tag in tags:
        # Validity first: a misbehaving source may hand us anything, even unhashables.
        if not is_valid_tag(tag):
            invalid.append(tag if isinstance(tag, str) else repr(tag))
            continue
        if tag not in parsed:
            parsed[tag] = parse_tag(tag, aliases)

    by_kind: dict[TagKind, list[ParsedTag]] = {kind: [] for kind in TagKind}
    for item in parsed.values():
        if not item.hidden:
            by_kind[item.kind].append(item)
    for items in by_kind.values():
        items.sort(key=lambda item: item.sort_key)

    radio: list[str] = []
    seen: set[str] = set()

    def offer(tag: str) -> None:
        if tag in parsed and tag not in seen:
            seen.add(tag)
            radio.append(tag)

    offer(policy.recommended_tag)
    for alias in policy.alias_tags:
        offer(alias)
    for pinned in policy.pinned_tags:
        offer(pinned)
    for kind, field_name in _RADIO_KINDS:
        count: int = getattr(policy, field_name)
        for item in by_kind[kind][: max(count, 0)]:
            offer(item.tag)
    return _Selection(parsed=parsed, invalid=invalid, radio=radio, by_kind=by_kind)


def tags_needing_digests(tags: Iterable[str], policy: MenuPolicy) -> list[str]:
    """The few tags whose digests the menu uses, so a source is never asked for all.

    These are the radio choices (which include the recommended tag and the
    aliases) plus the newest tag of each kind, so that ``latest_*`` aliases can
    be resolved even for a kind shown with a count of 0.
    """
    selection = _select(tags, policy)
    needed = list(selection.radio)
    chosen = set(needed)
    for kind, _ in _RADIO_KINDS:
        newest = selection.by_kind[kind][:1]
        if newest and newest[0].tag not in chosen:
            needed.append(newest[0].tag)
            chosen.add(newest[0].tag)
    return needed


def build_menu(
    image_base: str,
    tags: Iterable[str],
    digests: Mapping[str, str],
    policy: MenuPolicy,
    now: datetime,
) -> ImageMenu:
    """Build the menu users see from a source's tags and the digests it resolved.

    - radio choices: the recommended tag, the aliases, the pinned tags (each
      only when the source lists it), then the newest ``releases`` releases,
      ``weeklies`` weeklies, ``dailies`` dailies, ``candidates`` candidates and
      ``experimentals`` experimentals;
    - an alias is displayed with the tag it points at, found by equal digest
      among the visible tags with a known digest: "Recommended (Weekly 2024_10)";
    - the dropdown: every other visible tag in menu order, leaving out dated
      tags older than ``dropdown_max_age`` and then all but the first
      ``dropdown_max_count``;
    - architecture-suffixed tags are shown only when pinned or recommended;
    - tags without Docker tag syntax are left out and recorded in
      ``invalid_tags``; digests that are not ``sha256:``/``sha512:`` hex are ignored.
    """
    selection = _select(tags, policy)
    parsed = selection.parsed
    known = {tag: d for tag, d in digests.items() if tag in parsed and is_valid_digest(d)}

    # Which visible, non-alias tag each digest belongs to (the first in menu order).
    target_of: dict[str, ParsedTag] = {}
    for tag, digest in known.items():
        item = parsed[tag]
        if item.kind is TagKind.ALIAS or item.hidden:
            continue
        current = target_of.get(digest)
        if current is None or item.sort_key < current.sort_key:
            target_of[digest] = item

    def image(item: ParsedTag, choice: Literal["radio", "dropdown"]) -> MenuImage:
        digest = known.get(item.tag)
        name = item.display_name
        if item.kind is TagKind.ALIAS:
            target = target_of.get(digest) if digest else None
            if target is not None:
                name = f"{name} ({target.display_name})"
        elif item.tag == policy.recommended_tag:
            name = f"Recommended ({name})"
        return MenuImage(
            tag=item.tag,
            kind=item.kind,
            display_name=name,
            reference=f"{image_base}:{item.tag}",
            digest=digest,
            choice=choice,
        )

    radio = tuple(image(parsed[tag], "radio") for tag in selection.radio)
    in_radio = set(selection.radio)

    cutoff = (now - policy.dropdown_max_age).date() if policy.dropdown_max_age else None
    dropdown: list[MenuImage] = []
    limit = policy.dropdown_max_count if policy.dropdown_max_count > 0 else None
    # Aliases are radio choices, except "recommended" when a site recommends a real tag.
    for kind in TagKind:
        for item in selection.by_kind[kind]:
            if limit is not None and len(dropdown) >= limit:
                break
            if item.tag in in_radio:
                continue
            if cutoff is not None and item.date is not None and item.date < cutoff:
                continue
            dropdown.append(image(item, "dropdown"))

    recommended = radio[0] if radio and radio[0].tag == policy.recommended_tag else None
    return ImageMenu(
        image_base=image_base,
        radio=radio,
        dropdown=tuple(dropdown),
        recommended=recommended,
        refreshed_at=now,
        complete=True,
        invalid_tags=tuple(selection.invalid[:INVALID_TAGS_KEPT]),
        invalid_tag_count=len(selection.invalid),
    )


def placeholder_menu(image_base: str, policy: MenuPolicy) -> ImageMenu:
    """The menu offered before the first refresh finished: the recommended image only."""
    name = (
        alias_display_name(policy.recommended_tag)
        if policy.recommended_tag in policy.aliases
        else f"Recommended ({parse_tag(policy.recommended_tag).display_name})"
    )
    recommended = MenuImage(
        tag=policy.recommended_tag,
        kind=parse_tag(policy.recommended_tag, policy.aliases).kind,
        display_name=name,
        reference=f"{image_base}:{policy.recommended_tag}",
        choice="radio",
    )
    return ImageMenu(
        image_base=image_base,
        radio=(recommended,),
        recommended=recommended,
        refreshed_at=None,
        complete=False,
    )


def menu_records(menu: ImageMenu) -> list[dict[str, str | bool | None]]:
    """One JSON-ready record per offered image, radio choices first (``lsst-spawner menu``)."""
    return [
        {
            "tag": image.tag,
            "kind": image.kind.value,
            "display_name": image.display_name,
            "digest": image.digest,
            "choice": image.choice,
            "recommended": menu.recommended is image,
        }
        for image in menu.images
    ]
