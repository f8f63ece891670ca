"""Pay pressed on the checkout page (Stripe's "collect payment details before creating
an Intent" flow).

The page POSTs the address, the rate and the total it shows; ``pay`` recomputes the order
from the cart and the database, answers 409 when the shown total is stale, and otherwise
creates the order's one PaymentIntent (idempotency key from the order) or updates it, with
``shipping``, and returns its client secret for ``stripe.confirmPayment``.

No database transaction is held across a Stripe call: read, call Stripe, then a short
transaction that re-checks what it changes.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import request, url_for
from sqlalchemy import inspect, update

from .. import payments, shipping
from ..cart import Cart, CartError
from ..extensions import db
from ..fulfilment import set_status
from ..links import external_url
from ..models import Order, OrderStatus
from ..orders import check_stock, order_matches_cart, refill_order, reprice
from .blueprint import bp
from .customers import order_customer, signed_in_customer
from .forms import PayForm, fill, form_problem, shipping_param
from .order import current_order, is_open, order_for_token, paid_at_stripe, signed_in_member

log = logging.getLogger(__name__)

# Plain words for the customer; the page shows them next to the Pay button.
CHANGED = "Your order changed — please review the new total."
EXPIRED = "This checkout has expired. Please review your order and pay again."


def _lock(order: Order) -> None:
    """Take the order's row lock (a no-op UPDATE) and see it as committed now."""
    # The id from the identity key: ``order.id`` would load the whole (expired) row once
    # before the lock, only for the refresh below to load it again.
    order_id = inspect(order).identity[0]
    db.session.execute(
        update(Order).where(Order.id == order_id).values(amount_total=Order.amount_total)
    )
    db.session.refresh(order)


def _json_error(message: str, status: int, **extra: Any):
    return {"error": message, **extra}, status


@bp.post("/<public_id>/pay")
def pay(public_id: str):
    """Pay pressed: recompute the order, then create or update its one PaymentIntent.

    200 ``{clientSecret}``; 200 ``{redirect}`` when the order's payment is already under
    way or made; 409 when what the page shows is stale (``reload``); 400 for bad input
    (``field`` names it); 503 when Stripe cannot be reached.
    """
    if not isinstance(request.get_json(silent=True), dict):
        return _json_error("Send the payment details as a JSON object.", 400)
    order = current_order()
    if order is None or order.public_id != public_id:
        return _json_error(EXPIRED, 409, reload=True)
    if not payments.is_configured():  # the shop's setup, not the client's request, is at fault
        return _json_error(payments.NOT_CONFIGURED, 503)
    if order.status == OrderStatus.PROCESSING or order.is_paid:
        return {"redirect": url_for("orders.show", public_id=order.public_id)}
    if not is_open(order):
        return _json_error(EXPIRED, 409, reload=True)
    form = PayForm()
    problem = form_problem(form)
    if problem is not None:
        return _json_error(problem[1], 400, field=problem[0])
    member = signed_in_member()
    cart = Cart.load()
    if shipping.find_quote(order.currency, form.shipping_rate.data, 0, member=member) is None:
        return _json_error("Choose a shipping rate.", 400, field="shipping_rate")

    # An order whose payment was made (or is under way) in another tab keeps its items.
    # Only an order with an intent can be paid: one without skips reading the cart here.
    lines = None
    try:
        if order.stripe_payment_intent_id:
            lines = cart.lines()
            if not order_matches_cart(order, cart, lines):
                if paid_at_stripe(order):
                    return {"redirect": url_for("orders.show", public_id=order.public_id)}
                lines = None  # paid_at_stripe committed: refill_order reads them afresh
    except payments.PaymentError as err:
        return _json_error(err.user_message, 503 if err.kind == "unavailable" else 400)

    # A short transaction: the order follows the cart (stock checked again), the rate,
    # the address and the email. Committed before Stripe is called.
    try:
        # refill_order takes the row lock and re-reads the order and its items as
        # committed (the cart's lines are read once per Pay: here or just above).
        refill_order(order, cart, member=member, lines=lines)
        check_stock(order)  # after the lock, in one SELECT: others may have bought since
        if not is_open(order):
            db.session.rollback()
            return _json_error(EXPIRED, 409, reload=True)
        reprice(order, member=member, rate_code=form.shipping_rate.data)
        fill(order, form)
        # As committed just below (read now: the commit expires the order, and reading it
        # after would be one more SELECT of the row this transaction wrote).
        total = order.amount_total
        db.session.commit()
    except CartError as err:
        db.session.rollback()
        return _json_error(str(err), 409, reload=True)
    if total != form.total.data:
        log.info(
            "order %s: page showed %s, order is %s: 409",
            public_id,
            form.total.data,
            total,
        )
        return _json_error(CHANGED, 409, reload=True)

    try:
        hosted = _retire_hosted_checkout()
        if hosted is not None:  # paid (or being paid) on Stripe Checkout meanwhile
            return {"redirect": url_for("orders.show", public_id=hosted.public_id)}
        customer = signed_in_customer()
        if customer is not None:
            order_customer(order, customer)  # the intent is theirs (saved cards)
        order, intent = _intent_for(order, cart, member)
    except payments.PaymentError as err:
        db.session.rollback()
        return _json_error(err.user_message, 503 if err.kind == "unavailable" else 400)
    if intent is None:  # paid or under way at Stripe
        return {"redirect": url_for("orders.show", public_id=order.public_id)}

    # The second short transaction: record the intent, and check that no other tab
    # changed the order while Stripe was called.
    _lock(order)
    if order.stripe_payment_intent_id not in (None, intent.id) or not is_open(order):
        db.session.rollback()
        return _json_error(EXPIRED, 409, reload=True)
    if order.amount_total != intent.amount or order.currency != intent.currency:
        db.session.rollback()
        return _json_error(CHANGED, 409, reload=True)
    order.stripe_payment_intent_id = intent.id
    if order.status == OrderStatus.FAILED:
        # Back on the checkout page after a decline: a new attempt.
        set_status(order, OrderStatus.PENDING)
    return_url = _return_url(order)  # before the commit expires the order
    db.session.commit()
    return {"clientSecret": intent.client_secret, "returnUrl": return_url}


def _return_url(order: Order) -> str:
    return external_url("orders.show", public_id=order.public_id)


def _intent_for(order: Order, cart: Cart, member: bool) -> tuple[Order, Any]:
    """The order's PaymentIntent, created or updated to the order as it is now; no
    transaction is open while Stripe is called. ``(order, None)``: its payment is under
    way or made already. The order may be a successor (its intent was canceled or lost)."""
    db.session.commit()  # end the read transaction before calling Stripe
    fields = {"amount": order.amount_total, "currency": order.currency, **intent_details(order)}
    if order.stripe_payment_intent_id:
        try:
            intent = payments.retrieve_payment_intent(order.stripe_payment_intent_id)
        except payments.IntentUnusable:
            order = _successor(order, cart, member, "Stripe no longer has its payment intent")
        else:
            if intent.status in ("succeeded", "processing"):
                return order, None
            if intent.status == "requires_action" and intent.amount != order.amount_total:
                # The cart changed mid-authentication: leave that attempt, start anew.
                payments.cancel_payment_intent(intent.id)
                order = _successor(order, cart, member, "the cart changed during authentication")
            elif intent.status == "canceled":
                order = _successor(order, cart, member, "its payment was canceled")
            else:
                stripe_customer_id = payments.order_stripe_customer_id(order)
                if stripe_customer_id and not intent.customer:
                    fields["customer"] = stripe_customer_id  # made before saved cards
                return order, payments.update_payment_intent(intent.id, **fields)
    # One call: the create carries the shipping and receipt email too (an update after
    # it was a second round trip to Stripe on every first Pay).
    try:
        intent = payments.create_payment_intent(order, **intent_details(order))
    except payments.IntentUnusable:
        # The key is taken for other parameters (an earlier create's answer was lost,
        # then the order changed): a new order has a new key.
        order = _successor(order, cart, member, "Stripe refused to create its payment intent")
        intent = payments.create_payment_intent(order, **intent_details(order))
    return order, intent


def intent_details(order: Order) -> dict[str, Any]:
    """What Pay gives the intent besides what the items fix: where it goes, the receipt."""
    return {"shipping": shipping_param(order), "receipt_email": order.email}


def _successor(order: Order, cart: Cart, member: bool, reason: str) -> Order:
    """Cancel ``order`` (unless it moved on meanwhile) and make the cart's next order, with
    the same rate, recipient and email. Commits."""
    if set_status(order, OrderStatus.CANCELED):
        log.info("order %s canceled: %s", order.public_id, reason)
    db.session.commit()
    new = order_for_token(cart, member=member)
    reprice(new, member=member, rate_code=order.shipping_rate_code)
    for name in (
        "customer_id",  # a signed-in customer's next order is theirs too (saved cards)
        "email",
        "ship_name",
        "ship_line1",
        "ship_line2",
        "ship_city",
        "ship_state",
        "ship_postal_code",
        "ship_country",
    ):
        setattr(new, name, getattr(order, name))
    db.session.commit()
    return new


def _retire_hosted_checkout() -> Order | None:
    """Paying here after opening Stripe Checkout: that order's session must not stay
    payable too (one live payment per cart), so it is expired and its order canceled.
    Returns that order instead when it was paid (or its payment started) meanwhile."""
    from ..hosted_checkout import retire_for_payment_element

    return retire_for_payment_element()
