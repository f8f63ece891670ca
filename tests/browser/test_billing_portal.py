"""Billing self-service for members in a real browser (issue 14's "Done when"): a member
whose renewal failed (the README's demo) updates the card in the Customer Portal and is
active again with the banner gone; a member switches monthly -> yearly in the portal and My
account shows it. The emulator delivers signed webhooks to the shop, as Stripe would."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from storefront.extensions import db
from storefront.models import Customer, OutboxMessage, Price
from tests.browser import axe
from tests.browser.test_accessibility import WIDER_THAN_SCREEN, join_as_guest
from tests.live import LiveShop, wait_until
from tests.test_membership import YEARLY, advance, fail_renewals

pytestmark = pytest.mark.browser

EMAIL = "member@example.com"
CHALLENGE_FRAME = 'iframe[title="3D Secure authentication"]'


def membership_of(shop: LiveShop):
    with shop.app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.email == EMAIL))
        subs = list(customer.subscriptions) if customer else []
        return subs[-1] if subs else None


def sign_in(page: Page, shop: LiveShop) -> None:
    page.goto(shop.url + "/account/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_role("button", name="Email me a sign-in link").click()

    def link() -> str | None:
        with shop.app.app_context():
            body = db.session.scalar(
                select(OutboxMessage.body).where(
                    OutboxMessage.kind == "sign_in", OutboxMessage.to_email == EMAIL
                )
            )
        found = re.search(r"https?://\S+/account/sign-in/\S+", body or "")
        return found.group(0) if found else None

    page.goto(wait_until(link))
    page.get_by_test_id("confirm-sign-in").click()
    expect(page.get_by_text("You're signed in.")).to_be_visible()


def become_member(page: Page, shop: LiveShop) -> None:
    """Join monthly through the hosted page, sign in, and wait for Stripe's webhooks."""
    join_as_guest(page, shop, EMAIL)
    wait_until(lambda: (m := membership_of(shop)) is not None and m.status == "active", 30)
    sign_in(page, shop)


def open_portal(page: Page, shop: LiveShop, button: str) -> None:
    page.get_by_role("button", name=button).click()
    page.wait_for_url(re.compile(re.escape(shop.emulator.url) + r"/p/session/bps_"))
    expect(page.get_by_role("heading", name="Billing")).to_be_visible()


def return_to_shop(page: Page, shop: LiveShop) -> None:
    page.get_by_role("link", name=re.compile(r"Return to ")).click()
    page.wait_for_url(re.compile(re.escape(shop.url) + r"/account/"))


def test_failed_renewal_recovered_by_updating_the_card_in_the_portal(
    page: Page, live_shop: LiveShop
):
    become_member(page, live_shop)
    sub_id = membership_of(live_shop).stripe_subscription_id
    # The README's demo: the renewal is declined.
    fail_renewals(live_shop.app, sub_id)
    advance(live_shop.app, sub_id)
    wait_until(lambda: membership_of(live_shop).status == "past_due", 30)
    page.goto(live_shop.url + "/account/")
    banner = page.get_by_test_id("payment-problem")
    expect(banner).to_be_visible()
    expect(page.get_by_test_id("amount-due")).to_contain_text("$9.00")
    expect(page.get_by_text("Next renewal")).to_have_count(0)

    axe.install(page)
    open_portal(page, live_shop, "Update your card and pay now")
    expect(page.get_by_test_id("portal-owing")).to_contain_text("Your payment of $9.00 failed")
    page.get_by_role("button", name="Update payment method").click()
    expect(page.get_by_label("Card number")).to_be_focused()
    axe.check(page, "portal, payment problem, card form open")
    page.get_by_label("Card number").fill("4000 0025 0000 3155")
    page.get_by_label("Expiration").fill("12 / 34")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name="Save card").click()
    # A 3-D Secure card: the challenge opens; its buttons work once its script is ready.
    page.frame_locator(CHALLENGE_FRAME).get_by_role(
        "button", name="Complete authentication"
    ).click()
    expect(page.locator("#portal-notice")).to_contain_text("the amount due was paid")
    expect(page.get_by_test_id("portal-owing")).to_have_count(0)
    expect(page.get_by_test_id("portal-card")).to_contain_text("3155")
    expect(page.get_by_test_id("portal-invoice").first).to_contain_text("Paid")
    expect(page.locator("#portal-notice")).to_be_focused()
    axe.check(page, "portal, card updated")

    return_to_shop(page, live_shop)
    # Our record changes when Stripe's webhooks arrive: wait for them, then look again.
    wait_until(lambda: membership_of(live_shop).status == "active", 30)
    page.reload()
    expect(page.get_by_test_id("payment-problem")).to_have_count(0)
    expect(page.get_by_test_id("amount-due")).to_have_count(0)
    expect(page.get_by_test_id("membership-status")).to_have_text("Active")
    period_end = membership_of(live_shop).current_period_end
    expect(page.get_by_test_id("membership-period-end")).to_have_text(
        period_end.strftime("%-d %b %Y")
    )


def test_member_switches_monthly_to_yearly_in_the_portal(page: Page, live_shop: LiveShop):
    become_member(page, live_shop)
    page.goto(live_shop.url + "/account/")
    expect(page.get_by_text("$9.00 / month")).to_be_visible()
    page.set_viewport_size({"width": 320, "height": 640})
    axe.install(page)
    open_portal(page, live_shop, "Manage billing")
    # The portal on a small phone: nothing wider than the screen, no axe violations.
    assert page.evaluate(WIDER_THAN_SCREEN) == []
    axe.check(page, "portal")

    page.get_by_role("button", name="Update plan").click()
    page.get_by_label(re.compile(r"\$90\.00 per year")).check()
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#portal-notice")).to_contain_text("Your plan was updated")
    expect(page.get_by_test_id("portal-plan-price")).to_contain_text("$90.00")
    assert page.evaluate(WIDER_THAN_SCREEN) == []

    return_to_shop(page, live_shop)
    with live_shop.app.app_context():
        yearly = db.session.scalar(select(Price.stripe_price_id).where(Price.lookup_key == YEARLY))
    wait_until(lambda: membership_of(live_shop).stripe_price_id == yearly, 30)
    page.reload()
    expect(page.get_by_text("$90.00 / year")).to_be_visible()
    expect(page.get_by_test_id("membership-status")).to_have_text("Active")


def test_portal_buttons_wait_for_their_script(page: Page, emulator):
    """Until portal.js has bound them, the portal's buttons are disabled: a press is never
    lost (here the script never arrives), and they work once it has run."""
    import stripe

    sc = stripe.StripeClient(
        "sk_test_emulator", base_addresses={"api": emulator.url}, max_network_retries=0
    )
    price = sc.v1.prices.create(
        {
            "product_data": {"name": "Coffee Club"},
            "unit_amount": 900,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )
    customer = sc.v1.customers.create({"email": EMAIL, "payment_method": "pm_card_visa"})
    pm = sc.v1.payment_methods.list({"customer": customer.id}).data[0]
    sc.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"price": price.id}], "default_payment_method": pm.id}
    )
    config = sc.v1.billing_portal.configurations.create(
        {
            "features": {
                "payment_method_update": {"enabled": True},
                "subscription_cancel": {"enabled": True},
            }
        }
    )
    session = sc.v1.billing_portal.sessions.create(
        {"customer": customer.id, "configuration": config.id, "return_url": "http://shop.test/"}
    )
    page.route("**/static/js/portal.js*", lambda route: route.abort())
    page.goto(session.url)
    for name in ("Cancel plan", "Update payment method"):
        expect(page.get_by_role("button", name=name)).to_be_disabled()
    page.unroute("**/static/js/portal.js*")
    page.reload()
    page.get_by_role("button", name="Cancel plan").click()
    page.get_by_role("button", name="Cancel plan").last.click()
    expect(page.locator("#portal-notice")).to_contain_text("will be canceled at the end")
    assert sc.v1.subscriptions.list({"customer": customer.id}).data[0].cancel_at_period_end
