"""The order this browser is paying on Stripe Checkout, remembered in its session."""

from __future__ import annotations

from flask import session
from sqlalchemy import select

from ..cart import Cart
from ..extensions import db
from ..models import Order, OrderStatus

# The browser session remembers the order its hosted checkout is for, so a second
# press (e.g. after "back" from Stripe's page) finds the same order and session.
SESSION_KEY = "hosted_checkout_order"


def browser_order() -> Order | None:
    """The order this browser last sent to Stripe Checkout, if any."""
    public_id = session.get(SESSION_KEY)
    if not public_id:
        return None
    return db.session.scalar(select(Order).where(Order.public_id == public_id))


def forget_paid(order: Order) -> None:
    """Once the browser's hosted-checkout order is paid, empty the cart for a new purchase."""
    if session.get(SESSION_KEY) == order.public_id and (
        order.is_paid or order.status == OrderStatus.PROCESSING
    ):
        cart = Cart.load()
        cart.clear()
        cart.save()
        session.pop(SESSION_KEY, None)
