"""Checkout Sessions and the hosted payment page's API, through the SDK and plain HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
import stripe
from shapes import assert_stripe_shape
from stripe._list_object import ListObject

SUCCESS = "https://shop.example/orders/o1?session_id={CHECKOUT_SESSION_ID}"
CANCEL = "https://shop.example/cart"


def make_price(client: stripe.StripeClient, amount: int = 1500, **extra: Any) -> stripe.Price:
    product = client.v1.products.create({"name": extra.pop("name", "Field notebook")})
    params: dict[str, Any] = {"product": product.id, "unit_amount": amount, "currency": "eur"}
    params.update(extra)
    return client.v1.prices.create(params)


def payment_session(client: stripe.StripeClient, **extra: Any) -> stripe.checkout.Session:
    """A payment-mode session; ``extra`` adds or replaces parameters (None leaves one out)."""
    price = make_price(client)
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [{"price": price.id, "quantity": 2}],
        "success_url": SUCCESS,
        "cancel_url": CANCEL,
        "customer_email": "ada@example.com",
        "client_reference_id": "o1",
        "metadata": {"order_id": "o1"},
        "payment_intent_data": {"metadata": {"order_id": "o1"}},
    }
    params.update(extra)
    return client.v1.checkout.sessions.create({k: v for k, v in params.items() if v is not None})


def http(url: str, data: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """A key-less request like the hosted page makes; returns (status, JSON body)."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def pay(
    base: str, cs_id: str, number: str = "4242424242424242", email: str = "ada@example.com"
) -> tuple[int, dict[str, Any]]:
    """Submit the hosted page's form."""
    return http(
        f"{base}/v1/payment_pages/{cs_id}/confirm",
        {
            "email": email,
            "billing_name": "Ada Lovelace",
            "card[number]": number,
            "card[exp_month]": "12",
            "card[exp_year]": "2034",
            "card[cvc]": "123",
        },
    )


def pay_with(base: str, cs_id: str, extra: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Submit the hosted page's form with more fields (the shipping address and rate)."""
    return http(
        f"{base}/v1/payment_pages/{cs_id}/confirm",
        {
            "email": "ada@example.com",
            "billing_name": "Ada Lovelace",
            "card[number]": "4242424242424242",
            "card[exp_month]": "12",
            "card[exp_year]": "2034",
            "card[cvc]": "123",
            **extra,
        },
    )


def events_of(client: stripe.StripeClient, type_: str) -> list[stripe.Event]:
    return list(client.v1.events.list({"type": type_, "limit": 100}).data)


# --------------------------------------------------------------------------- creation


def test_create_payment_session_computes_amounts_and_url(stripe_client, emulator_url):
    session = payment_session(stripe_client)
    assert session.id.startswith("cs_test_")
    assert session.status == "open"
    assert session.payment_status == "unpaid"
    assert session.mode == "payment"
    assert session.amount_subtotal == 3000
    assert session.amount_total == 3000
    assert session.currency == "eur"
    assert session.payment_intent is None
    assert session.url == f"{emulator_url}/c/pay/{session.id}"
    # The template stays in the object; it is filled in on the redirect.
    assert session.success_url == SUCCESS
    assert session.client_reference_id == "o1"
    assert session.metadata.to_dict() == {"order_id": "o1"}
    assert session.customer_email == "ada@example.com"
    assert session.expires_at - session.created == 24 * 3600
    assert_stripe_shape(session, stripe.checkout.Session)


def test_price_data_creates_inline_price(stripe_client):
    session = stripe_client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "eur",
                        "unit_amount": 1234,
                        "product_data": {"name": "Gift wrap"},
                    },
                    "quantity": 3,
                }
            ],
            "success_url": SUCCESS,
        }
    )
    assert session.amount_total == 3702
    items = stripe_client.v1.checkout.sessions.line_items.list(session.id)
    assert len(items.data) == 1
    item = items.data[0]
    assert item.description == "Gift wrap"
    assert item.quantity == 3
    assert item.amount_total == 3702
    assert item.price.unit_amount == 1234
    assert item.price.active is False
    assert_stripe_shape(items, ListObject[stripe.LineItem])


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"mode": None}, "mode"),
        ({"mode": "setup"}, "mode"),
        ({"success_url": None}, "success_url"),
        ({"success_url": "not a url"}, "success_url"),
        ({"line_items": None}, "line_items"),
        ({"line_items": [{"price": "price_missing", "quantity": 1}]}, "line_items[0][price]"),
        ({"line_items": [{"price": "PRICE"}]}, "line_items[0][quantity]"),
        ({"line_items": [{"price": "PRICE", "quantity": 0}]}, "line_items[0][quantity]"),
        ({"customer": "cus_missing", "customer_email": None}, "customer"),
        ({"customer_email": "nope"}, "customer_email"),
        ({"expires_at": 60}, "expires_at"),
        ({"mode": "subscription", "payment_intent_data": None}, "line_items[0][price]"),
        ({"subscription_data": {"metadata": {"a": "b"}}}, "subscription_data"),
        (
            {"line_items": [{"price_data": {"currency": "eur", "unit_amount": 5}, "quantity": 1}]},
            "line_items[0][price_data][product_data]",
        ),
    ],
)
def test_create_validation_errors(stripe_client, params, param):
    price = make_price(stripe_client)
    base: dict[str, Any] = {
        "mode": "payment",
        "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": SUCCESS,
        "customer_email": "ada@example.com",
        "payment_intent_data": {"metadata": {"order_id": "o1"}},
    }
    for key, value in params.items():
        if key == "expires_at":
            value = int(time.time()) + value
        if key == "line_items" and value:
            value = [
                {k: (price.id if v == "PRICE" else v) for k, v in item.items()} for item in value
            ]
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.checkout.sessions.create(base)
    assert excinfo.value.http_status == 400
    assert excinfo.value.param == param


def test_mixed_currencies_are_refused(stripe_client):
    eur = make_price(stripe_client)
    usd = make_price(stripe_client, currency="usd")
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.checkout.sessions.create(
            {
                "mode": "payment",
                "line_items": [{"price": eur.id, "quantity": 1}, {"price": usd.id, "quantity": 1}],
                "success_url": SUCCESS,
            }
        )
    assert excinfo.value.param == "line_items"


def test_idempotent_create_replays_the_same_session(stripe_client):
    price = make_price(stripe_client)
    params = {
        "mode": "payment",
        "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": SUCCESS,
    }
    first = stripe_client.v1.checkout.sessions.create(params, {"idempotency_key": "order-o1"})
    again = stripe_client.v1.checkout.sessions.create(params, {"idempotency_key": "order-o1"})
    assert again.id == first.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    listed = stripe_client.v1.checkout.sessions.list()
    assert [s.id for s in listed.data] == [first.id]


# --------------------------------------------------------------------------- reading


def test_retrieve_expands_line_items(stripe_client):
    session = payment_session(stripe_client)
    plain = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert "line_items" not in plain
    full = stripe_client.v1.checkout.sessions.retrieve(session.id, {"expand": ["line_items"]})
    assert full.line_items.object == "list"
    assert [(i.quantity, i.amount_total) for i in full.line_items.data] == [(2, 3000)]
    assert full.line_items.data[0].description == "Field notebook"
    assert_stripe_shape(full, stripe.checkout.Session)
    deep = stripe_client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["line_items.data.price.product"]}
    )
    assert deep.line_items.data[0].price.product.name == "Field notebook"


def test_line_items_paginate(stripe_client):
    prices = [make_price(stripe_client, amount=100 * (n + 1)) for n in range(3)]
    session = stripe_client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [{"price": p.id, "quantity": 1} for p in prices],
            "success_url": SUCCESS,
        }
    )
    assert session.amount_total == 600
    page = stripe_client.v1.checkout.sessions.line_items.list(session.id, {"limit": 2})
    assert page.has_more is True
    rest = stripe_client.v1.checkout.sessions.line_items.list(
        session.id, {"limit": 2, "starting_after": page.data[-1].id}
    )
    assert rest.has_more is False
    amounts = [i.amount_total for i in page.data + rest.data]
    assert amounts == [100, 200, 300]


def test_list_filters_by_status(stripe_client):
    first = payment_session(stripe_client)
    second = payment_session(stripe_client)
    stripe_client.v1.checkout.sessions.expire(first.id)
    expired = stripe_client.v1.checkout.sessions.list({"status": "expired"})
    assert [s.id for s in expired.data] == [first.id]
    open_ = stripe_client.v1.checkout.sessions.list({"status": "open"})
    assert [s.id for s in open_.data] == [second.id]


def test_unknown_session_is_404(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.checkout.sessions.retrieve("cs_test_nope")
    assert excinfo.value.http_status == 404
    assert excinfo.value.code == "resource_missing"


# --------------------------------------------------------------------------- expiry


def test_expire_open_session_records_event(stripe_client, emulator_url):
    session = payment_session(stripe_client)
    expired = stripe_client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired"
    assert expired.payment_status == "unpaid"
    events = events_of(stripe_client, "checkout.session.expired")
    assert [e.data.object.id for e in events] == [session.id]
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.checkout.sessions.expire(session.id)
    assert excinfo.value.http_status == 400
    status, body = pay(emulator_url, session.id)
    assert status == 400
    assert "no longer active" in body["error"]["message"]


def test_session_expires_lazily_after_expires_at(stripe_client, emulator_app):
    from stripe_emulator import core

    session = payment_session(stripe_client)
    with emulator_app.app_context():
        stored = core.get(session.id)
        stored["expires_at"] = core.now() - 1
        core.save(stored)
    again = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert again.status == "expired"
    assert len(events_of(stripe_client, "checkout.session.expired")) == 1


def wait_for_events(client: stripe.StripeClient, type_: str, timeout: float = 10) -> list:
    """Poll the Events API (which never touches sessions) until an event of the type exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events_of(client, type_)
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {type_} event within {timeout}s")


def test_session_expires_in_the_background_without_being_read(stripe_client):
    soon = payment_session(stripe_client, expires_at=int(time.time()) + 31 * 60)
    later = payment_session(stripe_client)  # the default: 24 hours
    moved = stripe_client.raw_request("post", "/_emulator/clock", advance=32 * 60).data
    assert moved["offset"] == 32 * 60 and moved["now"] >= soon.expires_at

    (event,) = wait_for_events(stripe_client, "checkout.session.expired")
    assert event.data.object.id == soon.id
    assert event.data.object.status == "expired"
    assert stripe_client.v1.checkout.sessions.retrieve(later.id).status == "open"


def test_clock_only_moves_forward(stripe_client):
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.raw_request("post", "/_emulator/clock", advance=-60)


# --------------------------------------------------------------------------- hosted page


def test_payment_page_shows_session_without_key(stripe_client, emulator_url):
    session = payment_session(stripe_client)
    status, body = http(f"{emulator_url}/v1/payment_pages/{session.id}")
    assert status == 200
    assert body["id"] == session.id
    assert body["amount_total"] == 3000
    assert body["line_items"]["data"][0]["description"] == "Field notebook"
    assert_stripe_shape(body, stripe.checkout.Session)
    status, body = http(f"{emulator_url}/v1/payment_pages/cs_test_nope")
    assert status == 404


def test_pay_with_4242_completes_session(stripe_client, emulator_url):
    session = payment_session(stripe_client)
    status, body = pay(emulator_url, session.id)
    assert status == 200, body
    assert body == {
        "status": "complete",
        "redirect_url": f"https://shop.example/orders/o1?session_id={session.id}",
    }
    done = stripe_client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["payment_intent", "line_items"]}
    )
    assert done.status == "complete"
    assert done.payment_status == "paid"
    assert done.customer_details.email == "ada@example.com"
    assert done.customer_details.name == "Ada Lovelace"
    pi = done.payment_intent
    assert pi.status == "succeeded"
    assert pi.amount == 3000
    assert pi.currency == "eur"
    assert pi.metadata.to_dict() == {"order_id": "o1"}
    assert pi.receipt_email == "ada@example.com"
    assert_stripe_shape(done, stripe.checkout.Session)
    listed = stripe_client.v1.checkout.sessions.list({"payment_intent": pi.id})
    assert [s.id for s in listed.data] == [session.id]
    completed = events_of(stripe_client, "checkout.session.completed")
    assert [e.data.object.id for e in completed] == [session.id]
    assert completed[0].data.object.payment_status == "paid"
    # Paying again changes nothing and charges nothing.
    status, body = pay(emulator_url, session.id)
    assert status == 200 and body["status"] == "complete"
    assert len(stripe_client.v1.payment_intents.list().data) == 1


def test_declined_card_keeps_session_open_and_retry_works(stripe_client, emulator_url):
    session = payment_session(stripe_client)
    status, body = pay(emulator_url, session.id, "4000000000009995")
    assert status == 402
    assert body["error"]["type"] == "card_error"
    assert body["error"]["decline_code"] == "insufficient_funds"
    still = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert still.status == "open"
    assert still.payment_intent is None
    assert events_of(stripe_client, "checkout.session.completed") == []
    status, body = pay(emulator_url, session.id)
    assert status == 200 and body["status"] == "complete"
    done = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert done.payment_status == "paid"


def test_missing_email_is_refused(stripe_client, emulator_url):
    session = payment_session(stripe_client, customer_email=None)
    status, body = pay(emulator_url, session.id, email="")
    assert status == 400
    assert body["error"]["param"] == "email"


def test_3ds_card_completes_session_after_authentication(stripe_client, emulator_url):
    session = payment_session(stripe_client)
    status, body = pay(emulator_url, session.id, "4000002500003155")
    assert status == 200, body
    assert body["status"] == "requires_action"
    assert body["redirect_url"].startswith(f"{emulator_url}/3ds/{body['payment_intent']}")
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"
    http_authenticate(emulator_url, body["payment_intent"], body["client_secret"])
    done = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert done.status == "complete"
    assert done.payment_status == "paid"
    assert done.payment_intent == body["payment_intent"]
    assert len(events_of(stripe_client, "checkout.session.completed")) == 1


def http_authenticate(base: str, pi_id: str, client_secret: str) -> None:
    """What the 3-D Secure page does when "Complete authentication" is pressed."""
    request = urllib.request.Request(
        f"{base}/v1/payment_intents/{pi_id}/authenticate",
        data=urllib.parse.urlencode(
            {"client_secret": client_secret, "result": "complete"}
        ).encode(),
        headers={"Authorization": "Bearer pk_test_emulator"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_processing_setting_leaves_hosted_checkout_immediate(
    stripe_client, emulator_app, emulator_url
):
    emulator_app.config["EMULATOR_PROCESSING_SECONDS"] = 30
    plain = payment_session(stripe_client)
    status, body = pay(emulator_url, plain.id)
    assert status == 200 and body["status"] == "complete"
    with_3ds = payment_session(stripe_client)
    status, body = pay(emulator_url, with_3ds.id, "4000002500003155")
    http_authenticate(emulator_url, body["payment_intent"], body["client_secret"])
    assert stripe_client.v1.checkout.sessions.retrieve(with_3ds.id).status == "complete"
    assert events_of(stripe_client, "payment_intent.processing") == []


def test_expiring_session_cancels_pending_3ds_payment(stripe_client, emulator_url):
    session = payment_session(stripe_client)
    status, body = pay(emulator_url, session.id, "4000002500003155")
    assert body["status"] == "requires_action"
    stripe_client.v1.checkout.sessions.expire(session.id)
    pi = stripe_client.v1.payment_intents.retrieve(body["payment_intent"])
    assert pi.status == "canceled"
    assert pi.cancellation_reason == "abandoned"


def test_payment_session_for_existing_customer(stripe_client, emulator_url):
    customer = stripe_client.v1.customers.create({"email": "grace@example.com"})
    session = payment_session(stripe_client, customer=customer.id, customer_email=None)
    assert session.customer == customer.id
    # The hosted page gets the Customer, to show the email Stripe already has (read-only).
    status, page = http(f"{emulator_url}/v1/payment_pages/{session.id}")
    assert status == 200
    assert page["customer"]["email"] == "grace@example.com"
    status, body = pay(emulator_url, session.id, email="")  # nothing typed: the customer's
    assert status == 200, body
    done = stripe_client.v1.checkout.sessions.retrieve(session.id, {"expand": ["payment_intent"]})
    assert done.customer_details.email == "grace@example.com"
    assert done.customer == customer.id
    assert done.payment_intent.customer == customer.id
    listed = stripe_client.v1.checkout.sessions.list({"customer": customer.id})
    assert [s.id for s in listed.data] == [session.id]


def test_concurrent_confirms_charge_once(stripe_client, emulator_url):
    from concurrent.futures import ThreadPoolExecutor

    session = payment_session(stripe_client)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: pay(emulator_url, session.id), range(4)))
    assert [status for status, _ in results] == [200] * 4
    assert {body["status"] for _, body in results} == {"complete"}
    intents = stripe_client.v1.payment_intents.list().data
    assert [pi.status for pi in intents] == ["succeeded"]
    assert len(events_of(stripe_client, "checkout.session.completed")) == 1


# --------------------------------------------------------------------------- shipping

STANDARD = {
    "shipping_rate_data": {
        "type": "fixed_amount",
        "display_name": "Standard",
        "fixed_amount": {"amount": 500, "currency": "eur"},
        "delivery_estimate": {
            "minimum": {"unit": "business_day", "value": 3},
            "maximum": {"unit": "business_day", "value": 5},
        },
        "metadata": {"code": "standard"},
    }
}
EXPRESS = {
    "shipping_rate_data": {
        "display_name": "Express",
        "fixed_amount": {"amount": 1400, "currency": "eur"},
        "metadata": {"code": "express"},
    }
}
SHIP_TO = {
    "shipping[name]": "Ada Lovelace",
    "shipping[address][line1]": "1 Rue de Rivoli",
    "shipping[address][city]": "Paris",
    "shipping[address][postal_code]": "75001",
    "shipping[address][country]": "FR",
}


def shipping_session(client: stripe.StripeClient) -> stripe.checkout.Session:
    return payment_session(
        client,
        shipping_address_collection={"allowed_countries": ["FR", "DE"]},
        shipping_options=[STANDARD, EXPRESS],
    )


def test_shipping_options_make_rates_and_preselect_the_first(stripe_client):
    cs = shipping_session(stripe_client)
    assert cs.shipping_address_collection.allowed_countries == ["FR", "DE"]
    assert [o.shipping_amount for o in cs.shipping_options] == [500, 1400]
    assert cs.amount_subtotal == 3000 and cs.amount_total == 3500
    assert cs.total_details.amount_shipping == 500
    assert cs.shipping_cost.amount_total == 500
    assert cs.shipping_cost.shipping_rate == cs.shipping_options[0].shipping_rate
    assert_stripe_shape(cs, stripe.checkout.Session)
    cs = stripe_client.v1.checkout.sessions.retrieve(
        cs.id, params={"expand": ["shipping_cost.shipping_rate"]}
    )
    rate = cs.shipping_cost.shipping_rate
    assert (rate.object, rate.display_name, rate.metadata["code"]) == (
        "shipping_rate",
        "Standard",
        "standard",
    )
    assert rate.delivery_estimate.maximum.value == 5
    assert_stripe_shape(rate, stripe.ShippingRate)


def test_paying_with_express_reports_the_address_and_the_cost(stripe_client, emulator_url):
    cs = shipping_session(stripe_client)
    express = cs.shipping_options[1].shipping_rate
    status, body = pay_with(emulator_url, cs.id, {**SHIP_TO, "shipping_rate": express})
    assert (status, body["status"]) == (200, "complete"), body
    cs = stripe_client.v1.checkout.sessions.retrieve(
        cs.id, params={"expand": ["payment_intent", "shipping_cost.shipping_rate"]}
    )
    assert cs.amount_total == 4400 and cs.total_details.amount_shipping == 1400
    assert cs.shipping_cost.shipping_rate.display_name == "Express"
    details = cs.collected_information.shipping_details
    assert (details.name, details.address.city, details.address.country) == (
        "Ada Lovelace",
        "Paris",
        "FR",
    )
    assert cs.payment_intent.amount == 4400
    assert cs.payment_intent.shipping.address.line1 == "1 Rue de Rivoli"
    assert_stripe_shape(cs, stripe.checkout.Session)


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"shipping[address][country]": "US"}, "shipping[address][country]"),
        ({"shipping[address][line1]": ""}, "shipping[address][line1]"),
        ({"shipping[name]": ""}, "shipping[name]"),
        ({"shipping_rate": "shr_not_offered"}, "shipping_rate"),
    ],
)
def test_the_page_refuses_an_address_or_rate_it_cannot_ship(
    stripe_client, emulator_url, change, param
):
    cs = shipping_session(stripe_client)
    status, body = pay_with(emulator_url, cs.id, {**SHIP_TO, **change})
    assert status == 400 and body["error"]["param"] == param, body
    assert stripe_client.v1.checkout.sessions.retrieve(cs.id).status == "open"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"shipping_address_collection": {"allowed_countries": ["fr"]}}, None),
        ({"shipping_options": [{"shipping_rate_data": {"display_name": "X"}}]}, None),
        (
            {"shipping_options": [{"shipping_rate": "shr_missing"}]},
            "shipping_options[0][shipping_rate]",
        ),
        (
            {
                "shipping_options": [
                    {
                        "shipping_rate_data": {
                            "display_name": "Dollars",
                            "fixed_amount": {"amount": 5, "currency": "usd"},
                        }
                    }
                ]
            },
            "shipping_options[0]",
        ),
    ],
)
def test_shipping_params_are_checked(stripe_client, extra, param):
    with pytest.raises(stripe.InvalidRequestError) as err:
        payment_session(stripe_client, **extra)
    if param:
        assert err.value.param == param


def test_subscription_mode_refuses_shipping_options(stripe_client):
    price = make_price(stripe_client, recurring={"interval": "month"})
    with pytest.raises(stripe.InvalidRequestError) as err:
        stripe_client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "line_items": [{"price": price.id, "quantity": 1}],
                "success_url": SUCCESS,
                "shipping_options": [STANDARD],
            }
        )
    assert err.value.param == "shipping_options"


# --------------------------------------------------------------------------- missing objects


def _subscription(client: stripe.StripeClient, customer: str | None, price: str) -> Any:
    customer = customer or client.v1.customers.create({"email": "ada@example.com"}).id
    return client.v1.subscriptions.create({"customer": customer, "items": [{"price": price}]})


@pytest.mark.parametrize(
    ("call", "status", "message", "param"),
    [
        (
            lambda c: payment_session(c, line_items=[{"price": "price_missing", "quantity": 1}]),
            400,
            "No such price: 'price_missing'",
            "line_items[0][price]",
        ),
        (
            lambda c: payment_session(c, shipping_options=[{"shipping_rate": "shr_missing"}]),
            400,
            "No such shipping rate: 'shr_missing'",
            "shipping_options[0][shipping_rate]",
        ),
        (
            lambda c: payment_session(c, customer="cus_missing", customer_email=None),
            400,
            "No such customer: 'cus_missing'",
            "customer",
        ),
        (
            lambda c: _subscription(c, None, "price_missing"),
            400,
            "No such price: 'price_missing'",
            "items[0][price]",
        ),
        (
            lambda c: _subscription(c, "cus_missing", "price_missing"),
            404,
            "No such customer: 'cus_missing'",
            "customer",
        ),
    ],
)
def test_a_parameter_naming_a_missing_object_is_resource_missing(
    stripe_client, call, status, message, param
):
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        call(stripe_client)
    error = excinfo.value
    assert (error.http_status, error.code, error.user_message, error.param) == (
        status,
        "resource_missing",
        message,
        param,
    )
