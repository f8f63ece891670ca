"""The browser's checkout order: found by the session, made once per checkout token, and
what "open" means. Shared by the page, Pay, and the Stripe Checkout side (which retires
this order when the customer chooses Stripe Checkout instead)."""

from __future__ import annotations

import hashlib
import logging

from flask import session
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import payments
from ..cart import TOKEN_KEY, Cart, Line, new_checkout_token
from ..extensions import db
from ..fulfilment import set_status
from ..models import Order, OrderStatus
from ..orders import create_order_from_cart
from ..viewer import remember_placed

log = logging.getLogger(__name__)

SESSION_KEY = "checkout_order"
# How many finished orders of one browser session the token chain follows (see below).
MAX_TOKEN_STEPS = 20
OPEN_STATUSES = (OrderStatus.PENDING, OrderStatus.FAILED)


def current_order() -> Order | None:
    """The unpaid Payment Element order this browser is checking out, if any."""
    public_id = session.get(SESSION_KEY)
    if not public_id:
        return None
    return db.session.scalar(select(Order).where(Order.public_id == public_id))


def next_checkout_token(token: str, finished: Order) -> str:
    """The token for the order after ``finished`` (paid, canceled, ...): derived rather
    than random, so simultaneous requests that both find it finished agree on one."""
    return hashlib.sha256(f"{token}:{finished.public_id}".encode()).hexdigest()[:43]


def is_open(order: Order) -> bool:
    """Can this order still be paid here (unpaid, and not a Stripe Checkout order)?"""
    return order.status in OPEN_STATUSES and order.stripe_checkout_session_id is None


def order_for_token(cart: Cart, *, member: bool = False, lines: list[Line] | None = None) -> Order:
    """The open order holding this browser's checkout token, made from ``cart`` if none
    (``lines``: the cart's lines, when the caller read them in this transaction).

    The unique token decides: of simultaneous requests, one INSERT wins and the others,
    refused by the database, load its order. Commits; remembers the order in the session.
    """
    token = session.get(TOKEN_KEY) or new_checkout_token()
    for _ in range(MAX_TOKEN_STEPS):
        order = db.session.scalar(select(Order).where(Order.checkout_token == token))
        if order is None:
            order = create_order_from_cart(cart, member=member, lines=lines)
            order.checkout_token = token
            try:
                db.session.commit()
            except IntegrityError:
                db.session.rollback()
                if db.session.scalar(select(Order.id).where(Order.checkout_token == token)):
                    continue  # a simultaneous request made it just now: load that one
                raise
            log.info("order %s created for checkout", order.public_id)
        elif not is_open(order):
            token = next_checkout_token(token, order)
            continue
        session[TOKEN_KEY] = token
        session[SESSION_KEY] = order.public_id
        remember_placed(order)
        return order
    raise RuntimeError("checkout token chain too long")


def signed_in_member() -> bool:
    from ..account import signed_in_member

    return signed_in_member()


def submitted_order() -> Order | None:
    """This browser's order whose payment is under way or made, by either way to pay:
    both checkout buttons lead to its page, so one cart is never paid twice."""
    from ..hosted_checkout import SESSION_KEY as HOSTED_KEY

    for key in (SESSION_KEY, HOSTED_KEY):
        public_id = session.get(key)
        if not public_id:
            continue
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        if order is not None and (order.status == OrderStatus.PROCESSING or order.is_paid):
            return order
    return None


def paid_at_stripe(order: Order) -> bool:
    """Is the order's PaymentIntent paid or being paid (the webhook may not be here yet)?
    A read only; asked before an order with an intent is refilled, so a payment already
    made is never left disagreeing with its order."""
    if not order.stripe_payment_intent_id:
        return False
    pi_id = order.stripe_payment_intent_id
    db.session.commit()  # no transaction open across the Stripe call
    try:
        intent = payments.retrieve_payment_intent(pi_id)
    except payments.IntentUnusable:
        return False
    return intent.status in ("succeeded", "processing")


def retire_for_hosted_checkout() -> Order | None:
    """Stripe Checkout pressed: this browser's order here must not stay payable too.

    Returns the order when its payment was submitted (processing, waiting for 3-D Secure,
    or made): the customer goes to its page. Otherwise its unused PaymentIntent is
    canceled and the order with it, and None returned. Calls Stripe outside any
    transaction; raises ``PaymentError`` when Stripe cannot be asked.
    """
    order = current_order()
    if order is None or order.stripe_checkout_session_id is not None:
        return None
    if order.status == OrderStatus.PROCESSING or order.is_paid:
        return order
    if order.status not in OPEN_STATUSES:
        return None
    pi_id = order.stripe_payment_intent_id
    db.session.commit()  # no transaction open across the Stripe calls
    if pi_id:
        try:
            intent = payments.retrieve_payment_intent(pi_id)
        except payments.IntentUnusable:
            intent = None
        if intent is not None and intent.status in ("processing", "succeeded", "requires_action"):
            return order
        if intent is not None and intent.status != "canceled":
            try:
                payments.cancel_payment_intent(pi_id)
            except payments.PaymentError:
                # Confirmed a moment ago? Stripe's word decides.
                intent = payments.retrieve_payment_intent(pi_id)
                if intent.status != "canceled":
                    return order
    if set_status(order, OrderStatus.CANCELED):
        log.info("order %s canceled: the customer chose Stripe Checkout", order.public_id)
    db.session.commit()
    session.pop(SESSION_KEY, None)
    return None
