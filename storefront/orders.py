"""An order's status page, found by its public (unguessable) id."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from sqlalchemy import select

from .cart import Cart, CartError
from .extensions import db
from .models import Order, OrderItem, OrderStatus

bp = Blueprint("orders", __name__, url_prefix="/orders")


def get_order_or_404(public_id: str) -> Order:
    order = db.session.scalar(select(Order).where(Order.public_id == public_id))
    if order is None:
        abort(404, "We could not find that order.")
    return order


@bp.get("/<public_id>")
def show(public_id: str):
    order = get_order_or_404(public_id)
    return render_template("orders/show.html", order=order)


def create_order_from_cart(cart: Cart, email: str | None = None) -> Order:
    """A pending order snapshotting the cart's lines; amounts from the database only.

    The caller commits. Raises ``CartError`` for an empty cart.
    """
    lines = cart.lines()
    if not lines:
        raise CartError("Your cart is empty.")
    order = Order(
        email=email,
        currency=cart.currency,
        amount_total=sum(line.total for line in lines),
        status=OrderStatus.PENDING,
    )
    for line in lines:
        order.items.append(
            OrderItem(
                product_id=line.product.id,
                price_id=line.price.id,
                product_name=line.product.name,
                price_lookup_key=line.price.lookup_key,
                unit_amount=line.price.unit_amount,
                quantity=line.quantity,
            )
        )
    db.session.add(order)
    return order


def order_matches_cart(order: Order, cart: Cart) -> bool:
    """True when the order's items, prices and total are what the cart holds now."""
    lines = cart.lines()
    now = sorted((line.price.id, line.quantity, line.price.unit_amount) for line in lines)
    then = sorted((item.price_id, item.quantity, item.unit_amount) for item in order.items)
    return order.currency == cart.currency and now == then
