"""Returning customers on the checkout page: their Stripe Customer, the Customer Session
that shows their saved cards in the Payment Element, and the address they last used."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select

from .. import billing, payments
from ..extensions import db
from ..models import Customer, Order

log = logging.getLogger(__name__)


def signed_in_customer() -> Customer | None:
    """The signed-in customer's record (made at sign-in), or None for a guest."""
    from ..account import signed_in_customer

    return signed_in_customer()


def order_customer(order: Order, customer: Customer) -> str:
    """The order's Stripe Customer: the signed-in customer's, created once (key from the
    email) when they have none yet; the order is linked to them. Commits; calls Stripe
    outside any transaction. Raises ``PaymentError`` when Stripe cannot be reached."""
    if not customer.stripe_customer_id:
        db.session.commit()  # no transaction open across the Stripe call
        customer = billing.get_or_create_customer(customer.email)
    if order.customer_id != customer.id:
        order.customer_id = customer.id
        db.session.commit()
    assert customer.stripe_customer_id
    return customer.stripe_customer_id


# A page view reuses its Customer Session for this long (they live 30 minutes at Stripe),
# so reloading the checkout does not make a new one each time.
CUSTOMER_SESSION_REUSE_SECONDS = 10 * 60


def customer_session_secret(order: Order, customer: Customer) -> str | None:
    """A Customer Session's client secret for the checkout's Payment Element (saved cards,
    "Save this card"), or None when Stripe cannot be reached now: the page then takes a
    new card only, and Pay makes the customer."""
    for _attempt in range(2):
        try:
            stripe_customer_id = order_customer(order, customer)
            window = int(time.time()) // CUSTOMER_SESSION_REUSE_SECONDS
            key = payments.idempotency_key(
                "customer-session", stripe_customer_id, order.public_id, window
            )
            return payments.create_customer_session(stripe_customer_id, key).client_secret
        except payments.CustomerMissing:
            # The stored id names no Customer at this Stripe account: forget it, so one is
            # made here (else Pay would fail on it too). Once: then a new-card checkout.
            db.session.rollback()
            customer.stripe_customer_id = None
            db.session.commit()
        except payments.PaymentError as err:
            db.session.rollback()
            log.warning("order %s: no saved cards on the page (%s)", order.public_id, err.kind)
            return None
    return None


def address_defaults(order: Order, customer: Customer | None = None) -> dict[str, Any] | None:
    """What the Address Element starts with: the order's own address, else (signed in) the
    one their last order went to, so a returning customer pays in one step."""
    source: Order | None = order
    if not order.ship_line1 and customer is not None:
        source = db.session.scalar(
            select(Order)
            .where(Order.customer_id == customer.id, Order.ship_line1.is_not(None))
            .where(Order.id != order.id)
            .order_by(Order.id.desc())
            .limit(1)
        )
    if source is None or not source.ship_line1:
        return None
    return {
        "name": source.ship_name,
        "address": {
            "line1": source.ship_line1,
            "line2": source.ship_line2,
            "city": source.ship_city,
            "state": source.ship_state,
            "postal_code": source.ship_postal_code,
            "country": source.ship_country,
        },
    }
