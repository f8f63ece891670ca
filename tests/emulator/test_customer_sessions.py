"""Customer Sessions through the SDK (issue 14): create, shapes, strictness, and the
publishable-key calls the Payment Element stand-in makes with the session's client secret
(the saved cards it shows, Remove), plus saving a card during a payment."""

from __future__ import annotations

import datetime

import pytest
import requests
import stripe
from shapes import assert_stripe_shape

from stripe_emulator import core

NEXT_YEAR = datetime.date.today().year + 1
PK = {"Authorization": "Bearer pk_test_emulator"}

ALL_FEATURES = {
    "payment_method_redisplay": "enabled",
    "payment_method_save": "enabled",
    "payment_method_save_usage": "off_session",
    "payment_method_remove": "enabled",
}


def session_for(client: stripe.StripeClient, customer: str, **features) -> stripe.CustomerSession:
    return client.v1.customer_sessions.create(
        params={
            "customer": customer,
            "components": {"payment_element": {"enabled": True, "features": features}},
        }
    )


def card(client: stripe.StripeClient, number: str, redisplay: str | None = None, exp_year=None):
    params = {
        "type": "card",
        "card": {
            "number": number,
            "exp_month": 12,
            "exp_year": exp_year or NEXT_YEAR,
            "cvc": "123",
        },
    }
    if redisplay:
        params["allow_redisplay"] = redisplay
    return client.v1.payment_methods.create(params=params)


def elements_session(url: str, secret: str) -> requests.Response:
    return requests.get(
        f"{url}/v1/elements/sessions",
        params={"customer_session_client_secret": secret},
        headers=PK,
        timeout=10,
    )


def event_types(app) -> list[str]:
    with app.app_context():
        return [e["type"] for e in reversed(core.all_of("event"))]


@pytest.fixture
def customer(stripe_client):
    return stripe_client.v1.customers.create(params={"email": "returning@example.com"})


def test_create_answers_the_sdk_shape_with_defaults(stripe_client, customer):
    cs = session_for(stripe_client, customer.id, payment_method_redisplay="enabled")
    assert_stripe_shape(cs, stripe.CustomerSession)
    assert cs.client_secret.startswith("cuss_secret_")
    assert cs.customer == customer.id
    assert cs.expires_at - cs.created == 30 * 60
    features = cs.components.payment_element.features
    assert cs.components.payment_element.enabled is True
    assert features.payment_method_redisplay == "enabled"
    assert features.payment_method_allow_redisplay_filters == ["always"]
    assert features.payment_method_redisplay_limit == 3
    assert features.payment_method_save == "disabled"
    assert features.payment_method_remove == "disabled"
    assert features.payment_method_save_usage is None
    assert cs.components.buy_button.enabled is False
    # Every feature Stripe documents for the Payment Element.
    full = session_for(
        stripe_client,
        customer.id,
        payment_method_allow_redisplay_filters=["always", "limited"],
        payment_method_redisplay_limit=10,
        **ALL_FEATURES,
    )
    assert_stripe_shape(full, stripe.CustomerSession)
    got = full.components.payment_element.features
    assert got.payment_method_allow_redisplay_filters == ["always", "limited"]
    assert got.payment_method_redisplay_limit == 10
    assert got.payment_method_save == "enabled"
    assert got.payment_method_save_usage == "off_session"
    assert got.payment_method_remove == "enabled"
    assert full.client_secret != cs.client_secret


def test_create_refuses_what_stripe_refuses(stripe_client, customer):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.customer_sessions.create(
            params={"components": {"payment_element": {"enabled": True}}}
        )
    assert missing.value.param == "customer"
    with pytest.raises(stripe.InvalidRequestError) as unknown_customer:
        session_for(stripe_client, "cus_nobody")
    assert unknown_customer.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as none_enabled:
        stripe_client.v1.customer_sessions.create(
            params={"customer": customer.id, "components": {"payment_element": {"enabled": False}}}
        )
    assert "At least 1 component" in str(none_enabled.value)
    with pytest.raises(stripe.InvalidRequestError) as bad_limit:
        session_for(stripe_client, customer.id, payment_method_redisplay_limit=11)
    assert bad_limit.value.param.endswith("[payment_method_redisplay_limit]")
    with pytest.raises(stripe.InvalidRequestError) as bad_enum:
        session_for(stripe_client, customer.id, payment_method_save="sometimes")
    assert bad_enum.value.code == "parameter_invalid_string"


@pytest.mark.parametrize(
    "components,param",
    [
        ({"pricing_table": {"enabled": True}}, "components[pricing_table][enabled]"),
        ({"buy_button": {"enabled": True}}, "components[buy_button][enabled]"),
        (
            {"customer_sheet": {"enabled": True}},
            "components[customer_sheet][enabled]",
        ),
    ],
)
def test_components_the_emulator_lacks_are_refused(stripe_client, customer, components, param):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.customer_sessions.create(
            params={"customer": customer.id, "components": components}
        )
    assert excinfo.value.code == "parameter_unsupported"
    assert excinfo.value.param == param


def test_customer_account_is_refused_as_unsupported(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.customer_sessions.create(
            params={
                "customer_account": "acct_1",
                "components": {"payment_element": {"enabled": True}},
            }
        )
    assert excinfo.value.code == "parameter_unsupported"


def test_secret_key_only(publishable_client, customer):
    with pytest.raises(stripe.AuthenticationError):
        session_for(publishable_client, customer.id)


def test_elements_session_lists_the_customers_redisplayable_cards(
    emulator_url, stripe_client, publishable_client, customer
):
    other = stripe_client.v1.customers.create(params={"email": "other@example.com"})
    saved = []
    for number in ("4242424242424242", "5555555555554444", "4000002500003155", "378282246310005"):
        pm = card(publishable_client, number, redisplay="always")
        stripe_client.v1.payment_methods.attach(pm.id, params={"customer": customer.id})
        saved.append(pm.id)
    limited = card(publishable_client, "4000056655665556", redisplay="limited")
    stripe_client.v1.payment_methods.attach(limited.id, params={"customer": customer.id})
    unspecified = stripe_client.v1.payment_methods.attach(
        "pm_card_visa", params={"customer": customer.id}
    )
    theirs = card(publishable_client, "4242424242424242", redisplay="always")
    stripe_client.v1.payment_methods.attach(theirs.id, params={"customer": other.id})

    cs = session_for(stripe_client, customer.id, payment_method_redisplay="enabled")
    resp = elements_session(emulator_url, cs.client_secret)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["customer"] == customer.id
    # Newest first, only allow_redisplay=always (the default filter), at most 3.
    assert [pm["id"] for pm in body["payment_methods"]] == saved[::-1][:3]
    assert body["payment_methods"][0]["card"]["last4"] == "0005"

    wide = session_for(
        stripe_client,
        customer.id,
        payment_method_redisplay="enabled",
        payment_method_allow_redisplay_filters=["always", "limited", "unspecified"],
        payment_method_redisplay_limit=10,
    )
    ids = [
        pm["id"]
        for pm in elements_session(emulator_url, wide.client_secret).json()["payment_methods"]
    ]
    assert set(ids) == {*saved, limited.id, unspecified.id}

    hidden = session_for(stripe_client, customer.id)  # redisplay defaults to disabled
    assert elements_session(emulator_url, hidden.client_secret).json()["payment_methods"] == []


def test_elements_session_needs_a_live_secret(emulator_url, emulator_app, stripe_client, customer):
    assert elements_session(emulator_url, "cuss_secret_made_up").status_code == 400
    assert elements_session(emulator_url, "pi_123_secret_abc").status_code == 400
    cs = session_for(stripe_client, customer.id, payment_method_redisplay="enabled")
    no_key = requests.get(
        f"{emulator_url}/v1/elements/sessions",
        params={"customer_session_client_secret": cs.client_secret},
        timeout=10,
    )
    assert no_key.status_code == 401
    requests.post(
        f"{emulator_url}/_emulator/clock",
        data={"advance": 31 * 60},
        headers={"Authorization": "Bearer sk_test_emulator"},
        timeout=10,
    )
    expired = elements_session(emulator_url, cs.client_secret)
    assert expired.status_code == 400
    assert expired.json()["error"]["code"] == "customer_session_expired"


def test_remove_detaches_only_with_the_feature_and_only_the_customers_cards(
    emulator_url, emulator_app, stripe_client, customer
):
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    other = stripe_client.v1.customers.create(params={"email": "other@example.com"})
    theirs = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": other.id})

    def remove(pm_id: str, secret: str) -> requests.Response:
        return requests.post(
            f"{emulator_url}/v1/elements/payment_methods/{pm_id}/detach",
            data={"customer_session_client_secret": secret},
            headers=PK,
            timeout=10,
        )

    no_remove = session_for(stripe_client, customer.id, payment_method_redisplay="enabled")
    assert remove(pm.id, no_remove.client_secret).status_code == 403
    cs = session_for(stripe_client, customer.id, **ALL_FEATURES)
    assert remove(theirs.id, cs.client_secret).status_code == 404
    assert stripe_client.v1.payment_methods.retrieve(theirs.id).customer == other.id
    resp = remove(pm.id, cs.client_secret)
    assert resp.status_code == 200, resp.text
    assert resp.json()["customer"] is None
    assert stripe_client.v1.payment_methods.retrieve(pm.id).customer is None
    assert event_types(emulator_app)[-1] == "payment_method.detached"


def test_saving_a_card_during_a_payment_then_paying_with_it(
    emulator_app, stripe_client, publishable_client, customer
):
    """What the Payment Element does when "Save this card" is ticked, then next time."""
    pi = stripe_client.v1.payment_intents.create(
        params={"amount": 1500, "currency": "usd", "customer": customer.id}
    )
    pm = card(publishable_client, "4242424242424242", redisplay="always")
    assert pm.allow_redisplay == "always"
    assert_stripe_shape(pm, stripe.PaymentMethod)
    paid = publishable_client.v1.payment_intents.confirm(
        pi.id,
        params={
            "client_secret": pi.client_secret,
            "payment_method": pm.id,
            "setup_future_usage": "off_session",
        },
    )
    assert paid.status == "succeeded"
    assert paid.setup_future_usage == "off_session"
    saved = stripe_client.v1.payment_methods.retrieve(pm.id)
    assert saved.customer == customer.id
    assert saved.allow_redisplay == "always"
    assert "payment_method.attached" in event_types(emulator_app)

    # The second purchase: the saved card, on-session, in one step.
    second = stripe_client.v1.payment_intents.create(
        params={"amount": 900, "currency": "usd", "customer": customer.id}
    )
    again = publishable_client.v1.payment_intents.confirm(
        second.id, params={"client_secret": second.client_secret, "payment_method": pm.id}
    )
    assert again.status == "succeeded"
    # Someone else's intent cannot use it.
    guest = stripe_client.v1.payment_intents.create(params={"amount": 900, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError):
        publishable_client.v1.payment_intents.confirm(
            guest.id, params={"client_secret": guest.client_secret, "payment_method": pm.id}
        )


def test_a_saved_3155_card_still_asks_for_3d_secure_on_session(
    stripe_client, publishable_client, customer
):
    pm = card(publishable_client, "4000002500003155", redisplay="always")
    stripe_client.v1.payment_methods.attach(pm.id, params={"customer": customer.id})
    pi = stripe_client.v1.payment_intents.create(
        params={"amount": 900, "currency": "usd", "customer": customer.id}
    )
    confirmed = publishable_client.v1.payment_intents.confirm(
        pi.id, params={"client_secret": pi.client_secret, "payment_method": pm.id}
    )
    assert confirmed.status == "requires_action"
    assert confirmed.next_action.type == "redirect_to_url"


def test_allow_redisplay_on_create_is_checked(publishable_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        card(publishable_client, "4242424242424242", redisplay="sometimes")
    assert excinfo.value.param == "allow_redisplay"
    assert card(publishable_client, "4242424242424242").allow_redisplay == "unspecified"
