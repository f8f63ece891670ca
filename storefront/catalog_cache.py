"""Each worker's cache of what the catalog pages build from products and prices.

Every change to a product or price goes through the ORM session (seeding, syncing to
Stripe, the stock a fulfilment takes, the back office): the session events below bump
``catalog_version.version`` in the same transaction. A catalog page reuses what it built
while that number stands, and nothing is rebuilt until it moves.

The number is read (a primary-key lookup) at most every ``CATALOG_VERSION_CHECK_MS``
(1 s) per worker: on PostgreSQL that read is a round trip to the server, which cost
as much as the rest of a cached page. So another worker's change shows on this worker's
pages within that time; a change this worker made, as soon as it commits. Only what is
shown waits: the cart, the checkout and Pay read prices and stock from the database.

Only what depends on the catalog alone is cached (per currency and category or product);
anything per visitor (CSRF token, cart, account) is rendered per request around it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from itertools import chain
from typing import Any, TypeVar

from flask import current_app, g, has_app_context
from sqlalchemy import Engine, event, update
from sqlalchemy.orm import ORMExecuteState, Session

from .extensions import db
from .models import CatalogVersion, Price, Product

log = logging.getLogger(__name__)

T = TypeVar("T")
CATALOG_MODELS = (Product, Price)
_TABLE = CatalogVersion.__table__
_BUMPED = "catalog_version_bumped"
_BUMPED_HERE = "catalog_version_bumped_here"  # the worker's cache store to refresh
_VERSION_SQL = "SELECT version FROM catalog_version WHERE id = 1"
_BUMP = update(_TABLE).where(_TABLE.c.id == 1).values(version=_TABLE.c.version + 1)


class VersionReader:
    """This process's own connection to read the version on: one statement on a connection
    kept open, where the session would cost a pool checkout, a transaction and a rollback
    per request (a fifth of a cached catalog page). Reads see the latest commit: SQLite
    runs a lone SELECT outside any transaction, and PostgreSQL's connection autocommits.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()  # the development server runs requests in threads
        self.pid: int | None = None
        self.connection: Any = None  # a pool connection detached from the pool
        event.listen(engine, "engine_disposed", lambda _engine: self.close())

    def read(self) -> int | None:
        with self.lock:
            if self.pid != os.getpid():
                self.connection = None  # forked (e.g. gunicorn --preload): never share it
            try:
                if self.connection is None:
                    self._open()
                cursor = self.connection.cursor()
                try:
                    cursor.execute(_VERSION_SQL)
                    row = cursor.fetchone()
                finally:
                    cursor.close()
            except self.engine.dialect.loaded_dbapi.Error as err:
                # Lost (a database restart) or not there yet (not migrated): no cache for
                # this request; the next one connects again.
                log.warning("catalog version unreadable, not caching: %s", err)
                self.close()
                return None
        return row[0] if row else None

    def _open(self) -> None:
        connection = self.engine.raw_connection()
        if self.engine.dialect.name == "postgresql":
            # Before detach(): a detached connection no longer has its driver connection.
            connection.driver_connection.autocommit = True
        connection.detach()
        self.connection, self.pid = connection, os.getpid()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.connection is not None and self.pid == os.getpid():
                self.connection.close()
        self.connection = None


# The clock the version checks are timed by (a test moves it).
clock = time.monotonic


def current_version() -> int | None:
    """The catalog's version, as read in the last ``CATALOG_VERSION_CHECK_MS`` (once per
    request at most); None if it cannot be read (then nothing is cached). A version that
    moved drops what was kept under the old one."""
    if "catalog_version" not in g:
        store = _store()
        now = clock()
        max_age = current_app.config["CATALOG_VERSION_CHECK_MS"] / 1000
        if store["read_at"] is None or now - store["read_at"] >= max_age:
            if store["reader"] is None:
                store["reader"] = VersionReader(db.engine)
            version = store["reader"].read()
            if version is None:  # not kept: the next request reads again
                store["read_at"] = None
                g.catalog_version = None
                return None
            store["read_at"] = now
            if store["version"] != version:
                store["version"], store["entries"] = version, {}
        g.catalog_version = store["version"]
    return g.catalog_version


def _store() -> dict[str, Any]:
    return current_app.extensions.setdefault(
        "catalog_cache", {"version": None, "entries": {}, "reader": None, "read_at": None}
    )


def cached(key: tuple, build: Callable[[], T]) -> T:
    """``build()``'s result for ``key``, built once per catalog version in this process.

    ``key`` must come from a bounded set (currencies, existing categories or products);
    a None result is not kept. The version is read before ``build`` reads the catalog, so
    what is kept is never older than the version it is kept under.
    """
    if current_version() is None:
        return build()
    entries: dict[tuple, Any] = _store()["entries"]
    if key in entries:
        return entries[key]
    value = build()
    if value is not None:
        entries[key] = value
    return value


def _bump(session: Session) -> None:
    """Once per transaction: a seed flushing thirty products needs one bump, not thirty.
    A savepoint's end forgets it too, so changes after a rolled-back savepoint bump again."""
    if session.info.get(_BUMPED):
        return
    session.connection().execute(_BUMP)
    session.info[_BUMPED] = True
    if has_app_context():
        g.pop("catalog_version", None)
        session.info[_BUMPED_HERE] = _store()


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    # This worker's own change: its next page reads the new version at once. (Not
    # forgotten on a rollback: a savepoint's rollback leaves the outer bump standing, and
    # a bump rolled back entirely costs at most one early read after the next commit.)
    store = session.info.pop(_BUMPED_HERE, None)
    if store is not None:
        store["read_at"] = None


@event.listens_for(Session, "after_transaction_end")
def _transaction_ended(session: Session, _transaction: Any) -> None:
    session.info.pop(_BUMPED, None)


# The version row is locked (bumped) before the catalog rows a transaction changes: with
# one lock order, two transactions changing products (e.g. two fulfilments taking stock
# of the same items) cannot deadlock on PostgreSQL; they queue on the version row.


@event.listens_for(Session, "before_flush")
def _catalog_flushing(session: Session, _context: Any, _instances: Any) -> None:
    if any(
        isinstance(obj, CATALOG_MODELS)
        for obj in chain(session.new, session.dirty, session.deleted)
    ):
        _bump(session)


@event.listens_for(Session, "do_orm_execute")
def _catalog_statement(state: ORMExecuteState) -> None:
    """``session.execute(update(Product)...)`` (e.g. the stock a fulfilment takes)."""
    dml = state.is_update or state.is_delete or state.is_insert
    if dml and any(m.class_ in CATALOG_MODELS for m in state.all_mappers):
        _bump(state.session)
