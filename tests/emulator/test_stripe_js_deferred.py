"""Deferred intents and the Address Element in the Stripe.js stand-in, in Chromium.

The page (pages/deferred.html) follows Stripe's "collect payment details before creating an
Intent" guide: ``stripe.elements({mode, amount, currency})``, an Address Element in shipping
mode above the Payment Element, ``elements.submit()`` on Pay, the intent made by the
merchant's server, then ``confirmPayment({elements, clientSecret, ...})``.
"""

from __future__ import annotations

import pytest
import stripe
from playwright.sync_api import FrameLocator, Page, expect

pytestmark = pytest.mark.browser

PAYMENT_FRAME = 'iframe[name^="__privateStripeFrame"][title="Secure payment input frame"]'
ADDRESS_FRAME = 'iframe[name^="__privateStripeFrame"][title="Secure address input frame"]'


def open_deferred(page: Page, merchant: str, query: str = "") -> None:
    page.goto(f"{merchant}/deferred{'?' + query if query else ''}")
    expect(page.locator("body")).to_have_attribute("data-ready", "1")


def fill_card(page: Page, number: str = "4242 4242 4242 4242") -> None:
    frame = page.frame_locator(PAYMENT_FRAME)
    frame.locator('input[name="number"]').fill(number)
    frame.locator('input[name="expiry"]').fill("12 / 34")
    frame.locator('input[name="cvc"]').fill("123")
    frame.locator('input[name="postalCode"]').fill("94107")


def fill_address(frame: FrameLocator) -> None:
    frame.get_by_label("Full name").fill("Jenny Rosen")
    frame.get_by_label("Country or region").select_option("US")
    frame.get_by_label("Address line 1").fill("510 Townsend St")
    frame.get_by_label("Address line 2").fill("Floor 2")
    frame.get_by_label("City").fill("San Francisco")
    frame.get_by_label("State").select_option("CA")
    frame.get_by_label("ZIP").fill("94103")


def last_change(page: Page, element_type: str) -> dict:
    return page.wait_for_function(
        f"window.events.filter(e => e[1].elementType === '{element_type}').pop()"
    ).json_value()[1]


def intents(client: stripe.StripeClient) -> list:
    return list(client.v1.payment_intents.list().data)


def test_deferred_page_pays_and_the_intent_carries_the_shipping_address(
    page: Page, merchant: str, stripe_client: stripe.StripeClient
):
    open_deferred(page, merchant, "amount=2450")
    # Page views create nothing at Stripe: the intent is made on Pay.
    assert intents(stripe_client) == []
    fill_address(page.frame_locator(ADDRESS_FRAME))
    fill_card(page)
    page.click("#submit")
    expect(page.locator("#status")).to_have_text("Status: succeeded")
    (pi,) = intents(stripe_client)
    assert pi.amount == 2450
    assert pi.status == "succeeded"
    assert pi.shipping.name == "Jenny Rosen"
    assert pi.shipping.address.to_dict() == {
        "city": "San Francisco",
        "country": "US",
        "line1": "510 Townsend St",
        "line2": "Floor 2",
        "postal_code": "94103",
        "state": "CA",
    }
    assert page.evaluate("window.lastResult.paymentIntent.id") == pi.id


def test_address_element_fields_and_change_events(page: Page, merchant: str):
    open_deferred(page, merchant)
    frame = page.frame_locator(ADDRESS_FRAME)
    for label, name in [
        ("Full name", "name"),
        ("Country or region", "country"),
        ("Address line 1", "addressLine1"),
        ("Address line 2", "addressLine2"),
        ("City", "locality"),
        ("State", "administrativeArea"),
        ("ZIP", "postalCode"),
    ]:
        expect(frame.get_by_label(label, exact=True)).to_have_attribute("name", name)
    expect(frame.locator('select[name="country"]')).to_have_value("US")
    first = last_change(page, "address")
    assert first["complete"] is False
    assert first["empty"] is True
    fill_address(frame)
    change = page.wait_for_function(
        "window.events.filter(e => e[1].elementType === 'address' && e[1].complete).pop()"
    ).json_value()[1]
    assert change["elementMode"] == "shipping"
    assert change["value"] == {
        "name": "Jenny Rosen",
        "address": {
            "line1": "510 Townsend St",
            "line2": "Floor 2",
            "city": "San Francisco",
            "state": "CA",
            "postal_code": "94103",
            "country": "US",
        },
    }
    got = page.evaluate("window.checkout.address.getValue()")
    assert got["complete"] is True
    assert got["value"] == change["value"]
    # A country without states: no State field, a "Postal code" instead of a ZIP.
    frame.get_by_label("Country or region").select_option("GB")
    expect(frame.get_by_label("State")).to_be_hidden()
    expect(frame.get_by_label("Postal code")).to_be_visible()
    frame.get_by_label("Postal code").fill("SW1A 1AA")
    gb = page.wait_for_function(
        "window.events.filter(e => e[1].elementType === 'address'"
        " && e[1].value.address.country === 'GB' && e[1].complete).pop()"
    ).json_value()[1]
    assert gb["value"]["address"]["state"] is None
    assert gb["value"]["address"]["postal_code"] == "SW1A 1AA"


def test_submit_with_an_incomplete_address_shows_field_errors_and_creates_nothing(
    page: Page, merchant: str, stripe_client: stripe.StripeClient
):
    open_deferred(page, merchant)
    fill_card(page)
    frame = page.frame_locator(ADDRESS_FRAME)
    frame.get_by_label("Full name").fill("Jenny Rosen")
    page.click("#submit")
    expect(page.locator("#error-message")).to_have_text("This field is incomplete.")
    error = page.evaluate("window.lastResult.error")
    assert error["type"] == "validation_error"
    expect(frame.get_by_label("Address line 1")).to_have_attribute("aria-invalid", "true")
    expect(frame.get_by_label("City")).to_have_attribute("aria-invalid", "true")
    expect(frame.locator("#Field-postalCodeError")).to_have_text("Your ZIP is incomplete.")
    expect(frame.get_by_label("Full name")).to_have_attribute("aria-invalid", "false")
    # The first field in error has focus, and nothing was created at Stripe.
    expect(frame.get_by_label("Address line 1")).to_be_focused()
    assert intents(stripe_client) == []


def test_allowed_countries_limit_the_country_select(page: Page, merchant: str):
    open_deferred(page, merchant, "allowedCountries=CA,US")
    frame = page.frame_locator(ADDRESS_FRAME)
    options = frame.locator('select[name="country"] option')
    expect(options).to_have_count(2)
    assert options.evaluate_all("os => os.map(o => o.value)") == ["CA", "US"]
    # The browser's country (here the default, US) stays selected when it is allowed.
    expect(frame.locator('select[name="country"]')).to_have_value("US")
    frame.get_by_label("Country or region").select_option("CA")
    expect(frame.locator("#Field-administrativeAreaLabel")).to_have_text("Province")
    open_deferred(page, merchant, "allowedCountries=GB,IE")
    expect(frame.locator('select[name="country"]')).to_have_value("GB")


def test_deferred_elements_check_their_options_and_the_order_of_calls(
    page: Page, merchant: str, stripe_client: stripe.StripeClient
):
    open_deferred(page, merchant, "address=0")
    errors = page.evaluate(
        """() => {
          const stripe = window.checkout.stripe;
          const out = {};
          for (const [name, opts] of [
            ["bad_mode", {mode: "donation", amount: 100, currency: "usd"}],
            ["no_amount", {mode: "payment", currency: "usd"}],
            ["no_currency", {mode: "payment", amount: 100}],
            ["bad_capture", {mode: "payment", amount: 100, currency: "usd",
                             captureMethod: "later"}],
          ]) {
            try { stripe.elements(opts); out[name] = null; }
            catch (e) { out[name] = e.name + ": " + e.message; }
          }
          try { window.checkout.elements.update({amount: -5}); out.bad_update = null; }
          catch (e) { out.bad_update = e.name + ": " + e.message; }
          return out;
        }"""
    )
    assert errors["bad_mode"].startswith("IntegrationError: Invalid value for elements(): mode")
    assert "amount" in errors["no_amount"]
    assert "currency" in errors["no_currency"]
    assert "captureMethod" in errors["bad_capture"]
    assert "amount" in errors["bad_update"]
    pi = stripe_client.v1.payment_intents.create({"amount": 1099, "currency": "usd"})
    # confirmPayment before elements.submit() is an integration error, and charges nothing.
    message = page.evaluate(
        """secret => window.checkout.stripe.confirmPayment({
             elements: window.checkout.elements, clientSecret: secret,
             redirect: "if_required"}).then(() => "resolved", e => e.message)""",
        pi.client_secret,
    )
    assert message.startswith("elements.submit() must be called before stripe.confirmPayment()")
    # Without a clientSecret a deferred confirm cannot know the intent.
    fill_card(page)
    message = page.evaluate(
        """async () => {
             await window.checkout.elements.submit();
             return window.checkout.stripe.confirmPayment({
               elements: window.checkout.elements, redirect: "if_required"})
               .then(() => "resolved", e => e.message);
           }"""
    )
    assert "clientSecret" in message
    assert stripe_client.v1.payment_intents.retrieve(pi.id).status == "requires_payment_method"


def test_elements_update_changes_the_amount_shown_to_the_server(page: Page, merchant: str):
    open_deferred(page, merchant, "address=0")
    page.evaluate("window.checkout.elements.update({amount: 5000, currency: 'eur'})")
    opts = page.evaluate("window.checkout.elements._publicOptions()")
    assert opts["amount"] == 5000
    assert opts["currency"] == "eur"


def test_deferred_manual_capture_and_saving_the_card(
    page: Page, merchant: str, stripe_client: stripe.StripeClient
):
    open_deferred(page, merchant, "address=0&captureMethod=manual")
    fill_card(page)
    page.click("#submit")
    expect(page.locator("#status")).to_have_text("Status: requires_capture")
    open_deferred(page, merchant, "address=0&setupFutureUsage=off_session")
    fill_card(page)
    page.click("#submit")
    expect(page.locator("#status")).to_have_text("Status: succeeded")
    saved = stripe_client.v1.payment_intents.retrieve(
        page.evaluate("window.lastResult.paymentIntent.id")
    )
    assert saved.setup_future_usage == "off_session"
    assert stripe_client.v1.payment_methods.retrieve(saved.payment_method).customer == (
        saved.customer
    )


def test_an_intent_set_up_unlike_the_elements_is_refused(
    page: Page, merchant: str, stripe_client: stripe.StripeClient
):
    open_deferred(page, merchant, "address=0&captureMethod=manual")
    fill_card(page)
    pi = stripe_client.v1.payment_intents.create({"amount": 1099, "currency": "usd"})
    message = page.evaluate(
        """async secret => {
             const {stripe, elements} = window.checkout;
             await elements.submit();
             return stripe.confirmPayment({elements, clientSecret: secret,
               redirect: "if_required"}).then(() => "resolved", e => e.message);
           }""",
        pi.client_secret,
    )
    assert "capture_method (automatic_async) does not match" in message
    assert stripe_client.v1.payment_intents.retrieve(pi.id).status == "requires_payment_method"


def test_billing_mode_fills_the_payment_methods_billing_details(
    page: Page, merchant: str, stripe_client: stripe.StripeClient
):
    open_deferred(page, merchant, "addressMode=billing&phone=1")
    frame = page.frame_locator(ADDRESS_FRAME)
    expect(frame.get_by_label("Full name")).to_have_attribute("autocomplete", "billing name")
    fill_address(frame)
    fill_card(page)
    # The phone number is asked for and required.
    page.click("#submit")
    expect(page.locator("#error-message")).to_have_text("This field is incomplete.")
    expect(frame.get_by_label("Phone number")).to_be_focused()
    frame.get_by_label("Phone number").fill("+1 415 555 0100")
    page.click("#submit")
    expect(page.locator("#status")).to_have_text("Status: succeeded")
    (pi,) = intents(stripe_client)
    assert pi.shipping is None
    pm = stripe_client.v1.payment_methods.retrieve(pi.payment_method)
    assert pm.billing_details.name == "Jenny Rosen"
    assert pm.billing_details.phone == "+1 415 555 0100"
    assert pm.billing_details.address.line1 == "510 Townsend St"
    assert pm.billing_details.address.postal_code == "94103"


def test_default_values_fill_the_address(page: Page, merchant: str):
    open_deferred(page, merchant, "defaultName=Ada+Lovelace")
    frame = page.frame_locator(ADDRESS_FRAME)
    expect(frame.get_by_label("Full name")).to_have_value("Ada Lovelace")
    expect(frame.get_by_label("Country or region")).to_have_value("CA")
    expect(frame.get_by_label("Province")).to_have_value("ON")
    expect(frame.get_by_label("Postal code")).to_have_value("M5V 2T6")
    got = page.evaluate("window.checkout.address.getValue()")
    assert got["complete"] is True
    assert got["value"]["address"]["city"] == "Toronto"


def test_countries_without_postal_codes_need_none(page: Page, merchant: str):
    open_deferred(page, merchant, "allowedCountries=US,HK,KR")
    frame = page.frame_locator(ADDRESS_FRAME)
    options = frame.locator('select[name="country"] option')
    assert options.evaluate_all("os => os.map(o => o.textContent)") == [
        "United States",
        "Hong Kong",
        "South Korea",
    ]
    frame.get_by_label("Full name").fill("Chan Tai Man")
    frame.get_by_label("Country or region").select_option("HK")
    frame.get_by_label("Address line 1").fill("1 Queen's Road Central")
    frame.get_by_label("City").fill("Hong Kong")
    expect(frame.get_by_label("Postal code")).to_be_hidden()
    change = page.wait_for_function(
        "window.events.filter(e => e[1].elementType === 'address' && e[1].complete).pop()"
    ).json_value()[1]
    assert change["value"]["address"]["country"] == "HK"
    assert change["value"]["address"]["postal_code"] is None


def test_frames_on_one_page_never_share_a_name(page: Page, merchant: str):
    """Frame names were a random number plus a counter each: random draws one apart gave the
    address and payment frames one name (CI saw it), and the page never became ready."""
    # The draws that collided: 1000 + 4000 + 1 and 1000 + 3999 + 2.
    page.add_init_script(
        "(() => { const draws = [0.5, 0.4999]; let i = 0;"
        " Math.random = () => draws[i++ % draws.length]; })()"
    )
    open_deferred(page, merchant)
    names = page.locator('iframe[name^="__privateStripeFrame"]').evaluate_all(
        "frames => frames.map(f => f.name)"
    )
    assert len(names) == 2 and len(set(names)) == 2, names
