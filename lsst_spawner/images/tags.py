"""The science platform's image tag grammar: kinds, display names and menu order.

A tag is parsed by an ordered grammar (after the Rubin convention of SQR-059)::

    release       r{major}_{minor}_{patch}             r23_0_1        Release r23.0.1
    candidate     r{major}_{minor}_{patch}_rc{n}       r23_0_1_rc2    Release Candidate r23.0.1-rc2
    weekly        w_{yyyy}_{ww}                        w_2024_05      Weekly 2024_05
    daily         d_{yyyy}_{mm}_{dd}                   d_2024_02_03   Daily 2024_02_03
    experimental  exp_{rest}                           exp_w_2024_05  Experimental Weekly 2024_05
    alias         recommended, configured aliases      recommended    Recommended
    unknown       anything else                        foo            foo

Release, candidate, weekly and daily tags may carry, in this order, an
``_rsp{n}`` platform build, a ``_c{cycle}.{build}`` SAL cycle and a free
``_{rest}``, all shown in the display name. Any tag may end in an
architecture suffix (``-amd64``, ``-arm64``, ...): it is parsed like the tag
without the suffix, flagged, and hidden from menus.

Parsing never fails: what matches nothing is ``unknown``. Whether a string is
a syntactically valid Docker tag at all is a separate question,
:func:`is_valid_tag`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache

from .model import TagKind

__all__ = [
    "ARCHITECTURES",
    "KIND_PRIORITY",
    "RECOMMENDED_TAG",
    "ParsedTag",
    "alias_display_name",
    "is_valid_tag",
    "parse_tag",
]

#: The alias every site has; more are configured.
RECOMMENDED_TAG = "recommended"

#: Menu order of the kinds: lower comes first.
KIND_PRIORITY: dict[TagKind, int] = {
    TagKind.ALIAS: 0,
    TagKind.RELEASE: 1,
    TagKind.WEEKLY: 2,
    TagKind.DAILY: 3,
    TagKind.CANDIDATE: 4,
    TagKind.EXPERIMENTAL: 5,
    TagKind.UNKNOWN: 6,
}

#: Architecture suffixes recognised after a ``-`` at the end of a tag (Go's
#: GOARCH names plus the common aliases and variants of multi-arch builds).
ARCHITECTURES = frozenset(
    {
        "amd64",
        "x86_64",
        "arm64",
        "aarch64",
        "arm64v8",
        "arm",
        "armv6",
        "armv7",
        "arm32v6",
        "arm32v7",
        "386",
        "i386",
        "ppc64le",
        "s390x",
        "riscv64",
        "mips64le",
        "loong64",
    }
)

# Docker's reference grammar for a tag.
_VALID_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

# Numbers are bounded so that a hostile tag cannot make int() work hard or fail.
_RELEASE = re.compile(r"r(\d{1,9})_(\d{1,9})_(\d{1,9})(?:_rc(\d{1,9}))?(?=_|$)")
_WEEKLY = re.compile(r"w_(\d{4})_(\d{1,2})(?=_|$)")
_DAILY = re.compile(r"d_(\d{4})_(\d{1,2})_(\d{1,2})(?=_|$)")
_RSP = re.compile(r"_rsp(\d{1,9})(?=_|$)")
_CYCLE = re.compile(r"_c(\d{1,9})\.(\d{1,9})(?=_|$)")
_ARCH = re.compile(r"-([A-Za-z0-9_]+)$")

# Five numbers describe the version within a kind; missing ones are -1, so a
# tag with an ``_rsp`` build sorts as newer than the same tag without one.
_Numbers = tuple[int, int, int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class ParsedTag:
    """A tag parsed by the grammar, with everything the menu needs to know."""

    tag: str
    kind: TagKind
    display_name: str
    #: ``(major, minor, patch)`` for releases and candidates, ``(year, week, 0)``
    #: for weeklies, ``(year, month, day)`` for dailies; the parsed inner tag's
    #: for experimentals; ``None`` otherwise.
    version: tuple[int, int, int] | None = None
    #: The ``rc`` number of a release candidate.
    candidate: int | None = None
    rsp_build: int | None = None
    cycle: int | None = None
    cycle_build: int | None = None
    #: The free ``_{rest}`` after the recognised suffixes.
    extra: str | None = None
    #: The architecture suffix without its dash (``amd64``); such tags are hidden.
    architecture: str | None = None
    #: Build date when the tag tells it: the day of a daily, the Thursday of a
    #: weekly's ISO week (the day weeklies are built).
    date: date | None = None
    #: For an experimental tag, the kind of what follows ``exp_``.
    inner_kind: TagKind | None = None

    @property
    def hidden(self) -> bool:
        """Architecture-specific tags are kept out of menus."""
        return self.architecture is not None

    @property
    def sort_key(self) -> tuple[int, int, _Numbers, str, str, str]:
        """Menu order: by kind priority, then newest first, then by tag text."""
        if self.version is None:
            numbers: _Numbers = (1, 1, 1, 1, 1, 1, 1)
        else:
            numbers = tuple(  # type: ignore[assignment]
                -n
                for n in (
                    *self.version,
                    # A release candidate precedes the release's later builds.
                    -1 if self.candidate is None else self.candidate,
                    -1 if self.rsp_build is None else self.rsp_build,
                    -1 if self.cycle is None else self.cycle,
                    -1 if self.cycle_build is None else self.cycle_build,
                )
            )
        inner = KIND_PRIORITY[self.inner_kind] if self.inner_kind is not None else 0
        # Generic images before the architecture-specific ones of the same build.
        return (
            KIND_PRIORITY[self.kind],
            inner,
            numbers,
            self.extra or "",
            self.architecture or "",
            self.tag,
        )


def is_valid_tag(tag: object) -> bool:
    """Whether ``tag`` is a string with Docker tag syntax: ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``."""
    return isinstance(tag, str) and _VALID_TAG.fullmatch(tag) is not None


def alias_display_name(tag: str) -> str:
    """The display name of an alias tag: ``latest_weekly`` → ``Latest Weekly``."""
    return " ".join(word.capitalize() for word in tag.split("_") if word) or tag


def parse_tag(tag: str, aliases: Collection[str] = ()) -> ParsedTag:
    """Parse ``tag`` by the grammar; ``recommended`` and ``aliases`` are of kind alias.

    Never raises for a string: anything the grammar does not know is
    ``unknown``, displayed as the tag itself.
    """
    if tag == RECOMMENDED_TAG or tag in aliases:
        return ParsedTag(tag=tag, kind=TagKind.ALIAS, display_name=alias_display_name(tag))
    return _parse_cached(tag)


@lru_cache(maxsize=32768)
def _parse_cached(tag: str) -> ParsedTag:
    # A background refresh parses the same few thousand tags every few
    # minutes; caching makes the second and later refreshes cheap.
    architecture = None
    body = tag
    match = _ARCH.search(tag)
    if match and match.start() > 0 and match.group(1).lower() in ARCHITECTURES:
        architecture = match.group(1)
        body = tag[: match.start()]
    parsed = _parse_body(body, tag, allow_experimental=True)
    if architecture is None:
        return parsed
    return replace(
        parsed, display_name=f"{parsed.display_name} [{architecture}]", architecture=architecture
    )


def _parse_body(body: str, tag: str, *, allow_experimental: bool) -> ParsedTag:
    """Parse ``body`` (the tag without architecture suffix) into a tag named ``tag``."""
    if allow_experimental and body.startswith("exp_") and len(body) > len("exp_"):
        # Experimental tags are usually exp_<another tag>: show that tag's name.
        rest = body[len("exp_") :]
        inner = _parse_body(rest, rest, allow_experimental=False)
        inner_name = inner.display_name if inner.kind is not TagKind.UNKNOWN else inner.tag
        # The inner tag's numbers and date, under this tag's name.
        return replace(
            inner,
            tag=tag,
            kind=TagKind.EXPERIMENTAL,
            display_name=f"Experimental {inner_name}",
            inner_kind=inner.kind,
        )

    kind: TagKind
    candidate = None
    built: date | None = None
    if match := _RELEASE.match(body):
        major, minor, patch = (int(g) for g in match.group(1, 2, 3))
        version = (major, minor, patch)
        if match.group(4) is not None:
            kind = TagKind.CANDIDATE
            candidate = int(match.group(4))
            name = f"Release Candidate r{major}.{minor}.{patch}-rc{candidate}"
        else:
            kind = TagKind.RELEASE
            name = f"Release r{major}.{minor}.{patch}"
    elif match := _WEEKLY.match(body):
        year, week = int(match.group(1)), int(match.group(2))
        try:
            built = date.fromisocalendar(year, week, 4)
        except ValueError:
            return _unknown(tag)
        kind = TagKind.WEEKLY
        version = (year, week, 0)
        name = f"Weekly {year:04d}_{week:02d}"
    elif match := _DAILY.match(body):
        year, month, day = (int(g) for g in match.group(1, 2, 3))
        try:
            built = date(year, month, day)
        except ValueError:
            return _unknown(tag)
        kind = TagKind.DAILY
        version = (year, month, day)
        name = f"Daily {year:04d}_{month:02d}_{day:02d}"
    else:
        return _unknown(tag)

    position = match.end()
    rsp_build = cycle = cycle_build = None
    if suffix := _RSP.match(body, position):
        rsp_build = int(suffix.group(1))
        name += f" (RSP Build {rsp_build})"
        position = suffix.end()
    if suffix := _CYCLE.match(body, position):
        cycle, cycle_build = int(suffix.group(1)), int(suffix.group(2))
        name += f" (SAL Cycle {suffix.group(1)}, Build {suffix.group(2)})"
        position = suffix.end()
    extra = None
    if position < len(body):
        # The lookaheads guarantee an underscore here.
        extra = body[position + 1 :]
        if not extra:
            return _unknown(tag)
        name += f" [{extra}]"
    return ParsedTag(
        tag=tag,
        kind=kind,
        display_name=name,
        version=version,
        candidate=candidate,
        rsp_build=rsp_build,
        cycle=cycle,
        cycle_build=cycle_build,
        extra=extra,
        date=built,
    )


def _unknown(tag: str) -> ParsedTag:
    return ParsedTag(tag=tag, kind=TagKind.UNKNOWN, display_name=tag)
