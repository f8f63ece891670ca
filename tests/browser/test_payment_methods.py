"""My account → Payment methods in Chromium: removing a saved card removes it at Stripe."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from storefront import payments
from storefront.extensions import db
from storefront.models import Customer, OutboxMessage
from tests.browser import axe
from tests.live import LiveShop

pytestmark = pytest.mark.browser

EMAIL = "ada@example.com"


def sign_in(page: Page, shop: LiveShop, email: str) -> None:
    """Sign in the way a customer does: ask for a link, open it, press the button."""
    page.goto(shop.url + "/account/")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_test_id("link-sent")).to_be_visible()
    with shop.app.app_context():
        body = db.session.scalar(
            select(OutboxMessage.body).where(
                OutboxMessage.kind == "sign_in", OutboxMessage.to_email == email
            )
        )
    page.goto(re.search(r"https?://\S+/account/sign-in/\S+", body).group(0))
    page.get_by_test_id("confirm-sign-in").click()
    expect(page.get_by_text("Signed in as")).to_be_visible()


def customer_with_saved_cards(shop: LiveShop, email: str) -> tuple[str, list]:
    """A Stripe Customer with a Visa and a Mastercard saved, made through the SDK."""
    with shop.app.app_context():
        customer_id = payments.create_stripe_customer(email)
        db.session.add(Customer(email=email, stripe_customer_id=customer_id))
        db.session.commit()
        sc = payments.client()
        cards = [
            sc.v1.payment_methods.attach(pm, params={"customer": customer_id})
            for pm in ("pm_card_visa", "pm_card_mastercard")
        ]
    return customer_id, cards


def cards_at_stripe(shop: LiveShop, customer_id: str) -> list[str]:
    with shop.app.app_context():
        return [pm.card.last4 for pm in payments.list_cards(customer_id)]


def test_removing_a_card_on_my_account_removes_it_at_stripe(page: Page, live_shop: LiveShop):
    customer_id, (visa, mastercard) = customer_with_saved_cards(live_shop, EMAIL)
    sign_in(page, live_shop, EMAIL)

    page.get_by_role("link", name="Manage payment methods").click()
    expect(page.get_by_role("heading", name="Payment methods")).to_be_visible()
    cards = page.get_by_test_id("saved-card")
    expect(cards).to_have_count(2)
    expect(cards.filter(has_text="4242")).to_contain_text(
        re.compile(rf"Visa\s*••••\s*ending in\s*4242\s*expires 12/{visa.card.exp_year % 100:02d}")
    )

    page.get_by_role("link", name="Remove Mastercard •••• 4444").click()
    expect(page.get_by_role("heading", name="Remove Mastercard •••• 4444?")).to_be_visible()
    # "Keep card" changes nothing.
    page.get_by_role("link", name="Keep card").click()
    expect(cards).to_have_count(2)
    assert cards_at_stripe(live_shop, customer_id) == ["4444", "4242"]

    page.get_by_role("link", name="Remove Mastercard •••• 4444").click()
    page.get_by_role("button", name="Remove card").click()
    expect(
        page.get_by_role("status").filter(has_text="Mastercard •••• 4444 has been removed")
    ).to_be_visible()
    expect(cards).to_have_count(1)
    expect(cards).to_contain_text("4242")
    assert cards_at_stripe(live_shop, customer_id) == ["4242"]
    with live_shop.app.app_context():
        assert payments.client().v1.payment_methods.retrieve(mastercard.id).customer is None

    # The last card goes the same way, and the page says there is none left.
    page.get_by_role("link", name="Remove Visa •••• 4242").click()
    page.get_by_role("button", name="Remove card").click()
    expect(page.get_by_test_id("no-cards")).to_contain_text("You have no saved cards.")
    assert cards_at_stripe(live_shop, customer_id) == []


def test_a_card_that_is_not_yours_gets_a_focused_error(page: Page, live_shop: LiveShop):
    _, (theirs, _) = customer_with_saved_cards(live_shop, "grace@example.com")
    customer_with_saved_cards(live_shop, EMAIL)
    axe.install(page)
    sign_in(page, live_shop, EMAIL)
    page.goto(f"{live_shop.url}/account/payment-methods/{theirs.id}/remove")
    error = page.get_by_test_id("card-error")
    expect(error).to_have_text(
        "That card isn't saved on your account. It may have been removed already."
    )
    expect(error).to_be_focused()
    expect(page.get_by_test_id("saved-card")).to_have_count(2)  # their own, listed below
    axe.check(page, "payment methods with an error")


def test_a_member_moves_the_membership_to_another_card_then_removes_the_old_one(
    page: Page, live_shop: LiveShop
):
    from tests.browser.test_accessibility import join_as_guest, membership_active
    from tests.live import wait_until

    join_as_guest(page, live_shop, EMAIL)  # pays with 4242 on the hosted page
    wait_until(lambda: membership_active(live_shop, EMAIL), timeout=30)
    with live_shop.app.app_context():
        customer_id = db.session.scalar(
            select(Customer.stripe_customer_id).where(Customer.email == EMAIL)
        )
        payments.client().v1.payment_methods.attach(
            "pm_card_mastercard", params={"customer": customer_id}
        )
    sign_in(page, live_shop, EMAIL)
    page.get_by_role("link", name="Manage payment methods").click()
    visa = page.get_by_test_id("saved-card").filter(has_text="4242")
    mastercard = page.get_by_test_id("saved-card").filter(has_text="4444")
    expect(visa.get_by_test_id("renewal-card")).to_have_text("Membership renews with this card")
    expect(visa.get_by_role("link", name="Remove Visa •••• 4242")).to_have_count(0)

    mastercard.get_by_role("button", name=re.compile(r"^Use for membership\W+Mastercard")).click()
    expect(
        page.get_by_role("status").filter(has_text="Your membership will renew with Mastercard")
    ).to_be_visible()
    expect(mastercard.get_by_test_id("renewal-card")).to_be_visible()
    with live_shop.app.app_context():
        stripe_customer = payments.retrieve_customer(customer_id)
        card = stripe_customer.invoice_settings.default_payment_method
        assert payments.client().v1.payment_methods.retrieve(card).card.last4 == "4444"

    visa.get_by_role("link", name="Remove Visa •••• 4242").click()
    page.get_by_role("button", name="Remove card").click()
    expect(page.get_by_test_id("saved-card")).to_have_count(1)
    assert cards_at_stripe(live_shop, customer_id) == ["4444"]
