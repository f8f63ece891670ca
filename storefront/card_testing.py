"""Card-testing defence: too many declined payments pause new payments for a while.

Card testers try stolen card numbers one after another. Declines are counted from what
Stripe reports, never from the browser: the ``payment_intent.payment_failed`` webhook
and PaymentIntents the server retrieves (the order page's check), each decline once
(by its charge, or its PaymentIntent and payment method). A decline counts against the
browser session and the client IP that started the payment (remembered per order when
a payment starts) and against the order itself. When one of them reaches
``CARD_DECLINE_LIMIT`` declines within ``CARD_DECLINE_WINDOW_SECONDS``, it cannot start
another payment (checkout, Pay, Stripe Checkout, Subscribe) for
``CARD_DECLINE_COOLOFF_SECONDS``: a 429 with a plain message. Tripping logs a warning and
writes a staff notice. IPs and session ids are stored only as keyed digests.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app, request, session
from sqlalchemy import ForeignKey, String, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from . import mail
from .extensions import db
from .models import Order, utcnow
from .payments import field
from .security import client_id, client_ip, describe_wait, too_many

log = logging.getLogger(__name__)

# Where the payment endpoints keep the order this browser is paying (checkout and
# Stripe Checkout; Subscribe has no order).
ORDER_SESSION_KEYS = ("checkout_order", "hosted_checkout_order")

BLOCKED_MESSAGE = (
    "Several payments from here were declined in a short time, so to protect cardholders "
    "we've paused new payments for a while. Please try again in {wait}. If you think this "
    "is a mistake, contact us."
)


class PaymentClient(db.Model):
    """Who started paying an order: digests of the browser session's id and the IP."""

    __tablename__ = "payment_client"
    order_id: Mapped[int] = mapped_column(
        ForeignKey("order.id", ondelete="CASCADE"), primary_key=True
    )
    client_digest: Mapped[str] = mapped_column(String(64))
    ip_digest: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PaymentDecline(db.Model):
    """One decline Stripe reported, once (``dedup_key``)."""

    __tablename__ = "payment_decline"
    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("order.id", ondelete="SET NULL"), index=True
    )
    client_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    ip_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class PaymentBlock(db.Model):
    """A browser, IP or order that may not start payments until ``until``."""

    __tablename__ = "payment_block"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # browser, ip or order
    value: Mapped[str] = mapped_column(String(64), index=True)
    declines: Mapped[int]
    until: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def digest(kind: str, value: str) -> str:
    """A keyed digest: equal for equal values, and no IP or session id in the database."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:40]


def _session_orders() -> list[str]:
    ids = [session.get(key) for key in ORDER_SESSION_KEYS]
    return [public_id for public_id in ids if isinstance(public_id, str) and public_id]


def _identities() -> list[tuple[str, str]]:
    """This request's (kind, value) pairs a block may be for."""
    found = [("browser", digest("browser", client_id())), ("ip", digest("ip", client_ip()))]
    return found + [("order", public_id) for public_id in _session_orders()]


def active_block(identities: list[tuple[str, str]]) -> PaymentBlock | None:
    conditions = [
        (PaymentBlock.kind == kind) & (PaymentBlock.value == value) for kind, value in identities
    ]
    return db.session.scalar(
        select(PaymentBlock)
        .where(or_(*conditions), PaymentBlock.until > utcnow())
        .order_by(PaymentBlock.until.desc())
        .limit(1)
    )


def gate():
    """Before a payment starts: a 429 while this browser, IP or order is paused."""
    block = active_block(_identities())
    if block is None:
        return None
    until = block.until if block.until.tzinfo else block.until.replace(tzinfo=utcnow().tzinfo)
    seconds = max(1, int((until - utcnow()).total_seconds()))
    log.info("payment refused: %s paused for card testing (%ss left)", block.kind, seconds)
    return too_many(BLOCKED_MESSAGE.format(wait=describe_wait(seconds)), seconds)


def remember_client(response):
    """After a payment endpoint: note who is paying the session's orders."""
    if response.status_code >= 400:
        return response
    public_ids = _session_orders()
    if not public_ids:
        return response
    client = digest("browser", client_id())
    ip = digest("ip", client_ip())
    orders = db.session.scalars(select(Order).where(Order.public_id.in_(public_ids))).all()
    changed = False
    for order in orders:
        row = db.session.get(PaymentClient, order.id)
        if row is None:
            db.session.add(PaymentClient(order_id=order.id, client_digest=client, ip_digest=ip))
            changed = True
        elif (row.client_digest, row.ip_digest) != (client, ip):
            row.client_digest, row.ip_digest, row.updated_at = client, ip, utcnow()
            changed = True
    if changed:
        try:
            db.session.commit()
        except IntegrityError:  # a simultaneous request recorded it
            db.session.rollback()
    return response


def decline_key(pi: Any) -> str | None:
    """One key per decline of a PaymentIntent; None when it reports no decline."""
    error = field(pi, "last_payment_error")
    pi_id = field(pi, "id")
    if not error or not isinstance(pi_id, str):
        return None
    charge = field(error, "charge")
    method = field(error, "payment_method", "id") or field(error, "payment_method")
    attempt = charge if isinstance(charge, str) else method if isinstance(method, str) else None
    return f"{pi_id}:{attempt or field(error, 'code') or 'declined'}"[:255]


def record_decline(pi: Any) -> bool:
    """Count the decline ``pi`` reports (a PaymentIntent from Stripe, from a webhook or
    retrieved by us), once. Trips the pause where it reaches the limit. Commits; True
    when this call counted it."""
    key = decline_key(pi)
    if key is None:
        return False
    order = _order_for(pi)
    client = db.session.get(PaymentClient, order.id) if order is not None else None
    code = field(pi, "last_payment_error", "decline_code") or field(
        pi, "last_payment_error", "code"
    )
    decline = PaymentDecline(
        dedup_key=key,
        order_id=order.id if order is not None else None,
        client_digest=client.client_digest if client else None,
        ip_digest=client.ip_digest if client else None,
        code=str(code)[:64] if code else None,
    )
    db.session.add(decline)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    identities = [("order", order.public_id)] if order is not None else []
    if client is not None:
        identities += [("browser", client.client_digest), ("ip", client.ip_digest)]
    for kind, value in identities:
        _maybe_trip(kind, value, order)
    return True


def _order_for(pi: Any) -> Order | None:
    pi_id = field(pi, "id")
    order = db.session.scalar(select(Order).where(Order.stripe_payment_intent_id == pi_id))
    if order is None:
        public_id = field(pi, "metadata", "order_id")
        if isinstance(public_id, str):
            order = db.session.scalar(select(Order).where(Order.public_id == public_id))
    return order


_COLUMNS = {
    "order": lambda value: PaymentDecline.order_id.in_(
        select(Order.id).where(Order.public_id == value).scalar_subquery()
    ),
    "browser": lambda value: PaymentDecline.client_digest == value,
    "ip": lambda value: PaymentDecline.ip_digest == value,
}


def _maybe_trip(kind: str, value: str, order: Order | None) -> None:
    config = current_app.config
    now = utcnow()
    since = now - timedelta(seconds=config["CARD_DECLINE_WINDOW_SECONDS"])
    count = db.session.scalar(
        select(func.count(PaymentDecline.id)).where(
            _COLUMNS[kind](value), PaymentDecline.created_at > since
        )
    )
    if count < config["CARD_DECLINE_LIMIT"] or active_block([(kind, value)]) is not None:
        return
    until = now + timedelta(seconds=config["CARD_DECLINE_COOLOFF_SECONDS"])
    block = PaymentBlock(kind=kind, value=value, declines=count, until=until)
    db.session.add(block)
    db.session.flush()
    who = f"{kind} {value[:12]}"  # a digest or an order id: nothing personal
    log.warning(
        "card testing suspected: %s declines for %s within %ss; payments paused until %s",
        count,
        who,
        config["CARD_DECLINE_WINDOW_SECONDS"],
        until.isoformat(timespec="seconds"),
    )
    text = (
        f"{count} payments were declined for one {kind} ({who}) within "
        f"{config['CARD_DECLINE_WINDOW_SECONDS']} seconds"
        + (f", the latest for order {order.public_id}" if order is not None else "")
        + f". New payments from it are refused until {until.isoformat(timespec='minutes')}"
        " (CARD_DECLINE_COOLOFF_SECONDS).\n\nLook for unusual orders and declines in the "
        "Stripe Dashboard (Radar)."
    )
    db.session.add(
        mail.staff_notice(
            "staff_notice",
            f"Possible card testing: payments paused for a {kind}",
            text,
            dedup_key=f"card-testing:{block.id}",
        )
    )
    db.session.commit()


def init_app(app: Flask, endpoints: tuple[str, ...]) -> None:
    """Guard these payment endpoints (those that exist in ``app``)."""
    guarded = set(endpoints)

    @app.before_request
    def _gate():
        if request.endpoint in guarded:
            return gate()
        return None

    @app.after_request
    def _remember(response):
        if request.endpoint in guarded:
            return remember_client(response)
        return response
