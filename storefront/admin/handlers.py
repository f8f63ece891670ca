"""Webhook handlers for what staff must see: refunds, disputes, early fraud warnings.

None of them moves an order's payment status: a dispute flags the order (it stays paid
or refunded, never goes backwards), a failed refund is shown and raises a staff notice.
Each handler is idempotent (rows keyed by the Stripe id, notices by a dedup key).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import webhooks
from ..extensions import db
from ..models import Order
from ..money import format_money
from ..payments import field
from .models import Dispute, FraudWarning
from .refunds import record_refund, staff_notice

log = logging.getLogger(__name__)

# Dispute statuses after which nothing more happens.
DISPUTE_CLOSED = frozenset({"won", "lost", "warning_closed", "prevented"})


def _id(value: Any) -> str | None:
    """An expandable field's id (Stripe sends the id, or the object when expanded)."""
    if value is None or isinstance(value, str):
        return value
    found = field(value, "id")
    return found if isinstance(found, str) else None


def order_for(obj: Any) -> Order | None:
    """The order a refund, dispute or warning concerns: by its PaymentIntent, else by the
    order id in its metadata."""
    pi_id = _id(field(obj, "payment_intent"))
    order = None
    if pi_id:
        order = db.session.scalar(select(Order).where(Order.stripe_payment_intent_id == pi_id))
    metadata_id = field(obj, "metadata", "order_id")
    if order is None and isinstance(metadata_id, str):
        order = db.session.scalar(select(Order).where(Order.public_id == metadata_id))
    if order is not None:
        webhooks.note_order(order.public_id)
    return order


def _when(timestamp: Any) -> datetime | None:
    if isinstance(timestamp, int) and not isinstance(timestamp, bool) and timestamp > 0:
        return datetime.fromtimestamp(timestamp, UTC)
    return None


@webhooks.handles("refund.created", "refund.updated", "refund.failed")
def on_refund(event: Any) -> str:
    """Store the refund as Stripe reports it; a failed one raises a staff notice."""
    obj = field(event, "data", "object")
    order = order_for(obj)
    if order is None:
        log.info("refund %s is not for an order of this shop", field(obj, "id"))
        return webhooks.IGNORED
    row, _ = record_refund(obj, order)
    if row.status == "failed":
        amount = format_money(row.amount, row.currency)
        staff_notice(
            f"Refund of {amount} for order {order.number} failed",
            f"Stripe could not send the refund {row.stripe_refund_id} of {amount} for order "
            f"{order.number} back to the customer "
            f"({row.failure_reason or 'no reason given'}).\n\n"
            "The money is back in the shop's Stripe balance. Contact the customer and "
            "refund them another way.",
            f"refund-failed:{row.stripe_refund_id}",
            order,
        )
    return webhooks.PROCESSED


@webhooks.handles("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed")
def on_dispute(event: Any) -> str:
    """Flag the order disputed (its status is left alone) and tell staff; record the end."""
    obj = field(event, "data", "object")
    order = order_for(obj)
    if order is None:
        log.info("dispute %s is not for an order of this shop", field(obj, "id"))
        return webhooks.IGNORED
    row = _store_dispute(obj, order, int(field(event, "created", default=0)))
    amount = format_money(row.amount, row.currency)
    if field(event, "type") == "charge.dispute.created" or row.is_open:
        due = row.evidence_due_by.strftime("%d %b %Y") if row.evidence_due_by else "unknown"
        staff_notice(
            f"Order {order.number} is disputed ({row.reason})",
            f"The customer's bank disputes {amount} of order {order.number} "
            f"(reason: {row.reason}). Submit evidence in the Stripe Dashboard by {due} "
            f"(dispute {row.stripe_dispute_id}).",
            f"dispute-created:{row.stripe_dispute_id}",
            order,
        )
    if row.status in DISPUTE_CLOSED:
        staff_notice(
            f"Dispute on order {order.number} {row.status}",
            f"The dispute {row.stripe_dispute_id} of {amount} on order "
            f"{order.number} is closed: {row.status}.",
            f"dispute-closed:{row.stripe_dispute_id}",
            order,
        )
    return webhooks.PROCESSED


def _store_dispute(obj: Any, order: Order, event_created: int) -> Dispute:
    stripe_id = str(field(obj, "id"))
    for attempt in (1, 2):
        row = db.session.scalar(select(Dispute).where(Dispute.stripe_dispute_id == stripe_id))
        if row is None:
            row = Dispute(order_id=order.id, stripe_dispute_id=stripe_id, stripe_updated=-1)
            db.session.add(row)
        final = row.status in DISPUTE_CLOSED if row.status else False
        if event_created >= row.stripe_updated and not final:
            row.stripe_charge_id = _id(field(obj, "charge"))
            row.amount = int(field(obj, "amount", default=0))
            row.currency = str(field(obj, "currency", default=order.currency))
            row.reason = str(field(obj, "reason", default="general"))
            row.status = str(field(obj, "status", default="needs_response"))
            row.evidence_due_by = _when(field(obj, "evidence_details", "due_by"))
            row.stripe_updated = event_created
            if row.status in DISPUTE_CLOSED and row.closed_at is None:
                row.closed_at = datetime.now(UTC)
        try:
            db.session.commit()
            return row
        except IntegrityError:  # another delivery inserted it just now
            db.session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@webhooks.handles("radar.early_fraud_warning.created")
def on_early_fraud_warning(event: Any) -> str:
    """Flag the order and suggest a refund (refunding avoids the coming dispute's fee)."""
    obj = field(event, "data", "object")
    order = order_for(obj)
    if order is None:
        log.info("early fraud warning %s is not for an order of this shop", field(obj, "id"))
        return webhooks.IGNORED
    stripe_id = str(field(obj, "id"))
    if (
        db.session.scalar(
            select(FraudWarning.id).where(FraudWarning.stripe_warning_id == stripe_id)
        )
        is None
    ):
        db.session.add(
            FraudWarning(
                order_id=order.id,
                stripe_warning_id=stripe_id,
                fraud_type=str(field(obj, "fraud_type", default="misc")),
                actionable=bool(field(obj, "actionable", default=True)),
            )
        )
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
    staff_notice(
        f"Early fraud warning on order {order.number}",
        f"The card issuer reports the payment of order {order.number} as likely fraud "
        f"({field(obj, 'fraud_type', default='misc')}). Refunding it now, before it ships, "
        "avoids a dispute and its fee.",
        f"early-fraud-warning:{stripe_id}",
        order,
    )
    return webhooks.PROCESSED
