"""The menu database's tables (SQLAlchemy Core); alembic migrations create them."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["VERSION_TABLE", "metadata", "revisions"]

#: Alembic's version table of the menu schema, apart from JupyterHub's ``alembic_version``.
VERSION_TABLE = "lsst_spawner_menu_alembic_version"

metadata = sa.MetaData()

#: One row per saved revision, never updated: the number is the primary key, so two
#: saves from the same base cannot both be written.
revisions = sa.Table(
    "lsst_spawner_menu_revisions",
    metadata,
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("author", sa.String(255), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("restored_from", sa.Integer, nullable=True),
    sa.Column("document", sa.Text, nullable=False),
)
