"""Readable differences between two menu documents, one line per changed field.

Images are matched by tag and profiles by name, so reordering is not reported
as every entry changing.
"""

from __future__ import annotations

from typing import Any

from .model import MenuDocument

__all__ = ["diff_menus"]

_KEYED = {"images": "tag", "profiles": "name"}


def _fields(prefix: str, old: dict[str, Any], new: dict[str, Any], lines: list[str]) -> None:
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before != after:
            lines.append(f"~ {prefix}.{key}: {before!r} -> {after!r}")


def diff_menus(old: MenuDocument, new: MenuDocument) -> list[str]:
    """What changed from ``old`` to ``new``: ``+`` added, ``-`` removed, ``~`` changed."""
    before, after = old.to_json_data(), new.to_json_data()
    lines: list[str] = []
    for key in sorted(set(before) | set(after)):
        if key in _KEYED:
            continue
        if isinstance(before.get(key), dict) and isinstance(after.get(key), dict):
            _fields(key, before[key], after[key], lines)
        elif before.get(key) != after.get(key):
            lines.append(f"~ {key}: {before.get(key)!r} -> {after.get(key)!r}")
    for kind, name in _KEYED.items():
        old_entries = {entry[name]: entry for entry in before[kind]}
        new_entries = {entry[name]: entry for entry in after[kind]}
        for entry_name in old_entries.keys() - new_entries.keys():
            lines.append(f"- {kind}[{entry_name}]")
        for entry_name in new_entries.keys() - old_entries.keys():
            lines.append(f"+ {kind}[{entry_name}]")
        for entry_name in old_entries.keys() & new_entries.keys():
            _fields(
                f"{kind}[{entry_name}]", old_entries[entry_name], new_entries[entry_name], lines
            )
        if [e for e in old_entries if e in new_entries] != [
            e for e in new_entries if e in old_entries
        ]:
            lines.append(f"~ {kind}: order changed")
    return sorted(lines, key=lambda line: line[2:])
