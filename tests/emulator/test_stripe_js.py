"""The Stripe.js stand-in in Chromium, on a merchant page of another origin.

The shop's own browser tests use the Payment Element with ``redirect: "if_required"``;
these cover the rest of what the stand-in promises: the Card Element with
``confirmCardPayment``, ``retrievePaymentIntent``, and ``confirmPayment`` with a real
redirect to ``return_url`` (3-D Secure included).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe
from flask import Flask, render_template_string, request
from playwright.sync_api import Page, expect

from tests.live import Server

pytestmark = pytest.mark.browser

PK = "pk_test_emulator"
MERCHANT_PAGE = (Path(__file__).parent / "pages" / "merchant.html").read_text()
ELEMENT_FRAME = 'iframe[name^="__privateStripeFrame"][title^="Secure"][title$="input frame"]'
CHALLENGE_FRAME = 'iframe[title="3D Secure authentication"]'
AUTH_FAILURE = (
    "We are unable to authenticate your payment method. Please choose a different payment "
    "method and try again."
)


@pytest.fixture
def merchant_url(emulator_url: str) -> Iterator[str]:
    """A merchant's page served from its own origin, loading Stripe.js from the emulator."""
    app = Flask("merchant")

    @app.get("/")
    def checkout():
        return render_template_string(MERCHANT_PAGE, emulator=emulator_url, pk=PK)

    @app.get("/return")
    def returned():
        return f"<h1>Returned</h1><p id='status'>{request.args.get('redirect_status', '')}</p>"

    server = Server(app)
    yield server.url
    server.stop()


def open_page(page: Page, merchant_url: str, kind: str, client_secret: str) -> None:
    page.goto(merchant_url + "/")
    page.evaluate("([kind, secret]) => window.setupPayment(kind, secret)", [kind, client_secret])
    expect(page.locator("body")).to_have_attribute("data-ready", "1")


def new_intent(client: stripe.StripeClient, amount: int = 2400) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        {"amount": amount, "currency": "usd", "automatic_payment_methods": {"enabled": True}}
    )


# Input names inside each element's iframe (those of Stripe's own frames).
CARD_FIELDS = ("cardnumber", "exp-date", "cvc", "postal")
PAYMENT_FIELDS = ("number", "expiry", "cvc", "postalCode")


def fill_element(page: Page, fields: tuple[str, str, str, str], number: str) -> None:
    frame = page.frame_locator(ELEMENT_FRAME)
    for name, value in zip(fields, (number, "12 / 34", "123", "12345"), strict=True):
        frame.locator(f'input[name="{name}"]').fill(value)


def test_card_element_confirm_card_payment_succeeds(
    page: Page, merchant_url: str, stripe_client: stripe.StripeClient
):
    pi = new_intent(stripe_client)
    open_page(page, merchant_url, "card", pi.client_secret)
    fill_element(page, CARD_FIELDS, "4242 4242 4242 4242")
    # A change event says the element is complete, with no error.
    complete = page.wait_for_function(
        "window.events.filter(e => e[0] === 'change' && e[1].complete).pop()"
    ).json_value()[1]
    assert complete.get("error") is None
    assert complete["brand"] == "visa"
    page.click("#pay")
    expect(page.locator("#status")).to_have_text("Payment succeeded")
    result = page.evaluate("window.lastResult")
    assert result["paymentIntent"]["id"] == pi.id
    assert "error" not in result
    after = stripe_client.v1.payment_intents.retrieve(pi.id)
    assert after.status == "succeeded"
    pm = stripe_client.v1.payment_methods.retrieve(after.payment_method)
    assert pm.card.last4 == "4242"
    assert pm.billing_details.name == "Jenny Rosen"
    # The card number never reached the merchant page's own script.
    assert "4242 4242 4242 4242" not in page.content()


def test_card_element_decline_is_a_card_error(
    page: Page, merchant_url: str, stripe_client: stripe.StripeClient
):
    pi = new_intent(stripe_client)
    open_page(page, merchant_url, "card", pi.client_secret)
    fill_element(page, CARD_FIELDS, "4000 0000 0000 9995")
    page.click("#pay")
    expect(page.locator("#message")).to_contain_text("insufficient funds")
    error = page.evaluate("window.lastResult.error")
    assert error["type"] == "card_error"
    assert error["code"] == "card_declined"
    assert error["decline_code"] == "insufficient_funds"
    assert stripe_client.v1.payment_intents.retrieve(pi.id).status == "requires_payment_method"


def test_incorrect_number_is_rejected_in_the_form(
    page: Page, merchant_url: str, stripe_client: stripe.StripeClient
):
    pi = new_intent(stripe_client)
    open_page(page, merchant_url, "card", pi.client_secret)
    number = page.frame_locator(ELEMENT_FRAME).locator('input[name="cardnumber"]')
    number.fill("4242 4242 4242 4241")
    # Change events cross from the frame by postMessage: wait for the one with the error.
    change = page.wait_for_function(
        "window.events.filter(e => e[0] === 'change' && e[1].error).pop()"
    ).json_value()[1]
    assert change["complete"] is False
    assert change["error"]["code"] == "invalid_number"
    # Nothing was sent to the API: the intent is untouched.
    assert stripe_client.v1.payment_intents.retrieve(pi.id).payment_method is None


def test_retrieve_payment_intent_with_the_publishable_key(
    page: Page, merchant_url: str, stripe_client: stripe.StripeClient
):
    pi = new_intent(stripe_client, amount=1234)
    open_page(page, merchant_url, "payment", pi.client_secret)
    result = page.evaluate(
        "secret => window.checkout.stripe.retrievePaymentIntent(secret)", pi.client_secret
    )
    assert result["paymentIntent"]["id"] == pi.id
    assert result["paymentIntent"]["amount"] == 1234
    assert result["paymentIntent"]["status"] == "requires_payment_method"
    wrong = page.evaluate(
        "secret => window.checkout.stripe.retrievePaymentIntent(secret)",
        pi.id + "_secret_wrong",
    )
    assert wrong["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("number", "challenge", "status"),
    [
        ("4242 4242 4242 4242", None, "succeeded"),
        ("4000 0025 0000 3155", "Complete authentication", "succeeded"),
        ("4000 0025 0000 3155", "Fail authentication", "failed"),
    ],
)
def test_confirm_payment_redirects_to_return_url(
    page: Page,
    merchant_url: str,
    stripe_client: stripe.StripeClient,
    number: str,
    challenge: str | None,
    status: str,
):
    pi = new_intent(stripe_client)
    open_page(page, merchant_url, "payment", pi.client_secret)
    page.evaluate("window.redirectMode = 'always'")
    fill_element(page, PAYMENT_FIELDS, number)
    page.click("#pay")
    if challenge:
        # Even with redirect "always", 3-D Secure is a modal on the merchant's page.
        page.frame_locator(CHALLENGE_FRAME).get_by_role("button", name=challenge).click()
    if status == "failed":
        # A failed challenge stays on the page with Stripe.js's error: no redirect.
        expect(page.locator("#message")).to_have_text(AUTH_FAILURE)
        assert page.url.startswith(merchant_url + "/")
        assert "/return" not in page.url
        after = stripe_client.v1.payment_intents.retrieve(pi.id)
        assert after.status == "requires_payment_method"
        return
    page.wait_for_url(re.compile(re.escape(merchant_url) + r"/return\?"))
    query = parse_qs(urlsplit(page.url).query)
    assert query["payment_intent"] == [pi.id]
    assert query["payment_intent_client_secret"] == [pi.client_secret]
    assert query["redirect_status"] == [status]
    after = stripe_client.v1.payment_intents.retrieve(pi.id)
    assert after.receipt_email == "buyer@example.com"
    assert after.status == "succeeded"


def test_payment_element_with_an_unknown_client_secret_reports_loaderror(
    page: Page, merchant_url: str
):
    page.goto(merchant_url + "/")
    errors = page.evaluate(
        """async () => {
             const stripe = Stripe("pk_test_emulator");
             const out = [];
             for (const secret of ["pi_missing_secret_abc", "nonsense"]) {
               const element = stripe.elements({clientSecret: secret}).create("payment");
               const failed = new Promise(resolve => element.on("loaderror", resolve));
               const holder = document.createElement("div");
               document.body.append(holder);
               element.mount(holder);
               const event = await failed;
               out.push([event.elementType, event.error.type, event.error.message]);
             }
             return out;
           }"""
    )
    assert errors[0] == ["payment", "invalid_request_error", "No such payment_intent: 'pi_missing'"]
    assert errors[1][:2] == ["payment", "invalid_request_error"]
    assert "clientSecret" in errors[1][2]


def test_confirm_card_payment_without_handling_actions_then_handle_card_action(
    page: Page, merchant_url: str, stripe_client: stripe.StripeClient
):
    pi = new_intent(stripe_client)
    open_page(page, merchant_url, "card", pi.client_secret)
    fill_element(page, CARD_FIELDS, "4000 0025 0000 3155")
    result = page.evaluate(
        """s => window.checkout.stripe.confirmCardPayment(s,
             {payment_method: {card: window.checkout.element}}, {handleActions: false})""",
        pi.client_secret,
    )
    # The page handles the next action itself, later.
    assert "error" not in result
    assert result["paymentIntent"]["status"] == "requires_action"
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.evaluate(
        "s => { window.pending = window.checkout.stripe.handleCardAction(s); }", pi.client_secret
    )
    page.frame_locator(CHALLENGE_FRAME).get_by_role(
        "button", name="Complete authentication"
    ).click()
    assert page.evaluate("window.pending")["paymentIntent"]["status"] == "succeeded"
    assert stripe_client.v1.payment_intents.retrieve(pi.id).status == "succeeded"
