"""Orders: made from the cart, and an order's status page found by its unguessable id.

The page is whole (email, address, card) only for the browser that placed the order or
its signed-in owner (``viewer.may_see_order``); anyone else holding the link sees the
status and items with the email masked.

The status page is also the Payment Element's ``return_url``. Query parameters are
only hints: the page asks Stripe for the PaymentIntent itself. Webhooks are the source
of truth; the page fulfils by itself (through the same idempotent function) only when
the webhook is overdue, so a lost webhook never strands a paid order.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select, update

from . import payments, shipping, viewer
from .cart import Cart, CartError, Line
from .extensions import db
from .models import Order, OrderItem, OrderStatus, Product

log = logging.getLogger(__name__)

bp = Blueprint("orders", __name__, url_prefix="/orders")

# What new_public_id() makes (URL-safe base64); anything else cannot be an order, and
# PostgreSQL would refuse some of it (a NUL byte) with an error rather than "no rows".
_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def get_order_or_404(public_id: str) -> Order:
    if not _PUBLIC_ID.fullmatch(public_id):
        abort(404, "We could not find that order.")
    order = db.session.scalar(select(Order).where(Order.public_id == public_id))
    if order is None:
        abort(404, "We could not find that order.")
    return order


def snapshot_items(cart: Cart, lines: list[Line] | None = None) -> list[OrderItem]:
    """Order items copying the cart's lines as they are in the database now (``lines``:
    the caller's ``cart.lines()`` of this transaction, so they are not read again).

    Stock is checked here, so an order is never made (or refilled) for more than the shop
    has; the cart checked it when the items went in, but others may have bought since.
    """
    if lines is None:
        lines = cart.lines()
    if not lines:
        raise CartError("Your cart is empty.")
    for line in lines:
        _check_stock(line.product.name, line.product.stock, line.quantity)
    return [
        OrderItem(
            product_id=line.product.id,
            price_id=line.price.id,
            product_name=line.product.name,
            price_lookup_key=line.price.lookup_key,
            unit_amount=line.price.unit_amount,
            quantity=line.quantity,
        )
        for line in lines
    ]


def _check_stock(name: str, stock: int | None, quantity: int) -> None:
    """``CartError`` when ``quantity`` is more than ``stock`` (None: not counted)."""
    if stock is not None and quantity > stock:
        raise CartError(
            f"Sorry, only {stock} of {name} left: please change the quantity in your cart."
            if stock
            else f"Sorry, {name} is sold out: please remove it from your cart."
        )


def check_stock(order: Order) -> None:
    """``CartError`` when the shop no longer has enough for one of the order's items
    (others may have bought since the order was made): checked again when payment starts.

    One SELECT of the items' stock, as committed now (column rows, so never an older copy
    of a product this session loaded earlier); items whose product is gone are not counted.
    """
    ids = {item.product_id for item in order.items if item.product_id is not None}
    if not ids:
        return
    rows = db.session.execute(
        select(Product.id, Product.name, Product.stock).where(Product.id.in_(ids))
    )
    stock = {row.id: row for row in rows}
    for item in order.items:
        row = stock.get(item.product_id)
        if row is not None:
            _check_stock(row.name, row.stock, item.quantity)


def create_order_from_cart(
    cart: Cart,
    email: str | None = None,
    *,
    member: bool = False,
    with_shipping: bool = True,
    lines: list[Line] | None = None,
) -> Order:
    """A pending order snapshotting the cart's lines (``lines``: as the caller read them in
    this transaction), shipped by the first rate (Standard) until the customer picks
    another; amounts from the database only.

    The caller commits. Raises ``CartError`` for an empty cart or too little stock.
    """
    items = snapshot_items(cart, lines)
    order = Order(
        email=email,
        currency=cart.currency,
        amount_total=0,
        status=OrderStatus.PENDING,
        items=items,
    )
    if with_shipping:
        reprice(order, member=member)
    else:
        shipping.apply_quote(order, None)
    db.session.add(order)
    return order


def reprice(order: Order, *, member: bool, rate_code: str | None = None) -> None:
    """Shipping for the order's items now: the rate ``rate_code`` (else the order's own,
    else the first), free where the rules say so; sets ``amount_total``. Caller commits."""
    subtotal = order.subtotal
    code = rate_code or order.shipping_rate_code
    found = shipping.find_quote(order.currency, code, subtotal, member=member) if code else None
    shipping.apply_quote(
        order, found or shipping.default_quote(order.currency, subtotal, member=member)
    )


def refill_order(
    order: Order, cart: Cart, *, member: bool = False, lines: list[Line] | None = None
) -> bool:
    """Make an unpaid order hold what the cart holds now. The caller commits.

    Two tabs may refill one order at the same moment. So first take the order's row lock
    (a no-op UPDATE: a row lock on PostgreSQL, the write lock on SQLite), then look again
    at the order as committed: if the other request has refilled it already, there is
    nothing to do (returns False) rather than a second set of items or a stale delete.
    ``lines``: the cart's lines the caller read in this transaction (else read here).
    """
    db.session.execute(
        update(Order).where(Order.id == order.id).values(amount_total=Order.amount_total)
    )
    db.session.refresh(order)
    db.session.expire(order, ["items"])
    if lines is None:
        lines = cart.lines()
    if order_matches_cart(order, cart, lines):
        return False
    items = snapshot_items(cart, lines)
    order.items = items
    order.currency = cart.currency
    reprice(order, member=member)
    return True


def order_matches_cart(order: Order, cart: Cart, lines: list[Line] | None = None) -> bool:
    """True when the order's items, prices and total are what the cart holds now
    (``lines``: the cart's lines already read in this transaction)."""
    if lines is None:
        lines = cart.lines()
    now = sorted((line.price.id, line.quantity, line.price.unit_amount) for line in lines)
    then = sorted((item.price_id, item.quantity, item.unit_amount) for item in order.items)
    return order.currency == cart.currency and now == then


# --------------------------------------------------------------------------- status page


def _charge_age(intent: Any) -> float:
    """Seconds since the successful charge (0 when Stripe does not say)."""
    charge = payments.field(intent, "latest_charge")
    created = payments.field(charge, "created") if not isinstance(charge, str) else None
    return time.time() - created if isinstance(created, int) else 0.0


def check_payment_intent(order: Order) -> str | None:
    """Ask Stripe how the order's PaymentIntent stands, apply it, return its status.

    A succeeded payment is applied here only once the webhook is overdue.
    """
    from .webhooks import AmountMismatch, PermanentFailure, apply_payment_intent

    intent = payments.retrieve_payment_intent(order.stripe_payment_intent_id, with_charge=True)
    status = payments.field(intent, "status")
    grace = current_app.config["WEBHOOK_GRACE_SECONDS"]
    if status == "succeeded" and _charge_age(intent) < grace:
        return status  # paid at Stripe; the webhook will fulfil it any moment
    try:
        apply_payment_intent(order, intent)
    except (PermanentFailure, AmountMismatch):
        log.error("order %s: payment does not match the order", order.public_id)
    db.session.refresh(order)
    if status == "succeeded" and order.is_paid:
        log.info("order %s fulfilled from the order page: webhook overdue", order.public_id)
    return status


def _forget_paid_checkout(order: Order) -> None:
    """After payment the cart is emptied; the next purchase makes a new order."""
    from .checkout import SESSION_KEY

    if session.get(SESSION_KEY) == order.public_id:
        session.pop(SESSION_KEY)
        cart = Cart.load()
        cart.clear()
        cart.save()


def page_state(order: Order, stripe_status: str | None, returning: bool) -> str:
    """What the page shows: paid, processing, failed, canceled or pending.

    ``returning`` (the return URL's ``redirect_status=succeeded``) is a hint: it makes the
    page wait only while Stripe could not be asked. Once Stripe has answered, its status
    decides; e.g. ``requires_payment_method`` without an error is still unpaid.
    """
    if order.is_paid:
        return "paid"
    # Stripe's current word beats a stored failure: a retry after a decline succeeded.
    if stripe_status in ("succeeded", "processing") or order.status == OrderStatus.PROCESSING:
        return "processing"
    if order.status in (OrderStatus.FAILED, OrderStatus.CANCELED):
        return str(order.status)
    return "processing" if returning and stripe_status is None else "pending"


@bp.get("/<public_id>")
def show(public_id: str):
    order = get_order_or_404(public_id)
    if "payment_intent_client_secret" in request.args:
        # After a redirect (3-D Secure, bank pages) Stripe.js appends the client secret to
        # the return_url; move to an address without it, so it stays out of the history,
        # bookmarks and Referer headers. The other parameters are kept as hints.
        hints = {
            k: request.args[k] for k in ("payment_intent", "redirect_status") if k in request.args
        }
        return redirect(url_for("orders.show", public_id=order.public_id, **hints), code=303)
    state = current_state(order)
    return render_template(
        "orders/show.html",
        order=order,
        state=state,
        # While processing, static/js/wait.js asks this (with the page's hints) instead of
        # the page reloading itself.
        status_url=url_for("orders.status", public_id=order.public_id, **_hints())
        if state == "processing"
        else None,
        # The email, address and card only for the browser that placed the order or its
        # signed-in owner; anyone else with the link sees status and items.
        full=viewer.may_see_order(order),
        masked_email=viewer.mask_email(order.email),
    )


STATE_MESSAGES = {
    "paid": "Payment confirmed. Thank you for your order!",
    "processing": "We're still confirming your payment.",
    "failed": "Your payment didn't go through. You have not been charged.",
    "canceled": "This order was canceled. You have not been charged.",
    "pending": "This order hasn't been paid yet.",
}


@bp.get("/<public_id>/status")
def status(public_id: str):
    """The order page's state as JSON, for its waiting state to ask in the background."""
    order = get_order_or_404(public_id)
    state = current_state(order)
    return {"state": state, "message": STATE_MESSAGES[state]}


def _hints() -> dict[str, str]:
    return {k: request.args[k] for k in ("redirect_status", "session_id") if k in request.args}


def current_state(order: Order) -> str:
    """Ask Stripe where the order stands when we are waiting for it, apply what it says,
    and return what the page shows (``page_state``)."""
    stripe_status = None
    session_id = request.args.get("session_id")
    try:
        if session_id and order.stripe_checkout_session_id:
            from .hosted_checkout import sync_from_session

            sync_from_session(order, session_id)
        elif order.stripe_payment_intent_id and order.status in (
            OrderStatus.PENDING,
            OrderStatus.PROCESSING,
            OrderStatus.FAILED,
        ):
            stripe_status = check_payment_intent(order)
    except payments.PaymentError as err:
        # Show what we know; a processing page asks again in the background.
        log.warning("order %s: status check failed (%s)", order.public_id, err.kind)
    if order.is_paid:
        _forget_paid_checkout(order)
    # Query parameters are hints only: they can make us wait, never show "paid".
    # Only this order's own Checkout Session counts: any other ?session_id= is ignored.
    returning = request.args.get("redirect_status") == "succeeded" or (
        session_id is not None
        and session_id == order.stripe_checkout_session_id
        and stripe_status is None
    )
    return page_state(order, stripe_status, returning)
