"""The Customer Portal: ``billing_portal/configurations``, ``billing_portal/sessions``, and the
portal page's actions (update the card, cancel, renew, switch plan), through the SDK and the
page's own key-less API."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import stripe
from shapes import assert_stripe_shape
from stripe._list_object import ListObject
from test_checkout_sessions import make_price, pay
from test_invoice_pay_and_plan_change import failed_renewal
from test_subscriptions import event_types, subscription_session

RETURN = "https://shop.example/account/"


def configuration(
    client: stripe.StripeClient, **features: Any
) -> stripe.billing_portal.Configuration:
    params: dict[str, Any] = {
        "business_profile": {"headline": "Fernwood Coffee Club"},
        "default_return_url": RETURN,
        "features": {
            "payment_method_update": {"enabled": True},
            "invoice_history": {"enabled": True},
            "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
            **features,
        },
        "metadata": {"storefront": "coffee-club"},
    }
    return client.v1.billing_portal.configurations.create(params)


def plans(client: stripe.StripeClient) -> tuple[stripe.Price, stripe.Price]:
    monthly = make_price(client, amount=900, name="Membership", recurring={"interval": "month"})
    yearly = client.v1.prices.create(
        {
            "product": monthly.product,
            "unit_amount": 9000,
            "currency": "eur",
            "recurring": {"interval": "year"},
        }
    )
    return monthly, yearly


def switching(monthly: stripe.Price, yearly: stripe.Price) -> dict[str, Any]:
    return {
        "subscription_update": {
            "enabled": True,
            "default_allowed_updates": ["price"],
            "products": [{"product": monthly.product, "prices": [monthly.id, yearly.id]}],
            "proration_behavior": "create_prorations",
        }
    }


def member(client: stripe.StripeClient, base: str, price: stripe.Price) -> stripe.Subscription:
    session = subscription_session(client, price)
    assert pay(base, session.id)[0] == 200
    return client.v1.subscriptions.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).subscription
    )


def portal(client, customer: str, config: str | None = None) -> stripe.billing_portal.Session:
    params: dict[str, Any] = {"customer": customer, "return_url": RETURN}
    if config:
        params["configuration"] = config
    return client.v1.billing_portal.sessions.create(params)


def page_api(base: str, session_id: str, path: str, data: dict[str, str] | None = None):
    resp = requests.post(f"{base}/v1/portal_pages/{session_id}{path}", data=data or {}, timeout=10)
    return resp.status_code, resp.json()


def card(number: str) -> dict[str, str]:
    return {
        "card[number]": number,
        "card[exp_month]": "12",
        "card[exp_year]": "2034",
        "card[cvc]": "123",
    }


# --------------------------------------------------------------------------- configurations


def test_configuration_create_retrieve_update_list(stripe_client):
    monthly, yearly = plans(stripe_client)
    config = configuration(stripe_client, **switching(monthly, yearly))
    assert_stripe_shape(config, stripe.billing_portal.Configuration)
    assert config.id.startswith("bpc_")
    assert config.is_default is False and config.active is True
    assert config.business_profile.headline == "Fernwood Coffee Club"
    assert config.features.subscription_cancel.mode == "at_period_end"
    update = config.features.subscription_update
    assert update.enabled is True
    assert update.products[0].prices == [monthly.id, yearly.id]
    assert update.proration_behavior == "create_prorations"
    assert config.features.customer_update.enabled is False
    got = stripe_client.v1.billing_portal.configurations.retrieve(config.id)
    assert got.to_dict() == config.to_dict()

    changed = stripe_client.v1.billing_portal.configurations.update(
        config.id,
        {
            "business_profile": {"headline": "New headline"},
            "features": {"invoice_history": {"enabled": False}},
        },
    )
    assert_stripe_shape(changed, stripe.billing_portal.Configuration)
    assert changed.business_profile.headline == "New headline"
    assert changed.features.invoice_history.enabled is False
    assert changed.features.payment_method_update.enabled is True  # untouched
    listed = stripe_client.v1.billing_portal.configurations.list({"active": True})
    assert_stripe_shape(listed, ListObject[stripe.billing_portal.Configuration])
    assert [c.id for c in listed.data] == [config.id]
    assert stripe_client.v1.billing_portal.configurations.list({"is_default": True}).data == []
    types = event_types(stripe_client)
    assert "billing_portal.configuration.created" in types
    assert "billing_portal.configuration.updated" in types


def test_configuration_refuses_what_stripe_or_the_emulator_would(stripe_client):
    monthly, yearly = plans(stripe_client)
    other = make_price(stripe_client, amount=500, recurring={"interval": "month"})
    bad = [
        ({}, "parameter_missing", "features"),
        (
            {"features": {"subscription_update": {"enabled": True}}},
            None,
            "features[subscription_update]",
        ),
        (
            {
                "features": {
                    "subscription_update": {
                        "enabled": True,
                        "default_allowed_updates": ["price"],
                        "products": [{"product": monthly.product, "prices": [other.id]}],
                    }
                }
            },
            None,
            "features[subscription_update][products][0][prices]",
        ),
        (
            {"features": {"customer_update": {"enabled": True}}},
            "parameter_unsupported",
            "features[customer_update][enabled]",
        ),
        (
            {"features": {"invoice_history": {"enabled": True}}, "login_page": {"enabled": True}},
            "parameter_unsupported",
            "login_page[enabled]",
        ),
        (
            {"features": {"subscription_cancel": {"enabled": True, "mode": "whenever"}}},
            "parameter_invalid_string",
            "features[subscription_cancel][mode]",
        ),
        (
            {"features": {"invoice_history": {"enabled": True}}, "default_return_url": "nope"},
            None,
            "default_return_url",
        ),
    ]
    for params, code, param in bad:
        with pytest.raises(stripe.InvalidRequestError) as excinfo:
            stripe_client.v1.billing_portal.configurations.create(params)
        assert excinfo.value.param == param, params
        if code:
            assert excinfo.value.code == code, params
    assert stripe_client.v1.billing_portal.configurations.list().data == []


# --------------------------------------------------------------------------- sessions


def test_session_create_has_a_url_and_refuses_bad_params(stripe_client, emulator_url):
    config = configuration(stripe_client)
    customer = stripe_client.v1.customers.create({"email": "ada@example.com"})
    session = portal(stripe_client, customer.id, config.id)
    assert_stripe_shape(session, stripe.billing_portal.Session)
    assert session.id.startswith("bps_")
    assert session.url == f"{emulator_url}/p/session/{session.id}"
    assert session.return_url == RETURN
    assert session.configuration == config.id
    assert "billing_portal.session.created" in event_types(stripe_client)
    # The configuration's default_return_url when none is given.
    plain = stripe_client.v1.billing_portal.sessions.create(
        {"customer": customer.id, "configuration": config.id}
    )
    assert plain.return_url == RETURN

    with pytest.raises(stripe.InvalidRequestError, match="save your customer portal settings"):
        stripe_client.v1.billing_portal.sessions.create({"customer": customer.id})
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        portal(stripe_client, "cus_missing", config.id)
    assert excinfo.value.param == "customer"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        portal(stripe_client, customer.id, "bpc_missing")
    assert excinfo.value.param == "configuration"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.billing_portal.sessions.create(
            {"customer": customer.id, "configuration": config.id, "locale": "fr"}
        )
    assert excinfo.value.code == "parameter_unsupported"
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient(
            "pk_test_x", base_addresses={"api": emulator_url}, max_network_retries=0
        ).v1.billing_portal.sessions.create({"customer": customer.id})


def test_portal_page_shows_plan_card_invoices_and_the_return_link(stripe_client, emulator_url):
    monthly, yearly = plans(stripe_client)
    sub = member(stripe_client, emulator_url, monthly)
    config = configuration(stripe_client, **switching(monthly, yearly))
    session = portal(stripe_client, sub.customer, config.id)
    page = requests.get(session.url, timeout=10)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    html = page.text
    assert f'href="{RETURN}"' in html and "Return to" in html
    assert "€9.00" in html and "per month" in html
    assert "Your plan renews on" in html
    assert "Visa" in html and "4242" in html
    assert "€90.00 per year" in html  # the plan it can switch to
    assert 'data-testid="portal-invoice"' in html
    assert "Fernwood Coffee Club" in html
    missing = requests.get(f"{emulator_url}/p/session/bps_missing", timeout=10)
    assert missing.status_code == 404


# --------------------------------------------------------------------------- the page's actions


def test_updating_the_card_of_a_past_due_member_pays_the_open_invoice(stripe_client, emulator_url):
    sub = failed_renewal(stripe_client, emulator_url)
    config = configuration(stripe_client)
    session = portal(stripe_client, sub.customer, config.id)
    assert "Your payment of €9.00 failed" in requests.get(session.url, timeout=10).text
    before = len(event_types(stripe_client))

    status, body = page_api(emulator_url, session.id, "/payment_method", card("4242424242424242"))

    assert status == 200, body
    assert body == {"status": "succeeded", "notice": "card_updated_paid"}
    after = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert after.status == "active"
    customer = stripe_client.v1.customers.retrieve(sub.customer)
    new_card = customer.invoice_settings.default_payment_method
    assert after.default_payment_method == new_card
    assert stripe_client.v1.payment_methods.retrieve(new_card).card.last4 == "4242"
    assert stripe_client.v1.invoices.retrieve(after.latest_invoice).status == "paid"
    types = event_types(stripe_client)[before:]
    for expected in (
        "setup_intent.succeeded",
        "customer.updated",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ):
        assert expected in types
    updates = stripe_client.v1.events.list({"type": "customer.subscription.updated"}).data
    assert updates[0].data.object.status == "active"
    assert updates[0].data.previous_attributes["status"] == "past_due"
    assert "Your payment of" not in requests.get(session.url, timeout=10).text


def test_a_3ds_card_is_authenticated_then_pays(stripe_client, emulator_url, publishable_client):
    sub = failed_renewal(stripe_client, emulator_url)
    session = portal(stripe_client, sub.customer, configuration(stripe_client).id)
    status, body = page_api(emulator_url, session.id, "/payment_method", card("4000002500003155"))
    assert status == 200 and body["status"] == "requires_action"
    assert "/3ds/" in body["redirect_url"]
    # Not yet: the challenge is still open.
    status, early = page_api(
        emulator_url, session.id, "/payment_method/complete", {"setup_intent": body["setup_intent"]}
    )
    assert status == 402
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    seti = stripe_client.v1.setup_intents.retrieve(body["setup_intent"])
    publishable_client.raw_request(
        "post",
        f"/v1/setup_intents/{seti.id}/authenticate",
        client_secret=seti.client_secret,
        result="complete",
    )
    status, done = page_api(
        emulator_url, session.id, "/payment_method/complete", {"setup_intent": seti.id}
    )
    assert status == 200 and done["notice"] == "card_updated_paid"
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_a_declined_card_changes_nothing_and_a_card_that_fails_to_pay_is_kept(
    stripe_client, emulator_url
):
    sub = failed_renewal(stripe_client, emulator_url)
    session = portal(stripe_client, sub.customer, configuration(stripe_client).id)
    default_before = stripe_client.v1.customers.retrieve(
        sub.customer
    ).invoice_settings.default_payment_method
    status, body = page_api(emulator_url, session.id, "/payment_method", card("4000000000000002"))
    assert status == 402
    assert body["error"]["decline_code"] == "generic_decline"
    customer = stripe_client.v1.customers.retrieve(sub.customer)
    assert customer.invoice_settings.default_payment_method == default_before
    # 0341 sets up fine but every charge is declined: saved, the invoice still open.
    status, body = page_api(emulator_url, session.id, "/payment_method", card("4000000000000341"))
    assert status == 200 and body["notice"] == "card_updated_unpaid"
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "past_due"


def test_cancel_renew_and_switch_from_the_page(stripe_client, emulator_url):
    monthly, yearly = plans(stripe_client)
    sub = member(stripe_client, emulator_url, monthly)
    config = configuration(stripe_client, **switching(monthly, yearly))
    session = portal(stripe_client, sub.customer, config.id)

    status, body = page_api(emulator_url, session.id, f"/subscriptions/{sub.id}/cancel")
    assert status == 200 and body["notice"] == "cancel_scheduled"
    canceled = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert canceled.cancel_at_period_end is True and canceled.status == "active"
    assert "will be canceled on" in requests.get(session.url, timeout=10).text
    status, body = page_api(emulator_url, session.id, f"/subscriptions/{sub.id}/renew")
    assert status == 200
    assert stripe_client.v1.subscriptions.retrieve(sub.id).cancel_at_period_end is False

    status, body = page_api(
        emulator_url, session.id, f"/subscriptions/{sub.id}/update", {"price": yearly.id}
    )
    assert status == 200 and body["notice"] == "switched"
    switched = stripe_client.v1.subscriptions.retrieve(sub.id)
    assert switched["items"].data[0].price.id == yearly.id
    invoice = stripe_client.v1.invoices.retrieve(switched.latest_invoice)
    assert invoice.billing_reason == "subscription_update" and invoice.status == "paid"
    assert any(line.amount < 0 for line in invoice.lines.data)  # create_prorations
    event = stripe_client.v1.events.list({"type": "customer.subscription.updated"}).data[0]
    assert event.data.previous_attributes["items"]["data"][0]["price"]["id"] == monthly.id

    # Prices outside the configuration, other customers' subscriptions, unknown sessions.
    other = make_price(stripe_client, amount=100, recurring={"interval": "month"})
    status, _ = page_api(
        emulator_url, session.id, f"/subscriptions/{sub.id}/update", {"price": other.id}
    )
    assert status == 400
    stranger = member(stripe_client, emulator_url, monthly)
    status, _ = page_api(emulator_url, session.id, f"/subscriptions/{stranger.id}/cancel")
    assert status == 404
    status, _ = page_api(emulator_url, "bps_missing", f"/subscriptions/{sub.id}/cancel")
    assert status == 404


def test_features_that_are_off_are_refused(stripe_client, emulator_url):
    monthly, _ = plans(stripe_client)
    sub = member(stripe_client, emulator_url, monthly)
    config = stripe_client.v1.billing_portal.configurations.create(
        {"features": {"invoice_history": {"enabled": True}}}
    )
    session = portal(stripe_client, sub.customer, config.id)
    html = requests.get(session.url, timeout=10).text
    assert "Cancel plan" not in html and "Update payment method" not in html
    for path, data in (
        (f"/subscriptions/{sub.id}/cancel", None),
        ("/payment_method", card("4242424242424242")),
    ):
        status, _ = page_api(emulator_url, session.id, path, data)
        assert status == 403


def test_every_event_of_the_portal_flows_carries_a_well_shaped_object(
    emulator_app, stripe_client, emulator_url
):
    """Webhooks deliver these: recovery in the portal, a switch with prorations and credit."""
    from stripe_emulator import core

    monthly, yearly = plans(stripe_client)
    config = configuration(stripe_client, **switching(monthly, yearly))
    sub = failed_renewal(stripe_client, emulator_url)
    session = portal(stripe_client, sub.customer, config.id)
    assert page_api(emulator_url, session.id, "/payment_method", card("4000002500003155"))[0] == 200
    member_sub = member(stripe_client, emulator_url, yearly)
    other = portal(stripe_client, member_sub.customer, config.id)
    status, _ = page_api(
        emulator_url, other.id, f"/subscriptions/{member_sub.id}/update", {"price": monthly.id}
    )
    assert status == 200
    classes = {
        "billing_portal.configuration": stripe.billing_portal.Configuration,
        "billing_portal.session": stripe.billing_portal.Session,
        "subscription": stripe.Subscription,
        "invoice": stripe.Invoice,
        "customer": stripe.Customer,
        "setup_intent": stripe.SetupIntent,
        "payment_method": stripe.PaymentMethod,
        "payment_intent": stripe.PaymentIntent,
        "charge": stripe.Charge,
        "checkout.session": stripe.checkout.Session,
        "product": stripe.Product,
        "price": stripe.Price,
    }
    with emulator_app.app_context():
        events = core.all_of("event")
    seen = set()
    for event in events:
        assert_stripe_shape(event, stripe.Event)
        obj = event["data"]["object"]
        seen.add(obj["object"])
        assert_stripe_shape(obj, classes[obj["object"]])
    assert {"billing_portal.configuration", "billing_portal.session", "setup_intent"} <= seen
    # The credit that yearly -> monthly left on the customer's balance.
    assert any(
        e["type"] == "customer.updated" and "balance" in e["data"].get("previous_attributes", {})
        for e in events
    )
