"""The science platform's image tag grammar: kinds, display names and menu order.

A tag is parsed by an ordered grammar (the Rubin convention of SQR-059, with
Nublado's rules since DM-54213, February 2026)::

    release       r{major}_{minor}_{patch}             r23_0_1        Release r23.0.1
    candidate     r{major}_{minor}_{patch}_rc{n}       r23_0_1_rc2    Release Candidate r23.0.1-rc2
    weekly        w_{yyyy}_{ww}                        w_2024_05      Weekly 2024_05
    daily         d_{yyyy}_{mm}_{dd}                   d_2024_02_03   Daily 2024_02_03
    experimental  exp_{rest}                           exp_w_2024_05  Experimental Weekly 2024_05
    alias         recommended, configured aliases      recommended    Recommended
    unknown       anything else                        foo            foo

Release, candidate, weekly and daily tags may carry, in this order, a
``_c{cycle}.{build}`` SAL cycle, an ``_rsp{n}`` platform build and a free
``_{rest}``, all shown in the display name. Aliases and unknown tags may end
in ``_c{cycle}`` (``recommended_c0027``, shown "Recommended (SAL Cycle 0027)").
Any tag may end in an architecture suffix (``-amd64``, ``-arm64``, ...): it is
parsed like the tag without the suffix, shown once at the end of the name,
flagged, and hidden from menus.

Parsing never fails: what matches nothing is ``unknown``. Whether a string is
a syntactically valid Docker tag at all is :func:`lsst_spawner.grammar.is_valid_tag`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache

from ..grammar import is_valid_tag
from .model import TagKind

__all__ = [
    "ARCHITECTURES",
    "KIND_PRIORITY",
    "RECOMMENDED_TAG",
    "ParsedTag",
    "alias_base",
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

# Numbers are bounded so that a hostile tag cannot make int() work hard or fail.
_RELEASE = re.compile(r"r(\d{1,9})_(\d{1,9})_(\d{1,9})(?:_rc(\d{1,9}))?(?=_|$)")
_WEEKLY = re.compile(r"w_(\d{4})_(\d{1,2})(?=_|$)")
_DAILY = re.compile(r"d_(\d{4})_(\d{1,2})_(\d{1,2})(?=_|$)")
_CYCLE = re.compile(r"_c(\d{1,9})\.(\d{1,9})(?=_|$)")
_RSP = re.compile(r"_rsp(\d{1,9})(?=_|$)")
_ARCH = re.compile(r"-([A-Za-z0-9_]+)$")
_DIGITS = re.compile(r"\d{1,9}")

# The numbers that order tags of one kind, newest first once negated: version
# (three numbers), candidate, cycle, cycle build, RSP build; a missing one is
# -1, so a tag carrying a suffix sorts as newer than the same tag without it.
_Numbers = tuple[int, int, int, int, int, int, int]
_NO_NUMBERS: _Numbers = (1, 1, 1, 1, 1, 1, 1)


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
    #: For aliases and unknown tags, the tag without cycle and architecture
    #: (``recommended`` for ``recommended_c0027-amd64``); ``None`` otherwise.
    base: str | None = None
    #: The name without suffixes: ``Weekly 2024_05``, ``Latest Weekly``.
    label: str = ""
    #: The parenthesised parts of the name, in order: ``SAL Cycle 0020, Build 001``.
    details: tuple[str, ...] = ()

    @property
    def hidden(self) -> bool:
        """Architecture-specific tags are kept out of menus."""
        return self.architecture is not None

    @property
    def flat_name(self) -> str:
        """The name without architecture and with details after commas, for use inside
        another name's parentheses: ``Weekly 2024_05, SAL Cycle 0020, Build 001 [x]``."""
        name = ", ".join((self.label, *self.details))
        return f"{name} [{self.extra}]" if self.extra else name

    @property
    def release_key(self) -> tuple[int, int, int, int, int] | None:
        """``(major, minor, patch, 1, 0)`` for a release, ``(..., 0, rc)`` for a candidate
        (a candidate precedes its release), the inner tag's for an experimental one; else
        ``None``. The dropdown's version cutoff compares these."""
        kind = self.inner_kind if self.kind is TagKind.EXPERIMENTAL else self.kind
        if self.version is None or kind not in (TagKind.RELEASE, TagKind.CANDIDATE):
            return None
        if self.candidate is None:
            return (*self.version, 1, 0)
        return (*self.version, 0, self.candidate)

    @property
    def sort_key(self) -> bytes:
        """Menu order: kind, newest first, then the generic image before its variants.

        Within a kind: by version (releases, weeklies, ...) or by base name
        (aliases, unknown tags); then cycle, cycle build and RSP build, newest
        first, a tag with a suffix before the same tag without; then the tag
        without free text before those with it (alphabetically); then the
        generic image before its architecture variants (alphabetically); then by
        tag text, so the order is total and stable.

        The key is bytes, ordered like the tuple of those fields: comparing
        bytes is one ``memcmp``, so sorting a large menu (which holds the GIL
        for the whole sort) is about eight times faster than with a tuple.
        """
        if self.version is None:
            numbers: _Numbers = (
                *_NO_NUMBERS[:4],
                -(-1 if self.cycle is None else self.cycle),
                -(-1 if self.cycle_build is None else self.cycle_build),
                -(-1 if self.rsp_build is None else self.rsp_build),
            )
        else:
            numbers = (
                -self.version[0],
                -self.version[1],
                -self.version[2],
                # A release candidate precedes the release's later builds.
                -(-1 if self.candidate is None else self.candidate),
                -(-1 if self.cycle is None else self.cycle),
                -(-1 if self.cycle_build is None else self.cycle_build),
                -(-1 if self.rsp_build is None else self.rsp_build),
            )
        inner = KIND_PRIORITY[self.inner_kind] if self.inner_kind is not None else 0
        # Signed numbers become order-preserving unsigned ones; strings end in NUL,
        # so a string sorts before its extensions, as in a tuple.
        packed = _KEY_NUMBERS.pack(KIND_PRIORITY[self.kind], inner)
        texts = [_text(self.base or "")]
        tail = [_text(self.extra or ""), _text(self.architecture or ""), _text(self.tag)]
        offsets = _KEY_SEVEN.pack(*(n + _OFFSET for n in numbers))
        return packed + b"".join(texts) + offsets + b"".join(tail)


def _text(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass") + b"\x00"


_KEY_NUMBERS = struct.Struct(">BB")
_KEY_SEVEN = struct.Struct(">7Q")
_OFFSET = 1 << 63


def alias_display_name(tag: str) -> str:
    """The display name of an alias tag: ``latest_weekly`` → ``Latest Weekly``."""
    return " ".join(word.capitalize() for word in tag.split("_") if word) or tag


def _split_cycle(body: str) -> tuple[str, str | None]:
    """``recommended_c0027`` → ``("recommended", "0027")``; no cycle → ``(body, None)``."""
    head, sep, digits = body.rpartition("_c")
    if sep and head and _DIGITS.fullmatch(digits):
        return head, digits
    return body, None


def _split_architecture(tag: str) -> tuple[str, str | None]:
    """``w_2024_05-amd64`` → ``("w_2024_05", "amd64")`` for a known architecture."""
    match = _ARCH.search(tag)
    if match and match.start() > 0 and match.group(1).lower() in ARCHITECTURES:
        return tag[: match.start()], match.group(1)
    return tag, None


def alias_base(tag: str) -> str:
    """The alias a tag is a variant of: ``recommended_c0027-amd64`` → ``recommended``."""
    body, _ = _split_architecture(tag)
    return _split_cycle(body)[0]


def parse_tag(tag: str, aliases: Collection[str] = ()) -> ParsedTag:
    """Parse ``tag`` by the grammar; ``recommended`` and ``aliases`` are of kind alias.

    So are their variants: ``{alias}_c{cycle}``, ``{alias}-{arch}`` and both
    (``recommended_c0027-amd64``), for an alias given with or without a cycle.
    Never raises for a string: anything the grammar does not know is
    ``unknown``, displayed as the tag itself.
    """
    body, architecture = _split_architecture(tag)
    base, cycle = _split_cycle(body)
    if body == RECOMMENDED_TAG or base == RECOMMENDED_TAG or _is_alias(body, base, aliases):
        return _with_architecture(_base_tag(tag, TagKind.ALIAS, base, cycle), architecture)
    return _parse_cached(tag)


def _is_alias(body: str, base: str, aliases: Collection[str]) -> bool:
    if not aliases:
        return False
    if body in aliases or base in aliases:
        return True
    frozen = aliases if isinstance(aliases, frozenset) else frozenset(aliases)
    return base in _alias_bases(frozen)


@lru_cache(maxsize=64)
def _alias_bases(aliases: frozenset[str]) -> frozenset[str]:
    return frozenset(alias_base(alias) for alias in aliases)


@lru_cache(maxsize=32768)
def _parse_cached(tag: str) -> ParsedTag:
    # A background refresh parses the same few thousand tags every few
    # minutes; caching makes the second and later refreshes cheap.
    body, architecture = _split_architecture(tag)
    return _with_architecture(_parse_body(body, tag, allow_experimental=True), architecture)


def _with_architecture(parsed: ParsedTag, architecture: str | None) -> ParsedTag:
    if architecture is None:
        return parsed
    return replace(
        parsed, display_name=f"{parsed.display_name} [{architecture}]", architecture=architecture
    )


def _name(label: str, details: tuple[str, ...], extra: str | None) -> str:
    name = label + "".join(f" ({detail})" for detail in details)
    return f"{name} [{extra}]" if extra else name


def _base_tag(tag: str, kind: TagKind, base: str, cycle: str | None) -> ParsedTag:
    """An alias or unknown tag: its base name and optional ``_c{cycle}``."""
    label = alias_display_name(base) if kind is TagKind.ALIAS else base
    details = (f"SAL Cycle {cycle}",) if cycle is not None else ()
    return ParsedTag(
        tag=tag,
        kind=kind,
        display_name=_name(label, details, None),
        cycle=int(cycle) if cycle is not None else None,
        base=base,
        label=label,
        details=details,
    )


def _parse_body(body: str, tag: str, *, allow_experimental: bool) -> ParsedTag:
    """Parse ``body`` (the tag without architecture suffix) into a tag named ``tag``."""
    if allow_experimental and body.startswith("exp_") and len(body) > len("exp_"):
        # Experimental tags are usually exp_<another tag>: show that tag's name.
        rest = body[len("exp_") :]
        inner = _parse_body(rest, rest, allow_experimental=False)
        label = f"Experimental {inner.label}"
        # The inner tag's numbers, date and suffixes, under this tag's name.
        return replace(
            inner,
            tag=tag,
            kind=TagKind.EXPERIMENTAL,
            display_name=_name(label, inner.details, inner.extra),
            label=label,
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
            label = f"Release Candidate r{major}.{minor}.{patch}-rc{candidate}"
        else:
            kind = TagKind.RELEASE
            label = f"Release r{major}.{minor}.{patch}"
    elif match := _WEEKLY.match(body):
        year, week = int(match.group(1)), int(match.group(2))
        try:
            built = date.fromisocalendar(year, week, 4)
        except ValueError:
            return _unknown(body, tag)
        kind = TagKind.WEEKLY
        version = (year, week, 0)
        label = f"Weekly {year:04d}_{week:02d}"
    elif match := _DAILY.match(body):
        year, month, day = (int(g) for g in match.group(1, 2, 3))
        try:
            built = date(year, month, day)
        except ValueError:
            return _unknown(body, tag)
        kind = TagKind.DAILY
        version = (year, month, day)
        label = f"Daily {year:04d}_{month:02d}_{day:02d}"
    else:
        return _unknown(body, tag)

    # The suffixes, in the order DM-54213 reads them: cycle, then RSP build.
    position = match.end()
    details: list[str] = []
    rsp_build = cycle = cycle_build = None
    if suffix := _CYCLE.match(body, position):
        cycle, cycle_build = int(suffix.group(1)), int(suffix.group(2))
        details.append(f"SAL Cycle {suffix.group(1)}, Build {suffix.group(2)}")
        position = suffix.end()
    if suffix := _RSP.match(body, position):
        rsp_build = int(suffix.group(1))
        details.append(f"RSP Build {rsp_build}")
        position = suffix.end()
    extra = None
    if position < len(body):
        # The lookaheads guarantee an underscore here.
        extra = body[position + 1 :]
        if not extra:
            return _unknown(body, tag)
    return ParsedTag(
        tag=tag,
        kind=kind,
        display_name=_name(label, tuple(details), extra),
        version=version,
        candidate=candidate,
        rsp_build=rsp_build,
        cycle=cycle,
        cycle_build=cycle_build,
        extra=extra,
        date=built,
        label=label,
        details=tuple(details),
    )


def _unknown(body: str, tag: str) -> ParsedTag:
    """An unknown tag: shown as itself (without architecture), keeping a ``_c{cycle}``."""
    base, cycle = _split_cycle(body)
    return _base_tag(tag, TagKind.UNKNOWN, base, cycle)
