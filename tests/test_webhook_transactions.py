"""How much database work one delivery costs: an ignored event is one statement that
commits itself, a handled one two transactions (the claim, then the handler's changes
with the outcome), the body is stored as it came, and a failing handler still has its
failure recorded."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sqlalchemy import event, select

from storefront import kept_insert, webhooks
from storefront.extensions import db
from storefront.models import WebhookEvent
from tests.webhook_helpers import make_event, make_order, payment_intent, post_event, sign


class Commits:
    """Counts the commits (and webhook_event writes) the app makes while the block runs;
    each write is noted with whether it ran in autocommit mode (its own transaction, so
    SQLite's write lock is released when the statement ends, not at a later COMMIT).
    Writes through SQLAlchemy are seen with its events, the delivery's INSERT on a kept
    connection (``storefront.kept_insert``) where it runs its statement."""

    def __init__(self, app):
        with app.app_context():
            self.engine = db.engine
        self.commits = 0
        self.writes: list[str] = []
        self.autocommit: list[bool] = []

    def _commit(self, _conn):
        self.commits += 1

    def _sql(self, _conn, cursor, statement, *_args):
        self._note(statement, cursor.connection)

    def _note(self, statement, dbapi_connection):
        if statement.startswith(("INSERT INTO webhook_event", "UPDATE webhook_event")):
            self.writes.append(statement.split()[0])
            self.autocommit.append(_autocommits(dbapi_connection))

    def __enter__(self):
        event.listen(self.engine, "commit", self._commit)
        event.listen(self.engine, "before_cursor_execute", self._sql)
        original = self._kept_execute = kept_insert._Kept._execute

        def execute(kept, conn, params):
            self._note(kept.sql, conn)
            return original(kept, conn, params)

        kept_insert._Kept._execute = execute
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "before_cursor_execute", self._sql)
        kept_insert._Kept._execute = self._kept_execute


def _autocommits(dbapi_connection) -> bool:
    """Does each statement commit on its own on this DB-API connection?"""
    if isinstance(dbapi_connection, sqlite3.Connection):
        return dbapi_connection.isolation_level is None  # no implicit BEGIN
    return bool(dbapi_connection.autocommit)  # psycopg


def row(app, event_id: str) -> WebhookEvent:
    with app.app_context():
        found = db.session.scalar(
            select(WebhookEvent).where(WebhookEvent.stripe_event_id == event_id)
        )
        db.session.expunge(found)
        return found


def test_an_event_no_handler_takes_is_stored_done_in_one_statement(app, client):
    evt = make_event("customer.updated", {"id": "cus_1", "object": "customer"})
    with Commits(app) as seen:
        response = post_event(client, evt)
    assert response.json == {"received": True, "outcome": "ignored"}
    # One INSERT that commits itself: the write lock is not held across SQLAlchemy's
    # work between an INSERT and a COMMIT (the other workers' deliveries wait for it).
    assert (seen.writes, seen.autocommit, seen.commits) == (["INSERT"], [True], 0)
    stored = row(app, evt["id"])
    assert stored.outcome == "ignored" and stored.processed_at is not None
    assert stored.attempts == 1


def test_deliveries_insert_on_one_kept_connection_closed_with_the_engine(app, client):
    # Not a pool checkout (and autocommit switch) per delivery: one connection per process,
    # in autocommit mode, closed when the app's engine is disposed.
    events = [
        make_event("customer.updated", {"id": f"cus_k{n}", "object": "customer"}) for n in range(2)
    ]
    with app.app_context():
        engine = db.engine
    kept = webhooks._kept_insert_event
    assert post_event(client, events[0]).json["outcome"] == "ignored"
    [conn] = kept.connections(engine)
    assert _autocommits(conn)
    assert post_event(client, events[1]).json["outcome"] == "ignored"
    assert kept.connections(engine) == [conn]
    first = row(app, events[0]["id"])
    assert first.received_at is not None and first.received_at == first.processed_at
    engine.dispose()
    assert kept.connections(engine) == []
    with pytest.raises(Exception, match="(?i)closed"):
        conn.cursor().execute("SELECT 1")


def test_a_handled_event_commits_its_changes_and_outcome_together(app, client):
    public_id = make_order(app, pi_id="pi_tx_1")
    evt = make_event(
        "payment_intent.succeeded",
        payment_intent(public_id, pi_id="pi_tx_1", status="succeeded", amount=3600),
    )
    with Commits(app) as seen:
        response = post_event(client, evt)
    assert response.json == {"received": True, "outcome": "processed"}
    # The claim; then fulfilment (which commits its paid flag, stock and email at once)
    # and the outcome. Before: the claim, the handler, and the outcome on its own.
    assert seen.writes == ["INSERT", "UPDATE"]
    assert seen.autocommit == [True, False]  # the claim stands alone; the rest is one unit
    assert seen.commits <= 2
    assert row(app, evt["id"]).outcome == "processed"


def test_a_caller_with_a_transaction_stores_the_event_in_it(app):
    # Reconcile, or a test: its session has written and not committed. A connection of
    # the event's own would wait for that session's write lock (forever, on SQLite).
    public_id = make_order(app, pi_id="pi_tx_3")
    evt = make_event("customer.updated", {"id": "cus_3", "object": "customer"})
    with app.app_context():
        from storefront.models import Order

        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        order.email = "caller@example.com"
        db.session.flush()  # holds the write lock
        with Commits(app) as seen:
            assert webhooks.process_event(evt) == "ignored"
    assert (seen.writes, seen.autocommit, seen.commits) == (["INSERT"], [False], 1)
    from tests.webhook_helpers import get_order

    assert get_order(app, public_id).email == "caller@example.com"  # committed with it
    assert row(app, evt["id"]).outcome == "ignored"


def test_the_body_is_stored_as_it_came(app, client):
    # Stripe sends indented JSON; what it signed is what we keep (no re-serialization).
    body = json.dumps(
        make_event("customer.updated", {"id": "cus_2", "object": "customer"}), indent=2
    )
    response = client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    assert row(app, json.loads(body)["id"]).payload == body


@pytest.mark.parametrize("permanent", [False, True])
def test_a_failing_handler_leaves_its_changes_out_and_its_failure_recorded(
    app, client, monkeypatch, permanent
):
    public_id = make_order(app, pi_id="pi_tx_2")

    def failing(_event):
        from storefront.models import Order

        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        order.email = "changed@example.com"
        db.session.flush()
        if permanent:
            raise webhooks.PermanentFailure("nope")
        raise RuntimeError("boom")

    monkeypatch.setitem(webhooks._handlers, "payment_intent.succeeded", failing)
    evt = make_event(
        "payment_intent.succeeded",
        payment_intent(public_id, pi_id="pi_tx_2", status="succeeded", amount=3600),
    )
    response = post_event(client, evt)
    assert response.status_code == (200 if permanent else 500)
    stored = row(app, evt["id"])
    assert stored.outcome == "failed"
    assert stored.error == ("permanent: nope" if permanent else "RuntimeError: boom")
    from tests.webhook_helpers import get_order

    assert get_order(app, public_id).email != "changed@example.com"
