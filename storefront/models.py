"""Database models: catalog, orders, webhook events, outbox, customers, subscriptions."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    DDL,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db

# At most this many of one item per order line (the cart enforces it, the database too).
MAX_QUANTITY = 99


# Order numbers: FW-10001 for the first order (Fernwood), easy to say on the phone.
ORDER_NUMBER_PREFIX = "FW-"
ORDER_NUMBER_OFFSET = 10000
# What staff type for one: "FW-10001", "fw 10001", "#FW10001" or just "10001".
ORDER_NUMBER_RE = re.compile(r"#?\s*(?:FW\s*-?\s*)?([0-9]{1,12})", re.IGNORECASE)


def order_id_for_number(text: str) -> int | None:
    """The row id of order number ``text`` (see ``Order.number``), or None when ``text``
    is not an order number."""
    match = ORDER_NUMBER_RE.fullmatch(text.strip())
    if match is None:
        return None
    order_id = int(match.group(1)) - ORDER_NUMBER_OFFSET
    # Ids beyond a 32-bit integer are no order's (and PostgreSQL refuses to compare them).
    return order_id if 1 <= order_id <= 2**31 - 1 else None


def utcnow() -> datetime:
    return datetime.now(UTC)


def assign_changed(row: Any, values: dict[str, Any]) -> bool:
    """Give ``row`` these attribute ``values`` (the seed commands' updates); whether any
    of them differed."""
    changed = any(getattr(row, k) != v for k, v in values.items())
    for k, v in values.items():
        setattr(row, k, v)
    return changed


def new_public_id() -> str:
    """An order id safe to show in URLs: 128 random bits, not guessable."""
    return secrets.token_urlsafe(16)


class Product(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    image: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    # None means stock is not tracked for this product.
    stock: Mapped[int | None] = mapped_column(default=None)
    stripe_product_id: Mapped[str | None] = mapped_column(String(255), unique=True)

    prices: Mapped[list[Price]] = relationship(back_populates="product", order_by="Price.id")

    def price_in(self, currency: str) -> Price | None:
        """The active one-time price in a currency, if any."""
        for price in self.prices:
            if price.active and price.currency == currency and not price.is_recurring:
                return price
        return None

    @property
    def in_stock(self) -> bool:
        return self.stock is None or self.stock > 0

    @property
    def picture(self) -> str:
        """Its picture under static/, or a plain parcel while it has none."""
        return self.image or "img/products/placeholder.svg"


class CatalogVersion(db.Model):
    """One row (id 1) whose ``version`` goes up in the same transaction as every change to
    a product or price (``catalog_cache`` bumps it from the session's events), so each
    worker process knows when its cached catalog pages are out of date."""

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(default=0)


# The row exists from the start (``db.create_all``; the migration inserts it too).
event.listen(
    CatalogVersion.__table__,
    "after_create",
    DDL("INSERT INTO catalog_version (id, version) VALUES (1, 0)"),
)


class Price(db.Model):
    # Constraint names get the "ck_<table>_" prefix from the naming convention.
    __table_args__ = (CheckConstraint("unit_amount >= 0", name="unit_amount_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    unit_amount: Mapped[int]  # minor units of `currency`
    # None for one-time prices; "day" | "week" | "month" | "year" for recurring ones.
    recurring_interval: Mapped[str | None] = mapped_column(String(10))
    lookup_key: Mapped[str] = mapped_column(String(200), unique=True)
    stripe_price_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(default=True)

    product: Mapped[Product] = relationship(back_populates="prices")

    @property
    def is_recurring(self) -> bool:
        return self.recurring_interval is not None


class ShippingRate(db.Model):
    """A way to ship an order in one currency (catalog file ``shipping_rates``).

    ``free_for_members`` and ``free_over`` make the rate cost nothing for a Coffee Club
    member, or for an order whose items come to at least ``free_over`` minor units.
    """

    __table_args__ = (CheckConstraint("amount >= 0", name="amount_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lookup_key: Mapped[str] = mapped_column(String(80), unique=True)  # e.g. "standard-usd"
    code: Mapped[str] = mapped_column(String(40))  # "standard" | "express", per currency
    display_name: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int]  # minor units of `currency`
    delivery_min_days: Mapped[int]
    delivery_max_days: Mapped[int]
    free_for_members: Mapped[bool] = mapped_column(default=False)
    free_over: Mapped[int | None] = mapped_column(default=None)
    active: Mapped[bool] = mapped_column(default=True)
    sort_order: Mapped[int] = mapped_column(default=0)

    @property
    def delivery_estimate(self) -> str:
        return delivery_estimate(self.delivery_min_days, self.delivery_max_days)


def delivery_estimate(low: int | None, high: int | None) -> str:
    """ "3–5 business days" (or "1 business day")."""
    if low is None or high is None:
        return ""
    if low == high:
        return f"{low} business day{'' if low == 1 else 's'}"
    return f"{low}–{high} business days"


class OrderStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    CANCELED = "canceled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


# The payment state machine: a status only moves forward along these edges, so a
# late or replayed event can never undo a later state (e.g. `failed` after `paid`).
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset(
        {OrderStatus.PROCESSING, OrderStatus.PAID, OrderStatus.FAILED, OrderStatus.CANCELED}
    ),
    OrderStatus.PROCESSING: frozenset({OrderStatus.PAID, OrderStatus.FAILED, OrderStatus.CANCELED}),
    # A failed attempt is retryable: a new attempt puts the order back to pending.
    OrderStatus.FAILED: frozenset(
        {OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.PAID, OrderStatus.CANCELED}
    ),
    OrderStatus.PAID: frozenset({OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}),
    OrderStatus.PARTIALLY_REFUNDED: frozenset(
        {OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED}
    ),
    OrderStatus.REFUNDED: frozenset(),
    OrderStatus.CANCELED: frozenset(),
}

# Statuses from which a successful payment may still mark the order paid.
PAYABLE_STATUSES = frozenset({OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.FAILED})


class Order(db.Model):
    __table_args__ = (
        CheckConstraint("amount_total >= 0", name="amount_total_not_negative"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s.value}'" for s in OrderStatus) + ")",
            name="status_known",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    email: Mapped[str | None] = mapped_column(String(320))
    currency: Mapped[str] = mapped_column(String(3))
    amount_total: Mapped[int]  # minor units, computed from the database's prices
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.PENDING, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    last_payment_error: Mapped[str | None] = mapped_column(Text)
    amount_refunded: Mapped[int] = mapped_column(default=0)
    # When ``charge.refunded`` last raised ``amount_refunded``: the day the dashboard counts
    # refunds it knows only from that total (no refund row; see admin.reports).
    refunded_at: Mapped[datetime | None] = mapped_column(default=None)
    fulfilled_at: Mapped[datetime | None] = mapped_column(default=None)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    # The browser's cart token (from its session) for a Payment Element order: the unique
    # index makes two simultaneous checkouts of one cart find one order, not make two.
    checkout_token: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    # Set when something about a paid order needs a person (e.g. an item the stock could
    # not cover at fulfilment); a staff notice says what. Staff see it on the back office.
    needs_attention: Mapped[bool] = mapped_column(default=False, server_default=false())

    # Shipping: the rate chosen (a snapshot: rates may change later) and what it cost;
    # ``amount_total`` is the items plus ``shipping_amount``.
    shipping_rate_code: Mapped[str | None] = mapped_column(String(40))
    shipping_rate_name: Mapped[str | None] = mapped_column(String(100))
    shipping_amount: Mapped[int] = mapped_column(default=0, server_default="0")
    delivery_min_days: Mapped[int | None] = mapped_column(default=None)
    delivery_max_days: Mapped[int | None] = mapped_column(default=None)
    # The recipient, as collected by the Address Element or Stripe Checkout.
    ship_name: Mapped[str | None] = mapped_column(String(200))
    ship_line1: Mapped[str | None] = mapped_column(String(200))
    ship_line2: Mapped[str | None] = mapped_column(String(200))
    ship_city: Mapped[str | None] = mapped_column(String(100))
    ship_state: Mapped[str | None] = mapped_column(String(100))
    ship_postal_code: Mapped[str | None] = mapped_column(String(20))
    ship_country: Mapped[str | None] = mapped_column(String(2))
    # The card that paid (from Stripe's charge), for the receipt.
    card_brand: Mapped[str | None] = mapped_column(String(30))
    card_last4: Mapped[str | None] = mapped_column(String(4))

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderItem.id"
    )
    customer: Mapped[Customer | None] = relationship(back_populates="orders")

    @property
    def number(self) -> str:
        """The order number people read out and type (``FW-10042``), from the row id.

        Shown on pages and in e-mails; addresses keep the unguessable ``public_id``."""
        return f"{ORDER_NUMBER_PREFIX}{ORDER_NUMBER_OFFSET + self.id}"

    @property
    def subtotal(self) -> int:
        """The items alone (``amount_total`` less shipping)."""
        return sum(item.line_total for item in self.items)

    @property
    def delivery_estimate(self) -> str:
        return delivery_estimate(self.delivery_min_days, self.delivery_max_days)

    @property
    def address_lines(self) -> list[str]:
        """The shipping address as printed on a parcel (empty when none was collected)."""
        if not self.ship_line1:
            return []
        city = " ".join(p for p in (self.ship_city, self.ship_state, self.ship_postal_code) if p)
        lines = [self.ship_name, self.ship_line1, self.ship_line2, city, self.ship_country]
        return [line for line in lines if line]

    @property
    def is_paid(self) -> bool:
        return self.status in (
            OrderStatus.PAID,
            OrderStatus.PARTIALLY_REFUNDED,
            OrderStatus.REFUNDED,
        )


class OrderItem(db.Model):
    __table_args__ = (
        CheckConstraint(f"quantity BETWEEN 1 AND {MAX_QUANTITY}", name="quantity_in_range"),
        CheckConstraint("unit_amount >= 0", name="unit_amount_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("order.id"), index=True)
    # Links back to the catalog (kept nullable: the snapshot below is what was sold).
    product_id: Mapped[int | None] = mapped_column(ForeignKey("product.id", ondelete="SET NULL"))
    price_id: Mapped[int | None] = mapped_column(ForeignKey("price.id", ondelete="SET NULL"))
    product_name: Mapped[str] = mapped_column(String(200))
    price_lookup_key: Mapped[str] = mapped_column(String(200))
    unit_amount: Mapped[int]
    quantity: Mapped[int]

    order: Mapped[Order] = relationship(back_populates="items")
    product: Mapped[Product | None] = relationship()
    price: Mapped[Price | None] = relationship()

    @property
    def line_total(self) -> int:
        return self.unit_amount * self.quantity


class WebhookEvent(db.Model):
    """Every verified Stripe event, stored once (the unique event id decides)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100), index=True)
    object_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_created: Mapped[int]  # the event's `created` (unix seconds)
    api_version: Mapped[str | None] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)  # first delivery
    # Start of the latest processing attempt (what "crashed" is measured from).
    attempted_at: Mapped[datetime | None] = mapped_column(default=None)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    # None while being processed; then "processed" | "ignored" | "failed".
    outcome: Mapped[str | None] = mapped_column(String(20), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)


class OutboxStatus(StrEnum):
    QUEUED = "queued"  # waiting for the dispatcher (``next_attempt_at`` says when)
    SENDING = "sending"  # claimed by a dispatcher (``claimed_at``)
    SENT = "sent"
    FAILED = "failed"  # gave up: a permanent SMTP error or MAIL_MAX_ATTEMPTS reached
    SKIPPED = "skipped"  # never to be sent (no address for it, or written before mail)


class OutboxMessage(db.Model):
    """A message the shop sends: written in the transaction that decides it, then sent
    over SMTP by the dispatcher (``flask outbox send``, storefront/outbox.py)."""

    __table_args__ = (
        UniqueConstraint("dedup_key"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s.value}'" for s in OutboxStatus) + ")",
            name="status_known",
        ),
        # What the dispatcher asks for: due messages in order.
        Index("ix_outbox_message_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    # An address, or "staff" (sent to STAFF_EMAILS).
    to_email: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)  # the plain-text part
    # The HTML part (templates/email/); None: the text laid out in the shop's mail design.
    html_body: Mapped[str | None] = mapped_column(Text, default=None)
    # Guards against writing the same message twice (e.g. "order-confirmation:<order>").
    dedup_key: Mapped[str | None] = mapped_column(String(255))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    status: Mapped[str] = mapped_column(String(20), default=OutboxStatus.QUEUED)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Which dispatcher run holds the claim (a random token per claim).
    claim_token: Mapped[str | None] = mapped_column(String(32), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    # Set once, at the first claim: every attempt sends the same Message-ID, so a resend
    # after a crash between "sent" and "recorded" is recognisable as the same message.
    message_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)


class SignInToken(db.Model):
    """A one-time sign-in link: only the token's SHA-256 is stored, so the table (a backup,
    a leaked dump) holds nothing that signs anyone in. Used at most once: the sign-in
    sets ``used_at`` with an UPDATE guarded by ``used_at IS NULL`` and the expiry."""

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class Customer(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Bumped by sign-out: every session cookie carries the generation it was signed in
    # with, and one from an older generation no longer counts (see ``account``).
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")

    orders: Mapped[list[Order]] = relationship(back_populates="customer")
    subscriptions: Mapped[list[Subscription]] = relationship(back_populates="customer")


# A live membership: it grants access (``Subscription.grants_access``), My account offers
# to manage it, and Subscribe refuses a second one. past_due keeps access while Stripe
# retries the payment (Stripe's smart retries). Anything else (incomplete, unpaid, paused,
# ended) is over for the shop: My account says "join again", and Subscribe lets the
# customer join again.
LIVE_SUBSCRIPTION_STATUSES = frozenset({"active", "trialing", "past_due"})


class Subscription(db.Model):
    """A Stripe subscription as last reported by webhooks."""

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_subscription_id: Mapped[str] = mapped_column(String(255), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    price_id: Mapped[int | None] = mapped_column(ForeignKey("price.id"))
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(30))
    current_period_end: Mapped[datetime | None] = mapped_column(default=None)
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    # Unix time of the newest Stripe object applied, so older events cannot win.
    stripe_updated: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="subscriptions")
    price: Mapped[Price | None] = relationship()

    @property
    def grants_access(self) -> bool:
        """A live membership (see ``LIVE_SUBSCRIPTION_STATUSES``)."""
        return self.status in LIVE_SUBSCRIPTION_STATUSES


class StripeSetting(db.Model):
    """An account-wide Stripe object the shop keeps in step with its own settings, by name
    (``flask catalog sync-stripe``): today the Customer Portal configuration
    (``PORTAL_CONFIGURATION``). Like the catalog's synced ids, it says which object is ours."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    stripe_id: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


PORTAL_CONFIGURATION = "billing_portal_configuration"
