"""The edit form: a menu document as named fields and back, with problems placed by field.

Field names are the document's paths (``profiles[2].cpu_limit``), so a
validation problem lands next to its input. Each list gets one blank row for
adding an entry and a delete box per row; problems about an entry are moved
from its index in the saved document back to its row in the form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..menu.model import ImagePolicy, MenuDocument
from ..menu.validate import MenuProblem

__all__ = [
    "IMAGE_FIELDS",
    "POLICY_FIELDS",
    "PROFILE_FIELDS",
    "FormRows",
    "form_to_data",
    "problems_by_field",
    "rows",
    "values_from_form",
]

#: The text fields of each entry, in form order; ``groups`` and tag lists are comma lists.
PROFILE_FIELDS = (
    "name",
    "display_name",
    "description",
    "cpu_limit",
    "cpu_guarantee",
    "memory_limit",
    "memory_guarantee",
    "node_group",
    "groups",
)
IMAGE_FIELDS = ("tag", "display_name", "description", "state", "redirect_to", "groups")
POLICY_FIELDS = tuple(ImagePolicy.model_fields)
_LISTS = {"groups", "alias_tags", "pinned_tags"}
_OPTIONAL = {"node_group", "redirect_to"}
#: Fields shown as a select that always has a value: they do not make a row non-blank.
_SELECTS = {"state"}
_KEYS = {"profiles": PROFILE_FIELDS, "images": IMAGE_FIELDS}


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


@dataclass
class FormRows:
    """The values to show: one dict of field texts per row, and the default row per kind."""

    policy: dict[str, str]
    entries: dict[str, list[dict[str, str]]]
    defaults: dict[str, int | None] = field(default_factory=dict)


def rows(document: MenuDocument) -> FormRows:
    """The form's rows for ``document``, plus one blank row per list."""
    data = document.to_json_data()
    entries: dict[str, list[dict[str, str]]] = {}
    defaults: dict[str, int | None] = {}
    for kind, names in _KEYS.items():
        entries[kind] = [{n: _text(e.get(n)) for n in names} for e in data[kind]]
        entries[kind].append({n: "" for n in names})
        defaults[kind] = next((i for i, e in enumerate(data[kind]) if e["default"]), None)
    policy = {n: _text(v) for n, v in data["image_policy"].items()}
    return FormRows(policy, entries, defaults)


def values_from_form(form: Mapping[str, str]) -> FormRows:
    """The rows as the admin typed them, to show again with the problems."""
    entries: dict[str, list[dict[str, str]]] = {}
    defaults: dict[str, int | None] = {}
    for kind, names in _KEYS.items():
        count = int(form.get(f"{kind}.rows", "0") or 0)
        entries[kind] = [
            {n: form.get(f"{kind}[{row}].{n}", "") for n in names} for row in range(count)
        ]
        chosen = form.get(f"{kind}.default", "")
        defaults[kind] = int(chosen) if chosen.isdigit() else None
    policy = {n: form.get(f"image_policy.{n}", "") for n in POLICY_FIELDS}
    return FormRows(policy, entries, defaults)


def _value(name: str, text: str) -> Any:
    text = text.strip()
    if name in _LISTS:
        return [part.strip() for part in text.split(",") if part.strip()]
    if name in _OPTIONAL and not text:
        return None
    return text


def form_to_data(form: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The document data the form describes, and for each list the form row of each entry.

    A row is left out when its delete box is ticked or all its text fields are empty
    (the blank row left blank; its state select always has a value).
    """
    typed = values_from_form(form)
    data: dict[str, Any] = {
        "image_policy": {n: _value(n, t) for n, t in typed.policy.items() if t.strip() != ""}
    }
    row_of: dict[str, list[int]] = {}
    for kind, names in _KEYS.items():
        data[kind], row_of[kind] = [], []
        for row, texts in enumerate(typed.entries[kind]):
            if form.get(f"{kind}[{row}].delete"):
                continue
            if not any(texts[n].strip() for n in names if n not in _SELECTS):
                continue
            entry = {n: _value(n, texts[n]) for n in names}
            if entry.get("state") == "":
                entry.pop("state")
            entry["default"] = typed.defaults[kind] == row
            data[kind].append(entry)
            row_of[kind].append(row)
    return data, row_of


def problems_by_field(
    problems: Sequence[MenuProblem], row_of: Mapping[str, list[int]]
) -> dict[str, list[str]]:
    """Problems keyed by form field name: ``profiles[k]...`` becomes the entry's form row."""
    placed: dict[str, list[str]] = {}
    for problem in problems:
        name = problem.field
        for kind, rows_ in row_of.items():
            prefix = f"{kind}["
            if name.startswith(prefix) and "]" in name:
                index, rest = name[len(prefix) :].split("]", 1)
                if index.isdigit() and int(index) < len(rows_):
                    name = f"{kind}[{rows_[int(index)]}]{rest}"
        if name.endswith("].default"):  # shown at the row's default radio
            name = name.rsplit(".", 1)[0] + ".default"
        placed.setdefault(name, []).append(problem.message)
    return placed
