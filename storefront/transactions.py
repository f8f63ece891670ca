"""No database transaction is held open across a call to Stripe.

A Stripe call can take seconds (retries, a slow network). A transaction left open
meanwhile holds SQLite's write lock (every other writer waits, then fails with
"database is locked") or PostgreSQL row locks and a snapshot ("idle in transaction").
The pattern everywhere: read, commit, call Stripe, then a short transaction that re-checks
what it changes (guarded UPDATEs).

``payments.call`` asks ``before_stripe_call`` first: a session that only read has its
transaction ended there (its objects reload on next use); a session that has sent writes
not yet committed is a bug in the caller, logged as an error (the lock stays with it).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import has_app_context
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from .extensions import db

log = logging.getLogger(__name__)

WRITES = "uncommitted_writes"


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: Any) -> None:
    session.info[WRITES] = True


@event.listens_for(Session, "do_orm_execute")
def _statement(state: ORMExecuteState) -> None:
    if state.is_update or state.is_delete or state.is_insert:
        state.session.info[WRITES] = True


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _ended(session: Session) -> None:
    session.info.pop(WRITES, None)


def holds_writes() -> bool:
    """Has the current session sent writes to the database that it has not committed
    (so it holds SQLite's write lock, or PostgreSQL row locks)?"""
    return bool(db.session().info.get(WRITES))


def before_stripe_call(action: str) -> None:
    """End the session's read-only transaction before Stripe is called; log a caller that
    would hold writes across the call."""
    if not has_app_context():
        return
    session = db.session()
    if not session.in_transaction():
        return
    if holds_writes():
        log.error(
            "%s: called with uncommitted database writes; the transaction stays open "
            "across the Stripe call (commit before calling Stripe)",
            action,
        )
        return
    if session.new or session.dirty or session.deleted:
        # Changes still only in memory (e.g. the catalog sync noting Stripe ids): nothing
        # is locked yet, and the caller commits them after the call.
        return
    session.commit()  # reads only: nothing to write, the connection goes back to the pool
