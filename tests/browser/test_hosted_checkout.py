"""Stripe Checkout's hosted page in Chromium: a one-time order and the membership."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from storefront.extensions import db
from storefront.models import Customer, OutboxMessage
from tests.live import LiveShop, wait_in_page, wait_until

pytestmark = pytest.mark.browser

EMAIL = "ada@example.com"


def fill_hosted_page(
    page: Page, *, email: str | None = EMAIL, button: str = "Pay", rate: str | None = None
) -> None:
    """Type a 4242 card (and, when the session collects one, a shipping address) into the
    emulator's hosted Checkout page and submit."""
    expect(page.locator("#payment-form")).to_be_visible()
    if email is not None and page.locator("#email").is_editable():
        page.fill("#email", email)
    if page.locator("#shippingName").is_visible():
        page.fill("#shippingName", "Ada Lovelace")
        page.select_option("#shippingCountry", "US")
        page.fill("#shippingAddressLine1", "1 Main St")
        page.fill("#shippingLocality", "Albany")
        page.fill("#shippingAdministrativeArea", "NY")
        page.fill("#shippingPostalCode", "12207")
    if rate is not None:
        page.get_by_label(re.compile(rate)).check()
    page.fill("#cardNumber", "4242 4242 4242 4242")
    page.fill("#cardExpiry", "12 / 34")
    page.fill("#cardCvc", "123")
    page.fill("#billingName", "Ada Lovelace")
    page.get_by_role("button", name=button).click()


def test_one_time_order_through_the_hosted_page_is_paid(page: Page, live_shop: LiveShop):
    page.goto(live_shop.url + "/products/ethiopia-yirgacheffe")
    page.get_by_role("button", name="Add to cart").click()
    page.goto(live_shop.url + "/cart/")
    page.get_by_role("button", name="Pay on Stripe's secure page").click()
    page.wait_for_url(re.compile(re.escape(live_shop.emulator.url) + r"/c/pay/cs_"))
    fill_hosted_page(page)
    page.wait_for_url(re.compile(re.escape(live_shop.url) + r"/orders/[^/?]+\?session_id=cs_"))
    expect(page.get_by_test_id("order-status")).to_have_text(re.compile("Paid", re.I))
    public_id = page.url.split("/orders/")[1].split("?")[0]
    assert live_shop.order_status(public_id) == "paid"
    page.goto(live_shop.url + "/cart/")
    expect(page.get_by_text("Your cart is empty")).to_be_visible()


def test_hosted_checkout_collects_the_address_and_the_rate_and_the_order_stores_them(
    page: Page, live_shop: LiveShop
):
    page.goto(live_shop.url + "/products/colombia-huila")
    page.get_by_role("button", name="Add to cart").click()
    page.goto(live_shop.url + "/cart/")
    page.get_by_role("button", name="Pay on Stripe's secure page").click()
    page.wait_for_url(re.compile(re.escape(live_shop.emulator.url) + r"/c/pay/cs_"))
    expect(page.locator("#total")).to_have_text("$22.50")  # Standard preselected
    # Only the shop's countries are offered. The page lists every country and takes out
    # the others once it has the session and the customer's saved cards (after the total
    # above is shown): wait for that, as a customer sees the address form only then.
    expect(page.locator("#shipping-section")).to_be_visible()
    expect(page.locator('#shippingCountry option[value="BR"]')).to_have_count(0)
    expect(page.locator('#shippingCountry option[value="US"]')).to_have_count(1)
    fill_hosted_page(page, rate="Express")
    page.wait_for_url(re.compile(re.escape(live_shop.url) + r"/orders/[^/?]+\?session_id=cs_"))
    expect(page.get_by_test_id("order-status")).to_have_text(re.compile("Paid", re.I))
    expect(page.get_by_test_id("order-shipping")).to_have_text("$15.00")
    expect(page.get_by_test_id("order-total")).to_have_text("$31.50")
    expect(page.get_by_test_id("order-address")).to_contain_text("1 Main St")
    public_id = page.url.split("/orders/")[1].split("?")[0]
    with live_shop.app.app_context():
        from storefront.models import Order

        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        assert (order.ship_name, order.ship_city, order.ship_country) == (
            "Ada Lovelace",
            "Albany",
            "US",
        )
        assert (order.shipping_rate_code, order.amount_total) == ("express", 3150)


def test_membership_through_the_hosted_page_shows_on_my_account(page: Page, live_shop: LiveShop):
    page.goto(live_shop.url + "/membership/")
    plan = page.get_by_test_id("plan-month")
    plan.get_by_label("Email").fill(EMAIL)
    plan.get_by_role("button", name="Subscribe").click()
    page.wait_for_url(re.compile(re.escape(live_shop.emulator.url) + r"/c/pay/cs_"))
    # A guest: the typed email goes to Stripe as customer_email, shown read-only.
    expect(page.locator("#email")).to_have_value(EMAIL)
    expect(page.locator("#email")).not_to_be_editable()
    fill_hosted_page(page, button="Subscribe")
    page.wait_for_url(re.compile(re.escape(live_shop.url) + r"/membership/welcome"))
    expect(page.get_by_role("heading", name="Welcome to the Coffee Club!")).to_be_visible()
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_test_id("link-sent")).to_be_visible()

    def sign_in_link() -> str | None:
        with live_shop.app.app_context():
            body = db.session.scalar(
                select(OutboxMessage.body).where(
                    OutboxMessage.kind == "sign_in", OutboxMessage.to_email == EMAIL
                )
            )
        match = re.search(r"https?://\S+/account/sign-in/\S+", body or "")
        return match.group(0) if match else None

    page.goto(wait_until(sign_in_link))
    page.get_by_role("button", name="Sign in as a…@example.com").click()
    expect(page.get_by_text("You're signed in.")).to_be_visible()

    def active() -> bool:
        with live_shop.app.app_context():
            customer = db.session.scalar(select(Customer).where(Customer.email == EMAIL))
            return bool(customer and any(s.status == "active" for s in customer.subscriptions))

    wait_until(active)  # the webhook has arrived
    page.goto(live_shop.url + "/account/")
    expect(page.get_by_test_id("membership-status")).to_have_text("Active")
    expect(page.get_by_test_id("membership-period-end")).to_be_visible()
    expect(page.get_by_test_id("member-badge")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel at period end")).to_be_visible()


def answer_posts_with_204(page: Page, path: str) -> list[str]:
    """Answer POSTs to ``path`` with 204 No Content, which leaves the page where it is (as a
    slow answer would, without the wait); returns the URLs seen."""
    posts: list[str] = []

    def answer(route) -> None:
        posts.append(route.request.url)
        route.fulfill(status=204)

    page.route(f"**{path}", answer)
    return posts


def test_stripe_checkout_button_is_disabled_after_the_first_press(page: Page, live_shop: LiveShop):
    page.goto(live_shop.url + "/products/ethiopia-yirgacheffe")
    page.get_by_role("button", name="Add to cart").click()
    page.goto(live_shop.url + "/cart/")
    posts = answer_posts_with_204(page, "/checkout/stripe/")
    button = page.get_by_role("button", name="Pay on Stripe's secure page")
    button.click()
    expect(button).to_be_disabled()
    wait_in_page(page, lambda: posts)  # the first press's POST, before the second press
    button.click(force=True)  # a second press while Stripe's page would be loading
    page.wait_for_timeout(300)
    assert len(posts) == 1
    # For real now; back from Stripe's page, the button works again.
    page.unroute("**/checkout/stripe/")
    page.reload()
    button.click()
    page.wait_for_url(re.compile(re.escape(live_shop.emulator.url) + r"/c/pay/cs_"))
    page.go_back()
    expect(button).to_be_enabled()
    button.click()
    page.wait_for_url(re.compile(re.escape(live_shop.emulator.url) + r"/c/pay/cs_"))


def test_membership_buttons_are_disabled_after_the_first_press(page: Page, live_shop: LiveShop):
    page.goto(live_shop.url + "/membership/")
    plan = page.get_by_test_id("plan-month")
    plan.get_by_label("Email").fill(EMAIL)
    posts = answer_posts_with_204(page, "/membership/subscribe")
    plan.get_by_role("button", name="Subscribe").click()
    for interval in ("month", "year"):  # every plan: one checkout at a time
        expect(page.get_by_test_id(f"plan-{interval}").get_by_role("button")).to_be_disabled()
    wait_in_page(page, lambda: posts)
    plan.get_by_role("button", name="Subscribe").click(force=True)
    page.wait_for_timeout(300)
    assert len(posts) == 1
