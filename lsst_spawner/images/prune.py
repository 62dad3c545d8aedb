"""The image pruner's plan: which registry tags a retention policy deletes, and why.

Pure: :func:`plan_prune` takes the tags, their digests and the policy and
returns one :class:`PruneDecision` per tag; ``lsst-spawner prune-images`` does
the I/O (list, resolve, delete) with the same registry client as the menu.

A policy file (JSON, or YAML when PyYAML is installed) keeps tags per kind::

    {"keep": {"weekly": {"number": 10, "age": "180d"},
              "daily": {"number": 14},
              "experimental": {"age": "30d"}},
     "protect": ["w_2024_10"]}

A tag of a kind listed under ``keep`` is deleted only when no rule keeps it:
not among the newest ``number`` of its kind, and (for tags with a date) older
than ``age``. Kinds not listed are never deleted. Never deleted either, and
neither is anything sharing their digest (a registry deletes a manifest, so
every tag pointing at it goes at once): aliases, the recommended tag, pinned
and ``protect`` tags, and images running labs use (``in_use`` digests).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..grammar import is_valid_digest, is_valid_tag
from .filters import FILTER_KINDS
from .model import TagKind
from .tags import parse_tag

__all__ = ["PruneDecision", "PrunePolicy", "RetentionRule", "load_prune_policy", "plan_prune"]


@dataclass(frozen=True)
class RetentionRule:
    """Keep the newest ``number`` tags of a kind, and those younger than ``age``."""

    number: int | None = None
    age: timedelta | None = None


@dataclass(frozen=True)
class PrunePolicy:
    keep: Mapping[TagKind, RetentionRule]
    protect: tuple[str, ...] = ()


@dataclass(frozen=True)
class PruneDecision:
    tag: str
    digest: str | None
    delete: bool
    reason: str


class PrunePolicyError(ValueError):
    """A policy file that cannot be used; the message names the key."""


def _rule(kind: str, raw: object) -> RetentionRule:
    if not isinstance(raw, Mapping):
        raise PrunePolicyError(f"keep[{kind!r}] must be an object with number and/or age")
    unknown = sorted(set(raw) - {"number", "age"})
    if unknown:
        raise PrunePolicyError(f"keep[{kind!r}][{unknown[0]!r}] is not a rule; use number, age")
    number = raw.get("number")
    if number is not None and (
        isinstance(number, bool) or not isinstance(number, int) or number < 0
    ):
        raise PrunePolicyError(f"keep[{kind!r}]['number'] must be a whole number, not {number!r}")
    age = None
    if "age" in raw:
        from ..config import parse_duration

        try:
            seconds = parse_duration(raw["age"])
        except ValueError as error:
            raise PrunePolicyError(f"keep[{kind!r}]['age']: {error}") from None
        age = timedelta(seconds=seconds)
    if number is None and age is None:
        raise PrunePolicyError(f"keep[{kind!r}] needs number or age (else nothing is kept)")
    return RetentionRule(number=number, age=age)


def parse_prune_policy(data: object) -> PrunePolicy:
    """Build a :class:`PrunePolicy` from a decoded policy file."""
    if not isinstance(data, Mapping):
        raise PrunePolicyError("the policy must be an object with 'keep' (and 'protect')")
    unknown = sorted(set(data) - {"keep", "protect"})
    if unknown:
        raise PrunePolicyError(f"{unknown[0]!r} is not a policy key; use keep, protect")
    keep_raw = data.get("keep")
    if not isinstance(keep_raw, Mapping) or not keep_raw:
        raise PrunePolicyError("'keep' must be an object of rules by kind")
    keep: dict[TagKind, RetentionRule] = {}
    for name, raw in keep_raw.items():
        kind = FILTER_KINDS.get(name) if isinstance(name, str) else None
        if kind is None:
            raise PrunePolicyError(f"keep[{name!r}] is not a kind; use {', '.join(FILTER_KINDS)}")
        keep[kind] = _rule(name, raw)
    protect = data.get("protect", [])
    if not isinstance(protect, list) or not all(is_valid_tag(t) for t in protect):
        raise PrunePolicyError("'protect' must be a list of tags")
    return PrunePolicy(keep=keep, protect=tuple(protect))


def load_prune_policy(path: str | Path) -> PrunePolicy:
    """Read a policy file (JSON; YAML if the name ends in .yaml/.yml and PyYAML is there)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise PrunePolicyError(f"cannot read policy file {str(file)!r}: {error.strerror}") from None
    try:
        if file.suffix in (".yaml", ".yml"):
            import yaml

            data: Any = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except (ValueError, ImportError) as error:
        raise PrunePolicyError(f"policy file {str(file)!r} cannot be read: {error}") from None
    except Exception as error:  # yaml.YAMLError
        raise PrunePolicyError(f"policy file {str(file)!r} is not valid YAML: {error}") from None
    return parse_prune_policy(data)


def plan_prune(
    tags: Iterable[str],
    digests: Mapping[str, str],
    policy: PrunePolicy,
    *,
    aliases: Iterable[str] = (),
    protected: Iterable[str] = (),
    in_use: Iterable[str] = (),
    now: datetime,
) -> list[PruneDecision]:
    """One decision per distinct valid tag, in menu order: delete or keep, and why.

    ``aliases`` are the site's alias tags (with the recommended tag),
    ``protected`` the recommended and pinned tags, ``in_use`` the digests of
    images running labs use. A tag to be deleted must have a known digest (the
    registry deletes by digest); one without is kept, and says so.
    """
    alias_set = frozenset(aliases)
    parsed = {t: parse_tag(t, alias_set) for t in dict.fromkeys(tags) if is_valid_tag(t)}
    ordered = sorted(parsed.values(), key=lambda item: item.sort_key)
    known = {t: d for t, d in digests.items() if t in parsed and is_valid_digest(d)}
    protect_tags = {*protected, *policy.protect}
    guarded: dict[str, str] = {}  # digest -> why it is kept
    for item in ordered:
        digest = known.get(item.tag)
        if digest is None:
            continue
        if item.kind is TagKind.ALIAS:
            guarded.setdefault(digest, f"shares its digest with alias {item.tag}")
        elif item.tag in protect_tags:
            guarded.setdefault(digest, f"shares its digest with protected tag {item.tag}")
    for digest in in_use:
        guarded.setdefault(digest, "a running lab uses this image")

    decisions: list[PruneDecision] = []
    rank: dict[TagKind, int] = {}
    for item in ordered:
        digest = known.get(item.tag)
        rule = policy.keep.get(item.kind)
        if item.hidden:
            position = None
        else:
            position = rank.get(item.kind, 0)
            rank[item.kind] = position + 1

        def keep(reason: str, item_digest: str | None = digest, tag: str = item.tag) -> None:
            decisions.append(PruneDecision(tag, item_digest, False, reason))

        if item.kind is TagKind.ALIAS:
            keep("an alias")
        elif item.tag in protect_tags:
            keep("protected (recommended, pinned or in the policy's protect list)")
        elif rule is None:
            keep(f"no retention rule for {item.kind.value} tags")
        elif rule.number is not None and position is not None and position < rule.number:
            keep(f"among the newest {rule.number} {item.kind.value} tags")
        elif rule.age is not None and (item.date is None or item.date >= (now - rule.age).date()):
            keep(
                f"younger than {rule.age.days} days"
                if item.date is not None
                else "has no date to compare with the age rule"
            )
        elif digest is None:
            keep("its digest is not known, so it cannot be deleted safely")
        elif digest in guarded:
            keep(guarded[digest])
        else:
            why = []
            if rule.number is not None:
                why.append(f"not among the newest {rule.number} {item.kind.value} tags")
            if rule.age is not None:
                why.append(f"older than {rule.age.days} days")
            decisions.append(PruneDecision(item.tag, digest, True, " and ".join(why)))
    return decisions
