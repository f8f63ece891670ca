"""The checkout page: summary, address, shipping rate, email, Payment Element, Pay.

The page view makes (or refills) the order in our database only; Stripe is only asked
when the cart changed under an order that has a PaymentIntent.
"""

from __future__ import annotations

import logging

from flask import current_app, flash, redirect, render_template, url_for
from flask_wtf.csrf import generate_csrf

from .. import payments, shipping
from ..cart import Cart, CartError, Line
from ..extensions import db
from ..links import external_url
from ..models import Order
from ..money import format_money
from ..orders import order_matches_cart, refill_order, reprice
from ..security import stripe_page
from .blueprint import bp
from .customers import address_defaults, customer_session_secret, signed_in_customer
from .order import (
    current_order,
    is_open,
    order_for_token,
    paid_at_stripe,
    signed_in_member,
    submitted_order,
)

log = logging.getLogger(__name__)


def page_order(cart: Cart, member: bool, lines: list[Line]) -> Order:
    """The open order for this cart (made or refilled here: our database only; Stripe is
    only asked, when the cart changed under an order with an intent). ``lines``: the
    cart's lines the caller read in this transaction. Commits."""
    order = current_order()
    if order is None or not is_open(order):
        return order_for_token(cart, member=member, lines=lines)
    if not order_matches_cart(order, cart, lines):
        asked_stripe = order.stripe_payment_intent_id is not None
        if paid_at_stripe(order):
            return order  # the caller sends the customer to its page
        # Asking Stripe committed first (the lines expired with it): refill reads afresh.
        refill_order(order, cart, member=member, lines=None if asked_stripe else lines)
        log.info("order %s: cart changed, amount now %s", order.public_id, order.amount_total)
    else:
        before = order.amount_total
        reprice(order, member=member)  # e.g. signed in as a member since
        if order.amount_total != before:
            log.info("order %s: shipping now %s", order.public_id, order.shipping_amount)
    db.session.commit()
    return order


@bp.route("/", methods=["GET", "POST"])
@stripe_page(js=True, checkout=True)  # and the no-JavaScript form to Stripe Checkout
def start():
    """The checkout page: summary, address, shipping rate, email, Payment Element, Pay.

    Makes no Stripe object: the PaymentIntent is made when the customer presses Pay.
    """
    if not payments.is_configured():
        flash(payments.NOT_CONFIGURED, "error")
        return redirect(url_for("cart.view"), code=303)
    submitted = submitted_order()
    if submitted is not None:
        # This cart's payment is under way (e.g. a bank debit) or already made (the
        # webhook was first; the customer came back): never charge the same cart twice.
        # The order page follows it to paid or failed, and empties the cart once paid.
        return redirect(url_for("orders.show", public_id=submitted.public_id), code=303)
    cart = Cart.load()
    lines = cart.lines()
    if not lines:
        flash("Your cart is empty.", "error")
        return redirect(url_for("cart.view"), code=303)
    member = signed_in_member()
    try:
        order = page_order(cart, member, lines)
    except CartError as err:
        db.session.rollback()
        flash(str(err), "error")
        return redirect(url_for("cart.view"), code=303)
    except payments.PaymentError as err:
        flash(err.user_message, "error")
        return redirect(url_for("cart.view"), code=303)
    if not order_matches_cart(order, cart):  # paid at Stripe already (page_order asked)
        return redirect(url_for("orders.show", public_id=order.public_id), code=303)
    customer = signed_in_customer()
    saved_cards = customer_session_secret(order, customer) if customer else None
    subtotal = order.subtotal
    rates = [
        {
            "code": q.code,
            "name": q.rate.display_name,
            "estimate": q.rate.delivery_estimate,
            "amount": q.amount,
            "price": format_money(q.amount, order.currency) if q.amount else "Free",
            "freeReason": q.free_reason,
            "total": subtotal + q.amount,
            "totalLabel": format_money(subtotal + q.amount, order.currency),
        }
        for q in shipping.quotes(order.currency, subtotal, member=member)
    ]
    page_data = {
        "publishableKey": current_app.config["STRIPE_PUBLISHABLE_KEY"],
        "payUrl": url_for("checkout.pay", public_id=order.public_id),
        "returnUrl": external_url("orders.show", public_id=order.public_id),
        "csrfToken": generate_csrf(),
        "currency": order.currency,
        "amount": order.amount_total,
        "rates": rates,
        "countries": shipping.ship_to_countries(),
        "address": address_defaults(order, customer),
        "declineMessages": payments.DECLINE_MESSAGES,
        "genericMessage": payments.GENERIC,
    }
    if saved_cards:
        # Signed in: the Payment Element shows their saved cards and offers to save one.
        page_data["customerSessionClientSecret"] = saved_cards
    return render_template(
        "checkout/page.html",
        order=order,
        rates=rates,
        page_data=page_data,
        email=order.email or (customer.email if customer else ""),
        stripe_js_url=current_app.config["STRIPE_JS_URL"],
    )
