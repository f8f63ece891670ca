"""``KeptInsert``: an INSERT on connections each process keeps in autocommit mode (the
webhook's event INSERT). Rows are committed, a refused row is None, the connections are
closed with their engine (disposed or collected), a dropped one is replaced, errors are
SQLAlchemy's with the parameters hidden. tests/test_postgres.py runs these on PostgreSQL
too (``kept_url``)."""

from __future__ import annotations

import gc
import sqlite3
from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from storefront import kept_insert
from storefront.config import database_uri
from storefront.kept_insert import KeptInsert, keeps_connections

metadata = MetaData()
things = Table(
    "kept_thing",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(50), unique=True),
    Column("at", DateTime),
)
INSERT = KeptInsert(insert(things).returning(things.c.id), ["key", "at"])
WHEN = datetime(2026, 12, 1, 19, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def kept_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'kept.sqlite3'}"


def new_engine(url: str):
    engine = create_engine(database_uri(url), hide_parameters=True)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    return engine


@pytest.fixture
def kept_engine(kept_url):
    engine = new_engine(kept_url)
    yield engine
    engine.dispose()


def is_closed(conn) -> bool:
    if isinstance(conn, sqlite3.Connection):
        try:
            conn.execute("SELECT 1")
        except sqlite3.ProgrammingError:  # "Cannot operate on a closed database."
            return True
        return False
    return bool(conn.closed)  # psycopg


def stored(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(things.c.key, things.c.at))]


def test_rows_are_committed_on_one_kept_connection(kept_engine):
    first = INSERT(kept_engine, {"key": "a", "at": WHEN})
    [conn] = INSERT.connections(kept_engine)
    second = INSERT(kept_engine, {"key": "b", "at": None})
    assert INSERT.connections(kept_engine) == [conn]  # the same one, kept
    assert isinstance(first, int) and second == first + 1
    # Committed: another connection sees them, with the values SQLAlchemy would store.
    assert stored(kept_engine) == [("a", WHEN.replace(tzinfo=None)), ("b", None)]


def test_a_refused_row_is_none_and_the_connection_stays(kept_engine):
    INSERT(kept_engine, {"key": "a", "at": WHEN})
    [conn] = INSERT.connections(kept_engine)
    assert INSERT(kept_engine, {"key": "a", "at": WHEN}) is None  # unique key
    assert INSERT.connections(kept_engine) == [conn] and not is_closed(conn)
    assert INSERT(kept_engine, {"key": "b", "at": WHEN}) is not None
    assert [key for key, _ in stored(kept_engine)] == ["a", "b"]


def test_another_error_is_sqlalchemys_with_hidden_parameters(kept_engine):
    INSERT(kept_engine, {"key": "a", "at": WHEN})
    [conn] = INSERT.connections(kept_engine)
    with kept_engine.begin() as other:
        other.execute(text("DROP TABLE kept_thing"))
    with pytest.raises(DBAPIError) as raised:
        INSERT(kept_engine, {"key": "secret-value", "at": WHEN})
    assert "secret-value" not in str(raised.value)
    assert "hidden" in str(raised.value)
    # In an unknown state after a failed statement: closed, not kept.
    assert is_closed(conn) and INSERT.connections(kept_engine) == []
    metadata.create_all(kept_engine)
    assert INSERT(kept_engine, {"key": "b", "at": WHEN}) is not None


def test_disposing_the_engine_closes_its_kept_connections(kept_engine):
    INSERT(kept_engine, {"key": "a", "at": WHEN})
    [conn] = INSERT.connections(kept_engine)
    kept_engine.dispose()
    assert is_closed(conn) and INSERT.connections(kept_engine) == []
    INSERT(kept_engine, {"key": "b", "at": WHEN})  # a disposed engine can be used again
    [again] = INSERT.connections(kept_engine)
    assert again is not conn and not is_closed(again)


def test_an_engine_collected_undisposed_closes_them(kept_url):
    # An app a test builds and never disposes: its connections must not be left for the
    # garbage collector (psycopg warns, and the suite treats warnings as errors).
    engine = new_engine(kept_url)
    INSERT(engine, {"key": "a", "at": WHEN})
    [conn] = INSERT.connections(engine)
    engine.pool.dispose()  # the pool's own connections (create_all's): not ours to close
    del engine
    gc.collect()
    assert is_closed(conn)


def test_a_forked_child_leaves_the_parents_connections_alone(kept_engine, monkeypatch):
    INSERT(kept_engine, {"key": "a", "at": WHEN})
    [parents] = INSERT.connections(kept_engine)
    monkeypatch.setattr(kept_insert.os, "getpid", lambda: -1)  # now "in a child"
    try:
        INSERT(kept_engine, {"key": "b", "at": WHEN})
        [childs] = INSERT.connections(kept_engine)
        assert childs is not parents
        kept_engine.dispose()
        assert is_closed(childs) and not is_closed(parents)  # the parent's, still open
    finally:
        parents.close()


def test_a_dropped_connection_is_replaced_once(kept_engine):
    if kept_engine.dialect.name != "postgresql":
        pytest.skip("a server that drops connections: tests/test_postgres.py runs this")
    INSERT(kept_engine, {"key": "a", "at": WHEN})
    [conn] = INSERT.connections(kept_engine)
    with kept_engine.begin() as other:  # as a server restart or an idle timeout would
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": conn.info.backend_pid})
    assert INSERT(kept_engine, {"key": "b", "at": WHEN}) is not None
    [fresh] = INSERT.connections(kept_engine)
    assert fresh is not conn and is_closed(conn)
    assert [key for key, _ in stored(kept_engine)] == ["a", "b"]


def test_in_memory_sqlite_is_never_kept():
    # Each connection to an in-memory database is a database of its own.
    assert not keeps_connections(create_engine("sqlite://"))
    assert not keeps_connections(create_engine("sqlite:///:memory:"))
    assert keeps_connections(create_engine("sqlite:///shop.sqlite3"))


def test_the_shop_prepares_its_engine_when_the_app_is_made(app):
    """The dispose listener is registered by create_app, in the thread that makes the app:
    registered on a delivery's first use (a server thread), it once raced with a test's
    ``engine.dispose()`` ("deque mutated during iteration")."""
    from storefront.extensions import db
    from storefront.webhooks import _kept_insert_event

    with app.app_context():
        assert _kept_insert_event.prepared(db.engine)
