"""Checkout with Payment Intents and the Payment Element, on the shop's own page.

The first visit makes the order (from the database's prices) and exactly one
PaymentIntent for it; the session remembers the order, so reloads, the back button
and retries after a decline reuse both. If the cart changes before payment, the same
order and intent are updated to the new amount (see the README for why).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit

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

from . import payments
from .cart import Cart, CartError
from .extensions import db
from .fulfilment import set_status
from .models import Order, OrderStatus
from .orders import create_order_from_cart, order_matches_cart, refill_order

log = logging.getLogger(__name__)

bp = Blueprint("checkout", __name__, url_prefix="/checkout")

SESSION_KEY = "checkout_order"
# Deliberately simple: the browser validates too, and Stripe rejects what is not a mailbox.
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
OPEN_STATUSES = (OrderStatus.PENDING, OrderStatus.FAILED)


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# Real Stripe.js also loads from its subdomains and shows 3-D Secure challenges in a frame
# from hooks.stripe.com (Stripe's CSP guide); the emulator serves all of it from one origin.
STRIPE_JS_EXTRA = {
    "https://js.stripe.com": {
        "script": ["https://*.js.stripe.com"],
        "frame": ["https://*.js.stripe.com", "https://hooks.stripe.com"],
    }
}


def content_security_policy() -> str:
    """Exactly what the Payment Element needs from Stripe, nothing else from elsewhere."""
    js = origin(current_app.config["STRIPE_JS_URL"])
    api = origin(current_app.config.get("STRIPE_API_BASE") or "https://api.stripe.com")
    sources = " ".join(dict.fromkeys([js, api]))
    extra = STRIPE_JS_EXTRA.get(js, {})
    scripts = " ".join([js, *extra.get("script", [])])
    frames = " ".join([js, *extra.get("frame", [])])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {scripts}",
            f"frame-src {frames}",
            f"connect-src 'self' {sources}",
            f"img-src 'self' data: {js}",
            # Stripe.js adds a <style> element for its overlays.
            "style-src 'self' 'unsafe-inline'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def with_csp(response):
    response.headers["Content-Security-Policy"] = content_security_policy()
    return response


bp.after_request(with_csp)


def current_order() -> Order | None:
    """The unpaid Payment Element order this browser is checking out, if any."""
    public_id = session.get(SESSION_KEY)
    if not public_id:
        return None
    return db.session.scalar(select(Order).where(Order.public_id == public_id))


def prepare_order(cart: Cart) -> tuple[Order, Any]:
    """The order and its PaymentIntent for this cart, reusing them whenever possible."""
    order = current_order()
    if order is not None and (
        order.status not in OPEN_STATUSES or order.stripe_checkout_session_id is not None
    ):
        order = None  # paid, processing or canceled: a new purchase makes a new order
    intent = None
    if order is not None and order.stripe_payment_intent_id:
        intent = payments.retrieve_payment_intent(order.stripe_payment_intent_id)
        if intent.status in ("succeeded", "processing"):
            return order, intent  # the caller sends the customer to the order page
        if intent.status == "canceled":
            order, intent = None, None
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
                set_status(order, OrderStatus.CANCELED)
                db.session.commit()
                order, intent = None, None
    if order is None:
        order = create_order_from_cart(cart)
        db.session.commit()
        session[SESSION_KEY] = order.public_id
    if intent is None:
        intent = payments.create_payment_intent(order)
        order.stripe_payment_intent_id = intent.id
    # Back on the checkout page after a decline: a new attempt (the state machine allows it).
    if order.status == OrderStatus.FAILED:
        set_status(order, OrderStatus.PENDING)
    db.session.commit()
    return order, intent


@bp.route("/", methods=["GET", "POST"])
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
        "returnUrl": url_for("orders.show", public_id=order.public_id, _external=True),
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
    if len(address) > 254 or not EMAIL_RE.match(address):
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
