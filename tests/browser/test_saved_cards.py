"""Saved cards for signed-in customers (issue 14) in a real browser.

A signed-in customer's checkout gets their Stripe Customer and a Customer Session: the
Payment Element offers "Save this card for next time" under a new card and lists the cards
saved that way above it, so the next purchase is one press of Pay. A saved card that
needs 3-D Secure still asks for it. Guests get neither.
"""

from __future__ import annotations

import datetime
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from storefront import billing, payments
from storefront.extensions import db
from storefront.models import Customer, Order, OutboxMessage
from tests.browser import axe
from tests.browser.test_payment_element import (
    CARD_FRAME,
    CHALLENGE_FRAME,
    add_to_cart,
    fill_address,
    fill_card,
    fill_card_fields,
    open_checkout,
    order_public_id,
    pay,
)
from tests.live import LiveShop, wait_until

pytestmark = pytest.mark.browser

EMAIL = "ada@example.com"
YEAR = datetime.date.today().year + 5
EXPIRY = f"12 / {YEAR % 100}"


def sign_in(page: Page, shop: LiveShop, email: str = EMAIL) -> None:
    page.goto(shop.url + "/account/")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()

    def sign_in_link() -> str | None:
        with shop.app.app_context():
            body = db.session.scalar(
                select(OutboxMessage.body).where(
                    OutboxMessage.kind == "sign_in", OutboxMessage.to_email == email
                )
            )
        match = re.search(r"https?://\S+/account/sign-in/\S+", body or "")
        return match.group(0) if match else None

    page.goto(wait_until(sign_in_link))
    page.get_by_role("button", name=re.compile("^Sign in as")).click()
    expect(page.get_by_text(email).first).to_be_visible()


def order_by_id(shop: LiveShop, public_id: str) -> Order:
    with shop.app.app_context():
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        db.session.expunge(order)
        return order


def stripe_customer_id(shop: LiveShop, email: str = EMAIL) -> str | None:
    with shop.app.app_context():
        return db.session.scalar(select(Customer.stripe_customer_id).where(Customer.email == email))


def intent_of(shop: LiveShop, order: Order):
    with shop.app.app_context():
        return payments.client().v1.payment_intents.retrieve(order.stripe_payment_intent_id)


def saved_card_label(last4: str) -> str:
    return f"Visa •••• {last4}, expires 12/{YEAR % 100:02d}"


def test_save_on_the_first_purchase_then_pay_the_second_with_one_click(
    page: Page, live_shop: LiveShop
):
    sign_in(page, live_shop)
    add_to_cart(page, live_shop, "Ethiopia Yirgacheffe")
    open_checkout(page, live_shop)
    frame = page.frame_locator(CARD_FRAME)
    # Nothing saved yet: the new-card form, with the offer to save it.
    expect(frame.get_by_label("Save this card for next time")).to_be_visible()
    expect(frame.get_by_role("group", name="Pay with")).to_be_hidden()
    expect(page.get_by_label("Email for your receipt")).to_have_value(EMAIL)
    fill_address(page)
    fill_card_fields(page, "4242 4242 4242 4242", EXPIRY)
    frame.get_by_label("Save this card for next time").check()
    expect(frame.get_by_text("to charge your card for future payments")).to_be_visible()
    pay(page)
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
    first = order_by_id(live_shop, order_public_id(page))
    pi = intent_of(live_shop, first)
    customer = stripe_customer_id(live_shop)
    assert customer and pi.customer == customer
    assert pi.setup_future_usage == "off_session"
    with live_shop.app.app_context():
        pm = payments.client().v1.payment_methods.retrieve(pi.payment_method)
    assert (pm.customer, pm.allow_redisplay) == (customer, "always")

    # The second purchase: the saved card is chosen, the address is last time's.
    add_to_cart(page, live_shop, "Stoneware mug")
    open_checkout(page, live_shop)
    saved = frame.get_by_role("radio", name=saved_card_label("4242"))
    expect(saved).to_be_checked()
    expect(frame.get_by_role("radio", name="New card")).not_to_be_checked()
    expect(frame.get_by_label("Card number")).to_be_hidden()
    pay(page)  # the one click
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
    second = order_by_id(live_shop, order_public_id(page))
    assert second.public_id != first.public_id
    assert second.ship_line1 == "1 Main St"
    pi2 = intent_of(live_shop, second)
    assert (pi2.payment_method, pi2.customer, pi2.status) == (pm.id, customer, "succeeded")


def test_a_saved_3155_card_still_gets_the_challenge(page: Page, live_shop: LiveShop):
    pm_id = save_card_for(live_shop, "4000002500003155")
    sign_in(page, live_shop)
    add_to_cart(page, live_shop, "Gooseneck kettle")
    open_checkout(page, live_shop)
    frame = page.frame_locator(CARD_FRAME)
    expect(frame.get_by_role("radio", name=saved_card_label("3155"))).to_be_checked()
    fill_address(page)
    pay(page)
    challenge = page.frame_locator(CHALLENGE_FRAME)
    challenge.get_by_role("button", name="Complete authentication").click()
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
    order = order_by_id(live_shop, order_public_id(page))
    pi = intent_of(live_shop, order)
    assert (pi.payment_method, pi.status) == (pm_id, "succeeded")


def test_a_guest_sees_no_saved_cards_and_cannot_save(page: Page, live_shop: LiveShop):
    # Someone with this email has a saved card: a guest typing the email never sees it.
    with live_shop.app.app_context():
        customer = billing.get_or_create_customer(EMAIL)
        payments.client().v1.payment_methods.attach(
            "pm_card_visa", params={"customer": customer.stripe_customer_id}
        )
    add_to_cart(page, live_shop, "Colombia Huila")
    open_checkout(page, live_shop)
    frame = page.frame_locator(CARD_FRAME)
    expect(frame.get_by_label("Card number")).to_be_visible()
    expect(frame.get_by_label("Save this card for next time")).to_be_hidden()
    expect(frame.get_by_role("group", name="Pay with")).to_be_hidden()
    expect(frame.get_by_role("radio")).to_have_count(0)
    fill_card(page, "4242 4242 4242 4242", email=EMAIL, expiry=EXPIRY)
    pay(page)
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
    order = order_by_id(live_shop, order_public_id(page))
    pi = intent_of(live_shop, order)
    assert pi.customer is None and pi.setup_future_usage is None
    assert order.customer_id is None


def save_card_for(shop: LiveShop, number: str, email: str = EMAIL) -> str:
    """A card ``email``'s customer saved with consent (allow_redisplay "always")."""
    with shop.app.app_context():
        customer = billing.get_or_create_customer(email)
        sc = payments.client()
        pm = sc.v1.payment_methods.create(
            params={
                "type": "card",
                "allow_redisplay": "always",
                "card": {"number": number, "exp_month": 12, "exp_year": YEAR},
            }
        )
        sc.v1.payment_methods.attach(pm.id, params={"customer": customer.stripe_customer_id})
        return pm.id


def signed_in_with_saved_cards(page: Page, shop: LiveShop, width: int, *numbers: str) -> None:
    """At ``width``, with axe in every page: the customer saved ``numbers`` earlier, is
    signed in and has a cart (the axe tests' common start)."""
    page.set_viewport_size({"width": width, "height": 900})
    axe.install(page)
    for number in numbers:
        save_card_for(shop, number)
    sign_in(page, shop)
    add_to_cart(page, shop, "Colombia Huila")


@pytest.mark.parametrize("width", [1280, 390])
def test_the_checkout_with_saved_cards_has_no_axe_violations(
    page: Page, live_shop: LiveShop, width: int
):
    signed_in_with_saved_cards(page, live_shop, width, "4242424242424242", "5555555555554444")
    open_checkout(page, live_shop)
    frame = page.frame_locator(CARD_FRAME)
    expect(frame.get_by_role("radio", name=re.compile("^Mastercard •••• 4444"))).to_be_checked()
    found = {}
    if result := axe.violations(page):
        found["saved card chosen"] = result
    # Keyboard: from the chosen card, arrow keys move through the choices to "New card".
    frame.get_by_role("radio", name=re.compile("^Mastercard")).focus()
    page.keyboard.press("ArrowDown")
    expect(frame.get_by_role("radio", name=saved_card_label("4242"))).to_be_checked()
    page.keyboard.press("ArrowDown")
    expect(frame.get_by_role("radio", name="New card")).to_be_checked()
    expect(frame.get_by_label("Card number")).to_be_visible()
    page.keyboard.press("Tab")
    expect(frame.get_by_label("Card number")).to_be_focused()
    frame.get_by_label("Save this card for next time").check()
    if result := axe.violations(page):
        found["new card, saving"] = result
    assert not found, "axe violations:\n" + axe.describe(found)


def open_hosted_page(page: Page, shop: LiveShop) -> None:
    page.goto(shop.url + "/cart/")
    page.get_by_role("button", name="Pay on Stripe's secure page").click()
    page.wait_for_url(re.compile(re.escape(shop.emulator.url) + r"/c/pay/cs_"))
    expect(page.locator("#payment-form")).to_be_visible()


def fill_hosted_address(page: Page) -> None:
    page.fill("#shippingName", "Ada Lovelace")
    page.select_option("#shippingCountry", "US")
    page.fill("#shippingAddressLine1", "1 Main St")
    page.fill("#shippingLocality", "Albany")
    page.fill("#shippingAdministrativeArea", "NY")
    page.fill("#shippingPostalCode", "12207")


def paid_hosted_order(page: Page, shop: LiveShop) -> Order:
    page.wait_for_url(re.compile(re.escape(shop.url) + r"/orders/[^/?]+\?session_id=cs_"))
    expect(page.get_by_test_id("order-status")).to_have_text(re.compile("Paid", re.I))
    return order_by_id(shop, page.url.split("/orders/")[1].split("?")[0])


def test_stripe_checkout_saves_a_card_and_offers_it_next_time(page: Page, live_shop: LiveShop):
    sign_in(page, live_shop)
    add_to_cart(page, live_shop, "Ethiopia Yirgacheffe")
    open_hosted_page(page, live_shop)
    expect(page.get_by_role("group", name="Pay with")).to_be_hidden()
    fill_hosted_address(page)
    page.fill("#cardNumber", "4242 4242 4242 4242")
    page.fill("#cardExpiry", EXPIRY)
    page.fill("#cardCvc", "123")
    page.fill("#billingName", "Ada Lovelace")
    page.get_by_label("Save this card for next time").check()
    page.get_by_role("button", name="Pay").click()
    first = paid_hosted_order(page, live_shop)
    customer = stripe_customer_id(live_shop)
    with live_shop.app.app_context():
        cs = payments.client().v1.checkout.sessions.retrieve(
            first.stripe_checkout_session_id, params={"expand": ["payment_intent"]}
        )
        pm = payments.client().v1.payment_methods.retrieve(cs.payment_intent.payment_method)
    assert cs.customer == customer
    assert (pm.customer, pm.allow_redisplay) == (customer, "always")

    add_to_cart(page, live_shop, "Stoneware mug")
    open_hosted_page(page, live_shop)
    saved = page.get_by_role("radio", name=saved_card_label("4242"))
    expect(saved).to_be_checked()
    expect(page.locator("#cardNumber")).to_be_hidden()
    fill_hosted_address(page)
    page.get_by_role("button", name="Pay").click()
    second = paid_hosted_order(page, live_shop)
    with live_shop.app.app_context():
        cs2 = payments.client().v1.checkout.sessions.retrieve(
            second.stripe_checkout_session_id, params={"expand": ["payment_intent"]}
        )
    assert cs2.payment_intent.payment_method == pm.id


def test_a_guest_on_stripe_checkout_sees_no_saved_cards(page: Page, live_shop: LiveShop):
    save_card_for(live_shop, "4242424242424242")
    add_to_cart(page, live_shop, "Colombia Huila")
    open_hosted_page(page, live_shop)
    expect(page.locator("#cardNumber")).to_be_visible()
    expect(page.get_by_role("group", name="Pay with")).to_be_hidden()
    expect(page.locator('input[name="paymentChoice"]:visible')).to_have_count(0)
    expect(page.get_by_label("Save this card for next time")).to_be_hidden()


@pytest.mark.parametrize("width", [1280, 390])
def test_stripe_checkout_with_saved_cards_has_no_axe_violations(
    page: Page, live_shop: LiveShop, width: int
):
    signed_in_with_saved_cards(page, live_shop, width, "4242424242424242")
    open_hosted_page(page, live_shop)
    expect(page.get_by_role("radio", name=saved_card_label("4242"))).to_be_checked()
    found = {}
    if result := axe.violations(page):
        found["saved card chosen"] = result
    page.get_by_role("radio", name="New card").check()
    expect(page.get_by_label("Save this card for next time")).to_be_visible()
    if result := axe.violations(page):
        found["new card"] = result
    assert not found, "axe violations:\n" + axe.describe(found)
