"""Checkout with Payment Intents and the Payment Element, on the shop's own page.

The first visit makes the order (from the database's prices) and exactly one
PaymentIntent for it; the session remembers the order, so reloads, the back button
and retries after a decline reuse both. If the cart changes before payment, the same
order and intent are updated to the new amount (see the README for why).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import billing, payments
from .cart import TOKEN_KEY, Cart, CartError, new_checkout_token
from .extensions import db
from .fulfilment import set_status
from .links import external_url
from .models import Order, OrderStatus
from .orders import create_order_from_cart, order_matches_cart, refill_order
from .security import stripe_page
from .viewer import remember_placed

log = logging.getLogger(__name__)

bp = Blueprint("checkout", __name__, url_prefix="/checkout")

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


def order_for_token(cart: Cart) -> Order:
    """The open order holding this browser's checkout token, made from ``cart`` if none.

    The unique token decides: of simultaneous requests, one INSERT wins and the others,
    refused by the database, load its order. Commits; remembers the order in the session.
    """
    token = session.get(TOKEN_KEY) or new_checkout_token()
    for _ in range(MAX_TOKEN_STEPS):
        order = db.session.scalar(select(Order).where(Order.checkout_token == token))
        if order is None:
            order = create_order_from_cart(cart)
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


def prepare_order(cart: Cart) -> tuple[Order, Any]:
    """The order and its PaymentIntent for this cart, reusing them whenever possible."""
    order = current_order()
    if order is None or not is_open(order):
        # None yet, or paid, processing or canceled: a new purchase makes a new order.
        order = order_for_token(cart)
    intent = None
    if order.stripe_payment_intent_id:
        try:
            intent = payments.retrieve_payment_intent(order.stripe_payment_intent_id)
        except payments.IntentUnusable:
            order = _replace(order, cart, "Stripe no longer has its payment intent")
        else:
            if intent.status in ("succeeded", "processing"):
                return order, intent  # the caller sends the customer to the order page
            if intent.status == "canceled":
                order, intent = _replace(order, cart, "its payment was canceled"), None
    if intent is None:
        if not order_matches_cart(order, cart):
            # Unpaid and no intent yet (e.g. creating it failed): the order follows the cart.
            refill_order(order, cart)
            db.session.commit()
            log.info("order %s: cart changed, amount now %s", order.public_id, order.amount_total)
    elif not order_matches_cart(order, cart):
        if intent.status in ("requires_payment_method", "requires_confirmation"):
            refill_order(order, cart)
            intent = payments.update_payment_intent(
                intent.id, amount=order.amount_total, currency=order.currency
            )
            set_status(order, OrderStatus.PENDING)
            db.session.commit()
            log.info("order %s: cart changed, amount now %s", order.public_id, intent.amount)
        else:
            # Mid-authentication: leave that attempt alone and start a new order.
            payments.cancel_payment_intent(intent.id)
            order, intent = _replace(order, cart, "the cart changed during authentication"), None
    if intent is None:
        try:
            intent = payments.create_payment_intent(order)
        except payments.IntentUnusable:
            # Retrying cannot help (the key is taken for other parameters): a new order
            # has a new key. The old one was never shown to the customer with an intent.
            order = _replace(order, cart, "Stripe refused to create its payment intent")
            intent = payments.create_payment_intent(order)
        order.stripe_payment_intent_id = intent.id
    # Back on the checkout page after a decline: a new attempt (the state machine allows it).
    if order.status == OrderStatus.FAILED:
        set_status(order, OrderStatus.PENDING)
    db.session.commit()
    return order, intent


def _replace(order: Order, cart: Cart, reason: str) -> Order:
    """Cancel ``order`` (unless it moved on meanwhile) and return the cart's next order."""
    if set_status(order, OrderStatus.CANCELED):
        log.info("order %s canceled: %s", order.public_id, reason)
    db.session.commit()
    return order_for_token(cart)


@bp.route("/", methods=["GET", "POST"])
@stripe_page(js=True)
def start():
    """The checkout page: summary from the server, email, Payment Element, Pay."""
    if not payments.is_configured():
        flash(payments.NOT_CONFIGURED, "error")
        return redirect(url_for("cart.view"), code=303)
    pending = current_order()
    if (
        pending is not None
        and (pending.status == OrderStatus.PROCESSING or pending.is_paid)
        and pending.stripe_checkout_session_id is None
    ):
        # This checkout's payment is under way (e.g. a bank debit) or already made (the
        # webhook was first; the customer came back): never charge the same cart twice.
        # The order page follows it to paid or failed, and empties the cart once paid.
        return redirect(url_for("orders.show", public_id=pending.public_id), code=303)
    cart = Cart.load()
    if not cart.lines():
        flash("Your cart is empty.", "error")
        return redirect(url_for("cart.view"), code=303)
    try:
        order, intent = prepare_order(cart)
    except payments.PaymentError as err:
        db.session.rollback()
        flash(err.user_message, "error")
        return redirect(url_for("cart.view"), code=303)
    except CartError as err:
        flash(str(err), "error")
        return redirect(url_for("cart.view"), code=303)
    if intent.status in ("succeeded", "processing"):
        return redirect(url_for("orders.show", public_id=order.public_id), code=303)

    page_data = {
        "publishableKey": current_app.config["STRIPE_PUBLISHABLE_KEY"],
        "clientSecret": intent.client_secret,
        "returnUrl": external_url("orders.show", public_id=order.public_id),
        "emailUrl": url_for("checkout.email", public_id=order.public_id),
        "csrfToken": generate_csrf(),
        "declineMessages": payments.DECLINE_MESSAGES,
        "genericMessage": payments.GENERIC,
    }
    return render_template(
        "checkout/page.html",
        order=order,
        page_data=page_data,
        stripe_js_url=current_app.config["STRIPE_JS_URL"],
    )


@bp.post("/<public_id>/email")
def email(public_id: str):
    """Store the receipt email on the order (and its PaymentIntent) before paying."""
    order = current_order()
    if order is None or order.public_id != public_id:
        return {"error": "This checkout has expired. Please reload the page."}, 400
    if order.status not in OPEN_STATUSES:
        return {"error": "This order can no longer be changed."}, 400
    body = request.get_json(silent=True) if request.is_json else request.form
    value = body.get("email") if isinstance(body, dict) or hasattr(body, "get") else None
    address = value.strip() if isinstance(value, str) else ""
    if billing.normalise_email(address) is None:
        return {"error": "Enter a valid email address, like you@example.com."}, 400
    if address != order.email:
        try:
            if order.stripe_payment_intent_id:
                payments.update_payment_intent(
                    order.stripe_payment_intent_id, receipt_email=address
                )
        except payments.PaymentError as err:
            return {"error": err.user_message}, 503
        order.email = address
        db.session.commit()
    return {"ok": True}
