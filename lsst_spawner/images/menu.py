"""The menu policy: which tags users see, as radio choices or in the dropdown.

Pure functions of (tags, digests, policy, now): no I/O, so the cache runs them
in a worker thread and tests call them directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ..grammar import is_valid_digest, is_valid_tag
from .filters import DropdownFilter
from .model import ImageMenu, MenuImage, TagKind
from .tags import RECOMMENDED_TAG, ParsedTag, parse_tag

__all__ = [
    "INVALID_TAGS_KEPT",
    "MenuPolicy",
    "alias_name",
    "build_menu",
    "is_valid_digest",
    "menu_records",
    "placeholder_menu",
    "recommended_name",
    "tags_needing_digests",
]

#: How many invalid tags an :class:`ImageMenu` records by name (all are counted).
INVALID_TAGS_KEPT = 20

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
    #: Filters of the dropdown per kind, as ``(kind, filter)`` pairs (hashable).
    dropdown_filters: tuple[tuple[TagKind, DropdownFilter], ...] = ()
    #: Offer only images of this SAL cycle (``_c{cycle}``); ``None`` for every image.
    cycle: int | None = None

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
            item = parse_tag(tag, aliases)
            # At a telescope site an image of another SAL cycle is unsafe to run:
            # it is neither offered nor accepted, so it never enters the menu.
            if policy.cycle is None or item.cycle == policy.cycle:
                parsed[tag] = item

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


def alias_name(alias: ParsedTag, target: ParsedTag | None) -> str:
    """An alias's display name: with the tag it points at, flat, architecture shown once.

    ``Recommended (Weekly 2024_10, SAL Cycle 0027, Build 003)``: the target's
    own parentheses become commas, and the alias's cycle (the target has it
    too) is not repeated. Without a target the alias's own name is used.
    """
    if target is None:
        return alias.display_name
    name = f"{alias.label} ({target.flat_name})"
    architecture = alias.architecture or target.architecture
    return f"{name} [{architecture}]" if architecture else name


def recommended_name(item: ParsedTag) -> str:
    """The name of a recommended tag that is a real tag: ``Recommended (Weekly 2024_09)``."""
    name = f"Recommended ({item.flat_name})"
    return f"{name} [{item.architecture}]" if item.architecture else name


def _dropdown(
    selection: _Selection,
    policy: MenuPolicy,
    now: datetime,
    excluded: set[str],
) -> list[ParsedTag]:
    """The dropdown's tags: per-kind filters, then the global age and count limits."""
    filters = dict(policy.dropdown_filters)
    cutoff = (now - policy.dropdown_max_age).date() if policy.dropdown_max_age else None
    limit = policy.dropdown_max_count if policy.dropdown_max_count > 0 else None
    chosen: list[ParsedTag] = []
    for kind in TagKind:
        kind_filter = filters.get(kind)
        oldest = kind_filter.oldest_date(now) if kind_filter is not None else None
        kept = 0
        for item in selection.by_kind[kind]:
            if limit is not None and len(chosen) >= limit:
                return chosen
            if item.tag in excluded:
                continue
            if cutoff is not None and item.date is not None and item.date < cutoff:
                continue
            if kind_filter is not None:
                if kind_filter.number is not None and kept >= kind_filter.number:
                    break
                if not kind_filter.keeps(item, oldest):
                    continue
            kept += 1
            chosen.append(item)
    return chosen


def build_menu(
    image_base: str,
    tags: Iterable[str],
    digests: Mapping[str, str],
    policy: MenuPolicy,
    now: datetime,
) -> ImageMenu:
    """Build the menu users see from a source's tags and the digests it resolved.

    - with ``policy.cycle`` set, only tags of that SAL cycle exist for the menu:
      the others are neither listed nor accepted, and aliases resolve among them;
    - radio choices: the recommended tag, the aliases, the pinned tags (each
      only when the source lists it), then the newest ``releases`` releases,
      ``weeklies`` weeklies, ``dailies`` dailies, ``candidates`` candidates and
      ``experimentals`` experimentals;
    - an alias is displayed with the tag it points at, found by equal digest
      among the visible tags with a known digest (:func:`alias_name`);
    - a tag sharing its digest with a radio alias is shown as that alias: it is
      not listed again, but stays offered (``ImageMenu.aliased``, ``shown_as``);
      pinned tags and the recommended tag are always listed;
    - the dropdown: every other visible tag in menu order, through the per-kind
      ``dropdown_filters``, then leaving out dated tags older than
      ``dropdown_max_age`` and then all but the first ``dropdown_max_count``;
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

    # Digests of the radio aliases: other tags with them are shown as the alias.
    alias_of: dict[str, str] = {}
    for tag in selection.radio:
        alias_digest = known.get(tag)
        if parsed[tag].kind is TagKind.ALIAS and alias_digest is not None:
            alias_of.setdefault(alias_digest, tag)
    always_listed = {policy.recommended_tag, *policy.pinned_tags}

    def shown_as(item: ParsedTag) -> str | None:
        digest = known.get(item.tag)
        if item.kind is TagKind.ALIAS or digest is None or item.tag in always_listed:
            return None
        return alias_of.get(digest)

    def image(item: ParsedTag, choice: Literal["radio", "dropdown"]) -> MenuImage:
        digest = known.get(item.tag)
        name = item.display_name
        if item.kind is TagKind.ALIAS:
            name = alias_name(item, target_of.get(digest) if digest else None)
        elif item.tag == policy.recommended_tag:
            name = recommended_name(item)
        return MenuImage(
            tag=item.tag,
            kind=item.kind,
            display_name=name,
            reference=f"{image_base}:{item.tag}",
            digest=digest,
            choice=choice,
            shown_as=shown_as(item),
        )

    aliased: dict[str, MenuImage] = {}
    radio: list[MenuImage] = []
    for tag in selection.radio:
        entry = image(parsed[tag], "radio")
        if entry.shown_as is None:
            radio.append(entry)
        else:
            aliased[tag] = entry
    dropdown: list[MenuImage] = []
    for item in _dropdown(selection, policy, now, set(selection.radio)):
        entry = image(item, "dropdown")
        if entry.shown_as is None:
            dropdown.append(entry)
        else:
            aliased[item.tag] = entry

    offered = {entry.tag for entry in (*radio, *dropdown, *aliased.values())}
    by_tag = {entry.tag: entry for entry in (*aliased.values(), *dropdown, *radio)}
    latest: dict[TagKind, MenuImage] = {}
    for kind, items in selection.by_kind.items():
        newest = next((item for item in items if item.tag in offered), None)
        if newest is not None and kind is not TagKind.ALIAS:
            latest[kind] = by_tag[newest.tag]

    recommended = radio[0] if radio and radio[0].tag == policy.recommended_tag else None
    return ImageMenu(
        image_base=image_base,
        radio=tuple(radio),
        dropdown=tuple(dropdown),
        recommended=recommended,
        refreshed_at=now,
        complete=True,
        invalid_tags=tuple(selection.invalid[:INVALID_TAGS_KEPT]),
        invalid_tag_count=len(selection.invalid),
        aliased=tuple(aliased.values()),
        cycle=policy.cycle,
        latest=latest,
    )


def placeholder_menu(image_base: str, policy: MenuPolicy) -> ImageMenu:
    """The menu offered before the first refresh finished: the recommended image only."""
    item = parse_tag(policy.recommended_tag, policy.aliases)
    name = alias_name(item, None) if item.kind is TagKind.ALIAS else recommended_name(item)
    recommended = MenuImage(
        tag=policy.recommended_tag,
        kind=item.kind,
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
        cycle=policy.cycle,
    )


def menu_records(menu: ImageMenu) -> list[dict[str, str | bool | None]]:
    """One JSON-ready record per offered image, radio choices first (``lsst-spawner menu``).

    Images shown as an alias come last, with ``choice`` ``"aliased"`` and the
    alias in ``shown_as``.
    """
    records: list[dict[str, str | bool | None]] = []
    for image in (*menu.images, *menu.aliased):
        record: dict[str, str | bool | None] = {
            "tag": image.tag,
            "kind": image.kind.value,
            "display_name": image.display_name,
            "digest": image.digest,
            "choice": "aliased" if image.shown_as else image.choice,
            "recommended": menu.recommended is image,
        }
        if image.shown_as:
            record["shown_as"] = image.shown_as
        records.append(record)
    return records
