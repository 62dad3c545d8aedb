"""Traits of the options form, mixed into LSSTSpawner."""

from __future__ import annotations

import os

from traitlets import List, Unicode

from ..config import CheckedConfigurable, ConfigProblem
from .render import DEFAULT_TEMPLATE_NAME, template_environment

__all__ = ["OptionsFormTraits"]


class OptionsFormTraits(CheckedConfigurable):
    """Where the options form's template comes from."""

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
        cls = type(self).__name__
        for index, path in enumerate(self.options_template_path):
            if not os.path.isabs(path):
                problems.append(
                    ConfigProblem(
                        f"{cls}.options_template_path[{index}]",
                        f"must be an absolute path, not {path!r}",
                    )
                )
            elif not os.path.isdir(path):
                problems.append(
                    ConfigProblem(
                        f"{cls}.options_template_path[{index}]",
                        f"directory {path!r} does not exist",
                    )
                )
        if not problems:
            environment = template_environment(tuple(self.options_template_path))
            try:
                environment.get_template(self.options_template_name)
            except Exception as error:  # jinja2 raises several kinds; report any
                problems.append(
                    ConfigProblem(
                        f"{cls}.options_template_name",
                        f"cannot load template {self.options_template_name!r}: {error}",
                    )
                )
        return problems
