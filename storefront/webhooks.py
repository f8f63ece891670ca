"""Stripe webhooks: verified, stored once, processed by registered handlers.

Flow: ``POST /webhooks/stripe`` verifies the signature, then ``process_event`` stores
the event (the unique event id decides who processes it), runs the handler registered
for its type with ``handles``, and records the outcome. ``flask stripe reconcile``
feeds events it fetched from ``GET /v1/events`` through the same ``process_event``.

Handlers must be idempotent: an event can be processed again after a failed or
crashed attempt, and the same fact can arrive in several events. Order changes go
through ``fulfilment.set_status`` / ``fulfil_order``, which never move backwards.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

# Imported by name: each ``stripe.X`` goes through the SDK's lazy module __getattr__.
from stripe import StripeObject

from . import card_testing, payments
from .extensions import db
from .fulfilment import fulfil_order, notify_staff_of_payment, set_status
from .kept_insert import KeptInsert, keeps_connections
from .models import Order, OrderStatus, OutboxMessage, WebhookEvent, utcnow
from .payments import field

log = logging.getLogger(__name__)

PROCESSED = "processed"
IGNORED = "ignored"
FAILED = "failed"
# Not stored: what ``process_event`` returns for an event already taken care of.
DUPLICATE = "duplicate"

# An attempt that has not recorded an outcome after this long is taken to have crashed,
# so a redelivery (or reconcile) may process the event again. Inline work takes
# milliseconds; Stripe gives up on a delivery after ~10-30 s.
STALE_AFTER = timedelta(seconds=60)

Handler = Callable[[Any], str | None]
_handlers: dict[str, Handler] = {}

# The order an event concerns, for the per-event log line (handlers call ``note_order``).
_current_order: ContextVar[str | None] = ContextVar("webhook_order", default=None)


class HandlerFailed(Exception):
    """Stands in for a handler's exception in the log: its traceback, with the message
    cut to ``error_summary`` (class name and the first line)."""


class PermanentFailure(Exception):
    """A handler refuses an event for good (e.g. amount mismatch): recorded as ``failed``
    for a person to look at, but acknowledged, since Stripe retrying cannot fix it."""


def handles(*event_types: str) -> Callable[[Handler], Handler]:
    """Register ``fn(event) -> "processed" | "ignored" | None`` for these event types.

    ``event`` is a ``stripe.Event`` (or a dict of the same shape); read it with
    ``payments.field``. Returning None means processed. Raising means failed: the
    event is answered 500 so Stripe retries, and is processed again then. Handlers
    may commit; ``process_event`` commits after them too.
    """

    def register(fn: Handler) -> Handler:
        for event_type in event_types:
            existing = _handlers.get(event_type)
            # Re-importing a module registers the same function again; two different
            # handlers for one type would be a bug.
            if existing is not None and _qualname(existing) != _qualname(fn):
                raise ValueError(f"{event_type} already handled by {_qualname(existing)}")
            _handlers[event_type] = fn
        return fn

    return register


def handler_for(event_type: str) -> Handler | None:
    return _handlers.get(event_type)


def handled_types() -> list[str]:
    return sorted(_handlers)


def note_order(public_id: str | None) -> None:
    """Tell the per-event log line which order the event concerned."""
    _current_order.set(public_id)


def _qualname(fn: Handler) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


# --------------------------------------------------------------------------- processing


def _payload_text(event: Any) -> str:
    # default=str: the SDK turns *_decimal fields into Decimal.
    data = event.to_dict() if isinstance(event, StripeObject) else event
    return json.dumps(data, separators=(",", ":"), default=str)


# Built once; each delivery only binds its values.
_INSERT_EVENT = insert(WebhookEvent.__table__)
# The columns ``_claim`` gives values for (all but the id).
_EVENT_COLUMNS = (
    "stripe_event_id",
    "type",
    "object_id",
    "stripe_created",
    "api_version",
    "payload",
    "received_at",
    "attempted_at",
    "outcome",
    "processed_at",
    "attempts",
)
# A delivery's INSERT, on a connection each process keeps in autocommit mode.
_kept_insert_event = KeptInsert(
    _INSERT_EVENT.returning(WebhookEvent.__table__.c.id), _EVENT_COLUMNS
)


def init_app(app: Flask) -> None:
    """Prepare the kept INSERT for the app's engine at start-up (see ``KeptInsert.prepare``)."""
    with app.app_context():
        engine = db.engine
        if keeps_connections(engine):
            _kept_insert_event.prepare(engine)


def _insert_event(values: dict[str, Any]) -> int | None:
    """INSERT the event row, committed; its id, or None when the event id is stored already.

    A delivery (the session has no transaction yet) INSERTs in autocommit mode: the
    statement is its own transaction, so SQLite's write lock is held only while the
    statement runs (in a session transaction it would be held across SQLAlchemy's commit
    bookkeeping, and the other workers' deliveries would wait in SQLite's busy handler,
    which sleeps 1, 2, 5, 10 ms... between tries). It runs on a connection the process
    keeps for it (``KeptInsert``), not one checked out of the pool and switched to
    autocommit and back for one statement. A caller with a transaction of its own
    (reconcile, a test) gets the INSERT in that transaction, committed, as before: a
    second connection would wait on that caller's own lock.
    """
    # The request's session, only if something made one (asking would make one).
    session = db.session() if db.session.registry.has() else None
    engine = db.engine
    if (session is not None and session.in_transaction()) or not keeps_connections(engine):
        session = db.session()
        try:
            row_id = session.execute(_INSERT_EVENT, values).inserted_primary_key[0]
            session.commit()
            return row_id
        except IntegrityError:
            session.rollback()
            return None
    return _kept_insert_event(engine, values)


@dataclass(frozen=True)
class Claim:
    row_id: int
    finished: bool  # stored with its outcome already (an event type no handler takes)


def _claim(event: Any, event_id: str, payload: str | None, *, ignored: bool) -> Claim | None:
    """Store the event, or take over a stored one that failed or crashed.

    Returns the claim when this caller must process the event, None when another
    attempt processed it (or is processing it right now). The database decides:
    an INSERT against the unique event id, or a guarded UPDATE on a failed row, so
    two concurrent deliveries can never both win. An ``ignored`` event (no handler)
    is stored as done in that same INSERT: one transaction, nothing left to record.
    """
    obj_id = field(event, "data", "object", "id")
    now = utcnow()
    # A plain INSERT (no ORM object to track, flush and expire): the row is only written.
    values = {
        "stripe_event_id": event_id,
        "type": str(field(event, "type", default="")),
        "object_id": obj_id if isinstance(obj_id, str) else None,
        "stripe_created": int(field(event, "created", default=0)),
        "api_version": field(event, "api_version"),
        "payload": payload if payload is not None else _payload_text(event),
        "received_at": now,
        "attempted_at": now,
        "outcome": IGNORED if ignored else None,
        "processed_at": now if ignored else None,
        "attempts": 1,
    }
    row_id = _insert_event(values)
    if row_id is not None:
        return Claim(row_id, finished=ignored)

    now = utcnow()
    result = db.session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.stripe_event_id == event_id,
            or_(
                WebhookEvent.outcome == FAILED,
                (WebhookEvent.outcome.is_(None)) & (_attempt_started() < now - STALE_AFTER),
            ),
        )
        # received_at stays the first delivery; attempted_at marks this attempt's start
        # (what staleness is measured from).
        .values(
            outcome=None,
            error=None,
            processed_at=None,
            attempted_at=now,
            attempts=WebhookEvent.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if result.rowcount != 1:
        return None
    row_id = db.session.scalar(
        select(WebhookEvent.id).where(WebhookEvent.stripe_event_id == event_id)
    )
    return Claim(row_id, finished=False)


def _attempt_started():
    # Rows stored before attempted_at existed: their latest attempt started at received_at.
    return func.coalesce(WebhookEvent.attempted_at, WebhookEvent.received_at)


def _record(row_id: int, outcome: str, error: str | None = None) -> None:
    """Record the outcome; the caller commits (with the handler's own changes)."""
    db.session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == row_id)
        .values(outcome=outcome, error=error, processed_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _finish(row_id: int, outcome: str, error: str | None = None) -> None:
    _record(row_id, outcome, error)
    db.session.commit()


def process_event(event: Any, *, source: str = "webhook", payload: str | None = None) -> str:
    """Store and process one verified event, exactly once per successful attempt.

    Returns "processed", "ignored", "failed" or "duplicate" (already processed or
    being processed by a concurrent delivery; nothing done). Used by the webhook
    endpoint and by ``flask stripe reconcile``. ``payload`` is the body as Stripe sent
    it, stored as is; without it the event is serialized for storage.
    """
    started = time.monotonic()
    event_id = str(field(event, "id", default=""))
    event_type = str(field(event, "type", default=""))
    obj_id = field(event, "data", "object", "id")
    token = _current_order.set(_metadata_order_id(event))
    error: str | None = None
    try:
        handler = _handlers.get(event_type)
        claim = _claim(event, event_id, payload, ignored=handler is None)
        if claim is None:
            outcome = DUPLICATE
        elif claim.finished:
            outcome = IGNORED
        else:
            outcome, error = _run_handler(event, handler, claim.row_id)
    finally:
        order_id = _current_order.get()
        _current_order.reset(token)
    level = logging.WARNING if outcome == FAILED else logging.INFO
    log.log(
        level,
        "stripe event %s %s object=%s order=%s outcome=%s source=%s %dms%s",
        event_id,
        event_type,
        obj_id,
        order_id,
        outcome,
        source,
        (time.monotonic() - started) * 1000,
        f" error={error}" if error else "",
    )
    return outcome


def _run_handler(event: Any, handler: Handler | None, row_id: int) -> tuple[str, str | None]:
    """Run the handler and record its outcome on the event's row: on success in the same
    transaction as the handler's own last changes, so one commit does both."""
    if handler is None:
        _finish(row_id, IGNORED)
        return IGNORED, None
    try:
        outcome = handler(event) or PROCESSED
        if outcome not in (PROCESSED, IGNORED):
            raise ValueError(f"handler returned {outcome!r}")
        _record(row_id, outcome)
        db.session.commit()
    except PermanentFailure as err:
        db.session.rollback()
        error = "permanent: " + _first_line(err)
        _finish(row_id, FAILED, error)
        return FAILED, error
    except Exception as err:
        db.session.rollback()
        summary = error_summary(err)
        # A record of its own with the traceback, so a handler bug can be found; the
        # exception's message is cut to the summary, as in the stored error and the
        # event's log line (a message may quote the payload or a statement's parameters).
        stand_in = HandlerFailed(summary).with_traceback(err.__traceback__)
        log.error(
            "stripe event %s: handler %s failed",
            field(event, "id"),
            _qualname(handler),
            exc_info=(HandlerFailed, stand_in, err.__traceback__),
        )
        _finish(row_id, FAILED, summary)
        return FAILED, summary
    return outcome, None


# How much of an exception's message is stored and logged for a failed event.
ERROR_SUMMARY_CHARS = 200


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    text = lines[0].strip() if lines else ""
    if len(text) > ERROR_SUMMARY_CHARS:
        text = text[: ERROR_SUMMARY_CHARS - 3] + "..."
    return text


def error_summary(err: BaseException) -> str:
    """``ClassName: first line of the message``, at most one short line.

    A database error's message goes on with the SQL and ``[parameters: ...]`` (payload
    values, emails) on further lines, and a message may quote the payload; neither belongs
    in the events table or the log.
    """
    first = _first_line(err)
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def _metadata_order_id(event: Any) -> str | None:
    value = field(event, "data", "object", "metadata", "order_id")
    return value if isinstance(value, str) else None


def last_error(event_id: str) -> str | None:
    row = db.session.scalar(select(WebhookEvent).where(WebhookEvent.stripe_event_id == event_id))
    return row.error if row else None


# --------------------------------------------------------------------------- payment handlers
# PaymentIntents carry ``metadata.order_id`` (the order's public id); Checkout copies it
# onto its PaymentIntent too. A PaymentIntent that is not the order's current one (an
# abandoned attempt) may still mark the order paid (the money arrived) but never fail,
# cancel or "un-process" it.


def _order_for_payment(pi_id: str | None, metadata_order_id: str | None) -> Order | None:
    if pi_id:
        order = db.session.scalar(select(Order).where(Order.stripe_payment_intent_id == pi_id))
        if order is not None:
            return order
    if metadata_order_id:
        return db.session.scalar(select(Order).where(Order.public_id == metadata_order_id))
    return None


def _charge_order(charge: Any) -> tuple[Order | None, str | None]:
    """The order a charge paid and the charge's PaymentIntent id; no order when the charge
    is not this shop's, or paid another PaymentIntent than the order's (logged)."""
    pi_id = field(charge, "payment_intent")
    pi_id = pi_id if isinstance(pi_id, str) or pi_id is None else field(pi_id, "id")
    order = _order_for_payment(pi_id, field(charge, "metadata", "order_id"))
    if order is None or (pi_id and order.stripe_payment_intent_id not in (None, pi_id)):
        log.info("charge %s is not for an order of this shop", field(charge, "id"))
        return None, pi_id
    note_order(order.public_id)
    return order, pi_id


def _pi_order(pi: Any) -> Order | None:
    order = _order_for_payment(field(pi, "id"), field(pi, "metadata", "order_id"))
    if order is None:
        log.info("payment intent %s is not for an order of this shop", field(pi, "id"))
        return None
    note_order(order.public_id)
    if _checkout_payment(order, field(pi, "id")):
        # Paid on Stripe Checkout: its checkout.session.* events fulfil the order, with the
        # email Checkout collected (this PaymentIntent does not carry it).
        return None
    return order


def _checkout_payment(order: Order, pi_id: str | None) -> bool:
    """Is ``pi_id`` the payment of the order's Checkout Session, not yet recorded by it?"""
    return (
        order.stripe_checkout_session_id is not None
        and order.stripe_payment_intent_id is None
        and pi_id is not None
    )


def _is_current(order: Order, pi_id: str) -> bool:
    """Is ``pi_id`` the payment attempt the order follows? A Checkout order's state comes
    from its session's events instead (the customer may retry a decline on Stripe's page)."""
    if order.stripe_payment_intent_id is None:
        return order.stripe_checkout_session_id is None
    return order.stripe_payment_intent_id == pi_id


def _card_used(pi: Any) -> tuple[str | None, str | None]:
    """(brand, last4) of the card that paid, when the PaymentIntent comes with its charge
    expanded (the order page's check); a webhook's PaymentIntent names only the charge's
    id, and ``charge.succeeded`` records the card instead: no Stripe call on this path."""
    return _card_of(field(pi, "latest_charge"))


def _card_of(charge: Any) -> tuple[str | None, str | None]:
    card = field(charge, "payment_method_details", "card")
    brand, last4 = field(card, "brand"), field(card, "last4")
    if not (isinstance(brand, str) and isinstance(last4, str)):
        return None, None
    return brand[:30], last4[:4]


def _record_card(order: Order, brand: str | None, last4: str | None) -> None:
    if brand and last4 and order.card_last4 is None:
        order.card_brand, order.card_last4 = brand, last4
        db.session.commit()


def _payment_succeeded(
    order: Order,
    pi_id: str,
    amount: Any,
    currency: Any,
    card: tuple[str | None, str | None] = (None, None),
) -> str:
    """Mark the order paid by ``pi_id`` and fulfil it once; refuses a wrong amount."""
    if amount != order.amount_total or currency != order.currency:
        _check_mismatch(order, pi_id, amount, currency)
    if order.stripe_payment_intent_id != pi_id and order.fulfilled_at is None:
        if order.stripe_payment_intent_id is not None:
            log.warning(
                "order %s paid by %s, not its current payment %s",
                order.public_id,
                pi_id,
                order.stripe_payment_intent_id,
            )
        # Refund events find the order by the PaymentIntent that actually paid.
        order.stripe_payment_intent_id = pi_id
        db.session.commit()
    _record_card(order, *card)  # for the receipt, before the confirmation email is written
    if fulfil_order(order):
        return PROCESSED
    if order.fulfilled_at is None:
        # e.g. canceled before the money arrived: a person must refund it.
        notify_staff_of_payment(
            order, f"was paid after it was {order.status}", pi_id, amount, currency
        )
    elif order.stripe_payment_intent_id != pi_id:
        notify_staff_of_payment(
            order, f"was paid twice: {pi_id} is a second payment", pi_id, amount, currency
        )
    return PROCESSED


# How long after its last change an unpaid order whose payment disagrees with it is
# looked at again (the webhook answers 500, Stripe redelivers) before staff are told:
# a Pay in another tab may be between its database commit and its Stripe update.
MISMATCH_RETRY_WINDOW = timedelta(minutes=10)


class AmountMismatch(Exception):
    """The payment's amount is not (yet) the order's: retried, not acknowledged."""


def _check_mismatch(order: Order, pi_id: str, amount: Any, currency: Any) -> None:
    """Look at the order again under its row lock; returns when it now agrees with the
    payment. Else raises ``AmountMismatch`` (500: Stripe redelivers) while the order may
    still change, and ``PermanentFailure`` plus a staff notice once it cannot."""
    # A no-op UPDATE takes the row lock; updated_at is kept (its onupdate would reset it).
    db.session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(amount_total=Order.amount_total, updated_at=Order.updated_at)
    )
    db.session.refresh(order)
    if amount == order.amount_total and currency == order.currency:
        return
    changed = order.updated_at
    if changed is not None and changed.tzinfo is None:
        changed = changed.replace(tzinfo=utcnow().tzinfo)
    if (
        order.fulfilled_at is None
        and order.status in (OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.FAILED)
        and changed is not None
        and utcnow() - changed < MISMATCH_RETRY_WINDOW
    ):
        db.session.rollback()
        log.warning(
            "order %s: payment %s is %s %s but the order is %s %s; will look again",
            order.public_id,
            pi_id,
            amount,
            currency,
            order.amount_total,
            order.currency,
        )
        raise AmountMismatch(f"amount mismatch for order {order.public_id}; retrying")
    log.error(
        "order %s NOT fulfilled: payment %s is %s %s but the order is %s %s; needs review",
        order.public_id,
        pi_id,
        amount,
        currency,
        order.amount_total,
        order.currency,
    )
    _staff_notice(
        "staff_amount_mismatch",
        f"Order {order.number}: payment {pi_id} does not match the order",
        f"Payment {pi_id} took {amount} {currency} (minor units) for order "
        f"{order.public_id}, whose total is {order.amount_total} {order.currency}. The order "
        "was NOT fulfilled. Check what the customer paid for in the Stripe Dashboard, then "
        "refund the payment or fulfil the order by hand.",
        f"amount-mismatch:{pi_id}",
        order,
    )
    raise PermanentFailure(f"amount mismatch for order {order.public_id}")


def _staff_notice(kind: str, subject: str, body: str, dedup_key: str, order: Order) -> None:
    """A notice for the shop's staff in the outbox, written once (the dedup key decides)."""
    from . import mail

    db.session.rollback()
    if db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == dedup_key)):
        return
    notice = mail.staff_notice(kind, subject, body, dedup_key=dedup_key)
    notice.order_id = order.id
    db.session.add(notice)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()


def apply_payment_intent(order: Order, pi: Any) -> str:
    """Move the order to what the PaymentIntent's status says (never backwards).

    Also for the order page's server-side check: pass a PaymentIntent retrieved from
    Stripe. Fulfils on ``succeeded`` (exactly once); raises ``PermanentFailure`` when the
    amount or currency is not the order's. Commits.
    """
    status = field(pi, "status")
    pi_id = field(pi, "id")
    if status == "succeeded":
        card = _card_used(pi) if order.fulfilled_at is None else (None, None)
        return _payment_succeeded(order, pi_id, field(pi, "amount"), field(pi, "currency"), card)
    if not _is_current(order, pi_id):
        return IGNORED  # an older attempt: the order follows its current PaymentIntent
    changed = False
    if status == "processing":
        changed = set_status(order, OrderStatus.PROCESSING)
    elif status == "canceled":
        changed = set_status(order, OrderStatus.CANCELED)
    elif status == "requires_payment_method" and field(pi, "last_payment_error"):
        card_testing.record_decline(pi)
        message = field(pi, "last_payment_error", "message") or "Your payment failed."
        changed = set_status(order, OrderStatus.FAILED, error=str(message)[:500])
    if changed:
        db.session.commit()
    return PROCESSED


@handles("payment_intent.succeeded", "payment_intent.canceled")
def on_payment_intent_final(event: Any) -> str:
    """Succeeded and canceled are final for a PaymentIntent: the event alone is enough."""
    pi = field(event, "data", "object")
    order = _pi_order(pi)
    if order is None:
        return IGNORED
    return apply_payment_intent(order, pi)


@handles("payment_intent.processing", "payment_intent.payment_failed")
def on_payment_intent_changed(event: Any) -> str:
    """Processing and failed can be overtaken (retry, success), and events can arrive out of
    order, so act on the PaymentIntent as Stripe has it now."""
    pi = field(event, "data", "object")
    if field(event, "type") == "payment_intent.payment_failed":
        # The decline this event reports, even if the intent has moved on since.
        card_testing.record_decline(pi)
    order = _pi_order(pi)
    if order is None:
        return IGNORED
    if not _is_current(order, field(pi, "id")) and order.fulfilled_at is not None:
        return IGNORED
    if payments.is_configured():
        pi = payments.payment_intent_now(field(pi, "id"))
    return apply_payment_intent(order, pi)


@handles("charge.succeeded")
def on_charge_succeeded(event: Any) -> str:
    """Keep the card that paid (brand and last 4) for the order page and the staff view."""
    charge = field(event, "data", "object")
    order, _ = _charge_order(charge)
    if order is None:
        return IGNORED
    _record_card(order, *_card_of(charge))
    return PROCESSED


@handles("charge.refunded")
def on_charge_refunded(event: Any) -> str:
    """Record the refunded amount; ``amount_refunded`` only grows, so order does not matter."""
    charge = field(event, "data", "object")
    order, pi_id = _charge_order(charge)
    if order is None:
        return IGNORED
    if not order.is_paid:
        # The refund overtook payment_intent.succeeded (out of order, or missed): a refunded
        # charge was paid, so record the payment first; the late success then changes nothing.
        if field(charge, "paid") is not True and field(charge, "status") != "succeeded":
            return IGNORED
        if _checkout_payment(order, pi_id):
            # Only checkout.session.completed can fulfil a Checkout order (it has the email):
            # fail for now, so Stripe redelivers once the session has been processed.
            raise RuntimeError("refund arrived before its checkout session completed")
        card = field(charge, "payment_method_details", "card")
        _payment_succeeded(
            order,
            pi_id,
            field(charge, "amount"),
            field(charge, "currency"),
            (field(card, "brand"), field(card, "last4")),
        )
        if not order.is_paid:
            return PROCESSED
    refunded = min(int(field(charge, "amount_refunded", default=0)), order.amount_total)
    # Guarded like set_status: judged against the row now, not this worker's copy, so a
    # late partial refund can never lower a total another worker already raised.
    result = db.session.execute(
        update(Order)
        .where(Order.id == order.id, Order.amount_refunded < refunded)
        .values(amount_refunded=refunded, refunded_at=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(order)
    if result.rowcount != 1:
        return PROCESSED  # an older or repeated refund event
    # The status follows the stored total (set_status never moves refunded back to partial).
    full = order.amount_refunded >= order.amount_total or field(charge, "refunded") is True
    set_status(order, OrderStatus.REFUNDED if full else OrderStatus.PARTIALLY_REFUNDED)
    db.session.commit()
    log.info("order %s refunded %s of %s", order.public_id, refunded, order.amount_total)
    return PROCESSED
