"""Menu revisions in SQLite and PostgreSQL: saves, conflicts, rollback, seeding, diffs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from lsst_spawner.menu import (
    CuratedImage,
    ImageState,
    MenuDocument,
    MenuInvalidError,
)
from lsst_spawner.menu.schema import VERSION_TABLE
from lsst_spawner.menu.storage import MenuConflictError, MenuStore, MenuStoreError

from .conftest import NODE_GROUPS, make_profile

BASE = MenuDocument(
    images=(CuratedImage(tag="recommended", default=True), CuratedImage(tag="w_2024_05")),
    profiles=(make_profile("small", default=True), make_profile("medium", cpu="2")),
)


def _with(document: MenuDocument, **changes: Any) -> MenuDocument:
    return document.model_copy(update=changes)


def test_empty_database_has_no_current_revision(store: MenuStore) -> None:
    assert store.current_number() is None
    assert store.current() is None
    assert store.history() == []


def test_save_writes_numbered_immutable_revisions(store: MenuStore) -> None:
    first = store.save(BASE, base=None, author="alice", comment="first")
    gpu = make_profile("gpu", cpu="8", node_group="gpu", groups=("gpu-users",))
    second = store.save(
        _with(BASE, profiles=(*BASE.profiles, gpu)), base=1, author="bob", comment="add gpu"
    )
    assert (first.number, second.number) == (1, 2)
    assert store.current_number() == 2
    assert store.get(1).document == BASE
    reread = store.get(2)
    assert (reread.author, reread.comment, reread.document) == ("bob", "add gpu", second.document)
    assert reread.created.tzinfo is not None
    assert abs((datetime.now(UTC) - reread.created).total_seconds()) < 600
    assert [r.number for r in store.history()] == [2, 1]
    assert store.diff(1, 2) == ["+ profiles[gpu]"]


def test_invalid_save_changes_nothing(store: MenuStore) -> None:
    store.save(BASE, base=None, author="alice")
    over = make_profile("huge", cpu="64", node_group="gpu")
    with pytest.raises(MenuInvalidError) as caught:
        store.save(_with(BASE, profiles=(*BASE.profiles, over)), base=1, author="alice")
    assert [p.field for p in caught.value.problems] == ["profiles[2].cpu_limit"]
    with pytest.raises(MenuInvalidError):
        store.save({"profiles": "none", "images": []}, base=1, author="alice")
    assert store.current_number() == 1


def test_a_base_that_does_not_exist(store: MenuStore) -> None:
    with pytest.raises(MenuStoreError, match="base revision 3 does not exist"):
        store.save(BASE, base=3, author="alice")
    store.save(BASE, base=None, author="alice")
    with pytest.raises(MenuStoreError, match="there is no revision 5"):
        store.save(BASE, base=5, author="alice")
    assert store.current_number() == 1


def test_save_needs_an_author(store: MenuStore) -> None:
    with pytest.raises(MenuStoreError, match="needs an author"):
        store.save(BASE, base=None, author="")
    assert store.current_number() is None


def test_stale_base_is_a_conflict_with_the_newer_changes(store: MenuStore) -> None:
    store.save(BASE, base=None, author="alice")
    hidden = (BASE.images[0], CuratedImage(tag="w_2024_05", state=ImageState.HIDDEN))
    store.save(_with(BASE, images=hidden), base=1, author="alice", comment="hide w_2024_05")
    with pytest.raises(MenuConflictError) as caught:
        store.save(_with(BASE, profiles=BASE.profiles[:1]), base=1, author="bob")
    conflict = caught.value
    assert conflict.base == 1
    assert conflict.current.number == 2
    assert conflict.current.author == "alice"
    assert conflict.changes == ["~ images[w_2024_05].state: 'shown' -> 'hidden'"]
    assert "revision 2 by alice was saved after base revision 1" in str(conflict)
    assert store.current_number() == 2
    assert store.current().document.images == hidden  # type: ignore[union-attr]


def test_two_concurrent_saves_from_one_base_lose_no_update(store: MenuStore) -> None:
    store.save(BASE, base=None, author="alice")
    other = MenuStore(store.url, NODE_GROUPS)  # a second editor process: its own connections
    edits = {
        "alice": (store, _with(BASE, profiles=(*BASE.profiles, make_profile("large", cpu="4")))),
        "bob": (other, _with(BASE, profiles=BASE.profiles[:1])),
    }
    barrier = threading.Barrier(len(edits))
    outcomes: dict[str, object] = {}

    def save(author: str) -> None:
        editor, document = edits[author]
        barrier.wait()
        try:
            outcomes[author] = editor.save(document, base=1, author=author)
        except MenuConflictError as conflict:
            outcomes[author] = conflict

    threads = [threading.Thread(target=save, args=(name,)) for name in edits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    other.close()
    conflicts = [o for o in outcomes.values() if isinstance(o, MenuConflictError)]
    saved = [o for o in outcomes.values() if not isinstance(o, MenuConflictError)]
    assert len(conflicts) == 1, outcomes
    assert len(saved) == 1, outcomes
    winner = store.current()
    assert winner is not None
    assert winner.number == 2
    assert store.current_number() == 2
    assert conflicts[0].current.number == 2
    assert conflicts[0].changes == store.diff(1, 2)
    assert conflicts[0].changes  # the loser sees what the winner changed
    assert winner.document == edits[winner.author][1]


def test_rollback_writes_a_new_revision_equal_to_an_old_one(store: MenuStore) -> None:
    store.save(BASE, base=None, author="alice")
    store.save(_with(BASE, profiles=BASE.profiles[:1]), base=1, author="alice")
    restored = store.rollback(1, base=2, author="bob")
    assert restored.number == 3
    assert restored.restored_from == 1
    assert restored.comment == "rollback to revision 1"
    assert store.get(3).document == store.get(1).document
    assert store.get(3).restored_from == 1
    assert store.diff(2, 3) == ["+ profiles[medium]"]
    with pytest.raises(MenuConflictError):
        store.rollback(2, base=2, author="carol")
    with pytest.raises(MenuStoreError, match="there is no revision 9"):
        store.rollback(9, base=3, author="carol")


def test_rollback_is_validated_against_todays_node_groups(store: MenuStore) -> None:
    gpu = make_profile("gpu", cpu="8", node_group="gpu")
    store.save(_with(BASE, profiles=(*BASE.profiles, gpu)), base=None, author="alice")
    store.save(BASE, base=1, author="alice")
    shrunk = MenuStore(store.url, {})  # the infra admins removed the gpu node group
    with pytest.raises(MenuInvalidError, match="not a configured node group"):
        shrunk.rollback(1, base=2, author="bob")
    shrunk.close()
    assert store.current_number() == 2


def test_seed_only_fills_an_empty_database(store: MenuStore) -> None:
    seeded = store.seed(BASE)
    assert (seeded.number, seeded.author) == (1, "lsst-spawner (seed)")
    store.save(_with(BASE, profiles=BASE.profiles[:1]), base=1, author="alice")
    assert store.seed(BASE).number == 2
    assert store.current_number() == 2


def test_upgrade_is_idempotent_and_uses_its_own_version_table(store: MenuStore) -> None:
    store.save(BASE, base=None, author="alice")
    store.upgrade()
    with store.engine.connect() as connection:
        version_table = sa.table(VERSION_TABLE, sa.column("version_num"))
        version = connection.execute(sa.select(version_table.c.version_num)).scalar()
        tables = sa.inspect(connection).get_table_names()
    assert version == "0001"
    assert "alembic_version" not in tables  # JupyterHub's own table stays untouched
    assert store.current_number() == 1


def test_postgres_url_is_a_real_server(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        assert "PostgreSQL" in connection.execute(sa.text("SELECT version()")).scalar()
    engine.dispose()


def _wait_until_blocked(store: MenuStore, saver: threading.Thread) -> None:
    """Until the saver waits for the open transaction (PostgreSQL shows it; SQLite cannot)."""
    if store.engine.dialect.name != "postgresql":
        saver.join(timeout=1.0)  # SQLite: it waits at BEGIN IMMEDIATE, up to its 30 s timeout
        return
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database()"
    )
    with store.engine.connect() as connection:
        for _ in range(600):
            if connection.execute(query).scalar() or not saver.is_alive():
                return  # waiting, or already done (the test's assertions say how)
            # PostgreSQL keeps one statistics snapshot per transaction: end it, or every
            # later read sees the activity of the first one.
            connection.rollback()
            saver.join(timeout=0.1)
    raise AssertionError("the second save never waited for the first")


def test_a_save_racing_an_uncommitted_one_is_a_conflict(store: MenuStore) -> None:
    """The second save read the base as current, and only the database can stop it."""
    from lsst_spawner.menu.schema import revisions

    store.save(BASE, base=None, author="alice")
    first = _with(BASE, profiles=BASE.profiles[:1])
    racing = store.engine.connect().execution_options(menu_write=True)
    transaction = racing.begin()
    racing.execute(
        revisions.insert().values(
            number=2,
            created=datetime.now(UTC),
            author="alice",
            comment="",
            schema_version=1,
            restored_from=None,
            document=first.model_dump_json(),
        )
    )
    outcome: list[object] = []
    other = MenuStore(store.url, NODE_GROUPS)

    def save() -> None:
        try:
            outcome.append(other.save(BASE, base=1, author="bob", comment="bob's"))
        except Exception as error:  # recorded: the assertion below shows it
            outcome.append(error)

    saver = threading.Thread(target=save)
    saver.start()
    _wait_until_blocked(store, saver)
    transaction.commit()
    racing.close()
    saver.join(timeout=120)
    other.close()
    assert len(outcome) == 1
    conflict = outcome[0]
    assert isinstance(conflict, MenuConflictError), conflict
    assert conflict.current.number == 2
    assert conflict.changes == ["- profiles[medium]"]
    assert [r.author for r in store.history()] == ["alice", "alice"]


def test_the_migrations_create_exactly_the_declared_schema(store: MenuStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from lsst_spawner.menu.schema import metadata

    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = [
            d for d in compare_metadata(context, metadata) if "alembic_version" not in str(d)
        ]
    assert differences == []
