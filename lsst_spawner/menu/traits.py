"""Configuration of the lab menu's database and node groups (``c.LabMenu.<name>``).

Node groups are the infrastructure admins' part of the menu: they are set
here, in the hub's configuration, and menu admins only pick among them.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from traitlets import Dict, List, Unicode
from traitlets.config import Config

from ..config import CheckedConfigurable, ConfigError, ConfigProblem
from .model import NodeGroup
from .storage import DEFAULT_DB_FILE, MenuStore, default_db_url
from .validate import validation_problems

__all__ = ["LabMenu", "lab_menu_from_config"]


class LabMenu(CheckedConfigurable):
    """Where menu revisions are stored and which node groups profiles may use."""

    db_url = Unicode(
        "",
        config=True,
        help=(
            f"SQLAlchemy URL of the menu database; empty for SQLite ({DEFAULT_DB_FILE}) in the "
            "hub's working directory, next to jupyterhub.sqlite. PostgreSQL: postgresql+psycopg://."
        ),
    )

    node_groups = List(
        Dict(),
        default_value=[],
        config=True,
        help=(
            "Node groups profiles may run on, set by infrastructure admins: dicts with name, "
            "node_selector, tolerations, affinity, extended_resources ({'nvidia.com/gpu': 1}), "
            "max_cpu and max_memory (the most a profile on the group may ask)."
        ),
    )

    def parsed_node_groups(self) -> tuple[dict[str, NodeGroup], list[ConfigProblem]]:
        """The node groups by name, and the problems of those that are invalid."""
        groups: dict[str, NodeGroup] = {}
        problems: list[ConfigProblem] = []
        for index, raw in enumerate(self.node_groups):
            where = f"LabMenu.node_groups[{index}]"
            try:
                group = NodeGroup.model_validate(raw)
            except ValidationError as error:
                for problem in validation_problems(error):
                    problems.append(ConfigProblem(f"{where}.{problem.field}", problem.message))
                continue
            if group.name in groups:
                problems.append(ConfigProblem(f"{where}.name", f"{group.name!r} is defined twice"))
                continue
            groups[group.name] = group
        return groups, problems

    def config_problems(self) -> list[ConfigProblem]:
        problems = super().config_problems()
        problems.extend(self.parsed_node_groups()[1])
        return problems

    def open_store(self) -> MenuStore:
        """The menu database, migrated to the current schema."""
        groups, _ = self.parsed_node_groups()
        store = MenuStore(self.db_url or default_db_url(), groups)
        store.upgrade()
        return store


def lab_menu_from_config(config: Config, **overrides: Any) -> LabMenu:
    """``LabMenu`` from a loaded hub config, refusing invalid node groups."""
    menu = LabMenu(config=config)
    for name, value in overrides.items():
        if value is not None:
            setattr(menu, name, value)
    problems = menu.config_problems()
    if problems:
        raise ConfigError("; ".join(f"{p.where}: {p.message}" for p in problems))
    return menu
