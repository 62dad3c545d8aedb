"""Configuration of the lab menu's database and node groups (``c.LabMenu.<name>``).

Node groups are the infrastructure admins' part of the menu: they are set
here, in the hub's configuration, and menu admins only pick among them.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from traitlets import Bool, Dict, List, Unicode, default
from traitlets.config import Config

from ..config import CheckedConfigurable, ConfigError, ConfigProblem, Duration
from .image_sizes import check_platform
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

    enabled = Bool(
        config=True,
        help=(
            "Whether LSSTSpawner offers the menu of this database (its current revision) instead "
            "of lab_sizes and the image menu traits. Default: on when LabMenu.db_url is set."
        ),
    )

    revision_check_interval = Duration(
        1.0,
        config=True,
        help=(
            "How often, at most, the hub reads the menu database's current revision number "
            "(one indexed query); a saved revision is offered within this time. 0 to 5 seconds."
        ),
    )

    image_platform = Unicode(
        "linux/amd64",
        config=True,
        help=(
            "The platform (os/architecture[/variant]) the labs run on: for a multi-platform "
            "image, the editor shows the compressed size of this platform's image."
        ),
    )

    @default("enabled")
    def _enabled_when_db_url_is_set(self) -> bool:
        return self.config._has_section("LabMenu") and "db_url" in self.config.LabMenu

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
        problems.extend(_db_url_problems(self.db_url))
        try:
            check_platform(self.image_platform)
        except ValueError as error:
            problems.append(ConfigProblem("LabMenu.image_platform", str(error)))
        if not 0 <= self.revision_check_interval <= 5:
            problems.append(
                ConfigProblem(
                    "LabMenu.revision_check_interval",
                    f"{self.revision_check_interval:g}s is not between 0 and 5 seconds: a saved "
                    "menu must be offered within 5 s",
                )
            )
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


def _db_url_problems(url: str) -> list[ConfigProblem]:
    """Whether ``url`` names a database SQLAlchemy can open here (its dialect and driver)."""
    if not url:
        return []
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    where = "LabMenu.db_url"
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except NoSuchModuleError:  # an ArgumentError too
        return [ConfigProblem(where, f"SQLAlchemy has no database dialect {url.split(':')[0]!r}")]
    except ArgumentError:
        return [ConfigProblem(where, "is not a database URL (such as sqlite:///path/menu.sqlite)")]
    try:
        dialect.import_dbapi()
    except ImportError as error:
        return [
            ConfigProblem(
                where,
                f"the driver of {parsed.drivername} is not installed ({error}); for PostgreSQL "
                'pip install "psycopg[binary]" and use postgresql+psycopg://',
            )
        ]
    return []
