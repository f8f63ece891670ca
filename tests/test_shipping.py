"""Shipping rates as data, what they cost an order, and where the shop says so."""

from __future__ import annotations

import click
import pytest
from sqlalchemy import select

from storefront import account, shipping
from storefront.cart import Cart, CartError
from storefront.catalog import load_shipping_rates
from storefront.extensions import db
from storefront.fulfilment import fulfil_order
from storefront.models import Customer, OutboxMessage, Price, Product, Subscription
from storefront.orders import create_order_from_cart, reprice
from tests.accounts import sign_in
from tests.conftest import make_app

MEMBER = "member@example.com"


def price_id(app, key: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Price.id).where(Price.lookup_key == key))


def add(client, app, key: str, quantity: int = 1) -> None:
    client.post("/cart/add", data={"price_id": str(price_id(app, key)), "quantity": quantity})


def make_member(app, monkeypatch, email: str = MEMBER) -> None:
    """A live Coffee Club membership, and this test's browser signed in as its owner."""
    with app.app_context():
        customer = Customer(email=email, stripe_customer_id="cus_member")
        db.session.add(customer)
        db.session.flush()
        db.session.add(
            Subscription(stripe_subscription_id="sub_m", customer_id=customer.id, status="active")
        )
        db.session.commit()
    monkeypatch.setattr(account, "signed_in_email", lambda: email)


def test_seeding_the_rates_is_idempotent_and_checks_every_entry(app):
    with app.app_context():
        rates = load_shipping_rates()
        assert shipping.seed_shipping_rates(rates) == {
            "shipping rates created": 0,
            "shipping rates updated": 0,
        }
        assert [(r.code, r.amount) for r in shipping.rates_for("usd")] == [
            ("standard", 600),
            ("express", 1500),
        ]
        assert [r.code for r in shipping.rates_for("eur")] == ["standard", "express"]
        bad = [*rates, {"code": "drone", "name": "Drone", "currency": "usd", "amount": -1}]
        with pytest.raises(click.ClickException, match="amount"):
            shipping.seed_shipping_rates(bad)
        bad = [{**rates[0], "delivery_days": [5, 3]}]
        with pytest.raises(click.ClickException, match="delivery_days"):
            shipping.seed_shipping_rates(bad)
        assert len(shipping.rates_for("usd")) == 2


def test_catalog_seed_command_seeds_the_rates(runner):
    result = runner.invoke(args=["catalog", "seed"])
    assert result.exit_code == 0, result.output
    assert "0 shipping rates created" in result.output


def test_standard_is_free_for_members_and_over_the_threshold_express_never(app):
    with app.app_context():
        standard, express = shipping.rates_for("usd")
        assert shipping.quote(standard, 1800, member=False).amount == 600
        member = shipping.quote(standard, 1800, member=True)
        assert (member.amount, member.free_reason) == (0, "Free for members")
        over = shipping.quote(standard, 5000, member=False)
        assert (over.amount, over.free_reason) == (0, "Free over $50.00")
        assert shipping.quote(standard, 4999, member=False).amount == 600
        assert shipping.quote(express, 9000, member=True).amount == 1500


def test_an_order_is_its_items_plus_the_rate_it_ships_by(app):
    with app.app_context():
        cart = Cart(currency="usd", items={str(price_id(app, "ethiopia-yirgacheffe-usd")): 1})
        order = create_order_from_cart(cart)
        assert (order.subtotal, order.shipping_amount, order.amount_total) == (1800, 600, 2400)
        assert (order.shipping_rate_code, order.delivery_estimate) == (
            "standard",
            "3–5 business days",
        )
        reprice(order, member=False, rate_code="express")
        assert (order.shipping_rate_name, order.amount_total) == ("Express", 3300)
        reprice(order, member=True, rate_code="standard")
        assert order.amount_total == 1800
        reprice(order, member=False, rate_code="teleport")  # unknown: the first rate
        assert (order.shipping_rate_code, order.amount_total) == ("standard", 2400)


def test_an_order_is_never_made_for_more_than_the_stock(app):
    with app.app_context():
        cart = Cart(currency="usd", items={str(price_id(app, "hand-burr-grinder-usd")): 3})
        db.session.execute(
            db.update(Product).where(Product.slug == "hand-burr-grinder").values(stock=2)
        )
        with pytest.raises(CartError, match="only 2 of Hand burr grinder left"):
            create_order_from_cart(cart)
        db.session.execute(
            db.update(Product).where(Product.slug == "hand-burr-grinder").values(stock=0)
        )
        with pytest.raises(CartError, match="sold out"):
            create_order_from_cart(cart)


def test_cart_shows_subtotal_shipping_and_total(client, app):
    add(client, app, "ethiopia-yirgacheffe-usd")
    page = client.get("/cart/").get_data(as_text=True)
    assert 'data-testid="cart-subtotal">$18.00' in page
    assert 'data-testid="cart-shipping">$6.00' in page
    assert 'data-testid="cart-total">$24.00' in page
    assert "Add $32.00 more for free Standard shipping" in page
    add(client, app, "travel-tumbler-usd")  # $52.00: over the threshold
    page = client.get("/cart/").get_data(as_text=True)
    assert "Free over $50.00" in page
    assert 'data-testid="cart-total">$52.00' in page
    assert "free-shipping-hint" not in page


def test_a_member_pays_no_shipping_in_the_cart(client, app, monkeypatch):
    make_member(app, monkeypatch)
    add(client, app, "stoneware-mug-usd")
    page = client.get("/cart/").get_data(as_text=True)
    assert "Free for members" in page
    assert 'data-testid="cart-total">$32.00' in page


def test_order_page_and_email_show_shipping_address_and_card(app, client):
    with app.app_context():
        cart = Cart(currency="usd", items={str(price_id(app, "colombia-huila-usd")): 1})
        order = create_order_from_cart(cart, email="ada@example.com")
        reprice(order, member=False, rate_code="express")
        order.ship_name, order.ship_line1, order.ship_city = "Ada Lovelace", "1 Main St", "Albany"
        order.ship_state, order.ship_postal_code, order.ship_country = "NY", "12207", "US"
        order.card_brand, order.card_last4 = "visa", "4242"
        db.session.commit()
        assert fulfil_order(order)
        public_id = order.public_id
        body = db.session.scalar(select(OutboxMessage.body))
    assert "Subtotal: $16.50" in body
    assert "Shipping (Express, 1–2 business days): $15.00" in body
    assert "Total: $31.50" in body
    assert "Ada Lovelace\n1 Main St\nAlbany NY 12207\nUS" in body
    assert "Paid with Visa ending 4242" in body
    sign_in(client, "ada@example.com")  # the address and card are for the buyer's eyes
    page = client.get(f"/orders/{public_id}").get_data(as_text=True)
    assert 'data-testid="order-shipping">$15.00' in page
    assert 'data-testid="order-total">$31.50' in page
    assert "Ada Lovelace<br>1 Main St<br>Albany NY 12207<br>US" in page
    assert "Visa ending 4242" in page
    assert "expect it in 1–2 business days" in page


def test_store_pages_are_linked_from_every_page(client):
    home = client.get("/").get_data(as_text=True)
    for path, heading in [
        ("/shipping-and-returns", "Shipping &amp; returns"),
        ("/contact", "Contact us"),
        ("/privacy", "Privacy"),
        ("/terms", "Terms of sale"),
    ]:
        assert f'href="{path}"' in home
        response = client.get(path)
        assert response.status_code == 200
        assert f"<h1>{heading}</h1>" in response.get_data(as_text=True)
    page = client.get("/shipping-and-returns").get_data(as_text=True)
    assert "Express" in page and "$15.00" in page and "€14.00" in page
    assert "free for Coffee Club members" in page
    assert "US, CA, GB" in page


def test_ship_to_countries_must_be_country_codes(tmp_path):
    with pytest.raises(SystemExit, match="SHIP_TO_COUNTRIES"):
        make_app(tmp_path, SHIP_TO_COUNTRIES="USA;Canada")
    app = make_app(tmp_path, SHIP_TO_COUNTRIES="us, ca")
    with app.app_context():
        assert shipping.ship_to_countries() == ["US", "CA"]
        db.engine.dispose()


def test_a_shop_without_rates_charges_no_shipping(app):
    with app.app_context():
        db.session.execute(db.update(shipping.ShippingRate).values(active=False))
        cart = Cart(currency="usd", items={str(price_id(app, "stoneware-mug-usd")): 1})
        order = create_order_from_cart(cart)
        assert (order.shipping_rate_code, order.amount_total) == (None, 3200)
