"""The rest of the Stripe.js stand-in in Chromium: SetupIntents (confirmSetup,
confirmCardSetup, retrieveSetupIntent), split card Elements, wallets that never show,
createPaymentMethod({elements}) + handleNextAction, and subscription mode."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

PAYMENT_FRAME = 'iframe[name^="__privateStripeFrame"][title="Secure payment input frame"]'
CHALLENGE_FRAME = 'iframe[title="3D Secure authentication"]'


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "1")


def fill_card(page: Page, number: str = "4242 4242 4242 4242") -> None:
    frame = page.frame_locator(PAYMENT_FRAME)
    frame.get_by_label("Card number").fill(number)
    frame.get_by_label("Expiration date").fill("12 / 34")
    frame.get_by_label("Security code").fill("123")
    frame.get_by_label("ZIP").fill("94107")


def setup_intent_of(page: Page, client: stripe.StripeClient) -> stripe.SetupIntent:
    secret = page.evaluate("window.intentSecret")
    return client.v1.setup_intents.retrieve(secret.split("_secret_")[0])


# --------------------------------------------------------------------------- SetupIntents


def test_deferred_setup_saves_the_card(page: Page, merchant: str, stripe_client):
    open_page(page, merchant + "/deferred?mode=setup&address=0")
    # Saving a card for later: the Payment Element says what the customer agrees to.
    expect(page.frame_locator(PAYMENT_FRAME).locator("#mandate")).to_be_visible()
    fill_card(page)
    page.click("#submit")
    expect(page.locator("#status")).to_have_text("Status: succeeded")
    seti = setup_intent_of(page, stripe_client)
    assert seti.status == "succeeded"
    pm = stripe_client.v1.payment_methods.retrieve(seti.payment_method)
    assert pm.customer == seti.customer
    assert pm.card.last4 == "4242"
    assert page.evaluate("window.lastResult.setupIntent.id") == seti.id


def test_deferred_setup_with_3d_secure_then_redirect(page: Page, merchant: str, stripe_client):
    open_page(page, merchant + "/deferred?mode=setup&address=0&redirect=always")
    fill_card(page, "4000 0025 0000 3155")
    page.click("#submit")
    page.frame_locator(CHALLENGE_FRAME).get_by_role(
        "button", name="Complete authentication"
    ).click()
    page.wait_for_url(re.compile(re.escape(merchant) + r"/return\?"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["redirect_status"] == ["succeeded"]
    seti = stripe_client.v1.setup_intents.retrieve(query["setup_intent"][0])
    assert query["setup_intent_client_secret"] == [seti.client_secret]
    assert seti.status == "succeeded"


def test_deferred_setup_authentication_failure_stays_on_the_page(
    page: Page, merchant: str, stripe_client
):
    open_page(page, merchant + "/deferred?mode=setup&address=0&redirect=always")
    fill_card(page, "4000 0025 0000 3155")
    page.click("#submit")
    page.frame_locator(CHALLENGE_FRAME).get_by_role("button", name="Fail authentication").click()
    expect(page.locator("#error-message")).to_contain_text("unable to authenticate")
    assert page.evaluate("window.lastResult.error.code") == "setup_intent_authentication_failure"
    assert "/return" not in page.url
    assert setup_intent_of(page, stripe_client).status == "requires_payment_method"


def test_confirm_payment_refuses_a_setup_mode_group(page: Page, merchant: str, stripe_client):
    open_page(page, merchant + "/deferred?mode=setup&address=0")
    pi = stripe_client.v1.payment_intents.create({"amount": 100, "currency": "usd"})
    fill_card(page)
    message = page.evaluate(
        """async secret => {
             await window.checkout.elements.submit();
             return window.checkout.stripe.confirmPayment({elements: window.checkout.elements,
               clientSecret: secret, redirect: "if_required"}).then(() => "ok", e => e.message);
           }""",
        pi.client_secret,
    )
    assert "confirmSetup" in message


def test_split_card_elements_confirm_card_setup_and_payment(
    page: Page, merchant: str, stripe_client
):
    customer = stripe_client.v1.customers.create({"email": "split@example.com"})
    seti = stripe_client.v1.setup_intents.create({"customer": customer.id})
    open_page(page, merchant + "/split")
    page.evaluate("s => { window.clientSecret = s; }", seti.client_secret)
    for title, name, value in [
        ("Secure card number input frame", "cardnumber", "4242 4242 4242 4242"),
        ("Secure expiration date input frame", "exp-date", "12 / 34"),
        ("Secure CVC input frame", "cvc", "123"),
    ]:
        frame = page.frame_locator(f'iframe[title="{title}"]')
        frame.locator(f'input[name="{name}"]').fill(value)
    complete = page.wait_for_function(
        "window.events.filter(e => e.elementType === 'cardNumber' && e.complete).pop()"
    ).json_value()
    assert complete["brand"] == "visa"
    page.click("#pay")
    expect(page.locator("#status")).to_have_text("Status: succeeded")
    seti = stripe_client.v1.setup_intents.retrieve(seti.id)
    pm = stripe_client.v1.payment_methods.retrieve(seti.payment_method)
    assert (pm.customer, pm.card.last4, pm.billing_details.name) == (
        customer.id,
        "4242",
        "Jenny Rosen",
    )
    # retrieveSetupIntent with the publishable key.
    got = page.evaluate("s => window.checkout.stripe.retrieveSetupIntent(s)", seti.client_secret)
    assert got["setupIntent"]["status"] == "succeeded"
    # The same fields pay a PaymentIntent.
    pi = stripe_client.v1.payment_intents.create({"amount": 700, "currency": "usd"})
    page.evaluate("s => { window.clientSecret = s; }", pi.client_secret)
    page.click("#pay")
    expect(page.locator("#status")).to_have_text("Status: succeeded")
    assert stripe_client.v1.payment_intents.retrieve(pi.id).status == "succeeded"


def test_split_card_elements_report_their_own_errors(page: Page, merchant: str, stripe_client):
    pi = stripe_client.v1.payment_intents.create({"amount": 700, "currency": "usd"})
    open_page(page, merchant + "/split")
    page.evaluate("s => { window.clientSecret = s; }", pi.client_secret)
    number = page.frame_locator('iframe[title="Secure card number input frame"]')
    number.locator('input[name="cardnumber"]').fill("4242 4242 4242 4242")
    page.click("#pay")
    expect(page.locator("#message")).to_have_text("Your card's expiration date is incomplete.")
    errors = page.evaluate(
        "window.events.filter(e => e.error).map(e => [e.elementType, e.error.code])"
    )
    assert ["cardExpiry", "incomplete_expiry"] in errors
    assert ["cardCvc", "incomplete_cvc"] in errors
    assert stripe_client.v1.payment_intents.retrieve(pi.id).payment_method is None


# --------------------------------------------------------------------------- wallets


def test_wallet_elements_mount_say_ready_and_never_block(page: Page, merchant: str, stripe_client):
    open_page(page, merchant + "/deferred?address=0")
    result = page.evaluate(
        """async () => {
             const {stripe, elements} = window.checkout;
             const holder = document.createElement("div");
             holder.id = "express";
             document.body.prepend(holder);
             const express = elements.create("expressCheckout");
             const ready = new Promise(resolve => express.on("ready", resolve));
             express.mount("#express");
             const event = await ready;
             const pr = stripe.paymentRequest({country: "US", currency: "usd",
               total: {label: "Total", amount: 1099}});
             const can = await pr.canMakePayment();
             const prb = elements.create("paymentRequestButton", {paymentRequest: pr});
             const prbReady = new Promise(resolve => prb.on("ready", resolve));
             const holder2 = document.createElement("div");
             document.body.prepend(holder2);
             prb.mount(holder2);
             await prbReady;
             return {event: {type: event.elementType,
                             hasMethods: event.availablePaymentMethods !== undefined},
                     can, height: holder.getBoundingClientRect().height};
           }"""
    )
    assert result == {
        "event": {"type": "expressCheckout", "hasMethods": False},
        "can": None,
        "height": 0,
    }
    # The card form still pays.
    fill_card(page)
    page.click("#submit")
    expect(page.locator("#status")).to_have_text("Status: succeeded")


# --------------------------------------------------------------------------- manual creation


def test_create_payment_method_then_server_confirm_then_handle_next_action(
    page: Page, merchant: str, stripe_client
):
    open_page(page, merchant + "/deferred?address=0&paymentMethodCreation=manual")
    fill_card(page, "4000 0025 0000 3155")
    pm = page.evaluate(
        """async () => {
             const {stripe, elements} = window.checkout;
             const {error: submitError} = await elements.submit();
             if (submitError) return submitError;
             return stripe.createPaymentMethod({elements,
               params: {billing_details: {name: "Jenny Rosen"}}});
           }"""
    )["paymentMethod"]
    assert pm["card"]["last4"] == "3155"
    assert pm["billing_details"]["name"] == "Jenny Rosen"
    # The server confirms with the new PaymentMethod; 3155 needs the customer's bank.
    pi = stripe_client.v1.payment_intents.create(
        {"amount": 1099, "currency": "usd", "payment_method": pm["id"], "confirm": True}
    )
    assert pi.status == "requires_action"
    page.evaluate(
        "s => { window.pending = window.checkout.stripe.handleNextAction({clientSecret: s}); }",
        pi.client_secret,
    )
    page.frame_locator(CHALLENGE_FRAME).get_by_role(
        "button", name="Complete authentication"
    ).click()
    result = page.evaluate("window.pending")
    assert result["paymentIntent"]["status"] == "succeeded"
    assert stripe_client.v1.payment_intents.retrieve(pi.id).status == "succeeded"


def test_create_payment_method_needs_manual_creation_with_deferred_elements(
    page: Page, merchant: str
):
    open_page(page, merchant + "/deferred?address=0")
    fill_card(page)
    message = page.evaluate(
        """async () => {
             const {stripe, elements} = window.checkout;
             await elements.submit();
             return stripe.createPaymentMethod({elements}).then(() => "ok", e => e.message);
           }"""
    )
    assert "paymentMethodCreation: 'manual'" in message


# --------------------------------------------------------------------------- subscription mode


def test_subscription_mode_pays_and_saves_the_card(page: Page, merchant: str, stripe_client):
    open_page(page, merchant + "/deferred?mode=subscription&amount=900&address=0")
    expect(page.frame_locator(PAYMENT_FRAME).locator("#mandate")).to_be_visible()
    fill_card(page)
    page.click("#submit")
    expect(page.locator("#status")).to_have_text("Status: succeeded")
    pi_id = page.evaluate("window.lastResult.paymentIntent.id")
    pi = stripe_client.v1.payment_intents.retrieve(pi_id)
    assert pi.amount == 900
    assert stripe_client.v1.payment_methods.retrieve(pi.payment_method).customer == pi.customer
