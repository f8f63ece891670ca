"""Refunds: the staff action, and recording Stripe's refunds (action answer or webhook).

The order's payment status still moves only on ``charge.refunded`` (``webhooks``); what
is stored here is each refund as Stripe last reported it, so the order page can show a
refund that failed later, and the dashboard can count refunds by day.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .. import mail, payments
from ..billing import STAFF_RECIPIENT
from ..extensions import db
from ..models import Order, OutboxMessage, Product
from ..money import format_money
from ..payments import field
from .models import Refund

log = logging.getLogger(__name__)

# A status only moves up this ladder: an older event cannot undo a later one (a refund
# that failed stays failed even if its earlier "succeeded" event arrives last).
_RANK = {"pending": 0, "requires_action": 0, "succeeded": 1, "failed": 2, "canceled": 2}


class RefundNotAllowed(Exception):
    """The refund was refused before asking Stripe; the message is for staff."""


def refunded_so_far(order: Order) -> int:
    """What has gone (or is going) back to the customer.

    ``order.amount_refunded`` is Stripe's charge total from ``charge.refunded``, which
    only grows here; a refund that failed later was counted in it, so it is taken off.
    Refunds we know of that did not fail count too (their ``charge.refunded`` may still
    be on its way).
    """
    rows = refunds_of(order)
    moving = sum(r.amount for r in rows if r.counts)
    failed = sum(r.amount for r in rows if not r.counts)
    return max(moving, order.amount_refunded - failed, 0)


def remaining(order: Order) -> int:
    return max(order.amount_total - refunded_so_far(order), 0)


def refunds_of(order: Order) -> list[Refund]:
    return list(
        db.session.scalars(select(Refund).where(Refund.order_id == order.id).order_by(Refund.id))
    )


def restocked(order: Order) -> bool:
    return any(r.restocked for r in refunds_of(order))


def refund_order(
    order: Order, amount: int, *, reason: str, restock: bool, form_key: str, staff_email: str
) -> tuple[Refund, bool]:
    """Refund ``amount`` of a paid order at Stripe; returns the refund and whether it is new.

    ``form_key`` is the refund form's one-time key: submitting the same form twice sends
    Stripe the same idempotency key, so it refunds once and answers the same refund.
    Raises ``RefundNotAllowed`` (checked here) or ``payments.PaymentError`` (Stripe).
    """
    done = db.session.scalar(select(Refund).where(Refund.form_key == form_key))
    if done is not None and done.order_id == order.id:
        return done, False  # this form was sent before: Stripe refunded once
    if not order.is_paid or not order.stripe_payment_intent_id:
        raise RefundNotAllowed("Only a paid order can be refunded.")
    left = remaining(order)
    if amount <= 0:
        raise RefundNotAllowed("Enter an amount greater than zero.")
    if left == 0:
        raise RefundNotAllowed("This order is already refunded in full; nothing was refunded.")
    if amount > left:
        raise RefundNotAllowed(
            f"You can refund at most {format_money(left, order.currency)}: "
            f"{format_money(order.amount_total - left, order.currency)} of "
            f"{format_money(order.amount_total, order.currency)} is already refunded."
        )
    pi_id, public_id = order.stripe_payment_intent_id, order.public_id
    key = payments.idempotency_key("refund", public_id, form_key)
    db.session.commit()  # never hold a transaction open across the Stripe call
    stripe_refund = payments.create_refund(
        pi_id, amount, reason=reason, key=key, order_id=public_id
    )
    row, created = record_refund(stripe_refund, order, staff_email=staff_email, form_key=form_key)
    if created and restock and not restocked(order):
        restock_items(order, row)
    return row, created


def record_refund(
    obj: Any, order: Order, *, staff_email: str | None = None, form_key: str | None = None
) -> tuple[Refund, bool]:
    """Store a Stripe refund for ``order`` (insert or update); returns (row, inserted).

    A new refund that moves money also queues the customer's refund email (once per
    refund: the outbox's dedup key). Commits.
    """
    stripe_id = str(field(obj, "id"))
    status = str(field(obj, "status", default="pending"))
    row = db.session.scalar(select(Refund).where(Refund.stripe_refund_id == stripe_id))
    created = False
    if row is None:
        row = Refund(
            order_id=order.id,
            stripe_refund_id=stripe_id,
            amount=int(field(obj, "amount", default=0)),
            currency=str(field(obj, "currency", default=order.currency)),
            reason=field(obj, "reason"),
            status=status,
            failure_reason=field(obj, "failure_reason"),
            staff_email=staff_email,
            form_key=form_key,
            stripe_created=int(field(obj, "created", default=0)),
        )
        db.session.add(row)
        try:
            db.session.commit()
            created = True
        except IntegrityError:  # a webhook stored it at the same moment
            db.session.rollback()
            row = db.session.scalar(select(Refund).where(Refund.stripe_refund_id == stripe_id))
    if not created:
        if _RANK.get(status, 0) > _RANK.get(row.status, 0):
            row.status = status
            row.failure_reason = field(obj, "failure_reason") or row.failure_reason
        if staff_email and not row.staff_email:
            row.staff_email = staff_email
        if form_key and not row.form_key:
            row.form_key = form_key
        try:
            db.session.commit()
        except IntegrityError:  # the key is on another row already (a concurrent submit)
            db.session.rollback()
            row = db.session.scalar(select(Refund).where(Refund.stripe_refund_id == stripe_id))
    if row.counts:
        _refund_email(order, row)
    return row, created


def restock_items(order: Order, refund: Refund) -> None:
    """Put the order's items back into stock, once per order (the first refund asking).

    The flag and the stock change commit together; the guarded UPDATE on the flag makes
    a repeated call (or a second worker) change nothing.
    """
    others = select(Refund.id).where(
        Refund.order_id == order.id, Refund.id != refund.id, Refund.restocked.is_(True)
    )
    result = db.session.execute(
        update(Refund)
        .where(Refund.id == refund.id, Refund.restocked.is_(False), ~others.exists())
        .values(restocked=True)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        return
    for item in order.items:
        if item.product_id is None:
            continue
        db.session.execute(
            update(Product)
            .where(Product.id == item.product_id, Product.stock.is_not(None))
            .values(stock=Product.stock + item.quantity)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    db.session.refresh(refund)
    log.info(
        "order %s: items returned to stock with refund %s",
        order.public_id,
        refund.stripe_refund_id,
    )


def _refund_email(order: Order, refund: Refund) -> None:
    if not order.email:
        return
    message = mail.refund_confirmation(
        order, refund.amount, dedup_key=f"refund:{refund.stripe_refund_id}"
    )
    queue_message(
        kind=message.kind,
        to_email=message.to_email,
        subject=message.subject,
        body=message.body,
        html_body=message.html_body,
        dedup_key=f"refund:{refund.stripe_refund_id}",
        order_id=order.id,
    )


def staff_notice(subject: str, body: str, dedup_key: str, order: Order | None = None) -> None:
    """A notice for staff (an outbox message to ``staff``), once per ``dedup_key``."""
    queue_message(
        kind="staff_notice",
        to_email=STAFF_RECIPIENT,
        subject=subject,
        body=body,
        dedup_key=dedup_key,
        order_id=order.id if order is not None else None,
    )


def queue_message(
    *,
    kind: str,
    to_email: str,
    subject: str,
    body: str,
    dedup_key: str,
    order_id: int | None,
    html_body: str | None = None,
) -> bool:
    """Write one outbox message unless its dedup key is taken; True if written. Commits."""
    if db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == dedup_key)):
        return False
    db.session.add(
        OutboxMessage(
            kind=kind,
            to_email=to_email,
            subject=subject[:200],
            body=body,
            html_body=html_body,
            dedup_key=dedup_key,
            order_id=order_id,
        )
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    log.info("outbox: %s (%s)", kind, dedup_key)
    return True
