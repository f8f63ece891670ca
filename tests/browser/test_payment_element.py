"""The Payment Element checkout in a real browser (Chromium via Playwright).

The shop and the Stripe emulator run on free local ports (``live_shop``); the emulator
delivers signed webhooks to the shop, exactly as Stripe would.
"""

from __future__ import annotations

import logging
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from storefront import payments
from storefront.extensions import db
from storefront.models import Order, OrderStatus, OutboxMessage
from tests.live import LiveShop, deliver_webhooks, hold_webhooks, wait_in_page, wait_until

pytestmark = pytest.mark.browser

CARD_FRAME = 'iframe[name^="__privateStripeFrame"][title*="Secure payment input frame"]'
CHALLENGE_FRAME = 'iframe[title="3D Secure authentication"]'
ADDRESS_FRAME = 'iframe[title="Secure address input frame"]'


def add_to_cart(page: Page, shop: LiveShop, *names: str) -> None:
    page.goto(shop.url + "/")
    for name in names:
        page.get_by_role("button", name=f"Add to cart: {name}").click()
        expect(page.get_by_role("status")).to_contain_text("Added to your cart")


def open_checkout(page: Page, shop: LiveShop) -> None:
    page.goto(shop.url + "/cart/")
    page.get_by_role("button", name="Check out", exact=True).click()
    expect(page.get_by_role("heading", name="Checkout")).to_be_visible()
    expect(page.locator("#pay-button")).to_be_enabled()


def fill_address(page: Page, *, name: str = "Ada Lovelace", line1: str = "1 Main St") -> None:
    """Type a US address into the Address Element (shipping mode)."""
    frame = page.frame_locator(ADDRESS_FRAME)
    frame.get_by_label("Full name").fill(name)
    frame.get_by_label("Country or region").select_option("US")
    frame.get_by_label("Address line 1").fill(line1)
    frame.get_by_label("City").fill("Albany")
    frame.get_by_label("State").select_option("NY")
    frame.get_by_label("ZIP").fill("12207")


def fill_card_fields(page: Page, number: str, expiry: str = "12 / 34") -> None:
    """Type a new card into the Payment Element."""
    frame = page.frame_locator(CARD_FRAME)
    frame.locator('input[name="number"]').fill(number)
    frame.locator('input[name="expiry"]').fill(expiry)
    frame.locator('input[name="cvc"]').fill("123")
    frame.locator('input[name="postalCode"]').fill("12345")


def fill_card(
    page: Page, number: str, email: str = "ada@example.com", expiry: str = "12 / 34"
) -> None:
    """Everything a guest's checkout asks for: the receipt email, the address, a card."""
    page.get_by_label("Email for your receipt").fill(email)
    fill_address(page)
    fill_card_fields(page, number, expiry)


def pay(page: Page) -> None:
    page.locator("#pay-button").click()


def orders(shop: LiveShop) -> list[Order]:
    with shop.app.app_context():
        found = db.session.scalars(select(Order)).all()
        for order in found:
            db.session.expunge(order)
        return found


def payment_intents_for(shop: LiveShop, order: Order) -> list[str]:
    with shop.app.app_context():
        listed = payments.client().v1.payment_intents.list(params={"limit": 100})
    return [
        pi.id for pi in listed.data if payments.field(pi, "metadata", "order_id") == order.public_id
    ]


def order_public_id(page: Page) -> str:
    return re.search(r"/orders/([^/?#]+)", page.url).group(1)


# Paying with 4242 and seeing Paid after the webhook, with the confirmation e-mail sent over
# SMTP: tests/browser/test_mail.py (one walk through the flow for both).


def test_decline_moves_focus_to_the_message_then_retry_on_the_same_page(
    page: Page, live_shop: LiveShop
):
    add_to_cart(page, live_shop, "Colombia Huila")
    open_checkout(page, live_shop)
    fill_card(page, "4000 0000 0000 9995")
    pay(page)
    error = page.locator("#payment-error")
    expect(error).to_contain_text("insufficient funds")
    expect(error).to_be_focused()  # for keyboard and screen-reader users (issue 17)
    # The next Tab goes on through the form, not back to "Skip to content".
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") != "Skip to content"
    expect(page.locator("#pay-button")).to_be_enabled()
    [order] = orders(live_shop)
    assert live_shop.order_status(order.public_id) in (OrderStatus.PENDING, OrderStatus.FAILED)

    page.frame_locator(CARD_FRAME).locator('input[name="number"]').fill("4242 4242 4242 4242")
    pay(page)
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
    [order] = orders(live_shop)
    assert order.status == OrderStatus.PAID
    assert payment_intents_for(live_shop, order) == [order.stripe_payment_intent_id]


# Paths the emulator serves (it runs in this process, so its request log lines are
# captured too: the real Stripe's logs are not ours to check).
EMULATOR_PATHS = re.compile(r'"(\x1b\[[0-9;]*m)*[A-Z]+ /(v1/|v3|3ds/|elements/|c/pay/|_emulator/)')


def test_3d_secure_completed_is_paid(page: Page, live_shop: LiveShop, caplog):
    caplog.set_level(logging.DEBUG)
    add_to_cart(page, live_shop, "Gooseneck kettle")
    open_checkout(page, live_shop)
    fill_card(page, "4000 0025 0000 3155")
    pay(page)
    challenge = page.frame_locator(CHALLENGE_FRAME)
    challenge.get_by_role("button", name="Complete authentication").click()
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
    [order] = orders(live_shop)
    assert order.status == OrderStatus.PAID
    # Neither the shop's logs nor its addresses ever carried the client secret.
    with live_shop.app.app_context():
        pi = payments.client().v1.payment_intents.retrieve(order.stripe_payment_intent_id)
    assert pi.client_secret not in page.url
    shop_lines = [
        r.getMessage() for r in caplog.records if not EMULATOR_PATHS.search(r.getMessage())
    ]
    assert any("/orders/" in line for line in shop_lines)  # the shop's own lines are here
    assert not [line for line in shop_lines if pi.client_secret in line]


def test_3d_secure_failed_is_not_paid_and_focus_moves_to_the_message(
    page: Page, live_shop: LiveShop
):
    add_to_cart(page, live_shop, "Gooseneck kettle")
    open_checkout(page, live_shop)
    fill_card(page, "4000 0025 0000 3155")
    pay(page)
    page.frame_locator(CHALLENGE_FRAME).get_by_role("button", name="Fail authentication").click()
    error = page.locator("#payment-error")
    expect(error).to_contain_text("authenticate")
    expect(error).to_be_focused()  # back from the closed dialog to the message (issue 17)
    expect(page.locator("#pay-button")).to_be_enabled()
    [order] = orders(live_shop)
    assert not order.is_paid


def test_reloading_checkout_keeps_one_order_and_makes_no_payment_intent(
    page: Page, live_shop: LiveShop
):
    add_to_cart(page, live_shop, "Travel tumbler")
    open_checkout(page, live_shop)
    for _ in range(3):
        page.reload()
        expect(page.locator("#pay-button")).to_be_enabled()
    [order] = orders(live_shop)
    # Page views create no Stripe objects: the PaymentIntent is made at Pay.
    assert order.stripe_payment_intent_id is None
    assert payment_intents_for(live_shop, order) == []


def test_late_webhook_shows_processing_then_paid(page: Page, live_shop: LiveShop):
    # The webhook is held until the page shows Processing (a fixed delay could run out
    # before a slow page load), and only it can mark the order paid.
    live_shop.app.config["WEBHOOK_GRACE_SECONDS"] = 3600
    hold_webhooks(live_shop)
    add_to_cart(page, live_shop, "House Espresso Blend")
    open_checkout(page, live_shop)
    fill_card(page, "4242 4242 4242 4242")
    pay(page)
    expect(page.get_by_test_id("order-status")).to_contain_text("Processing", timeout=10_000)
    public_id = order_public_id(page)
    assert live_shop.order_status(public_id) == OrderStatus.PENDING
    deliver_webhooks(live_shop)
    # No clicks: the page asks in the background until the late webhook has marked it paid.
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
    wait_until(lambda: live_shop.order_status(public_id) == OrderStatus.PAID)


def test_email_is_checked_first_and_the_button_is_busy_while_paying(
    page: Page, live_shop: LiveShop
):
    add_to_cart(page, live_shop, "Colombia Huila")
    open_checkout(page, live_shop)
    fill_card(page, "4242 4242 4242 4242", email="not-an-email")
    pay(page)
    expect(page.locator("#email-error")).to_contain_text("valid email address")
    expect(page.locator("#pay-button")).to_be_enabled()
    [order] = orders(live_shop)
    assert order.stripe_payment_intent_id is None  # nothing was sent to Stripe

    # Hold the Pay request to look at the button while the payment is under way.
    held = []
    page.route("**/checkout/*/pay", lambda route: held.append(route))
    page.get_by_label("Email for your receipt").fill("ada@example.com")
    pay(page)
    expect(page.locator("#pay-button")).to_be_disabled()
    expect(page.locator("#pay-button .spinner")).to_be_visible()
    wait_in_page(page, lambda: held)
    held[0].continue_()
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
    assert live_shop.order_status(order.public_id) == OrderStatus.PAID


def test_lost_webhook_order_page_fulfils_once_after_the_grace_period(
    page: Page, live_shop: LiveShop
):
    with live_shop.app.app_context():
        sc = payments.client()
        [endpoint] = sc.v1.webhook_endpoints.list().data
        sc.v1.webhook_endpoints.update(endpoint.id, params={"disabled": True})
    # The grace period ends when the test says, not 2 s after the charge: a slow page load
    # could outlast that and show Paid before Processing was ever seen.
    live_shop.app.config["WEBHOOK_GRACE_SECONDS"] = 3600
    add_to_cart(page, live_shop, "Stoneware mug")
    open_checkout(page, live_shop)
    fill_card(page, "4242 4242 4242 4242")
    pay(page)
    expect(page.get_by_test_id("order-status")).to_contain_text("Processing")
    live_shop.app.config["WEBHOOK_GRACE_SECONDS"] = 0
    # No webhook will come: the order page's own check (the same exactly-once
    # fulfil_order) marks it paid once the grace period is over.
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=15_000)
    public_id = order_public_id(page)
    assert live_shop.order_status(public_id) == OrderStatus.PAID
    page.reload()
    expect(page.get_by_test_id("order-status")).to_have_text("Paid")
    with live_shop.app.app_context():
        assert len(db.session.scalars(select(OutboxMessage)).all()) == 1


# --------------------------------------------------------------------------- shipping journeys


def outbox_bodies(shop: LiveShop) -> list[str]:
    with shop.app.app_context():
        return list(db.session.scalars(select(OutboxMessage.body)))


def test_express_shipping_to_an_address_shows_on_the_order_page_and_the_email(
    page: Page, live_shop: LiveShop
):
    add_to_cart(page, live_shop, "Colombia Huila")  # $16.50: Standard is not free
    open_checkout(page, live_shop)
    expect(page.get_by_test_id("checkout-total")).to_have_text("$22.50")  # + Standard $6.00
    page.locator("input[name=shipping_rate][value=express]").check()
    expect(page.get_by_test_id("checkout-total")).to_have_text("$31.50")
    expect(page.locator("#pay-button")).to_contain_text("Pay $31.50")
    fill_card(page, "4242 4242 4242 4242")
    pay(page)
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
    expect(page.get_by_test_id("order-shipping")).to_have_text("$15.00")
    expect(page.get_by_test_id("order-total")).to_have_text("$31.50")
    expect(page.get_by_test_id("order-address")).to_contain_text("Ada Lovelace")
    expect(page.get_by_test_id("order-address")).to_contain_text("1 Main St")
    expect(page.get_by_text("It ships Express")).to_be_visible()
    expect(page.get_by_test_id("order-card")).to_contain_text("Visa ending 4242")
    [order] = orders(live_shop)
    with live_shop.app.app_context():
        pi = payments.client().v1.payment_intents.retrieve(order.stripe_payment_intent_id)
    assert pi.amount == 3150 and pi.shipping.address.postal_code == "12207"
    [body] = wait_until(lambda: outbox_bodies(live_shop))
    assert "Shipping (Express, 1–2 business days): $15.00" in body
    assert "Total: $31.50" in body
    assert "Ada Lovelace\n1 Main St\nAlbany NY 12207\nUS" in body


def test_a_rate_picked_before_the_checkout_script_runs_shows_its_total(
    page: Page, live_shop: LiveShop
):
    """The radios work as soon as they are drawn: one checked while checkout.js was still
    loading once left the page showing the old total and "Pay $22.50"."""
    add_to_cart(page, live_shop, "Colombia Huila")  # $16.50 + Standard $6.00
    held = []
    page.route(
        re.compile(re.escape(live_shop.url) + r"/static/js/checkout\.js"),
        lambda route: held.append(route),
    )
    page.goto(live_shop.url + "/checkout/", wait_until="commit")
    wait_in_page(page, lambda: held)  # the page is drawn up to the script, which waits
    page.locator("input[name=shipping_rate][value=express]").check()
    held[0].continue_()
    expect(page.locator("#pay-button")).to_be_enabled()
    expect(page.get_by_test_id("checkout-total")).to_have_text("$31.50")
    expect(page.locator("#pay-button")).to_contain_text("Pay $31.50")
    fill_card(page, "4242 4242 4242 4242")
    pay(page)
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
    expect(page.get_by_test_id("order-total")).to_have_text("$31.50")


def test_an_incomplete_address_is_flagged_and_nothing_is_charged(page: Page, live_shop: LiveShop):
    add_to_cart(page, live_shop, "Colombia Huila")
    open_checkout(page, live_shop)
    page.get_by_label("Email for your receipt").fill("ada@example.com")
    card = page.frame_locator(CARD_FRAME)
    card.locator('input[name="number"]').fill("4242 4242 4242 4242")
    card.locator('input[name="expiry"]').fill("12 / 34")
    card.locator('input[name="cvc"]').fill("123")
    card.locator('input[name="postalCode"]').fill("12345")
    pay(page)
    expect(page.locator("#payment-error")).to_contain_text("incomplete")
    expect(page.locator("#pay-button")).to_be_enabled()
    [order] = orders(live_shop)
    assert order.stripe_payment_intent_id is None


def test_two_tabs_the_stale_one_gets_the_409_and_charges_nothing(page: Page, live_shop: LiveShop):
    add_to_cart(page, live_shop, "Ethiopia Yirgacheffe")  # $18.00
    open_checkout(page, live_shop)  # tab 1 shows $24.00 with Standard
    expect(page.get_by_test_id("checkout-total")).to_have_text("$24.00")
    tab2 = page.context.new_page()
    add_to_cart(tab2, live_shop, "Travel tumbler")  # $52.00: Standard now free
    open_checkout(tab2, live_shop)
    expect(tab2.get_by_test_id("checkout-total")).to_have_text("$52.00")
    fill_card(page, "4242 4242 4242 4242")
    pay(page)  # tab 1 still shows $24.00
    expect(page.locator("#payment-error")).to_contain_text(
        "Your order changed — please review the new total"
    )
    expect(page.locator("#pay-button")).to_be_enabled()
    [order] = orders(live_shop)
    assert not order.is_paid
    assert payment_intents_for(live_shop, order) == []  # nothing to charge, let alone stale
    page.get_by_role("button", name="Review the new total").click()
    expect(page.get_by_test_id("checkout-total")).to_have_text("$52.00")
    fill_card(page, "4242 4242 4242 4242")
    pay(page)
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
    [order] = orders(live_shop)
    [pi_id] = payment_intents_for(live_shop, order)
    with live_shop.app.app_context():
        assert payments.client().v1.payment_intents.retrieve(pi_id).amount == 5200
    tab2.close()


def test_a_processing_payment_then_the_stripe_button_ends_on_the_first_order(
    page: Page, live_shop: LiveShop
):
    # Processing for longer than the test can take on a busy machine (30 s once was not).
    live_shop.emulator.app.config["EMULATOR_PROCESSING_SECONDS"] = 3600
    add_to_cart(page, live_shop, "Gooseneck kettle")
    open_checkout(page, live_shop)
    fill_card(page, "4242 4242 4242 4242")
    pay(page)
    expect(page.get_by_test_id("order-status")).to_contain_text("Processing", timeout=20_000)
    first = order_public_id(page)
    # The cart still holds the kettle; the customer tries the other button.
    page.goto(live_shop.url + "/cart/")
    page.get_by_role("button", name="Pay on Stripe's secure page").click()
    page.wait_for_url(re.compile(re.escape(live_shop.url) + "/orders/" + re.escape(first)))
    page.goto(live_shop.url + "/cart/")
    page.get_by_role("button", name="Check out", exact=True).click()
    page.wait_for_url(re.compile(re.escape(live_shop.url) + "/orders/" + re.escape(first)))
    [order] = orders(live_shop)
    assert order.public_id == first and order.stripe_checkout_session_id is None
    assert len(payment_intents_for(live_shop, order)) == 1
    with live_shop.app.app_context():
        sessions = payments.client().v1.checkout.sessions.list(params={"limit": 100})
    assert sessions.data == []


def test_a_signed_in_member_pays_no_shipping(page: Page, live_shop: LiveShop):
    from storefront.models import Customer, Subscription

    email = "member@example.com"
    with live_shop.app.app_context():
        customer = Customer(email=email)
        db.session.add(customer)
        db.session.flush()
        db.session.add(
            Subscription(
                stripe_subscription_id="sub_member", customer_id=customer.id, status="active"
            )
        )
        db.session.commit()
    page.goto(live_shop.url + "/account/")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()

    def sign_in_link() -> str | None:
        with live_shop.app.app_context():
            body = db.session.scalar(
                select(OutboxMessage.body).where(
                    OutboxMessage.kind == "sign_in", OutboxMessage.to_email == email
                )
            )
        match = re.search(r"https?://\S+/account/sign-in/\S+", body or "")
        return match.group(0) if match else None

    page.goto(wait_until(sign_in_link))
    page.get_by_role("button", name=re.compile("^Sign in as")).click()
    expect(page.get_by_test_id("member-badge")).to_be_visible()
    add_to_cart(page, live_shop, "Colombia Huila")  # $16.50: under the free-shipping threshold
    open_checkout(page, live_shop)
    expect(page.get_by_test_id("checkout-shipping")).to_have_text("Free")
    expect(page.get_by_text("Free for members")).to_be_visible()
    expect(page.get_by_test_id("checkout-total")).to_have_text("$16.50")
    fill_card(page, "4242 4242 4242 4242", email=email)
    pay(page)
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
    expect(page.get_by_test_id("order-shipping")).to_have_text("Free")
    expect(page.get_by_test_id("order-total")).to_have_text("$16.50")
    [order] = orders(live_shop)
    with live_shop.app.app_context():
        pi = payments.client().v1.payment_intents.retrieve(order.stripe_payment_intent_id)
    assert (order.shipping_amount, order.amount_total, pi.amount) == (0, 1650, 1650)
