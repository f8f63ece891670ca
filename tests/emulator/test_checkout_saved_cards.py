"""Saved cards on the hosted Checkout page (issue 14): ``customer`` with
``saved_payment_method_options`` lists the customer's cards saved with consent and offers
to save a new one; paying with a saved card; what is refused."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from shapes import assert_stripe_shape
from test_checkout_sessions import CANCEL, SUCCESS, http, make_price

SAVE = {"payment_method_save": "enabled"}


def session_for(client: stripe.StripeClient, customer: str | None, **extra: Any):
    price = make_price(client)
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
    }
    if customer:
        params["customer"] = customer
    params.update(extra)
    return client.v1.checkout.sessions.create(params)


def saved_card(client: stripe.StripeClient, customer: str, number: str, redisplay: str) -> str:
    pm = client.v1.payment_methods.create(
        params={
            "type": "card",
            "allow_redisplay": redisplay,
            "card": {"number": number, "exp_month": 12, "exp_year": 2034},
        }
    )
    client.v1.payment_methods.attach(pm.id, params={"customer": customer})
    return pm.id


def confirm(base: str, cs_id: str, **fields: str) -> tuple[int, dict[str, Any]]:
    data = {"email": "ada@example.com", **fields}
    return http(f"{base}/v1/payment_pages/{cs_id}/confirm", data)


NEW_CARD = {
    "billing_name": "Ada Lovelace",
    "card[number]": "4242424242424242",
    "card[exp_month]": "12",
    "card[exp_year]": "2034",
    "card[cvc]": "123",
}


@pytest.fixture
def customer(stripe_client):
    return stripe_client.v1.customers.create(params={"email": "ada@example.com"}).id


def test_session_shape_and_defaults(stripe_client, customer):
    plain = session_for(stripe_client, customer)
    assert_stripe_shape(plain, stripe.checkout.Session)
    assert plain.saved_payment_method_options.allow_redisplay_filters == ["always"]
    assert plain.saved_payment_method_options.payment_method_save is None
    saving = session_for(
        stripe_client,
        customer,
        saved_payment_method_options={
            "payment_method_save": "enabled",
            "allow_redisplay_filters": ["always", "limited"],
        },
    )
    assert_stripe_shape(saving, stripe.checkout.Session)
    assert saving.saved_payment_method_options.payment_method_save == "enabled"
    assert saving.saved_payment_method_options.allow_redisplay_filters == ["always", "limited"]
    guest = session_for(stripe_client, None, customer_email="g@example.com")
    assert guest.saved_payment_method_options is None


def test_what_is_refused(stripe_client, customer):
    with pytest.raises(stripe.InvalidRequestError) as no_customer:
        session_for(
            stripe_client, None, customer_email="g@example.com", saved_payment_method_options=SAVE
        )
    assert no_customer.value.param == "saved_payment_method_options[payment_method_save]"
    with pytest.raises(stripe.InvalidRequestError) as remove:
        session_for(
            stripe_client,
            customer,
            saved_payment_method_options={"payment_method_remove": "enabled"},
        )
    assert remove.value.code == "parameter_unsupported"


def test_the_page_lists_the_customers_redisplayable_cards(stripe_client, emulator_url, customer):
    always = saved_card(stripe_client, customer, "4242424242424242", "always")
    saved_card(stripe_client, customer, "5555555555554444", "limited")
    other = stripe_client.v1.customers.create(params={"email": "o@example.com"}).id
    saved_card(stripe_client, other, "4242424242424242", "always")
    cs = session_for(stripe_client, customer, saved_payment_method_options=SAVE)
    status, page = http(f"{emulator_url}/v1/payment_pages/{cs.id}/saved_payment_methods")
    assert status == 200
    assert page["saved_cards"] == [
        {"id": always, "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2034}
    ]
    assert page["offers_save"] is True
    guest = session_for(stripe_client, None, customer_email="ada@example.com")
    status, page = http(f"{emulator_url}/v1/payment_pages/{guest.id}/saved_payment_methods")
    assert (page["saved_cards"], page["offers_save"]) == ([], False)


def test_save_a_new_card_then_pay_the_next_session_with_it(stripe_client, emulator_url, customer):
    first = session_for(stripe_client, customer, saved_payment_method_options=SAVE)
    status, body = confirm(emulator_url, first.id, save_payment_method="true", **NEW_CARD)
    assert status == 200 and body["status"] == "complete", body
    pi = stripe_client.v1.payment_intents.retrieve(
        stripe_client.v1.checkout.sessions.retrieve(first.id).payment_intent
    )
    assert pi.setup_future_usage == "on_session"
    pm = stripe_client.v1.payment_methods.retrieve(pi.payment_method)
    assert (pm.customer, pm.allow_redisplay) == (customer, "always")

    second = session_for(stripe_client, customer, saved_payment_method_options=SAVE)
    _, page = http(f"{emulator_url}/v1/payment_pages/{second.id}/saved_payment_methods")
    assert [c["id"] for c in page["saved_cards"]] == [pm.id]
    status, body = confirm(emulator_url, second.id, payment_method=pm.id)
    assert status == 200 and body["status"] == "complete", body
    paid = stripe_client.v1.checkout.sessions.retrieve(second.id, {"expand": ["payment_intent"]})
    assert paid.payment_intent.payment_method == pm.id


def test_not_ticking_save_saves_nothing(stripe_client, emulator_url, customer):
    cs = session_for(stripe_client, customer, saved_payment_method_options=SAVE)
    status, body = confirm(emulator_url, cs.id, **NEW_CARD)
    assert status == 200 and body["status"] == "complete"
    pi_id = stripe_client.v1.checkout.sessions.retrieve(cs.id).payment_intent
    pm = stripe_client.v1.payment_methods.retrieve(
        stripe_client.v1.payment_intents.retrieve(pi_id).payment_method
    )
    assert (pm.customer, pm.allow_redisplay) == (None, "unspecified")


def test_a_card_the_page_does_not_offer_is_refused(stripe_client, emulator_url, customer):
    limited = saved_card(stripe_client, customer, "4242424242424242", "limited")
    other = stripe_client.v1.customers.create(params={"email": "o@example.com"}).id
    theirs = saved_card(stripe_client, other, "4242424242424242", "always")
    cs = session_for(stripe_client, customer, saved_payment_method_options=SAVE)
    for pm_id in (limited, theirs, "pm_card_visa"):
        status, body = confirm(emulator_url, cs.id, payment_method=pm_id)
        assert status == 404, body
    assert stripe_client.v1.checkout.sessions.retrieve(cs.id).status == "open"


def test_a_saved_3155_card_asks_for_3d_secure(stripe_client, emulator_url, customer):
    pm = saved_card(stripe_client, customer, "4000002500003155", "always")
    cs = session_for(stripe_client, customer, saved_payment_method_options=SAVE)
    status, body = confirm(emulator_url, cs.id, payment_method=pm)
    assert status == 200 and body["status"] == "requires_action", body
