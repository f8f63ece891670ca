"""Order state changes and exactly-once fulfilment, shared by webhooks and pages."""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from . import mail
from .extensions import db
from .models import (
    PAYABLE_STATUSES,
    TRANSITIONS,
    Order,
    OrderItem,
    OrderStatus,
    OutboxMessage,
    Product,
    utcnow,
)
from .money import format_money

log = logging.getLogger(__name__)

# Targets reached only from a paid order; every other target needs ``fulfilled_at IS NULL``.
REFUND_STATUSES = frozenset({OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED})


def _sources(status: OrderStatus) -> list[str]:
    """The statuses from which the state machine allows a move to ``status``."""
    return [str(s) for s, targets in TRANSITIONS.items() if status in targets]


def set_status(
    order: Order,
    status: str,
    *,
    error: str | None = None,
    only_from: set[OrderStatus] | None = None,
) -> bool:
    """Move an order along the state machine; returns False (and changes nothing)
    when the move would go backwards, e.g. ``failed`` after ``paid``.

    The move is one guarded ``UPDATE … WHERE status IN (<allowed sources>)`` judged
    against the row in the database, not against ``order`` as this caller loaded it:
    another worker may have fulfilled the order since (webhook, order page, reconcile),
    and a stale copy must not move it back. Unpaid targets also require
    ``fulfilled_at IS NULL``. ``order`` is refreshed either way, so the caller sees the
    status that holds now. The caller commits. ``paid`` is not set here: use
    ``fulfil_order``.

    ``only_from`` narrows the sources further: the move happens only from those of them
    that the state machine allows (e.g. ``{PENDING}`` for a move that must not revive a
    failed order).
    """
    target = OrderStatus(status)
    values: dict[str, object] = {"status": str(target), "updated_at": utcnow()}
    if target == OrderStatus.FAILED:
        values["last_payment_error"] = error
    elif target in (OrderStatus.PENDING, OrderStatus.PROCESSING):
        values["last_payment_error"] = None
    sources = _sources(target)
    if only_from is not None:
        allowed = {str(s) for s in only_from}
        sources = [s for s in sources if s in allowed]
    conditions = [Order.id == order.id, Order.status.in_(sources)]
    if target not in REFUND_STATUSES:
        conditions.append(Order.fulfilled_at.is_(None))
    db.session.flush()  # the caller's pending changes first, so the refresh keeps them
    result = db.session.execute(
        update(Order)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(order)
    if result.rowcount != 1:
        if order.status != target:
            log.info("order %s: ignoring %s -> %s", order.public_id, order.status, target)
        return False
    return True


def fulfil_order(order: Order) -> bool:
    """Mark the order paid and fulfil it, exactly once.

    The guarded UPDATE is the lock: of any number of concurrent callers (webhook,
    order page, reconcile) only the one whose UPDATE matched the row does the work
    (stock, confirmation email). Returns True for that caller. Commits.

    Why this holds on each database: SQLite lets one writer at a time, so the second
    UPDATE runs after the first committed and matches no row. PostgreSQL (READ
    COMMITTED, its default) makes the second UPDATE wait for the first one's row lock,
    then re-checks the WHERE against the committed row (``fulfilled_at`` is set) and
    updates nothing; under REPEATABLE READ/SERIALIZABLE it raises a serialization error
    instead, which the webhook answers with 500 and the retry then finds the order done.
    The paid flag, stock and outbox row commit together, so a crash in between leaves
    the order unfulfilled for the retry rather than half done; the outbox ``dedup_key``
    is a second, independent guard against a duplicate email.
    """
    now = utcnow()
    result = db.session.execute(
        update(Order)
        .where(
            Order.id == order.id,
            Order.fulfilled_at.is_(None),
            Order.status.in_([str(s) for s in PAYABLE_STATUSES]),
        )
        .values(
            status=OrderStatus.PAID,
            fulfilled_at=now,
            updated_at=now,
            last_payment_error=None,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        db.session.refresh(order)
        return False

    short = _take_stock(order)
    if short:
        _flag_short_order(order, short)
    if order.email:
        db.session.add(_confirmation_email(order))
    db.session.commit()
    db.session.refresh(order)
    log.info(
        "order %s fulfilled: %s %s",
        order.public_id,
        order.amount_total,
        order.currency,
    )
    return True


def _take_stock(order: Order) -> list[tuple[OrderItem, int]]:
    """Take the order's items from stock; the items stock could not cover, with what was
    left of each.

    Each decrement is one ``UPDATE … WHERE stock >= quantity``: two orders paid for the
    last units (their carts were filled before either paid) cannot both take them, on
    SQLite (one writer) or PostgreSQL (the second UPDATE waits for the first's row lock,
    then re-checks the committed stock). An item that is not covered takes nothing.
    """
    short: list[tuple[OrderItem, int]] = []
    for item in order.items:
        if item.product_id is None:
            continue  # no longer in the catalog
        taken = db.session.execute(
            update(Product)
            .where(
                Product.id == item.product_id,
                Product.stock.is_not(None),
                Product.stock >= item.quantity,
            )
            .values(stock=Product.stock - item.quantity)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount == 1:
            continue
        left = db.session.scalar(select(Product.stock).where(Product.id == item.product_id))
        if left is not None:  # None: stock is not tracked for it
            short.append((item, left))
    return short


def _flag_short_order(order: Order, short: list[tuple[OrderItem, int]]) -> None:
    """A paid order whose items stock could not cover: flag it, log it and tell staff (in
    the fulfilment's transaction), so nobody is oversold without a person deciding."""
    db.session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(needs_attention=True)
        .execution_options(synchronize_session=False)
    )
    lines = [f"{item.quantity} x {item.product_name} (in stock: {left})" for item, left in short]
    log.warning(
        "order %s paid but stock does not cover: %s; needs attention",
        order.public_id,
        "; ".join(lines),
    )
    notice = mail.staff_notice(
        "staff_notice",
        f"Order {order.number} is paid but short of stock",
        "\n".join(
            [
                f"Order {order.public_id} was paid "
                f"({format_money(order.amount_total, order.currency)}) "
                "but the stock does not cover:",
                "",
                *lines,
                "",
                "Nothing was taken from stock for these items. Restock them and ship, or "
                "refund them (in part or in full) from the order's page in the back office.",
            ]
        ),
        dedup_key=f"short-stock:{order.public_id}",
    )
    notice.order_id = order.id
    db.session.add(notice)


def notify_staff_of_payment(
    order: Order, what: str, payment: str, amount: int, currency: str
) -> None:
    """A payment the order cannot use (it was canceled before the money arrived, or it was
    paid already): log it and tell staff what to refund, once per payment. Commits."""
    how_much = format_money(amount, currency)
    log.error(
        "order %s %s: %s (%s) needs a refund",
        order.public_id,
        what,
        payment,
        how_much,
    )
    message = mail.staff_notice(
        "staff_notice",
        f"Refund {how_much} for order {order.number}: {what}",
        "\n".join(
            [
                f"Order {order.public_id} {what}.",
                "",
                f"Refund {how_much} of payment {payment} in the Stripe Dashboard "
                "(Payments, search for the id).",
                f"The order is {order.status}.",
            ]
        ),
        dedup_key=f"refund-needed:{payment}",
    )
    message.order_id = order.id
    if db.session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.dedup_key == message.dedup_key)
    ):
        return
    db.session.add(message)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # written by a simultaneous delivery


def _confirmation_email(order: Order) -> OutboxMessage:
    log.info("outbox: order confirmation for order %s", order.public_id)
    return mail.order_confirmation(order)
