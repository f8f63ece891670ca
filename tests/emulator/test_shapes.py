"""Every object the payments API returns has the shape the pinned stripe SDK declares."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import stripe
from shapes import assert_stripe_shape, shape_errors
from stripe._list_object import ListObject

FIXTURES = Path("/work/shared/stripe-reference/fixtures3.json")


def raw(obj) -> dict:
    """The JSON the emulator sent for an SDK object."""
    return obj.last_response.data


# --------------------------------------------------------------------------- the checker itself


@pytest.fixture(scope="module")
def stripe_examples() -> dict:
    if not FIXTURES.exists():
        pytest.skip("stripe reference fixtures not available")
    return json.loads(FIXTURES.read_text())["resources"]


@pytest.mark.parametrize(
    "name,cls",
    [
        ("payment_intent", stripe.PaymentIntent),
        ("charge", stripe.Charge),
        ("refund", stripe.Refund),
        ("payment_method", stripe.PaymentMethod),
        ("customer", stripe.Customer),
        ("price", stripe.Price),
        ("product", stripe.Product),
    ],
)
def test_checker_accepts_stripes_own_examples(stripe_examples, name, cls):
    assert_stripe_shape(stripe_examples[name], cls)


def test_checker_reports_missing_unknown_mistyped_and_bad_enum(stripe_examples):
    pi = copy.deepcopy(stripe_examples["payment_intent"])
    del pi["amount"]
    pi["surprise"] = 1
    pi["currency"] = 5
    pi["status"] = "paid"
    pi["automatic_payment_methods"] = {"enabled": "yes"}
    errors = shape_errors(pi, stripe.PaymentIntent)
    assert any(e.startswith("$.amount: missing") for e in errors)
    assert any(e.startswith("$.surprise: not a field") for e in errors)
    assert any(e.startswith("$.currency: expected a string") for e in errors)
    assert any(e.startswith("$.status: 'paid' is not one of") for e in errors)
    assert any(
        e.startswith("$.automatic_payment_methods.enabled: expected a boolean") for e in errors
    )
    with pytest.raises(AssertionError):
        assert_stripe_shape(pi, stripe.PaymentIntent)


def test_checker_walks_expanded_fields_and_lists(stripe_examples):
    pi = copy.deepcopy(stripe_examples["payment_intent"])
    charge = copy.deepcopy(stripe_examples["charge"])
    charge["paid"] = "yes"
    pi["latest_charge"] = charge
    assert shape_errors(pi, stripe.PaymentIntent) == [
        "$.latest_charge.paid: expected a boolean, got 'yes'"
    ]
    pi["latest_charge"] = "ch_123"
    assert shape_errors(pi, stripe.PaymentIntent) == []
    listing = {
        "object": "list",
        "data": [stripe_examples["price"], {"id": 1}],
        "has_more": False,
        "url": "/v1/prices",
    }
    errors = shape_errors(listing, ListObject[stripe.Price])
    assert errors and all(e.startswith("$.data[1]") for e in errors)


# --------------------------------------------------------------------------- emulator objects


def test_catalogue_shapes(stripe_client):
    product = stripe_client.v1.products.create(
        params={"name": "Tea", "images": ["http://x/tea.png"], "metadata": {"a": "b"}}
    )
    assert_stripe_shape(product, stripe.Product)
    with_default = stripe_client.v1.products.create(
        params={"name": "Sencha", "default_price_data": {"unit_amount": 100, "currency": "eur"}}
    )
    assert_stripe_shape(with_default, stripe.Product)
    one_time = stripe_client.v1.prices.create(
        params={"product": product.id, "unit_amount": 500, "currency": "eur", "lookup_key": "t"}
    )
    assert_stripe_shape(one_time, stripe.Price)
    recurring = stripe_client.v1.prices.create(
        params={
            "product_data": {"name": "Club"},
            "unit_amount": 900,
            "currency": "eur",
            "recurring": {"interval": "year", "interval_count": 1},
        }
    )
    assert_stripe_shape(recurring, stripe.Price)
    assert_stripe_shape(
        stripe_client.v1.products.update(product.id, params={"active": False}), stripe.Product
    )
    assert_stripe_shape(
        stripe_client.v1.prices.update(one_time.id, params={"nickname": "n"}), stripe.Price
    )
    assert_stripe_shape(stripe_client.v1.products.list(), ListObject[stripe.Product])
    assert_stripe_shape(
        stripe_client.v1.prices.list(params={"expand": ["data.product"]}), ListObject[stripe.Price]
    )


def test_customer_shapes(stripe_client):
    customer = stripe_client.v1.customers.create(
        params={"email": "a@example.com", "name": "A", "address": {"country": "DE"}}
    )
    assert_stripe_shape(customer, stripe.Customer)
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    assert_stripe_shape(pm, stripe.PaymentMethod)
    updated = stripe_client.v1.customers.update(
        customer.id,
        params={
            "invoice_settings": {"default_payment_method": pm.id},
            "expand": ["invoice_settings.default_payment_method"],
        },
    )
    assert_stripe_shape(updated, stripe.Customer)
    assert_stripe_shape(stripe_client.v1.customers.list(), ListObject[stripe.Customer])
    assert_stripe_shape(
        stripe_client.v1.payment_methods.list(params={"customer": customer.id}),
        ListObject[stripe.PaymentMethod],
    )
    assert_stripe_shape(stripe_client.v1.payment_methods.detach(pm.id), stripe.PaymentMethod)
    # Stripe's deletion stub, as for every deleted object: {id, object, deleted}.
    deleted = stripe_client.v1.customers.delete(customer.id)
    assert raw(deleted) == {"id": customer.id, "object": "customer", "deleted": True}


def test_payment_method_shapes(publishable_client, stripe_client):
    pm = publishable_client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "378282246310005", "exp_month": 2, "exp_year": 2040, "cvc": "1234"},
            "billing_details": {
                "name": "J",
                "email": "j@example.com",
                "address": {"line1": "Main St 1", "country": "US"},
            },
        }
    )
    assert_stripe_shape(pm, stripe.PaymentMethod)
    assert_stripe_shape(stripe_client.v1.payment_methods.retrieve(pm.id), stripe.PaymentMethod)
    assert_stripe_shape(
        stripe_client.v1.payment_methods.update(pm.id, params={"metadata": {"k": "v"}}),
        stripe.PaymentMethod,
    )


def _pi(client, **params):
    base = {"amount": 1999, "currency": "usd"}
    base.update(params)
    return client.v1.payment_intents.create(params=base)


def test_payment_intent_shapes_in_every_status(stripe_client, publishable_client):
    expand = ["latest_charge", "payment_method", "customer"]
    customer = stripe_client.v1.customers.create()

    fresh = _pi(
        stripe_client,
        automatic_payment_methods={"enabled": True},
        customer=customer.id,
        metadata={"order": "1"},
        description="d",
        receipt_email="r@example.com",
        setup_future_usage="off_session",
    )
    assert fresh.status == "requires_payment_method"
    assert_stripe_shape(fresh, stripe.PaymentIntent)

    pending = _pi(stripe_client, payment_method="pm_card_visa", expand=expand)
    assert pending.status == "requires_confirmation"
    assert_stripe_shape(pending, stripe.PaymentIntent)

    action = _pi(
        stripe_client,
        payment_method="pm_card_threeDSecure2Required",
        confirm=True,
        return_url="http://shop/r",
    )
    assert action.status == "requires_action"
    assert_stripe_shape(action, stripe.PaymentIntent)

    capturable = _pi(
        stripe_client,
        payment_method="pm_card_visa",
        confirm=True,
        capture_method="manual",
        expand=expand,
    )
    assert capturable.status == "requires_capture"
    assert_stripe_shape(capturable, stripe.PaymentIntent)

    captured = stripe_client.v1.payment_intents.capture(capturable.id, params={"expand": expand})
    assert captured.status == "succeeded"
    assert_stripe_shape(captured, stripe.PaymentIntent)

    paid = _pi(
        stripe_client,
        customer=customer.id,
        payment_method="pm_card_visa",
        confirm=True,
        setup_future_usage="off_session",
        expand=expand,
    )
    assert paid.status == "succeeded"
    assert_stripe_shape(paid, stripe.PaymentIntent)

    canceled = stripe_client.v1.payment_intents.cancel(
        fresh.id, params={"cancellation_reason": "abandoned"}
    )
    assert canceled.status == "canceled"
    assert_stripe_shape(canceled, stripe.PaymentIntent)

    with pytest.raises(stripe.CardError) as excinfo:
        _pi(
            stripe_client,
            payment_method="pm_card_visa_chargeDeclinedInsufficientFunds",
            confirm=True,
        )
    body = excinfo.value.json_body["error"]
    assert_stripe_shape(body["payment_intent"], stripe.PaymentIntent)
    assert_stripe_shape(body["payment_method"], stripe.PaymentMethod)
    declined = stripe_client.v1.payment_intents.retrieve(
        body["payment_intent"]["id"], params={"expand": expand}
    )
    assert declined.last_payment_error.decline_code == "insufficient_funds"
    assert_stripe_shape(declined, stripe.PaymentIntent)

    failed_auth = publishable_client.raw_request(
        "post",
        f"/v1/payment_intents/{action.id}/authenticate",
        client_secret=action.client_secret,
        result="fail",
    ).data
    assert failed_auth["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    assert_stripe_shape(failed_auth, stripe.PaymentIntent)

    client_view = publishable_client.v1.payment_intents.retrieve(
        paid.id, params={"client_secret": paid.client_secret}
    )
    assert_stripe_shape(client_view, stripe.PaymentIntent)
    assert_stripe_shape(
        stripe_client.v1.payment_intents.list(params={"expand": ["data.latest_charge"]}),
        ListObject[stripe.PaymentIntent],
    )


def test_charge_and_refund_shapes(stripe_client):
    threeds = _pi(stripe_client, payment_method="pm_card_threeDSecure2Required", confirm=True)
    stripe_client.raw_request(
        "post",
        f"/v1/payment_intents/{threeds.id}/authenticate",
        client_secret=threeds.client_secret,
        result="complete",
    )
    paid = _pi(stripe_client, payment_method="pm_card_visa", confirm=True)
    with pytest.raises(stripe.CardError):
        _pi(stripe_client, payment_method="pm_card_chargeDeclinedProcessingError", confirm=True)
    refund = stripe_client.v1.refunds.create(
        params={
            "payment_intent": paid.id,
            "amount": 500,
            "metadata": {"why": "test"},
            "reason": "requested_by_customer",
            "expand": ["charge"],
        }
    )
    assert_stripe_shape(refund, stripe.Refund)
    assert_stripe_shape(stripe_client.v1.refunds.retrieve(refund.id), stripe.Refund)
    assert_stripe_shape(
        stripe_client.v1.refunds.update(refund.id, params={"metadata": {"why": "x"}}),
        stripe.Refund,
    )
    charges = stripe_client.v1.charges.list(params={"expand": ["data.payment_intent"]})
    assert {c.status for c in charges.data} == {"succeeded", "failed"}
    assert_stripe_shape(charges, ListObject[stripe.Charge])
    for charge in charges.data:
        assert_stripe_shape(stripe_client.v1.charges.retrieve(charge.id), stripe.Charge)
    assert_stripe_shape(stripe_client.v1.refunds.list(), ListObject[stripe.Refund])


def test_events_carry_well_shaped_objects(emulator_app, stripe_client):
    """The objects inside recorded events are the same shapes (webhooks deliver these)."""
    from stripe_emulator import core

    classes = {
        "payment_intent": stripe.PaymentIntent,
        "charge": stripe.Charge,
        "refund": stripe.Refund,
        "customer": stripe.Customer,
        "product": stripe.Product,
        "price": stripe.Price,
        "payment_method": stripe.PaymentMethod,
    }
    customer = stripe_client.v1.customers.create()
    stripe_client.v1.prices.create(
        params={"product_data": {"name": "P"}, "unit_amount": 5, "currency": "usd"}
    )
    paid = _pi(
        stripe_client,
        customer=customer.id,
        payment_method="pm_card_visa",
        confirm=True,
        setup_future_usage="off_session",
    )
    stripe_client.v1.refunds.create(params={"payment_intent": paid.id})
    with emulator_app.app_context():
        events = core.all_of("event")
    seen = set()
    for event in events:
        assert_stripe_shape(event, stripe.Event)
        obj = event["data"]["object"]
        seen.add(obj["object"])
        assert_stripe_shape(obj, classes[obj["object"]])
    assert seen == set(classes)
