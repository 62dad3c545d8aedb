"""Validation of a menu document on save: the schema, then the rules across fields.

Every problem names the field it is about (``profiles[2].cpu_limit``), so an
editor can show it next to that field. A document with any problem is not
saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..lab.sizes import parse_cpu, parse_memory
from .model import ImageState, MenuDocument, NodeGroup

__all__ = [
    "MenuInvalidError",
    "MenuProblem",
    "check_menu",
    "node_groups_by_name",
    "parse_menu",
    "validate_menu",
    "validation_problems",
]


@dataclass(frozen=True)
class MenuProblem:
    """One reason a document cannot be saved: the field's path and what is wrong."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class MenuInvalidError(ValueError):
    """A document failed validation; ``problems`` lists every reason."""

    def __init__(self, problems: list[MenuProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _path(location: Iterable[int | str]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def parse_menu(data: Any) -> tuple[MenuDocument | None, list[MenuProblem]]:
    """Check ``data`` against the document schema; the document, or the problems found."""
    if not isinstance(data, Mapping):
        return None, [MenuProblem("", f"a menu must be a mapping, not {type(data).__name__}")]
    try:
        return MenuDocument.model_validate(dict(data)), []
    except ValidationError as error:
        return None, validation_problems(error)


def validation_problems(error: ValidationError) -> list[MenuProblem]:
    """Pydantic's errors as problems named by field path (``profiles[1].cpu_limit``)."""
    return [
        MenuProblem(_path(item["loc"]), str(item["msg"]).removeprefix("Value error, "))
        for item in error.errors()
    ]


def node_groups_by_name(groups: Iterable[NodeGroup]) -> dict[str, NodeGroup]:
    """Node groups keyed by name; a repeated name is a configuration error."""
    by_name: dict[str, NodeGroup] = {}
    for group in groups:
        if group.name in by_name:
            raise ValueError(f"node group {group.name!r} is defined twice")
        by_name[group.name] = group
    return by_name


def _check_defaults(
    kind: str, entries: list[tuple[int, bool]], problems: list[MenuProblem]
) -> None:
    defaults = [index for index, is_default in entries if is_default]
    if not defaults:
        problems.append(
            MenuProblem(kind, f"exactly one of the {kind} must be the default; none is")
        )
    for index in defaults[1:]:
        problems.append(
            MenuProblem(
                f"{kind}[{index}].default",
                f"{kind}[{defaults[0]}] is already the default; exactly one may be",
            )
        )


def _check_images(document: MenuDocument, problems: list[MenuProblem]) -> None:
    by_tag: dict[str, int] = {}
    for index, image in enumerate(document.images):
        if image.tag in by_tag:
            problems.append(
                MenuProblem(
                    f"images[{index}].tag",
                    f"{image.tag!r} is already images[{by_tag[image.tag]}]; tags must be unique",
                )
            )
        else:
            by_tag[image.tag] = index
    _check_defaults(
        "images", [(i, image.default) for i, image in enumerate(document.images)], problems
    )
    for index, image in enumerate(document.images):
        here = f"images[{index}]"
        if image.default and image.state is not ImageState.SHOWN:
            problems.append(
                MenuProblem(
                    f"{here}.state", f"the default image must be shown, not {image.state.value}"
                )
            )
        if image.default and image.groups:
            problems.append(
                MenuProblem(f"{here}.groups", "the default image must be visible to everyone")
            )
        if image.state is ImageState.DEPRECATED:
            target = image.redirect_to
            if target is None:
                problems.append(
                    MenuProblem(f"{here}.redirect_to", "a deprecated image needs a redirect target")
                )
            elif target == image.tag:
                problems.append(MenuProblem(f"{here}.redirect_to", "cannot redirect to itself"))
            elif target not in by_tag:
                problems.append(
                    MenuProblem(f"{here}.redirect_to", f"{target!r} is not one of the images")
                )
            elif document.images[by_tag[target]].state is not ImageState.SHOWN:
                problems.append(
                    MenuProblem(
                        f"{here}.redirect_to",
                        f"{target!r} is {document.images[by_tag[target]].state.value}; "
                        "a redirect target must be shown",
                    )
                )
        elif image.redirect_to is not None:
            problems.append(
                MenuProblem(f"{here}.redirect_to", "only a deprecated image has a redirect target")
            )


def _check_profiles(
    document: MenuDocument, node_groups: Mapping[str, NodeGroup], problems: list[MenuProblem]
) -> None:
    if not document.profiles:
        problems.append(MenuProblem("profiles", "at least one profile is required"))
        return
    names: dict[str, int] = {}
    for index, profile in enumerate(document.profiles):
        here = f"profiles[{index}]"
        if profile.name in names:
            problems.append(
                MenuProblem(
                    f"{here}.name",
                    f"{profile.name!r} is already profiles[{names[profile.name]}]; "
                    "names must be unique",
                )
            )
        else:
            names[profile.name] = index
        if profile.cpu_guarantee_cores > profile.cpu_limit_cores:
            problems.append(
                MenuProblem(
                    f"{here}.cpu_guarantee",
                    f"{profile.cpu_guarantee} is more than the limit {profile.cpu_limit}",
                )
            )
        if profile.memory_guarantee_bytes > profile.memory_limit_bytes:
            problems.append(
                MenuProblem(
                    f"{here}.memory_guarantee",
                    f"{profile.memory_guarantee} is more than the limit {profile.memory_limit}",
                )
            )
        if profile.default and profile.groups:
            problems.append(
                MenuProblem(f"{here}.groups", "the default profile must be visible to everyone")
            )
        if profile.node_group is None:
            continue
        group = node_groups.get(profile.node_group)
        if group is None:
            known = ", ".join(sorted(node_groups)) or "none are configured"
            problems.append(
                MenuProblem(
                    f"{here}.node_group",
                    f"{profile.node_group!r} is not a configured node group ({known})",
                )
            )
            continue
        if group.max_cpu is not None and profile.cpu_limit_cores > parse_cpu(group.max_cpu):
            problems.append(
                MenuProblem(
                    f"{here}.cpu_limit",
                    f"{profile.cpu_limit} is more than node group {group.name!r} allows "
                    f"({group.max_cpu})",
                )
            )
        if group.max_memory is not None and profile.memory_limit_bytes > parse_memory(
            group.max_memory
        ):
            problems.append(
                MenuProblem(
                    f"{here}.memory_limit",
                    f"{profile.memory_limit} is more than node group {group.name!r} allows "
                    f"({group.max_memory})",
                )
            )
    _check_defaults("profiles", [(i, p.default) for i, p in enumerate(document.profiles)], problems)


def validate_menu(
    document: MenuDocument, node_groups: Mapping[str, NodeGroup]
) -> list[MenuProblem]:
    """The rules across fields: unique names, one default per kind, redirects, bounds."""
    problems: list[MenuProblem] = []
    _check_images(document, problems)
    _check_profiles(document, node_groups, problems)
    return problems


def check_menu(data: Any, node_groups: Mapping[str, NodeGroup]) -> MenuDocument:
    """Parse and validate ``data`` as a save does; raises :class:`MenuInvalidError`."""
    document, problems = parse_menu(data)
    if document is not None:
        problems = validate_menu(document, node_groups)
    if problems:
        raise MenuInvalidError(problems)
    assert document is not None
    return document
