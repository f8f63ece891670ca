"""The Payment Element stand-in with a Customer Session (issue 14), in Chromium: saved cards
listed as the session's filters allow, Remove, "Save this card for next time" with the
session's save usage, and the load errors Stripe.js gives (pages/saved.html)."""

from __future__ import annotations

import datetime
import re
import urllib.parse

import pytest
import stripe
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

PAYMENT_FRAME = 'iframe[name^="__privateStripeFrame"][title="Secure payment input frame"]'
YEAR = datetime.date.today().year + 3


def saved_card(client: stripe.StripeClient, customer: str, number: str, redisplay="always"):
    pm = client.v1.payment_methods.create(
        params={
            "type": "card",
            "allow_redisplay": redisplay,
            "card": {"number": number, "exp_month": 4, "exp_year": YEAR},
        }
    )
    return client.v1.payment_methods.attach(pm.id, params={"customer": customer})


def customer_session(client: stripe.StripeClient, customer: str, **features) -> str:
    return client.v1.customer_sessions.create(
        params={
            "customer": customer,
            "components": {"payment_element": {"enabled": True, "features": features}},
        }
    ).client_secret


def open_page(page: Page, merchant: str, **query: str) -> None:
    page.goto(f"{merchant}/saved?{urllib.parse.urlencode(query)}")


def label(brand: str, last4: str) -> str:
    return f"{brand} •••• {last4}, expires 04/{YEAR % 100:02d}"


@pytest.fixture
def customer(stripe_client):
    return stripe_client.v1.customers.create(params={"email": "jenny@example.com"}).id


def intent_for(client: stripe.StripeClient, customer: str):
    return client.v1.payment_intents.create(
        params={"amount": 1099, "currency": "usd", "customer": customer}
    )


def test_remove_detaches_the_card_and_the_list_follows(
    page: Page, merchant: str, stripe_client, customer
):
    visa = saved_card(stripe_client, customer, "4242424242424242")
    mastercard = saved_card(stripe_client, customer, "5555555555554444")
    saved_card(stripe_client, customer, "378282246310005", redisplay="limited")  # not shown
    pi = intent_for(stripe_client, customer)
    secret = customer_session(
        stripe_client,
        customer,
        payment_method_redisplay="enabled",
        payment_method_remove="enabled",
    )
    open_page(page, merchant, client_secret=pi.client_secret, customer_session=secret)
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    frame = page.frame_locator(PAYMENT_FRAME)
    expect(frame.get_by_role("radio")).to_have_count(3)  # two cards and "New card"
    expect(frame.get_by_role("radio", name=label("Mastercard", "4444"))).to_be_checked()
    frame.get_by_role("button", name="Remove " + label("Mastercard", "4444")).click()
    expect(frame.get_by_role("status")).to_have_text(label("Mastercard", "4444") + " removed.")
    expect(frame.get_by_role("radio")).to_have_count(2)
    expect(frame.get_by_role("radio", name=label("Visa", "4242"))).to_be_checked()
    expect(frame.get_by_role("radio", name=label("Visa", "4242"))).to_be_focused()
    assert stripe_client.v1.payment_methods.retrieve(mastercard.id).customer is None
    # Paying with the remaining saved card is one press.
    page.get_by_role("button", name="Pay").click()
    expect(page.locator("#status")).to_have_text("succeeded")
    assert stripe_client.v1.payment_intents.retrieve(pi.id).payment_method == visa.id


def test_no_remove_button_without_the_feature_and_no_save_box_without_save(
    page: Page, merchant: str, stripe_client, customer
):
    saved_card(stripe_client, customer, "4242424242424242")
    pi = intent_for(stripe_client, customer)
    secret = customer_session(stripe_client, customer, payment_method_redisplay="enabled")
    open_page(page, merchant, client_secret=pi.client_secret, customer_session=secret)
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    frame = page.frame_locator(PAYMENT_FRAME)
    expect(frame.get_by_role("radio", name=label("Visa", "4242"))).to_be_checked()
    expect(frame.get_by_role("button", name="Remove")).to_have_count(0)
    frame.get_by_role("radio", name="New card").check()
    expect(frame.get_by_label("Card number")).to_be_visible()
    expect(frame.get_by_label("Save this card for next time")).to_be_hidden()


@pytest.mark.parametrize("tick", [True, False])
def test_save_this_card_uses_the_sessions_save_usage(
    page: Page, merchant: str, stripe_client, customer, tick: bool
):
    pi = intent_for(stripe_client, customer)
    secret = customer_session(
        stripe_client,
        customer,
        payment_method_redisplay="enabled",
        payment_method_save="enabled",
        payment_method_save_usage="on_session",
    )
    open_page(page, merchant, client_secret=pi.client_secret, customer_session=secret)
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    frame = page.frame_locator(PAYMENT_FRAME)
    expect(frame.get_by_role("group", name="Pay with")).to_be_hidden()  # nothing saved yet
    frame.get_by_label("Card number").fill("4242 4242 4242 4242")
    frame.get_by_label("Expiration date").fill("12 / 34")
    frame.get_by_label("Security code").fill("123")
    frame.get_by_label("ZIP").fill("94107")
    if tick:
        frame.get_by_label("Save this card for next time").check()
    page.get_by_role("button", name="Pay").click()
    expect(page.locator("#status")).to_have_text("succeeded")
    paid = stripe_client.v1.payment_intents.retrieve(pi.id)
    pm = stripe_client.v1.payment_methods.retrieve(paid.payment_method)
    if tick:
        assert paid.setup_future_usage == "on_session"
        assert (pm.customer, pm.allow_redisplay) == (customer, "always")
    else:
        assert paid.setup_future_usage is None
        assert (pm.customer, pm.allow_redisplay) == (None, "unspecified")


def test_a_bad_session_or_save_usage_with_setup_future_usage_is_a_loaderror(
    page: Page, merchant: str, stripe_client, customer
):
    open_page(page, merchant, deferred="1", customer_session="cuss_secret_made_up")
    expect(page.locator("body")).to_have_attribute(
        "data-loaderror", "The customer session client secret provided is invalid."
    )
    assert page.locator("body").get_attribute("data-ready") is None
    secret = customer_session(
        stripe_client,
        customer,
        payment_method_save="enabled",
        payment_method_save_usage="off_session",
    )
    open_page(page, merchant, deferred="1", setupFutureUsage="off_session", customer_session=secret)
    expect(page.locator("body")).to_have_attribute(
        "data-loaderror", re.compile("payment_method_save_usage")
    )
