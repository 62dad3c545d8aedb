"""The menu database: immutable revisions in SQLite (default) or PostgreSQL.

Every save writes a new row numbered one past its base revision; the number
is the primary key, so of two saves from the same base one is written and
the other gets :class:`MenuConflictError` with what changed meanwhile. A
rollback is a save of an older document. The hub's cheap check for a new
menu is :meth:`MenuStore.current_number`, one indexed query.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Connection, Engine

from .diff import diff_menus
from .model import MenuDocument, NodeGroup
from .schema import revisions
from .validate import check_menu

__all__ = [
    "DEFAULT_DB_FILE",
    "MenuConflictError",
    "MenuRevision",
    "MenuStore",
    "MenuStoreError",
    "default_db_url",
]

#: The SQLite file next to ``jupyterhub.sqlite`` (the hub's working directory).
DEFAULT_DB_FILE = "lsst_spawner_menu.sqlite"
_MIGRATIONS = Path(__file__).parent / "migrations"


def default_db_url(data_dir: str | Path = ".") -> str:
    """The default database: SQLite in the hub's data directory."""
    return f"sqlite:///{Path(data_dir).resolve() / DEFAULT_DB_FILE}"


class MenuStoreError(RuntimeError):
    """The menu database cannot do what was asked (no such revision, empty database)."""


@dataclass(frozen=True)
class MenuRevision:
    """One saved revision: who saved what, when and why."""

    number: int
    created: datetime
    author: str
    comment: str
    document: MenuDocument
    #: For a rollback: the revision whose document this one repeats.
    restored_from: int | None = None


class MenuConflictError(MenuStoreError):
    """The save's base is not the current revision: someone saved in between.

    ``changes`` lists what the newer revision changed from the base, so the
    editor can show it and the admin can redo the edit on top of it.
    """

    def __init__(self, base: int | None, current: MenuRevision, changes: list[str]) -> None:
        self.base = base
        self.current = current
        self.changes = changes
        super().__init__(
            f"revision {current.number} by {current.author} was saved after base revision "
            f"{base}; nothing was saved. Its changes: " + ("; ".join(changes) or "none")
        )


def _engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    # pysqlite's own transaction handling defers BEGIN; writers take the write lock at
    # BEGIN IMMEDIATE instead, so two saves are serialized rather than deadlocked.
    @sa.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("menu_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _row_to_revision(row: Any) -> MenuRevision:
    created = row.created
    if created.tzinfo is None:  # SQLite keeps no time zone; every time written is UTC
        created = created.replace(tzinfo=UTC)
    return MenuRevision(
        number=row.number,
        created=created,
        author=row.author,
        comment=row.comment,
        document=MenuDocument.model_validate(json.loads(row.document)),
        restored_from=row.restored_from,
    )


class MenuStore:
    """The revisions of one site's menu, validated against its node groups on every save."""

    def __init__(self, url: str, node_groups: Mapping[str, NodeGroup] | None = None) -> None:
        self.url = url
        self.node_groups = dict(node_groups or {})
        self.engine = _engine(url)

    def upgrade(self) -> None:
        """Create or migrate the schema to the newest version (alembic ``upgrade head``)."""
        config = AlembicConfig()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def close(self) -> None:
        self.engine.dispose()

    # --- reading ------------------------------------------------------------------

    def current_number(self) -> int | None:
        """The current revision's number (None when empty): one primary-key index read."""
        with self.engine.connect() as connection:
            number = connection.execute(sa.select(sa.func.max(revisions.c.number))).scalar()
        return int(number) if number is not None else None

    def get(self, number: int) -> MenuRevision:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(revisions).where(revisions.c.number == number)
            ).first()
        if row is None:
            raise MenuStoreError(f"there is no revision {number}")
        return _row_to_revision(row)

    def current(self) -> MenuRevision | None:
        with self.engine.connect() as connection:
            return self._current(connection)

    def history(self, limit: int = 100) -> list[MenuRevision]:
        """The newest ``limit`` revisions, newest first."""
        query = sa.select(revisions).order_by(revisions.c.number.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [_row_to_revision(row) for row in connection.execute(query)]

    def diff(self, old: int, new: int) -> list[str]:
        """What changed from revision ``old`` to revision ``new``."""
        return diff_menus(self.get(old).document, self.get(new).document)

    @staticmethod
    def _current(connection: Connection) -> MenuRevision | None:
        row = connection.execute(
            sa.select(revisions).order_by(revisions.c.number.desc()).limit(1)
        ).first()
        return _row_to_revision(row) if row is not None else None

    # --- writing ------------------------------------------------------------------

    def save(
        self,
        document: MenuDocument | Mapping[str, Any],
        *,
        base: int | None,
        author: str,
        comment: str = "",
        restored_from: int | None = None,
    ) -> MenuRevision:
        """Validate and write a new revision on top of ``base`` (None for the first one).

        Raises :class:`~lsst_spawner.menu.MenuInvalidError` (nothing written) or
        :class:`MenuConflictError` when ``base`` is not the current revision.
        """
        data = document.to_json_data() if isinstance(document, MenuDocument) else document
        checked = check_menu(data, self.node_groups)
        if not author:
            raise MenuStoreError("a revision needs an author")
        number = (base or 0) + 1
        created = datetime.now(UTC)
        row = {
            "number": number,
            "created": created,
            "author": author,
            "comment": comment,
            "schema_version": checked.schema_version,
            "restored_from": restored_from,
            "document": json.dumps(checked.to_json_data(), sort_keys=True),
        }
        connection = self.engine.connect().execution_options(menu_write=True)
        try:
            with connection.begin():
                current = self._current(connection)
                if (current.number if current else None) == base:
                    connection.execute(revisions.insert().values(**row))
                    return MenuRevision(number, created, author, comment, checked, restored_from)
        except sa.exc.IntegrityError:
            # Another save of the same base committed first (PostgreSQL's unique index).
            pass
        finally:
            connection.close()
        self._raise_conflict(base)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_conflict(self, base: int | None) -> None:
        current = self.current()
        if current is None:
            raise MenuStoreError(f"base revision {base} does not exist: the database is empty")
        before = self.get(base).document if base is not None else MenuDocument()
        raise MenuConflictError(base, current, diff_menus(before, current.document))

    def rollback(
        self, number: int, *, base: int | None, author: str, comment: str = ""
    ) -> MenuRevision:
        """Write a new revision whose menu is revision ``number``'s, validated again."""
        old = self.get(number)
        return self.save(
            old.document,
            base=base,
            author=author,
            comment=comment or f"rollback to revision {number}",
            restored_from=number,
        )

    def seed(self, document: MenuDocument, author: str = "lsst-spawner (seed)") -> MenuRevision:
        """Write ``document`` as revision 1 if the database is empty; else the current one."""
        current = self.current()
        if current is not None:
            return current
        try:
            return self.save(document, base=None, author=author, comment="seeded from the config")
        except MenuConflictError as conflict:  # seeded concurrently by another process
            return conflict.current
