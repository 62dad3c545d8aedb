"""Dropdown filters per kind of tag: number, age, cutoff version, cutoff date, cutoff build.

A site sets them as ``LSSTSpawner.image_dropdown_filters``, a dict by kind::

    {"weekly": {"number": 20, "age": "180d"},
     "release": {"cutoff_version": "27.0.0"},
     "daily": {"cutoff_date": "2026-01-01", "cutoff_build": 19}}

Every filter given applies (after Nublado's ``ImageFilter``): a tag stays in the
dropdown only if it passes all of them. Each filter applies to the tags that
carry what it compares and ignores the others: ``age`` and ``cutoff_date`` to
tags with a date (weeklies, dailies and experimentals built on them),
``cutoff_version`` to releases and candidates (and experimentals built on
them; a candidate precedes its release, so ``27.0.0`` leaves out
``r27_0_0_rc1``), ``cutoff_build`` to tags with an ``_rsp{n}`` build. ``number``
keeps the newest that many dropdown entries of the kind.

Pure: :func:`parse_dropdown_filters` turns the configured value into
:class:`DropdownFilter` values and the problems found, each naming its key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from ..config import MAX_DURATION, parse_duration
from .model import TagKind
from .tags import ParsedTag

__all__ = [
    "FILTER_KEYS",
    "FILTER_KINDS",
    "MAX_FILTER_AGE",
    "DropdownFilter",
    "parse_dropdown_filters",
]

#: The kinds a filter may be given for (aliases are radio choices, never filtered).
FILTER_KINDS: dict[str, TagKind] = {
    "release": TagKind.RELEASE,
    "candidate": TagKind.CANDIDATE,
    "weekly": TagKind.WEEKLY,
    "daily": TagKind.DAILY,
    "experimental": TagKind.EXPERIMENTAL,
    "unknown": TagKind.UNKNOWN,
}
FILTER_KEYS = ("number", "age", "cutoff_version", "cutoff_date", "cutoff_build")
#: The longest age accepted: the longest duration parse_duration takes (it refuses more).
MAX_FILTER_AGE = timedelta(seconds=MAX_DURATION)
_MAX_NUMBER = 1_000_000
_VERSION = re.compile(r"r?(\d{1,9})[._](\d{1,9})[._](\d{1,9})(?:[-_]rc(\d{1,9}))?")


@dataclass(frozen=True)
class DropdownFilter:
    """The filters of one kind; ``None`` means "not filtered by this"."""

    number: int | None = None
    age: timedelta | None = None
    #: ``(major, minor, patch, 1, 0)`` for a release, ``(..., 0, rc)`` for a candidate.
    cutoff_version: tuple[int, int, int, int, int] | None = None
    cutoff_date: date | None = None
    cutoff_build: int | None = None

    def oldest_date(self, now: datetime) -> date | None:
        """The earliest build date kept: the later of ``now - age`` and ``cutoff_date``."""
        dates = [d for d in (self.cutoff_date,) if d is not None]
        if self.age is not None:
            dates.append((now - self.age).date())
        return max(dates) if dates else None

    def keeps(self, item: ParsedTag, oldest: date | None) -> bool:
        """Whether ``item`` passes every filter but ``number``; ``oldest`` is
        :meth:`oldest_date`."""
        build = item.rsp_build
        if self.cutoff_build is not None and build is not None and build < self.cutoff_build:
            return False
        if oldest is not None and item.date is not None and item.date < oldest:
            return False
        release = item.release_key
        return not (
            self.cutoff_version is not None
            and release is not None
            and release < self.cutoff_version
        )


def _number(value: object, key: str, problems: list[tuple[str, str]]) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_NUMBER:
        problems.append((key, f"must be a whole number from 0 to {_MAX_NUMBER}, not {value!r}"))
        return None
    return value


def _age(value: object, key: str, problems: list[tuple[str, str]]) -> timedelta | None:
    try:
        seconds = parse_duration(value)
    except ValueError as error:
        problems.append((key, str(error)))
        return None
    return timedelta(seconds=seconds)


def _version(value: object, key: str, problems: list[tuple[str, str]]) -> tuple[int, ...] | None:
    match = _VERSION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        problems.append((key, f"must be a version such as '27.0.0' or '27.0.0-rc1', not {value!r}"))
        return None
    major, minor, patch = (int(g) for g in match.group(1, 2, 3))
    if match.group(4) is None:
        return (major, minor, patch, 1, 0)
    return (major, minor, patch, 0, int(match.group(4)))


def _date(value: object, key: str, problems: list[tuple[str, str]]) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    problems.append((key, f"must be a date such as '2026-01-31', not {value!r}"))
    return None


def parse_dropdown_filters(
    raw: object,
) -> tuple[dict[TagKind, DropdownFilter], list[tuple[str, str]]]:
    """The filters a configured value describes, and the problems as ``(key path, message)``.

    The key path is ``["weekly"]["age"]`` style, to be appended to the trait's
    name. Filters with problems are left out of the result.
    """
    problems: list[tuple[str, str]] = []
    filters: dict[TagKind, DropdownFilter] = {}
    if not isinstance(raw, Mapping):
        return {}, [("", f"must be a dict by kind, not {type(raw).__name__}")]
    for name, spec in raw.items():
        where = f"[{name!r}]"
        kind = FILTER_KINDS.get(name) if isinstance(name, str) else None
        if kind is None:
            problems.append((where, f"is not a kind; use one of {', '.join(FILTER_KINDS)}"))
            continue
        if not isinstance(spec, Mapping):
            problems.append((where, f"must be a dict of filters, not {type(spec).__name__}"))
            continue
        before = len(problems)
        values: dict[str, object] = {}
        for key, value in spec.items():
            at = f"{where}[{key!r}]"
            if key in ("number", "cutoff_build"):
                values[key] = _number(value, at, problems)
            elif key == "age":
                values[key] = _age(value, at, problems)
            elif key == "cutoff_version":
                values[key] = _version(value, at, problems)
            elif key == "cutoff_date":
                values[key] = _date(value, at, problems)
            else:
                problems.append((at, f"is not a filter; use {', '.join(FILTER_KEYS)}"))
        if len(problems) == before:
            filters[kind] = DropdownFilter(**values)  # type: ignore[arg-type]
    return filters, problems
