"""SetupIntents through the SDK: create, confirm (3-D Secure, declines), cancel, events,
shapes, and the publishable-key calls Stripe.js makes."""

from __future__ import annotations

import datetime

import pytest
import stripe
from shapes import assert_stripe_shape
from stripe._list_object import ListObject

from stripe_emulator import core

NEXT_YEAR = datetime.date.today().year + 1


def card_pm(client: stripe.StripeClient, number: str) -> stripe.PaymentMethod:
    card = {"number": number, "exp_month": 12, "exp_year": NEXT_YEAR, "cvc": "123"}
    return client.v1.payment_methods.create(params={"type": "card", "card": card})


def event_types(app) -> list[str]:
    with app.app_context():
        return [e["type"] for e in reversed(core.all_of("event"))]


def authenticate(client: stripe.StripeClient, seti, result: str) -> dict:
    return client.raw_request(
        "post",
        f"/v1/setup_intents/{seti.id}/authenticate",
        client_secret=seti.client_secret,
        result=result,
    ).data


@pytest.fixture
def customer(stripe_client):
    return stripe_client.v1.customers.create(params={"email": "saver@example.com"})


def test_create_confirm_and_attach(emulator_app, stripe_client, publishable_client, customer):
    seti = stripe_client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "automatic_payment_methods": {"enabled": True},
            "metadata": {"order": "7"},
            "description": "Card for renewals",
        }
    )
    assert seti.status == "requires_payment_method"
    assert seti.usage == "off_session"
    assert seti.client_secret.startswith(seti.id + "_secret_")
    assert_stripe_shape(seti, stripe.SetupIntent)
    # Stripe.js: retrieve and confirm with the publishable key and the client secret.
    got = publishable_client.v1.setup_intents.retrieve(
        seti.id, params={"client_secret": seti.client_secret}
    )
    assert got.id == seti.id
    pm = card_pm(publishable_client, "4242424242424242")
    seti = publishable_client.v1.setup_intents.confirm(
        seti.id, params={"client_secret": seti.client_secret, "payment_method": pm.id}
    )
    assert seti.status == "succeeded"
    assert seti.payment_method == pm.id
    assert_stripe_shape(seti, stripe.SetupIntent)
    assert stripe_client.v1.payment_methods.retrieve(pm.id).customer == customer.id
    assert event_types(emulator_app)[-3:] == [
        "setup_intent.created",
        "payment_method.attached",
        "setup_intent.succeeded",
    ]
    # The saved card pays off-session later without the customer.
    pi = stripe_client.v1.payment_intents.create(
        params={
            "amount": 500,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": pm.id,
            "off_session": True,
            "confirm": True,
        }
    )
    assert pi.status == "succeeded"


def test_3155_needs_authentication_then_succeeds(
    emulator_app, stripe_client, publishable_client, customer
):
    seti = stripe_client.v1.setup_intents.create(params={"customer": customer.id})
    pm = card_pm(publishable_client, "4000002500003155")
    seti = publishable_client.v1.setup_intents.confirm(
        seti.id,
        params={
            "client_secret": seti.client_secret,
            "payment_method": pm.id,
            "return_url": "https://shop.example/saved",
        },
    )
    assert seti.status == "requires_action"
    assert seti.next_action.type == "redirect_to_url"
    assert "/3ds/" + seti.id in seti.next_action.redirect_to_url.url
    assert seti.next_action.redirect_to_url.return_url == "https://shop.example/saved"
    assert_stripe_shape(seti, stripe.SetupIntent)
    after = authenticate(publishable_client, seti, "complete")
    assert after["status"] == "succeeded"
    assert stripe_client.v1.payment_methods.retrieve(pm.id).customer == customer.id
    # Once saved, the card pays off-session without another challenge (Stripe's 3155).
    pi = stripe_client.v1.payment_intents.create(
        params={
            "amount": 900,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": pm.id,
            "off_session": True,
            "confirm": True,
        }
    )
    assert pi.status == "succeeded"
    assert "setup_intent.requires_action" in event_types(emulator_app)


def test_failed_authentication_fails_the_setup(
    emulator_app, stripe_client, publishable_client, customer
):
    seti = stripe_client.v1.setup_intents.create(
        params={"customer": customer.id, "payment_method": "pm_card_authenticationRequired"}
    )
    assert seti.status == "requires_confirmation"
    seti = stripe_client.v1.setup_intents.confirm(seti.id)
    assert seti.status == "requires_action"
    after = stripe_client.v1.setup_intents.retrieve(seti.id)
    failed = authenticate(publishable_client, after, "fail")
    assert failed["status"] == "requires_payment_method"
    assert failed["payment_method"] is None
    assert failed["last_setup_error"]["code"] == "setup_intent_authentication_failure"
    final = stripe_client.v1.setup_intents.retrieve(seti.id)
    assert_stripe_shape(final, stripe.SetupIntent)
    assert event_types(emulator_app)[-1] == "setup_intent.setup_failed"
    assert stripe_client.v1.customers.payment_methods.list(customer.id).data == []


def test_declined_card_fails_with_a_card_error(emulator_app, stripe_client, customer):
    seti = stripe_client.v1.setup_intents.create(params={"customer": customer.id})
    with pytest.raises(stripe.CardError) as excinfo:
        stripe_client.v1.setup_intents.confirm(
            seti.id, params={"payment_method": "pm_card_chargeDeclined"}
        )
    assert excinfo.value.code == "card_declined"
    body = excinfo.value.json_body["error"]
    assert body["setup_intent"]["status"] == "requires_payment_method"
    seti = stripe_client.v1.setup_intents.retrieve(seti.id)
    assert seti.last_setup_error.decline_code == "generic_decline"
    assert_stripe_shape(seti, stripe.SetupIntent)
    assert event_types(emulator_app)[-1] == "setup_intent.setup_failed"
    # A card that only fails when charged (0341) sets up fine; so does one without funds.
    for pm_id in ("pm_card_chargeCustomerFail", "pm_card_chargeDeclinedInsufficientFunds"):
        seti = stripe_client.v1.setup_intents.confirm(seti.id, params={"payment_method": pm_id})
        assert seti.status == "succeeded"
        seti = stripe_client.v1.setup_intents.create(params={"customer": customer.id})


def test_confirm_create_cancel_update_and_list(emulator_app, stripe_client, customer):
    done = stripe_client.v1.setup_intents.create(
        params={"customer": customer.id, "payment_method": "pm_card_visa", "confirm": True}
    )
    assert done.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.setup_intents.cancel(done.id)
    assert excinfo.value.code == "setup_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.setup_intents.confirm(done.id, params={"payment_method": "pm_card_visa"})
    assert excinfo.value.code == "setup_intent_unexpected_state"
    open_one = stripe_client.v1.setup_intents.create(params={"usage": "on_session"})
    open_one = stripe_client.v1.setup_intents.update(
        open_one.id, params={"customer": customer.id, "metadata": {"a": "1"}}
    )
    assert (open_one.customer, open_one.metadata.to_dict()) == (customer.id, {"a": "1"})
    canceled = stripe_client.v1.setup_intents.cancel(
        open_one.id, params={"cancellation_reason": "abandoned"}
    )
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    assert_stripe_shape(canceled, stripe.SetupIntent)
    assert event_types(emulator_app)[-1] == "setup_intent.canceled"
    listed = stripe_client.v1.setup_intents.list(params={"customer": customer.id})
    assert [s.id for s in listed.data] == [open_one.id, done.id]
    assert_stripe_shape(listed, ListObject[stripe.SetupIntent])


def test_errors_like_stripe(stripe_client, publishable_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.setup_intents.retrieve("seti_missing")
    assert excinfo.value.http_status == 404
    assert str(excinfo.value.user_message) == "No such setupintent: 'seti_missing'"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.setup_intents.create(params={"usage": "sometimes"})
    assert excinfo.value.param == "usage"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.setup_intents.confirm(stripe_client.v1.setup_intents.create().id)
    assert excinfo.value.code == "setup_intent_unexpected_state"
    seti = stripe_client.v1.setup_intents.create()
    # A publishable key needs the right client secret, and cannot create.
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        publishable_client.v1.setup_intents.retrieve(
            seti.id, params={"client_secret": seti.id + "_secret_wrong"}
        )
    assert excinfo.value.code == "setup_intent_invalid_parameter"
    with pytest.raises(stripe.AuthenticationError):
        publishable_client.v1.setup_intents.create()
    with pytest.raises(stripe.AuthenticationError):
        publishable_client.v1.setup_intents.cancel(seti.id)


def test_setup_intent_events_carry_well_shaped_objects(emulator_app, stripe_client, customer):
    stripe_client.v1.setup_intents.create(
        params={"customer": customer.id, "payment_method": "pm_card_visa", "confirm": True}
    )
    with emulator_app.app_context():
        events = [e for e in core.all_of("event") if e["type"].startswith("setup_intent.")]
    assert {e["type"] for e in events} == {"setup_intent.created", "setup_intent.succeeded"}
    for event in events:
        assert_stripe_shape(event, stripe.Event)
        assert_stripe_shape(event["data"]["object"], stripe.SetupIntent)
