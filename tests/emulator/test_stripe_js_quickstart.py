"""Stripe's Payment Element quick start page (pages/quickstart.html) against the emulator.

Link Authentication Element above the Payment Element, ``confirmPayment`` with the default
redirect, and the completion page reading the intent back with ``retrievePaymentIntent``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

PAYMENT_FRAME = 'iframe[name^="__privateStripeFrame"][title="Secure payment input frame"]'
EMAIL_FRAME = 'iframe[name^="__privateStripeFrame"][title="Secure email input frame"]'
CHALLENGE_FRAME = 'iframe[title="3D Secure authentication"]'
AUTH_FAILURE = (
    "We are unable to authenticate your payment method. Please choose a different payment "
    "method and try again."
)


def open_quickstart(page: Page, merchant: str, query: str = "") -> str:
    page.goto(merchant + "/quickstart" + query)
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    return page.evaluate("window.clientSecret")


def fill(page: Page, number: str, email: str = "jenny@example.com") -> None:
    page.frame_locator(EMAIL_FRAME).get_by_label("Email").fill(email)
    frame = page.frame_locator(PAYMENT_FRAME)
    frame.get_by_label("Card number").fill(number)
    frame.get_by_label("Expiration date").fill("12 / 34")
    frame.get_by_label("Security code").fill("123")
    frame.get_by_label("ZIP").fill("94107")


def intent(client: stripe.StripeClient, secret: str) -> stripe.PaymentIntent:
    return client.v1.payment_intents.retrieve(secret.split("_secret_")[0])


def returned(page: Page, merchant: str, secret: str) -> dict:
    page.wait_for_url(re.compile(re.escape(merchant) + r"/quickstart\?.*payment_intent="))
    query = parse_qs(urlsplit(page.url).query)
    assert query["payment_intent_client_secret"] == [secret]
    return query


def test_pays_with_4242_and_returns_to_the_completion_page(
    page: Page, merchant: str, stripe_client: stripe.StripeClient
):
    secret = open_quickstart(page, merchant)
    fill(page, "4242 4242 4242 4242")
    # The Link Authentication Element's change events carry the email to the page.
    page.wait_for_function("emailAddress === 'jenny@example.com'")
    page.click("#submit")
    query = returned(page, merchant, secret)
    assert query["redirect_status"] == ["succeeded"]
    expect(page.locator("#payment-message")).to_have_text("Payment succeeded!")
    pi = intent(stripe_client, secret)
    assert pi.status == "succeeded"
    # The page passed no receipt_email: Stripe.js uses the Link Authentication Element's.
    assert pi.receipt_email == "jenny@example.com"
    pm = stripe_client.v1.payment_methods.retrieve(pi.payment_method)
    assert pm.billing_details.email == "jenny@example.com"
    assert pm.card.last4 == "4242"


@pytest.mark.parametrize("script", ["at once", "late"])
def test_pays_with_3155_after_the_3d_secure_modal(
    page: Page, merchant: str, stripe_client: stripe.StripeClient, script: str
):
    """The challenge's buttons wait for three-ds.js ("late": held back 0.8 s): a click
    that came before it once did nothing."""
    if script == "late":

        def slow_script(route):
            page.wait_for_timeout(800)
            route.continue_()

        page.route(re.compile(r".*/static/js/three-ds\.js.*"), slow_script)
    secret = open_quickstart(page, merchant)
    fill(page, "4000 0025 0000 3155")
    page.click("#submit")
    button = page.frame_locator(CHALLENGE_FRAME).get_by_role(
        "button", name="Complete authentication"
    )
    if script == "late":
        expect(button).to_be_disabled()
    expect(page.get_by_role("dialog", name="3D Secure authentication")).to_be_visible()
    button.click()
    query = returned(page, merchant, secret)
    assert query["redirect_status"] == ["succeeded"]
    expect(page.locator("#payment-message")).to_have_text("Payment succeeded!")
    assert intent(stripe_client, secret).status == "succeeded"


def test_card_fields_wait_for_their_frame_script(page: Page, merchant: str, stripe_client):
    """The element frames' fields are disabled until the page has sent the frame its options:
    typed into before the frame's script ran, Enter submitted the frame's own form (the card
    number in a GET of the frame's address)."""
    held = []
    page.route(re.compile(r".*/static/js/frame\.js.*"), lambda route: held.append(route))
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.goto(merchant + "/quickstart", wait_until="commit")
    payment = page.frame_locator(PAYMENT_FRAME)
    email = page.frame_locator(EMAIL_FRAME)
    expect(payment.get_by_label("Card number")).to_be_disabled()
    expect(email.get_by_label("Email")).to_be_disabled()
    for route in held:
        route.continue_()
    page.unroute_all()
    expect(page.locator("body")).to_have_attribute("data-ready", "1")
    secret = page.evaluate("window.clientSecret")
    fill(page, "4242 4242 4242 4242")
    payment.get_by_label("ZIP").press("Enter")
    assert returned(page, merchant, secret)["redirect_status"] == ["succeeded"]
    assert intent(stripe_client, secret).status == "succeeded"
    assert not [url for url in urls if "4242" in url]


def test_decline_is_shown_inline(page: Page, merchant: str, stripe_client: stripe.StripeClient):
    secret = open_quickstart(page, merchant)
    fill(page, "4000 0000 0000 9995")
    page.click("#submit")
    expect(page.locator("#payment-message")).to_have_text("Your card has insufficient funds.")
    assert page.evaluate("window.lastError.type") == "card_error"
    assert page.evaluate("window.lastError.decline_code") == "insufficient_funds"
    assert page.url == merchant + "/quickstart"
    assert intent(stripe_client, secret).status == "requires_payment_method"
    expect(page.locator("#submit")).to_be_enabled()


def test_failed_3d_secure_is_shown_inline_without_leaving_the_page(
    page: Page, merchant: str, stripe_client: stripe.StripeClient
):
    secret = open_quickstart(page, merchant)
    fill(page, "4000 0025 0000 3155")
    page.click("#submit")
    page.frame_locator(CHALLENGE_FRAME).get_by_role("button", name="Fail authentication").click()
    expect(page.locator("#payment-message")).to_have_text(AUTH_FAILURE)
    error = page.evaluate("window.lastError")
    assert error["code"] == "payment_intent_authentication_failure"
    assert error["payment_intent"]["status"] == "requires_payment_method"
    assert page.url == merchant + "/quickstart"
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert intent(stripe_client, secret).status == "requires_payment_method"
    # The customer can try again with another card on the same intent.
    frame = page.frame_locator(PAYMENT_FRAME)
    frame.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.click("#submit")
    assert returned(page, merchant, secret)["redirect_status"] == ["succeeded"]


def test_the_challenge_modal_takes_focus_keeps_it_and_gives_it_back(
    page: Page, merchant: str, stripe_client: stripe.StripeClient
):
    secret = open_quickstart(page, merchant)
    fill(page, "4000 0025 0000 3155")
    page.locator("#submit").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="3D Secure authentication")
    expect(dialog).to_be_visible()
    challenge = page.frame_locator(CHALLENGE_FRAME)
    # Enabled, not just drawn: until three-ds.js runs, an Escape inside the frame has no
    # handler to report it (its buttons stay disabled until then).
    expect(challenge.get_by_role("button", name="Complete authentication")).to_be_enabled()
    inside = "() => !!document.activeElement.closest('[role=dialog]')"
    assert page.evaluate(inside)
    # Tab and Shift+Tab cycle inside the dialog; the page behind it is inert.
    for key in ["Tab"] * 6 + ["Shift+Tab"] * 6:
        page.keyboard.press(key)
        assert page.evaluate(inside), key
    assert page.evaluate("document.getElementById('payment-form').inert") is True
    # Escape closes it (abandoning the authentication), and focus goes back to Pay.
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.locator("#payment-message")).to_have_text(AUTH_FAILURE)
    expect(page.locator("#submit")).to_be_focused()
    assert page.evaluate("document.getElementById('payment-form').inert") is False
    assert intent(stripe_client, secret).status == "requires_payment_method"


def test_escape_closes_the_challenge_while_its_page_is_still_loading(
    page: Page, merchant: str, stripe_client: stripe.StripeClient
):
    """Focus moves into the challenge frame only once it has loaded: an Escape pressed in a
    frame whose script had not run yet once did nothing, and the modal stayed open."""
    held = []
    page.route(re.compile(r".*/static/js/three-ds\.js.*"), lambda route: held.append(route))
    secret = open_quickstart(page, merchant)
    fill(page, "4000 0025 0000 3155")
    page.click("#submit")
    dialog = page.get_by_role("dialog", name="3D Secure authentication")
    expect(dialog).to_be_visible()
    expect(page.frame_locator(CHALLENGE_FRAME).get_by_role("heading")).to_have_text(
        "3D Secure test payment"
    )  # drawn, its script held back
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.locator("#payment-message")).to_have_text(AUTH_FAILURE)
    page.unroute_all(behavior="ignoreErrors")
    assert intent(stripe_client, secret).status == "requires_payment_method"


def test_a_16_digit_visa_is_not_complete_after_13_digits(page: Page, merchant: str):
    open_quickstart(page, merchant)
    number = page.frame_locator(PAYMENT_FRAME).get_by_label("Card number")
    number.click()
    # 4000 0025 0000 3 passes the Luhn check: it must not count as a whole card number.
    page.keyboard.type("4000002500003")
    expect(number).to_have_value("4000 0025 0000 3")
    expect(number).to_be_focused()
    page.keyboard.type("155")
    expect(number).to_have_value("4000 0025 0000 3155")
    expect(page.frame_locator(PAYMENT_FRAME).get_by_label("Expiration date")).to_be_focused()
    # Amex completes at 15 digits, formatted 4-6-5.
    number.fill("")
    number.click()
    page.keyboard.type("378282246310005")
    expect(number).to_have_value("3782 822463 10005")
    expect(page.frame_locator(PAYMENT_FRAME).get_by_label("Expiration date")).to_be_focused()


def test_works_behind_another_host_name(
    page: Page, merchant: str, emulator_url: str, stripe_client: stripe.StripeClient
):
    """Stripe.js, its frames, their files and the 3-D Secure page all come through the host
    name the page used, even when the emulator sees its own (a proxy rewriting Host)."""
    proxy = "http://payments.example.test"
    seen: list[str] = []

    def forward(route):
        seen.append(route.request.url)
        url = emulator_url + route.request.url[len(proxy) :]
        headers = {k: v for k, v in route.request.headers.items() if k.lower() != "host"}
        route.fulfill(response=route.fetch(url=url, headers=headers))

    page.context.route(proxy + "/**", forward)
    direct: list[str] = []
    page.on("request", lambda r: direct.append(r.url) if r.url.startswith(emulator_url) else None)
    secret = open_quickstart(page, merchant, "?js_host=" + proxy)
    fill(page, "4000 0025 0000 3155")
    page.click("#submit")
    page.frame_locator(CHALLENGE_FRAME).get_by_role(
        "button", name="Complete authentication"
    ).click()
    assert returned(page, merchant, secret)["redirect_status"] == ["succeeded"]
    assert intent(stripe_client, secret).status == "succeeded"
    # Requests still in flight (the return page's) must not outlive the test's browser context.
    page.context.unroute_all(behavior="ignoreErrors")
    assert any("/3ds/" in url for url in seen)
    assert any("/static/js/elements-frame.js" in url for url in seen)
    assert direct == []


def test_the_hosted_pages_challenge_modal_keeps_and_returns_focus(
    page: Page, stripe_client: stripe.StripeClient
):
    price = stripe_client.v1.prices.create(
        {"currency": "usd", "unit_amount": 1500, "product_data": {"name": "Kettle"}}
    )
    session = stripe_client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://shop.example/paid",
            "customer_email": "ada@example.com",
        }
    )
    page.goto(session.url)
    page.fill("#cardNumber", "4000 0025 0000 3155")
    page.fill("#cardExpiry", "12 / 34")
    page.fill("#cardCvc", "123")
    page.fill("#billingName", "Ada Lovelace")
    page.locator("#submit-button").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="3D Secure authentication")
    expect(dialog).to_be_visible()
    expect(
        page.frame_locator(CHALLENGE_FRAME).get_by_role("button", name="Fail authentication")
    ).to_be_enabled()  # three-ds.js is there to hear Escape
    inside = "() => !!document.activeElement.closest('[role=dialog]')"
    for key in ["Tab"] * 6 + ["Shift+Tab"] * 6:
        page.keyboard.press(key)
        assert page.evaluate(inside), key
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.locator("#form-error")).to_contain_text("unable to authenticate")
    expect(page.locator("#submit-button")).to_be_focused()


def test_escape_closes_the_hosted_pages_challenge_while_it_is_still_loading(
    page: Page, stripe_client: stripe.StripeClient
):
    """The hosted page's modal (challenge.js) also holds focus until the frame has loaded."""
    price = stripe_client.v1.prices.create(
        {"currency": "usd", "unit_amount": 1500, "product_data": {"name": "Kettle"}}
    )
    session = stripe_client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://shop.example/paid",
            "customer_email": "ada@example.com",
        }
    )
    page.route(re.compile(r".*/static/js/three-ds\.js.*"), lambda route: None)
    page.goto(session.url)
    page.fill("#cardNumber", "4000 0025 0000 3155")
    page.fill("#cardExpiry", "12 / 34")
    page.fill("#cardCvc", "123")
    page.fill("#billingName", "Ada Lovelace")
    page.get_by_role("button", name="Pay").click()
    dialog = page.get_by_role("dialog", name="3D Secure authentication")
    expect(page.frame_locator(CHALLENGE_FRAME).get_by_role("heading")).to_have_text(
        "3D Secure test payment"
    )  # drawn, its script held back
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.locator("#form-error")).to_contain_text("unable to authenticate")
    page.unroute_all(behavior="ignoreErrors")


def test_enter_in_a_card_field_submits_the_form(
    page: Page, merchant: str, stripe_client: stripe.StripeClient
):
    secret = open_quickstart(page, merchant)
    fill(page, "4242 4242 4242 4242")
    page.frame_locator(PAYMENT_FRAME).get_by_label("ZIP").press("Enter")
    assert returned(page, merchant, secret)["redirect_status"] == ["succeeded"]
    assert intent(stripe_client, secret).status == "succeeded"
