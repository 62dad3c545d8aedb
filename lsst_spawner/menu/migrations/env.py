"""Alembic environment of the menu database (run by ``lsst_spawner.menu.storage``)."""

from alembic import context

from lsst_spawner.menu.schema import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # Its own version table, so the menu can share JupyterHub's database.
    version_table=VERSION_TABLE,
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
