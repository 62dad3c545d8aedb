"""Mapping provider group names to POSIX group names, and resolving collisions.

Group names from an identity provider end up in the lab's ``/etc/group``, so a
name with a newline or a ``:`` could add a line or a field. Every provider name
goes through :func:`posix_group_name`; nothing is passed through unchecked.

The mapping, in order:

1. **Refuse** names that are empty, longer than 256 characters, or contain a
   control, format, line- or paragraph-separator, surrogate or private-use
   character (newlines, NUL, bidirectional overrides, ...). These raise
   :class:`UnsafeNameError`; the authenticator rejects the login or drops the
   group, as configured.
2. Unicode NFKD-normalize, drop what is not ASCII (``É`` becomes ``e``), and
   lowercase.
3. Replace every run of characters outside ``[a-z0-9_-]`` with one ``-``, and
   strip ``-`` from both ends.
4. Prefix ``_`` when the result starts with a digit (``18f`` becomes ``_18f``).
5. If step 2 or 3 changed anything but letter case, or the result is longer than
   32 characters, keep at most 23 characters and append ``-`` and the first 8
   hex digits of the SHA-256 of the original name: ``a:b`` becomes
   ``a-b-<hash>``. The suffix keeps lossy names apart from each other and from
   names that were valid as given, identically for every user and every hub.

The result always matches :data:`lsst_spawner.identity.GROUP_NAME_PATTERN`.

Names can still collide (``LSST`` and ``lsst`` from a provider that is case
sensitive; team ``a-b`` of organization ``x`` and organization ``x-a-b``), and
gids can collide (GitHub team ids and organization ids are separate sequences).
:func:`resolve_groups` settles both deterministically, whatever order the
provider returned groups in, and logs every change.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from ..identity import GROUP_NAME_PATTERN, UNSAFE_CATEGORIES, Group

__all__ = [
    "MAX_RAW_NAME_LENGTH",
    "GroupCandidate",
    "UnsafeNameError",
    "name_digest",
    "posix_group_name",
    "resolve_groups",
]

#: Longest provider name accepted for mapping.
MAX_RAW_NAME_LENGTH = 256

_MAX_NAME = 32
_DIGEST_LENGTH = 8
_KEEP = _MAX_NAME - _DIGEST_LENGTH - 1
# The identity's unsafe characters, and for group names also private-use and unassigned ones.
_UNSAFE_CATEGORIES = UNSAFE_CATEGORIES | {"Co", "Cn"}
_DISALLOWED_RUN = re.compile(r"[^a-z0-9_-]+")


class UnsafeNameError(ValueError):
    """A provider name that cannot be made into a safe POSIX name."""


def name_digest(text: str) -> str:
    """Return the first 8 hex digits of the SHA-256 of ``text`` (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_LENGTH]


def posix_group_name(raw: object) -> str:
    """Map a provider's group name to a POSIX group name (see the module docs).

    Raises :class:`UnsafeNameError` for names that are refused outright.
    """
    if not isinstance(raw, str) or not raw:
        raise UnsafeNameError(f"group name {raw!r} is empty or not a string")
    if len(raw) > MAX_RAW_NAME_LENGTH:
        raise UnsafeNameError(
            f"group name {raw[:40]!r}... is {len(raw)} characters long "
            f"(at most {MAX_RAW_NAME_LENGTH} are accepted)"
        )
    bad = sorted(
        {f"U+{ord(ch):04X}" for ch in raw if unicodedata.category(ch) in _UNSAFE_CATEGORIES}
    )
    if bad:
        raise UnsafeNameError(
            f"group name {raw!r} contains control or invisible characters ({', '.join(bad)})"
        )
    lowered = raw.lower()
    ascii_only = (
        unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii").lower()
    )
    base = _DISALLOWED_RUN.sub("-", ascii_only).strip("-")
    lossy = base != lowered
    if base[:1].isdigit():
        base = "_" + base
    if lossy or len(base) > _MAX_NAME:
        base = (base[:_KEEP].rstrip("-") or "_") + "-" + name_digest(raw)
    if not GROUP_NAME_PATTERN.fullmatch(base):  # pragma: no cover - the steps above guarantee it
        raise UnsafeNameError(f"group name {raw!r} mapped to invalid {base!r}")
    return base


@dataclass(frozen=True)
class GroupCandidate:
    """A group as the provider gave it, with its mapped name.

    ``source`` says where it came from (``"primary"``, ``"organization"``,
    ``"team"``, ``"isMemberOf"``); it appears in log messages. ``primary``
    marks the user's primary group, which always wins a collision.
    """

    raw_name: str
    name: str
    gid: int
    source: str
    primary: bool = False

    @property
    def renamed(self) -> bool:
        return self.name != self.raw_name


def resolve_groups(
    candidates: Iterable[GroupCandidate],
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> list[Group]:
    """Return the groups with unique names and unique gids, deterministically.

    Candidates are ranked: the primary group first, then groups whose name
    needed no mapping, then by gid and provider name; the input order does
    not matter. Walking that ranking:

    - an exact repeat (same name and gid) is dropped silently;
    - a gid already taken by another name is dropped, with a warning;
    - a name already taken by another gid is renamed to at most 23 characters
      plus ``-`` and 8 hex digits of the SHA-256 of ``"<provider name>:<gid>"``,
      with a warning; if that is taken too, the group is dropped.
    """
    ranked = sorted(
        candidates,
        key=lambda c: (not c.primary, c.renamed, c.gid, c.raw_name, c.source),
    )
    by_name: dict[str, int] = {}
    by_gid: dict[int, str] = {}
    result: list[Group] = []
    for candidate in ranked:
        name, gid = candidate.name, candidate.gid
        if by_name.get(name) == gid:
            continue
        if gid in by_gid:
            log.warning(
                "Dropping %s group %r: gid %d is already used by group %r",
                candidate.source,
                candidate.raw_name,
                gid,
                by_gid[gid],
            )
            continue
        if name in by_name:
            new_name = name[:_KEEP].rstrip("-") + "-" + name_digest(f"{candidate.raw_name}:{gid}")
            if new_name in by_name:
                log.warning(
                    "Dropping %s group %r (gid %d): its names %r and %r are already taken",
                    candidate.source,
                    candidate.raw_name,
                    gid,
                    name,
                    new_name,
                )
                continue
            log.warning(
                "Renaming %s group %r (gid %d) to %r: name %r is already used by gid %d",
                candidate.source,
                candidate.raw_name,
                gid,
                new_name,
                name,
                by_name[name],
            )
            name = new_name
        by_name[name] = gid
        by_gid[gid] = name
        result.append(Group(name=name, gid=gid))
    return result
