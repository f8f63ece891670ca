"""Order and membership-welcome pages: whole only for the browser that started them or
their signed-in owner; anyone else holding the link sees status and items, the email
masked and no address or card."""

from __future__ import annotations

from sqlalchemy import select

from storefront.extensions import db
from storefront.models import Order
from tests.accounts import sign_in
from tests.stripe_helpers import EventFeed, add_to_cart, pay_hosted_page, session_id_from

EMAIL = "ada@example.com"
MASKED = "a…@example.com"
MONTHLY = "coffee-club-monthly-usd"


def give_address(app, public_id: str) -> None:
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        order.email = EMAIL
        order.ship_name, order.ship_line1, order.ship_city = "Ada Lovelace", "1 Main St", "Albany"
        order.ship_postal_code, order.ship_country = "12207", "US"
        order.card_brand, order.card_last4 = "visa", "4242"
        db.session.commit()


def checkout_order(stripe_app, buyer) -> str:
    """The buyer's browser goes to the checkout page, which makes its order."""
    add_to_cart(buyer, stripe_app, "colombia-huila-usd")
    assert buyer.get("/checkout/").status_code == 200
    with stripe_app.app_context():
        return db.session.scalar(select(Order.public_id))


def is_full(html: str) -> bool:
    return EMAIL in html and "Ada Lovelace" in html and "ending 4242" in html


def is_limited(html: str) -> bool:
    return (
        EMAIL not in html
        and MASKED in html
        and "Ada Lovelace" not in html
        and "1 Main St" not in html
        and "4242" not in html
        and 'data-testid="order-limited"' in html
    )


def test_only_the_buyers_browser_sees_the_whole_order_page(stripe_app):
    buyer = stripe_app.test_client()
    public_id = checkout_order(stripe_app, buyer)
    give_address(stripe_app, public_id)
    mine = buyer.get(f"/orders/{public_id}")
    assert is_full(mine.get_data(as_text=True))
    assert "no-store" in mine.headers["Cache-Control"]
    # Someone else with the link: status and items, the email masked, no address or card.
    other = stripe_app.test_client().get(f"/orders/{public_id}").get_data(as_text=True)
    assert "Colombia Huila" in other and 'data-testid="order-status"' in other
    assert is_limited(other)


def test_the_signed_in_owner_sees_the_whole_order_page_in_another_browser(stripe_app):
    public_id = checkout_order(stripe_app, stripe_app.test_client())
    give_address(stripe_app, public_id)
    elsewhere = stripe_app.test_client()
    assert is_limited(elsewhere.get(f"/orders/{public_id}").get_data(as_text=True))
    sign_in(elsewhere, EMAIL)
    assert is_full(elsewhere.get(f"/orders/{public_id}").get_data(as_text=True))
    someone = stripe_app.test_client()
    sign_in(someone, "grace@example.com")
    assert is_limited(someone.get(f"/orders/{public_id}").get_data(as_text=True))


def test_after_sign_out_the_browser_no_longer_sees_its_orders_in_full(stripe_app):
    # A shared computer: the next person must not find the last buyer's address.
    buyer = stripe_app.test_client()
    sign_in(buyer, "grace@example.com")
    public_id = checkout_order(stripe_app, buyer)
    give_address(stripe_app, public_id)
    assert is_full(buyer.get(f"/orders/{public_id}").get_data(as_text=True))
    buyer.post("/account/sign-out")
    assert is_limited(buyer.get(f"/orders/{public_id}").get_data(as_text=True))


def test_hosted_checkout_orders_are_whole_for_their_browser(stripe_app):
    buyer = stripe_app.test_client()
    add_to_cart(buyer, stripe_app, "colombia-huila-usd")
    assert buyer.post("/checkout/stripe/").status_code == 303
    with stripe_app.app_context():
        public_id = db.session.scalar(select(Order.public_id))
    give_address(stripe_app, public_id)
    assert is_full(buyer.get(f"/orders/{public_id}").get_data(as_text=True))
    assert is_limited(stripe_app.test_client().get(f"/orders/{public_id}").get_data(as_text=True))


def test_welcome_page_is_whole_only_for_the_subscribing_browser(stripe_app, emulator):
    subscriber = stripe_app.test_client()
    resp = subscriber.post(
        "/membership/subscribe", data={"price": MONTHLY, "email": EMAIL, "nonce": "w" * 20}
    )
    cs_id = session_id_from(resp.headers["Location"])
    assert pay_hosted_page(emulator.url, cs_id, email=EMAIL)["status"] == "complete"
    EventFeed(stripe_app).deliver()
    url = f"/membership/welcome?session_id={cs_id}"
    mine = subscriber.get(url)
    html = mine.get_data(as_text=True)
    assert "no-store" in mine.headers["Cache-Control"]
    assert EMAIL in html and 'data-testid="membership-state">Active' in html
    other = stripe_app.test_client().get(url).get_data(as_text=True)
    assert 'data-testid="membership-state">Active' in other  # the status, yes
    assert EMAIL not in other and MASKED in other
    assert 'name="email"' not in other  # no sign-in form carrying the address
    owner = stripe_app.test_client()
    sign_in(owner, EMAIL)
    assert "Go to My account" in owner.get(url).get_data(as_text=True)


def test_the_buyer_is_told_when_stock_did_not_cover_the_order(stripe_app):
    buyer = stripe_app.test_client()
    public_id = checkout_order(stripe_app, buyer)
    with stripe_app.app_context():
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        order.status, order.needs_attention = "paid", True
        db.session.commit()
    html = buyer.get(f"/orders/{public_id}").get_data(as_text=True)
    assert 'data-testid="order-attention"' in html and "out of stock" in html
    other = stripe_app.test_client().get(f"/orders/{public_id}").get_data(as_text=True)
    assert 'data-testid="order-attention"' not in other
