"""Traits of the options form, mixed into LSSTSpawner."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

from traitlets import List, Unicode

from ..config import CheckedConfigurable, ConfigProblem
from .render import DEFAULT_TEMPLATE_NAME, template_environment

__all__ = ["FormSettings", "OptionsFormTraits", "to_settings"]


@dataclass(frozen=True)
class FormSettings:
    """Where the options form's template is found, checked."""

    template_path: tuple[str, ...]
    template_name: str


class OptionsFormTraits(CheckedConfigurable):
    """Where the options form's template comes from."""

    trait_owner: ClassVar[str] = "LSSTSpawner"

    options_template_path = List(
        Unicode(),
        default_value=[],
        help=(
            "Directories searched for the options form template before the built-in one. "
            "A site overrides the form by putting its own template of the same name here."
        ),
    ).tag(config=True)

    options_template_name = Unicode(
        DEFAULT_TEMPLATE_NAME,
        help=(
            "File name of the options form template, looked up in options_template_path "
            "and then among lsst_spawner's built-in templates."
        ),
    ).tag(config=True)

    def config_problems(self) -> list[ConfigProblem]:
        problems = super().config_problems()
        problems.extend(to_settings(self)[1])
        return problems


def to_settings(traits: OptionsFormTraits) -> tuple[FormSettings | None, list[ConfigProblem]]:
    """The form's settings (``None`` with problems) and every problem in its traits."""
    problems: list[ConfigProblem] = []
    for index, path in enumerate(traits.options_template_path):
        where = traits.trait_where(f"options_template_path[{index}]")
        if not os.path.isabs(path):
            problems.append(ConfigProblem(where, f"must be an absolute path, not {path!r}"))
        elif not os.path.isdir(path):
            problems.append(ConfigProblem(where, f"directory {path!r} does not exist"))
    if problems:
        return None, problems
    settings = FormSettings(tuple(traits.options_template_path), traits.options_template_name)
    environment = template_environment(settings.template_path)
    try:
        environment.get_template(settings.template_name)
    except Exception as error:  # jinja2 raises several kinds; report any
        problems.append(
            ConfigProblem(
                traits.trait_where("options_template_name"),
                f"cannot load template {settings.template_name!r}: {error}",
            )
        )
        return None, problems
    return settings, []
