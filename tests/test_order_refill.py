"""``refill_order``: an unpaid order follows the cart, also when two tabs do it at once."""

from __future__ import annotations

import threading

from sqlalchemy import select

from storefront.cart import Cart
from storefront.extensions import db
from storefront.models import Order, Price
from storefront.orders import refill_order
from tests.threads import run_in_app_threads
from tests.webhook_helpers import make_order


def price_of(app, lookup_key: str) -> tuple[int, int]:
    with app.app_context():
        price = db.session.scalar(select(Price).where(Price.lookup_key == lookup_key))
        return price.id, price.unit_amount


def test_refill_makes_the_order_hold_the_cart(app):
    public_id = make_order(app, quantity=1)
    price_id, unit = price_of(app, "colombia-huila-usd")
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        assert refill_order(order, Cart(currency="usd", items={str(price_id): 3})) is True
        db.session.commit()
        assert [(i.price_id, i.quantity) for i in order.items] == [(price_id, 3)]
        # Standard shipping (3 x $16.50 is under the free-shipping threshold) on top.
        assert order.amount_total == 3 * unit + 600 == order.subtotal + order.shipping_amount
        # Already the cart: nothing to do.
        assert refill_order(order, Cart(currency="usd", items={str(price_id): 3})) is False


def test_two_tabs_refilling_one_order_at_once_leave_one_set_of_items(app):
    public_id = make_order(app, quantity=1)
    price_id, unit = price_of(app, "colombia-huila-usd")
    cart = Cart(currency="usd", items={str(price_id): 3})
    barrier = threading.Barrier(2)

    def tab():
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        assert len(order.items) == 1  # both tabs saw the old items
        barrier.wait()
        refilled = refill_order(order, cart)
        db.session.commit()
        return refilled

    results = run_in_app_threads(app, tab, tab)
    assert sorted(results) == [False, True]
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        assert [(i.price_id, i.quantity) for i in order.items] == [(price_id, 3)]
        # Standard shipping (3 x $16.50 is under the free-shipping threshold) on top.
        assert order.amount_total == 3 * unit + 600 == order.subtotal + order.shipping_amount
