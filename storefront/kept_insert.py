"""An INSERT run on database connections each process keeps, in autocommit mode.

Storing a webhook event is one INSERT that is its own transaction. Run through an
SQLAlchemy ``Connection``, that INSERT was a third of a delivery's CPU time: a connection
checked out of the pool and switched to autocommit (on SQLite, back again with a
``PRAGMA`` when it returns), SQLAlchemy's execution context and result around one
statement, the pool's bookkeeping on return. ``KeptInsert`` compiles the statement once
per engine and runs it on a DB-API connection the process keeps beside the pool, set to
autocommit once: the statement, its bind processors, nothing else.

The kept connections belong to their engine. Each is taken from the engine's pool and
detached from it (so the engine's connect events, SQLite's pragmas among them, have run),
and all of them are closed when the engine is disposed (``engine.dispose()``, as tests
do after each app) or garbage collected: none is left for the garbage collector to close
(psycopg warns when it has to). After a fork the child opens its own and leaves the
parent's alone. A connection the server dropped (PostgreSQL restarted, a proxy's idle
timeout) is replaced and the statement run again once, as ``pool_pre_ping`` would have.
Errors come out as SQLAlchemy's, with the parameters hidden.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Insert


def keeps_connections(engine: Engine) -> bool:
    """Can a connection of this engine be kept outside its pool? Not an in-memory SQLite
    database: each connection to one is a database of its own."""
    if engine.dialect.name != "sqlite":
        return True
    database = engine.url.database or ""
    return database not in ("", ":memory:") and "mode=memory" not in database


class KeptInsert:
    """``statement`` (an ``INSERT ... RETURNING`` one column) with values for ``keys``,
    run in autocommit mode on kept connections of each engine it is given."""

    def __init__(self, statement: Insert, keys: Sequence[str]) -> None:
        self.statement = statement
        self.keys = list(keys)
        self._per_engine: weakref.WeakKeyDictionary[Engine, _Kept] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, engine: Engine, values: Mapping[str, Any]) -> Any | None:
        """INSERT one row, committed. The returned column, or None when a constraint
        refused the row (``IntegrityError``: e.g. a unique key stored already)."""
        kept = self._per_engine.get(engine)
        if kept is None:
            kept = self._kept(engine)
        return kept.run(values)

    def prepare(self, engine: Engine) -> None:
        """Set up ``engine``'s kept state now, from the thread that creates the app. Done on
        a delivery's first use instead, the registration of the dispose listener could run
        while another thread disposes the engine (SQLAlchemy: "deque mutated during
        iteration")."""
        self._kept(engine)

    def prepared(self, engine: Engine) -> bool:
        return engine in self._per_engine

    def connections(self, engine: Engine) -> list[Any]:
        """The idle kept DB-API connections of ``engine`` in this process (for tests)."""
        kept = self._per_engine.get(engine)
        return list(kept.idle) if kept is not None else []

    def _kept(self, engine: Engine) -> _Kept:
        with self._lock:
            kept = self._per_engine.get(engine)
            if kept is None:
                kept = self._per_engine[engine] = _Kept(engine, self.statement, self.keys)
                # Closed with the engine: disposed, or collected without being disposed.
                event.listen(engine, "engine_disposed", lambda _engine: kept.close())
                weakref.finalize(engine, kept.close)
        return kept


class _Kept:
    """The compiled statement and the idle kept connections of one engine."""

    def __init__(self, engine: Engine, statement: Insert, keys: list[str]) -> None:
        dialect = self.dialect = engine.dialect
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        self.sql = compiled.string
        order = compiled.positiontup  # the parameters' order, for positional paramstyles
        self.positional = order is not None
        self.names = list(order) if order is not None else keys
        self.processors = {}
        for name in self.names:
            process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.processors[name] = process
        self.integrity_error = dialect.loaded_dbapi.IntegrityError
        self.engine = weakref.ref(engine)  # the engine owns this, not the other way
        # Connections not in use right now: one in a single-threaded worker, one per
        # concurrent request in a threaded server (list.pop and append are atomic).
        self.idle: list[Any] = []
        self.pid = os.getpid()
        self._inherited: list[Any] = []

    def run(self, values: Mapping[str, Any]) -> Any | None:
        params = self._params(values)
        conn, reused = self._take()
        try:
            return self._execute(conn, params)
        except self.integrity_error:
            self.idle.append(conn)  # the statement failed, the connection is fine
            return None
        except self.dialect.loaded_dbapi.Error as err:
            self._close(conn)  # in an unknown state: not reused
            if reused and self.dialect.is_disconnect(err, conn, None):
                # Dropped while idle (server restart, idle timeout): a new one, once.
                conn, _ = self._take(new=True)
                try:
                    return self._execute(conn, params)
                except self.integrity_error:
                    self.idle.append(conn)
                    return None
                except self.dialect.loaded_dbapi.Error as again:
                    self._close(conn)
                    raise self._wrap(again, params) from again
            raise self._wrap(err, params) from err
        except BaseException:
            self._close(conn)
            raise

    def _execute(self, conn: Any, params: Any) -> Any:
        cursor = conn.cursor()
        try:
            cursor.execute(self.sql, params)
            row = cursor.fetchone()
        finally:
            cursor.close()
        self.idle.append(conn)
        return row[0]

    def _params(self, values: Mapping[str, Any]) -> Any:
        params = {name: values[name] for name in self.names}
        for name, process in self.processors.items():
            params[name] = process(params[name])
        return [params[name] for name in self.names] if self.positional else params

    def _take(self, *, new: bool = False) -> tuple[Any, bool]:
        if self.pid != os.getpid():
            # A forked child: the parent's connections are the parent's (closing one here
            # would end the parent's session on PostgreSQL). Kept, never used or closed.
            self._inherited.extend(self.idle)
            self.idle, self.pid = [], os.getpid()
        if not new:
            try:
                return self.idle.pop(), True
            except IndexError:
                pass
        engine = self.engine()
        if engine is None:  # pragma: no cover - a caller passed the engine in
            raise RuntimeError("the engine is gone")
        fairy = engine.raw_connection()
        fairy.detach()  # the pool forgets it; this object owns it from here on
        conn = fairy.dbapi_connection
        self.dialect.set_isolation_level(conn, "AUTOCOMMIT")
        return conn, False

    def _wrap(self, err: Exception, params: Any) -> DBAPIError:
        return DBAPIError.instance(
            self.sql,
            params,
            err,
            self.dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=self.dialect,
        )

    def close(self) -> None:
        """Close the idle connections this process opened. (One in use by another thread
        right now goes back to ``idle`` after its statement: the next ``close``, at the
        latest the engine's finalizer, closes it.)"""
        if self.pid != os.getpid():
            self._inherited.extend(self.idle)
            self.idle, self.pid = [], os.getpid()
            return
        while self.idle:
            try:
                conn = self.idle.pop()
            except IndexError:
                break
            self._close(conn)

    @staticmethod
    def _close(conn: Any) -> None:
        # Closing a broken connection may fail; it is gone either way.
        with contextlib.suppress(Exception):
            conn.close()
