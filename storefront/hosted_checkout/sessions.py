"""The order's one live Checkout Session: created (idempotency key from the order), reused
while open, and retired (expired, the order canceled) when the cart changes or the
customer pays another way."""

from __future__ import annotations

import logging
from typing import Any

from .. import billing, payments
from ..extensions import db
from ..fulfilment import set_status
from ..models import Order, OrderStatus
from ..payments import PaymentError
from .fulfil import fulfil_from_session, session_expired
from .params import session_params, totals_match

log = logging.getLogger(__name__)


class AlreadyPaid(Exception):
    """The order's Checkout Session was paid already: show the order instead."""

    def __init__(self, order: Order) -> None:
        super().__init__(order.public_id)
        self.order = order


def create_session(order: Order, attempt: str) -> Any:
    """Create the order's Checkout Session; the idempotency key comes from the order, so a
    doubled or retried request gets the same session back."""
    key = payments.idempotency_key("checkout-session", order.public_id, attempt)
    cs = payments.create_checkout_session(session_params(order), key)
    if not _totals_match(cs, order):
        # A synced Stripe Price no longer has our amount: never charge what Stripe says,
        # charge what our database says.
        log.error(
            "checkout session %s for order %s: Stripe total %s %s != order total %s %s; "
            "retrying with price_data",
            cs.id,
            order.public_id,
            cs.amount_total,
            cs.currency,
            order.amount_total,
            order.currency,
        )
        payments.expire_checkout_session(cs.id)
        cs = payments.create_checkout_session(
            session_params(order, use_price_ids=False), key + ":price-data"
        )
        if not _totals_match(cs, order):
            payments.expire_checkout_session(cs.id)
            raise PaymentError(payments.GENERIC, kind="invalid")
    order.stripe_checkout_session_id = cs.id
    db.session.commit()
    log.info("order %s: checkout session %s", order.public_id, cs.id)
    return cs


def _totals_match(cs: Any, order: Order) -> bool:
    return totals_match(cs, order.amount_total, order.currency)


def _complete_session(cs: Any, order: Order) -> None:
    """The order's session is complete: fulfil the order if it is paid, and raise
    ``AlreadyPaid`` (paid, or a delayed payment under way). Returns only when the delayed
    payment failed (complete, unpaid, order failed): that attempt is over, and the order
    must be canceled, never reported as paid."""
    fulfil_from_session(cs.id, order=order)
    db.session.refresh(order)
    if cs.payment_status != "unpaid" or order.status != OrderStatus.FAILED:
        raise AlreadyPaid(order)


def checkout_url_for(order: Order) -> str | None:
    """The URL of the order's one live Checkout Session, creating it when there is none.

    An open session is reused; a complete one means the order is paid, or its delayed
    payment is under way (``AlreadyPaid``) - unless that delayed payment failed: then the
    attempt is over, the order is canceled and None returned. An expired session cancels
    the order too (as its ``checkout.session.expired`` webhook does). On None the caller
    starts a new order. So an order never has two payable sessions, and a late expiry
    event can never cancel an order whose session is live.
    """
    if order.stripe_checkout_session_id:
        cs = payments.retrieve_checkout_session(order.stripe_checkout_session_id)
        if cs.status == "open":
            if order.status == OrderStatus.FAILED and set_status(order, OrderStatus.PENDING):
                db.session.commit()
            return cs.url
        if cs.status == "complete":
            _complete_session(cs, order)
            if set_status(order, OrderStatus.CANCELED):
                db.session.commit()
                log.info(
                    "order %s canceled: its delayed payment failed; starting a new order",
                    order.public_id,
                )
            return None
        session_expired(cs)
        return None
    if order.status == OrderStatus.FAILED and set_status(order, OrderStatus.PENDING):
        db.session.commit()
    _signed_in_customers_stripe_id(order)
    return create_session(order, "first").url


def _signed_in_customers_stripe_id(order: Order) -> None:
    """A signed-in customer's order pays as their Stripe Customer (saved cards), made once
    when they have none yet. Calls Stripe outside any transaction; commits."""
    customer = order.customer
    if customer is None or customer.stripe_customer_id:
        return
    db.session.commit()  # no transaction open across the Stripe call
    billing.get_or_create_customer(customer.email)
    db.session.refresh(order)


def abandon(order: Order, reason: str = "the cart changed before payment") -> None:
    """The cart changed under an unpaid order (or the customer pays another way): make its
    session unpayable, cancel the order."""
    cs_id = order.stripe_checkout_session_id
    if cs_id:
        try:
            payments.expire_checkout_session(cs_id)
        except PaymentError:
            # Already expired, or paid a moment ago: Stripe's answer decides.
            cs = payments.retrieve_checkout_session(cs_id)
            if cs.status == "complete":
                _complete_session(cs, order)  # returns only when its payment failed
    if set_status(order, OrderStatus.CANCELED):
        db.session.commit()
        log.info("order %s canceled: %s", order.public_id, reason)
