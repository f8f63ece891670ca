"""Customers, the membership subscription, and the webhook handlers for Checkout and billing.

``Customer`` links an email to one Stripe customer (created once per email). The local
``Subscription`` is written only here, from webhooks: each handler retrieves the
subscription from Stripe and stores what Stripe says *now*, so events that arrive late,
twice or out of order cannot leave an older state behind.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from . import mail, payments, webhooks
from .extensions import db
from .links import external_url
from .models import (
    LIVE_SUBSCRIPTION_STATUSES,
    Customer,
    Order,
    OutboxMessage,
    Price,
    Subscription,
)
from .payments import field

log = logging.getLogger(__name__)

PROCESSED = "processed"
IGNORED = "ignored"

# Stripe statuses after which a subscription never comes back.
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
# A live membership whose renewal payment failed: Stripe retries it while the customer
# fixes their payment method. (``unpaid`` is not live: My account offers to join again.)
PROBLEM_STATUSES = frozenset({"past_due"})
# A membership with a renewal invoice left open: past_due (Stripe still retrying) or unpaid
# (Stripe gave up). My account shows what is owed instead of a "next renewal".
OWING_STATUSES = frozenset({"past_due", "unpaid"})

MEMBERSHIP_SLUG = "coffee-club"

# Outbox recipient of notices for the shop's staff (mailed to STAFF_EMAILS).
STAFF_RECIPIENT = mail.STAFF_RECIPIENT


# --------------------------------------------------------------------------- customers


# The longest address SMTP can carry (RFC 5321: a 256-octet path minus the angle brackets).
MAX_EMAIL_LENGTH = 254
# One @, something before it, and a dotted domain whose last label has two characters or
# more. Deliberately simple: the browser validates too, and Stripe rejects what is not a
# mailbox.
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]{2,}")


def normalise_email(email: str | None) -> str | None:
    """A trimmed, lower-cased email, or None when it does not look like one.

    The one email rule of the shop (sign-in, Subscribe, the checkout's receipt email):
    longer than 254 characters, holding a space or a control character (NUL included,
    which PostgreSQL cannot store; ``\\s`` misses most of them), or not
    ``something@domain.tld`` is not an email: the forms answer with their usual error
    instead of failing in the database or at Stripe.
    """
    if not email or not isinstance(email, str):
        return None
    email = email.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH:
        return None
    if any(c == " " or ord(c) < 0x20 or ord(c) == 0x7F for c in email):
        return None
    if EMAIL_RE.fullmatch(email) is None:
        return None
    return email


def find_customer(email: str | None) -> Customer | None:
    email = normalise_email(email)
    if email is None:
        return None
    return db.session.scalar(select(Customer).where(Customer.email == email))


def get_or_create_customer(email: str) -> Customer:
    """Our Customer for an email, with a Stripe customer (created once, then reused).

    Two requests at once for a new email may both call Stripe: the idempotency key
    (from the email) gives both the same Stripe customer, and the unique email column
    keeps one row. Raises ``PaymentError`` when Stripe cannot be reached.
    """
    normalised = normalise_email(email)
    if normalised is None:
        raise ValueError("not an email address")
    customer = find_customer(normalised)
    if customer is not None and customer.stripe_customer_id:
        return customer
    stripe_id = payments.create_stripe_customer(normalised)
    if customer is None:
        customer = Customer(email=normalised, stripe_customer_id=stripe_id)
        db.session.add(customer)
    else:
        customer.stripe_customer_id = stripe_id
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        customer = find_customer(normalised)
        if customer is None:
            raise
    return customer


def _customer_for_stripe_id(stripe_customer_id: str, email: str | None) -> Customer | None:
    """The local Customer for a Stripe customer, creating the link when we know the email."""
    customer = db.session.scalar(
        select(Customer).where(Customer.stripe_customer_id == stripe_customer_id)
    )
    if customer is not None:
        return customer
    if not email:
        stripe_customer = payments.call(
            "customer retrieve", payments.client().v1.customers.retrieve, stripe_customer_id
        )
        email = field(stripe_customer, "email")
    email = normalise_email(email)
    if email is None:
        return None
    customer = find_customer(email)
    if customer is None:
        customer = Customer(email=email, stripe_customer_id=stripe_customer_id)
        db.session.add(customer)
    elif not customer.stripe_customer_id:
        customer.stripe_customer_id = stripe_customer_id
    else:
        # The email already has another Stripe customer (e.g. made by Checkout): keep ours.
        log.info("customer %s: also known to Stripe as %s", customer.id, stripe_customer_id)
    db.session.flush()
    return customer


def orders_for(customer: Customer | None, email: str) -> list[Order]:
    """A customer's orders, newest first: linked to them, or placed with their email."""
    conditions = [func.lower(Order.email) == email.lower()]
    if customer is not None:
        conditions.append(Order.customer_id == customer.id)
    return list(
        db.session.scalars(
            select(Order).where(or_(*conditions)).order_by(Order.created_at.desc(), Order.id.desc())
        )
    )


# --------------------------------------------------------------------------- membership


def membership_for(customer: Customer | None) -> Subscription | None:
    """The subscription to show: a live one if any, else the most recent."""
    if customer is None:
        return None
    subs = db.session.scalars(
        select(Subscription)
        .where(Subscription.customer_id == customer.id)
        .order_by(Subscription.created_at.desc(), Subscription.id.desc())
    ).all()
    live = [s for s in subs if is_live(s)]
    return (live or list(subs) or [None])[0]


def is_live(membership: Subscription | None) -> bool:
    """The one test for "is a member" (``Subscription.grants_access``), None-safe."""
    return membership is not None and membership.grants_access


def live_membership(customer: Customer | None) -> Subscription | None:
    membership = membership_for(customer)
    return membership if is_live(membership) else None


def is_member(customer: Customer | None) -> bool:
    return live_membership(customer) is not None


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


@dataclass(frozen=True)
class AmountDue:
    """What a member owes: the open renewal invoice's amount, and when Stripe tries again
    (None when it has stopped retrying)."""

    amount: int
    currency: str
    next_attempt: datetime | None


def amount_due(membership: Subscription | None) -> AmountDue | None:
    """The amount due on a past_due/unpaid membership, from its latest open invoice at
    Stripe; None when in good standing or nothing is open.

    Ends the request's read transaction first (none stays open across the Stripe call).
    Raises ``PaymentError`` when Stripe cannot be asked.
    """
    if membership is None or membership.status not in OWING_STATUSES:
        return None
    subscription_id = membership.stripe_subscription_id
    db.session.commit()
    invoice = payments.open_invoice_for_subscription(subscription_id)
    if invoice is None:
        log.info("subscription %s: %s, no open invoice", subscription_id, membership.status)
        return None
    log.info("subscription %s: open invoice %s", subscription_id, field(invoice, "id"))
    return AmountDue(
        amount=int(field(invoice, "amount_due", default=0)),
        currency=field(invoice, "currency"),
        next_attempt=_timestamp(field(invoice, "next_payment_attempt")),
    )


def _price_for(stripe_price: Any, metadata_lookup_key: str | None) -> Price | None:
    """Our Price for the subscription's price: by its Stripe id, else its lookup key, else
    the plan Checkout sold (``metadata.price_lookup_key``, for a price made inline). In that
    order, never "any of them": after a plan switch in the Customer Portal the metadata
    still names the old plan."""
    candidates = (
        (Price.stripe_price_id, field(stripe_price, "id")),
        (Price.lookup_key, field(stripe_price, "lookup_key")),
        (Price.lookup_key, metadata_lookup_key),
    )
    for column, value in candidates:
        if value:
            found = db.session.scalar(select(Price).where(column == value))
            if found is not None:
                return found
    return None


def apply_subscription(obj: Any, *, event_created: int = 0) -> Subscription | None:
    """Store a Stripe subscription object (as retrieved) in our ``Subscription`` row.

    Caller commits. An ended subscription is final: nothing moves it back.
    """
    stripe_id = field(obj, "id")
    customer = _customer_for_stripe_id(
        field(obj, "customer"), field(obj, "metadata", "customer_email")
    )
    if customer is None:
        log.warning("subscription %s: no customer email known; not stored", stripe_id)
        return None
    row = db.session.scalar(
        select(Subscription).where(Subscription.stripe_subscription_id == stripe_id)
    )
    status = field(obj, "status")
    if row is None:
        row = Subscription(stripe_subscription_id=stripe_id, customer_id=customer.id, status=status)
        db.session.add(row)
    elif row.status in ENDED_STATUSES and status not in ENDED_STATUSES:
        log.info("subscription %s: ignoring %s after %s", stripe_id, status, row.status)
        return row
    # API 2026 shapes: the period lives on the subscription's items.
    item = field(obj, "items", "data", 0)
    stripe_price = field(item, "price")
    price = _price_for(stripe_price, field(obj, "metadata", "price_lookup_key"))
    row.customer_id = customer.id
    row.status = status
    row.stripe_price_id = field(stripe_price, "id")
    row.price_id = price.id if price is not None else None
    row.current_period_end = _timestamp(field(item, "current_period_end"))
    row.cancel_at_period_end = bool(field(obj, "cancel_at_period_end", default=False))
    row.stripe_updated = max(row.stripe_updated or 0, int(event_created or 0))
    return row


def sync_subscription(
    stripe_subscription_id: str, *, event_created: int = 0
) -> Subscription | None:
    """Retrieve the subscription from Stripe and store it; commits.

    A concurrent handler may insert the same row first; then we store on top of it.
    """
    obj = payments.retrieve_subscription(stripe_subscription_id)
    for attempt in (1, 2):
        try:
            row = apply_subscription(obj, event_created=event_created)
            db.session.commit()
            if row is not None:
                log.info(
                    "subscription %s: %s, cancel_at_period_end=%s",
                    row.stripe_subscription_id,
                    row.status,
                    row.cancel_at_period_end,
                )
            return row
        except IntegrityError:
            db.session.rollback()
            if attempt == 2:
                raise
    return None


def _outbox(kind: str, to_email: str, subject: str, body: str, dedup_key: str) -> None:
    """Write a plain-text notice once (a staff notice to ``STAFF_RECIPIENT``); commits.
    Its HTML part is the text in the shop's mail layout."""
    if to_email == STAFF_RECIPIENT:
        message = mail.staff_notice(kind, subject, body, dedup_key=dedup_key)
    else:
        message = OutboxMessage(
            kind=kind, to_email=to_email, subject=subject, body=body, dedup_key=dedup_key
        )
    _write_once(message)


def _write_once(message: OutboxMessage) -> None:
    """Write a message once (its dedup key decides, also under concurrency); commits."""
    key = message.dedup_key
    if db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == key)):
        return
    db.session.add(message)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return
    log.info("outbox: %s (%s)", message.kind, key)


def _account_link() -> str:
    """The My account link for notices: from ``SHOP_BASE_URL``, like every link we mail."""
    return external_url("account.show")


def _invoice_subscription_id(invoice: Any) -> str | None:
    # API 2026: invoices link to their subscription through `parent`.
    sub = field(invoice, "parent", "subscription_details", "subscription")
    return sub if isinstance(sub, str) or sub is None else field(sub, "id")


# --------------------------------------------------------------------------- webhook handlers


def _event_object(event: Any) -> Any:
    return field(event, "data", "object")


@webhooks.handles("checkout.session.completed", "checkout.session.async_payment_succeeded")
def on_checkout_session_paid(event: Any) -> str:
    """A Checkout Session was paid: fulfil its order, or record its subscription."""
    from . import hosted_checkout

    cs = _event_object(event)
    if field(cs, "mode") == "subscription":
        sub_id = field(cs, "subscription")
        sub_id = sub_id if isinstance(sub_id, str) or sub_id is None else field(sub_id, "id")
        if not sub_id:
            return IGNORED
        row = sync_subscription(sub_id, event_created=field(event, "created", default=0))
        if row is None:
            return IGNORED
        _warn_about_other_live_subscriptions(row)
        _write_once(
            mail.compose(
                "membership_welcome",
                row.customer.email,
                "Welcome to the Coffee Club",
                dedup_key=f"membership-welcome:{row.stripe_subscription_id}",
                account_url=_account_link(),
            )
        )
        return PROCESSED
    return hosted_checkout.fulfil_from_session(field(cs, "id"), from_webhook=True)


def _warn_about_other_live_subscriptions(row: Subscription) -> None:
    """A new membership while the customer has another live one (two subscription
    sessions paid, e.g. in two tabs): tell staff once, to refund and cancel one by hand.
    Nothing is canceled automatically.

    Our own Subscription rows are asked, not Stripe (no list call on the webhook path):
    each subscription's webhook stores its row before this check, so whichever of the two
    arrives second finds the first. The rows belong to our Customer for the email, whatever
    Stripe customer each came through (``_customer_for_stripe_id``)."""
    customer = row.customer
    others = sorted(
        db.session.scalars(
            select(Subscription.stripe_subscription_id).where(
                Subscription.customer_id == row.customer_id,
                Subscription.id != row.id,
                Subscription.status.in_(LIVE_SUBSCRIPTION_STATUSES),
            )
        )
    )
    if not others:
        return
    log.warning(
        "customer %s has %d live subscriptions: %s and %s; one needs canceling and refunding",
        customer.id,
        len(others) + 1,
        row.stripe_subscription_id,
        ", ".join(others),
    )
    _write_once(
        mail.staff_notice(
            "staff_duplicate_membership",
            f"Customer {customer.id} has {len(others) + 1} live Coffee Club subscriptions",
            f"Customer {customer.id} ({customer.email}, Stripe {customer.stripe_customer_id}) "
            f"now has a new subscription {row.stripe_subscription_id} while also subscribed "
            f"through {', '.join(others)}.\n\nCancel and refund the extra one in the Stripe "
            "Dashboard; nothing was canceled automatically.",
            # One notice per set of live subscriptions: when both webhooks find the other's
            # row (they arrived together), they name the same set and only one is written.
            dedup_key="duplicate-membership:"
            + hashlib.sha256(
                ",".join(sorted([*others, row.stripe_subscription_id])).encode()
            ).hexdigest(),
        )
    )


@webhooks.handles("checkout.session.async_payment_failed")
def on_checkout_session_payment_failed(event: Any) -> str:
    from . import hosted_checkout

    return hosted_checkout.session_failed(_event_object(event))


@webhooks.handles("checkout.session.expired")
def on_checkout_session_expired(event: Any) -> str:
    from . import hosted_checkout

    return hosted_checkout.session_expired(_event_object(event))


@webhooks.handles("customer.subscription.updated", "customer.subscription.deleted")
def on_subscription_changed(event: Any) -> str:
    """Store the subscription's current state; a deletion ends member access."""
    obj = _event_object(event)
    known = db.session.scalar(
        select(Subscription).where(Subscription.stripe_subscription_id == field(obj, "id"))
    )
    if known is None and field(obj, "status") in ENDED_STATUSES:
        return IGNORED  # never ours, or never started: nothing to end
    row = sync_subscription(field(obj, "id"), event_created=field(event, "created", default=0))
    if row is None:
        return IGNORED
    if row.status in ENDED_STATUSES:
        _write_once(
            mail.compose(
                "membership_ended",
                row.customer.email,
                "Your Coffee Club membership has ended",
                dedup_key=f"membership-ended:{row.stripe_subscription_id}",
                membership_url=external_url("membership.index"),
            )
        )
    return PROCESSED


@webhooks.handles("invoice.paid")
def on_invoice_paid(event: Any) -> str:
    """A membership invoice was paid (first or renewal): store the new period."""
    sub_id = _invoice_subscription_id(_event_object(event))
    if not sub_id:
        return IGNORED
    row = sync_subscription(sub_id, event_created=field(event, "created", default=0))
    return PROCESSED if row is not None else IGNORED


@webhooks.handles("invoice.payment_failed")
def on_invoice_payment_failed(event: Any) -> str:
    """A renewal failed: store the state (past_due) and tell the customer once per invoice."""
    invoice = _event_object(event)
    sub_id = _invoice_subscription_id(invoice)
    if not sub_id:
        return IGNORED
    row = sync_subscription(sub_id, event_created=field(event, "created", default=0))
    if row is None:
        return IGNORED
    _write_once(
        mail.compose(
            "membership_payment_problem",
            row.customer.email,
            "We couldn't renew your Coffee Club membership",
            dedup_key=f"invoice-payment-failed:{field(invoice, 'id')}",
            account_url=_account_link(),
        )
    )
    return PROCESSED
