"""The cart's "Pay with Stripe Checkout" button, and the browser's order for it."""

from __future__ import annotations

import logging

from flask import Blueprint, flash, redirect, session, url_for
from sqlalchemy import select

from .. import billing, payments
from ..cart import Cart, CartError
from ..extensions import db
from ..models import PAYABLE_STATUSES, Order, OrderStatus
from ..orders import create_order_from_cart, order_matches_cart
from ..payments import PaymentError
from ..viewer import remember_placed
from .browser import SESSION_KEY, browser_order, forget_paid
from .params import signed_in_member
from .sessions import AlreadyPaid, abandon, checkout_url_for

log = logging.getLogger(__name__)

bp = Blueprint("hosted_checkout", "storefront.hosted_checkout", url_prefix="/checkout/stripe")


def _signed_in_email() -> str | None:
    from ..account import signed_in_email

    return billing.normalise_email(signed_in_email())


def retire_for_payment_element() -> Order | None:
    """Paying on the shop's own page after opening Stripe Checkout: expire this browser's
    open session and cancel its order (one live payment per cart). Returns that order
    instead when it is paid, or its payment is under way."""
    order = browser_order()
    if order is None:
        return None
    if order.status == OrderStatus.PROCESSING or order.is_paid:
        return order
    if order.status in (OrderStatus.PENDING, OrderStatus.FAILED):
        db.session.commit()  # no transaction open across the Stripe calls
        try:
            abandon(order, reason="the customer chose to pay on the shop's page")
        except AlreadyPaid as paid:
            return paid.order
    session.pop(SESSION_KEY, None)
    return None


def order_for_cart(cart: Cart) -> Order:
    """The browser's pending hosted-checkout order when it still matches the cart,
    else a new one (the stale one is canceled and its session expired).

    A payment already submitted on the shop's own page raises ``AlreadyPaid`` for that
    order; an unused one there is canceled first (one live payment per cart)."""
    from ..checkout import retire_for_hosted_checkout

    submitted = retire_for_hosted_checkout()
    if submitted is not None:
        raise AlreadyPaid(submitted)
    public_id = session.get(SESSION_KEY)
    order = (
        db.session.scalar(select(Order).where(Order.public_id == public_id)) if public_id else None
    )
    if order is not None:
        matches = order_matches_cart(order, cart)
        if order.status in PAYABLE_STATUSES and order.status != OrderStatus.PROCESSING:
            if matches:
                # A failed order stays failed here: ``checkout_url_for`` asks Stripe
                # whether its session can still be paid or the attempt is over.
                return order
            abandon(order)
        elif matches and order.status in (OrderStatus.PROCESSING, OrderStatus.PAID):
            raise AlreadyPaid(order)
    # Signed in: the order carries the email even before there is a Customer record (made
    # by a first membership), so Checkout pre-fills it (``customer_email``).
    email = _signed_in_email()
    customer = billing.find_customer(email) if email else None
    order = create_order_from_cart(cart, email=email, member=signed_in_member())
    if customer is not None:
        order.customer_id = customer.id
    db.session.commit()
    session[SESSION_KEY] = order.public_id
    remember_placed(order)
    log.info("order %s created for hosted checkout", order.public_id)
    return order


@bp.post("/")
def start():
    """The cart's "Pay with Stripe Checkout" button: 303 to Stripe's hosted page."""
    if not payments.is_configured():
        flash(payments.NOT_CONFIGURED, "error")
        return redirect(url_for("cart.view"), code=303)
    cart = Cart.load()
    try:
        order = order_for_cart(cart)
        url = checkout_url_for(order)
        if url is None:  # its session had expired, and with it the order
            order = order_for_cart(cart)
            url = checkout_url_for(order)
        if url is None:
            raise PaymentError(payments.GENERIC, kind="invalid")
    except CartError as err:
        flash(str(err), "error")
        return redirect(url_for("cart.view"), code=303)
    except AlreadyPaid as paid:
        forget_paid(paid.order)
        if paid.order.is_paid:
            flash("This order has been paid already.", "info")
        elif paid.order.status == OrderStatus.PROCESSING:
            flash("Your payment for this order is being processed.", "info")
        else:
            flash("You have already started paying for this order on our checkout page.", "info")
        return redirect(url_for("orders.show", public_id=paid.order.public_id), code=303)
    except PaymentError as err:
        flash(err.user_message, "error")
        return redirect(url_for("cart.view"), code=303)
    return redirect(url, code=303)
