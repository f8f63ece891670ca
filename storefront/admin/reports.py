"""The dashboard's figures: revenue per day and currency, counts, what needs attention."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from markupsafe import Markup
from sqlalchemy import func, select

from ..billing import STAFF_RECIPIENT
from ..extensions import db
from ..models import Order, OrderStatus, OutboxMessage, WebhookEvent
from . import chart
from .models import REFUND_NOT_MOVING, Dispute, FraudWarning, NoticeRead, Refund

PAID_STATUSES = [
    str(s) for s in (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED)
]


def last_days(today: date, count: int) -> list[date]:
    return [today - timedelta(days=count - 1 - i) for i in range(count)]


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    # Stored times are UTC; columns are naive on SQLite, so compare naive UTC.
    return datetime.combine(first, time.min), datetime.combine(last + timedelta(days=1), time.min)


def _day(value: datetime) -> date:
    return (value.astimezone(UTC) if value.tzinfo else value).date()


def daily_series(first: date, last: date) -> dict[str, dict[date, dict[str, int]]]:
    """``{currency: {day: {"gross", "refunds", "net"}}}`` for days in [first, last] (UTC).

    Gross: orders paid that day (when they were fulfilled), whatever happened later.
    Refunds: refunds made that day that did not fail or get canceled, and refunds known only
    from Stripe's charge total (``charge.refunded``) on the day that total last rose. Net:
    the difference.
    """
    start, end = _bounds(first, last)
    series: dict[str, dict[date, dict[str, int]]] = {}

    def cell(currency: str, day: date) -> dict[str, int]:
        return series.setdefault(currency, {}).setdefault(day, {"gross": 0, "refunds": 0, "net": 0})

    paid = db.session.execute(
        select(Order.fulfilled_at, Order.currency, Order.amount_total).where(
            Order.fulfilled_at >= start,
            Order.fulfilled_at < end,
            Order.status.in_(PAID_STATUSES),
        )
    )
    for fulfilled_at, currency, amount in paid:
        cell(currency, _day(fulfilled_at))["gross"] += amount
    refunds = db.session.execute(
        select(Refund.created_at, Refund.currency, Refund.amount).where(
            Refund.created_at >= start,
            Refund.created_at < end,
            Refund.status.not_in(list(REFUND_NOT_MOVING)),
        )
    )
    for created_at, currency, amount in refunds:
        cell(currency, _day(created_at))["refunds"] += amount
    for refunded_at, currency, amount in _refunds_without_rows(start, end):
        cell(currency, _day(refunded_at))["refunds"] += amount
    for days in series.values():
        for values in days.values():
            values["net"] = values["gross"] - values["refunds"]
    return dict(sorted(series.items()))


def _refunds_without_rows(start: datetime, end: datetime):
    """``(refunded_at, currency, amount)`` of the refunded amounts no refund row explains:
    an order's ``amount_refunded`` (Stripe's charge total from ``charge.refunded``) beyond
    its refund rows, failed ones included as that total never drops here, the way
    ``refunds.refunded_so_far`` counts them. Such refunds were made before the refund table
    existed, or their ``refund.*`` events never came (an endpoint not subscribed to them)
    or have not come yet."""
    rows = (
        select(Refund.order_id, func.sum(Refund.amount).label("amount"))
        .group_by(Refund.order_id)
        .subquery()
    )
    explained = func.coalesce(rows.c.amount, 0)
    return db.session.execute(
        select(Order.refunded_at, Order.currency, Order.amount_refunded - explained)
        .outerjoin(rows, rows.c.order_id == Order.id)
        .where(
            Order.refunded_at >= start,
            Order.refunded_at < end,
            Order.amount_refunded > explained,
        )
    )


def chart_svg(currency: str, days: list[date], rows: dict[date, dict[str, int]]) -> Markup:
    return chart.bar_chart(currency, days, rows)


def status_counts() -> list[tuple[str, int]]:
    counts = dict(
        db.session.execute(select(Order.status, func.count(Order.id)).group_by(Order.status)).all()
    )
    return [(s.value, counts.get(s.value, 0)) for s in OrderStatus]


def declined_count(since: date) -> int:
    """Declined payment attempts since a day: Stripe's ``payment_intent.payment_failed``
    (one per decline, also a retried order's earlier ones) and Checkout's async failures."""
    start, _ = _bounds(since, since)
    return (
        db.session.scalar(
            select(func.count(WebhookEvent.id)).where(
                WebhookEvent.type.in_(
                    ["payment_intent.payment_failed", "checkout.session.async_payment_failed"]
                ),
                WebhookEvent.received_at >= start,
            )
        )
        or 0
    )


def unread_notice_count() -> int:
    return (
        db.session.scalar(
            select(func.count(OutboxMessage.id))
            .outerjoin(NoticeRead, NoticeRead.outbox_message_id == OutboxMessage.id)
            .where(OutboxMessage.to_email == STAFF_RECIPIENT, NoticeRead.id.is_(None))
        )
        or 0
    )


def alerts() -> dict[str, Any]:
    """What needs a person now: open disputes, fraud warnings on orders not refunded in
    full, refunds that failed, paid orders the stock could not cover."""
    disputes = db.session.scalars(
        select(Dispute)
        .where(Dispute.status.not_in(["won", "lost", "warning_closed", "prevented"]))
        .order_by(Dispute.evidence_due_by)
    ).all()
    warnings = db.session.scalars(
        select(FraudWarning)
        .join(Order, Order.id == FraudWarning.order_id)
        .where(Order.status != OrderStatus.REFUNDED)
        .order_by(FraudWarning.id.desc())
    ).all()
    failed_refunds = db.session.scalars(
        select(Refund).where(Refund.status == "failed").order_by(Refund.id.desc()).limit(20)
    ).all()
    # Paid orders the stock could not cover, until refunded in full.
    short_orders = db.session.scalars(
        select(Order)
        .where(Order.needs_attention.is_(True), Order.status != OrderStatus.REFUNDED)
        .order_by(Order.id.desc())
        .limit(20)
    ).all()
    return {
        "disputes": disputes,
        "warnings": warnings,
        "failed_refunds": failed_refunds,
        "short_orders": short_orders,
    }
