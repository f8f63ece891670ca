"""The back office's tables: audit log, refunds, disputes, fraud warnings, notice reads.

Refunds, disputes and early fraud warnings are Stripe objects as last reported by Stripe
(the refund action's answer and webhooks); the order they concern is found by its
PaymentIntent. They never change an order's payment status by themselves: the order
moves on ``charge.refunded`` only (``webhooks.on_charge_refunded``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..models import Order, utcnow

# Stripe's refund reasons a person may choose (Stripe also sets others itself).
REFUND_REASONS = {
    "requested_by_customer": "Requested by the customer",
    "duplicate": "Duplicate payment",
    "fraudulent": "Fraudulent payment",
}
# Refund statuses whose money does not go back to the customer.
REFUND_NOT_MOVING = frozenset({"failed", "canceled"})


class AuditEntry(db.Model):
    """One staff action: who, what, which order, when, and how it ended."""

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    staff_email: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(40), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    # What else the action was about (a Stripe event id, a refund id), if anything.
    target: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(20))  # "ok" | "refused" | "error"
    detail: Mapped[str] = mapped_column(Text, default="")

    order: Mapped[Order | None] = relationship()


class Refund(db.Model):
    """A Stripe refund of an order's payment, made here or in the Stripe Dashboard."""

    __tablename__ = "refund"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    stripe_refund_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(40))
    # Stripe's: pending | requires_action | succeeded | failed | canceled
    status: Mapped[str] = mapped_column(String(20))
    failure_reason: Mapped[str | None] = mapped_column(String(100))
    # Who asked for it here (None: made elsewhere, e.g. the Stripe Dashboard), and the
    # one-time key of the form they sent (a second submit of that form finds this row).
    staff_email: Mapped[str | None] = mapped_column(String(320))
    form_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    restocked: Mapped[bool] = mapped_column(default=False)
    stripe_created: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    order: Mapped[Order] = relationship()

    @property
    def counts(self) -> bool:
        """Does this refund's money go (or is it going) back to the customer?"""
        return self.status not in REFUND_NOT_MOVING


class Dispute(db.Model):
    """A chargeback on an order's payment (``charge.dispute.*`` events)."""

    __tablename__ = "dispute"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    stripe_dispute_id: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(30))
    evidence_due_by: Mapped[datetime | None] = mapped_column(default=None)
    # The newest Stripe event applied (its ``created``), so an older one cannot win.
    stripe_updated: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)

    order: Mapped[Order] = relationship()

    @property
    def is_open(self) -> bool:
        return self.status not in ("won", "lost", "warning_closed", "prevented")


class FraudWarning(db.Model):
    """A Radar early fraud warning: the card issuer reports the payment as likely fraud."""

    __tablename__ = "fraud_warning"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    stripe_warning_id: Mapped[str] = mapped_column(String(255), unique=True)
    fraud_type: Mapped[str] = mapped_column(String(40))
    actionable: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship()


class NoticeRead(db.Model):
    """A staff notice (an outbox message to staff) marked read, by whom and when."""

    __tablename__ = "notice_read"
    __table_args__ = (UniqueConstraint("outbox_message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_message_id: Mapped[int] = mapped_column(ForeignKey("outbox_message.id"))
    staff_email: Mapped[str] = mapped_column(String(320))
    read_at: Mapped[datetime] = mapped_column(default=utcnow)
