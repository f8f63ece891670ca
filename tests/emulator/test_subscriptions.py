"""Subscriptions bought through Checkout, their invoices, renewals and cancellation."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from shapes import assert_stripe_shape
from stripe._list_object import ListObject
from test_checkout_sessions import http_authenticate, make_price, pay

SUCCESS = "https://shop.example/membership/thanks?session_id={CHECKOUT_SESSION_ID}"
MONTH_DAYS = range(28, 32)


def subscription_session(
    client: stripe.StripeClient, price: stripe.Price | None = None, **extra: Any
) -> stripe.checkout.Session:
    price = price or make_price(
        client, amount=900, name="Membership", recurring={"interval": "month"}
    )
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": SUCCESS,
        "customer_email": "ada@example.com",
        "subscription_data": {"metadata": {"member": "ada"}},
    }
    params.update(extra)
    return client.v1.checkout.sessions.create(params)


def subscribe(client: stripe.StripeClient, base: str, **extra: Any) -> stripe.Subscription:
    """Buy a monthly membership through the hosted page with 4242."""
    session = subscription_session(client, **extra)
    status, body = pay(base, session.id)
    assert status == 200, body
    done = client.v1.checkout.sessions.retrieve(session.id)
    return client.v1.subscriptions.retrieve(done.subscription)


def advance(client: stripe.StripeClient, sub_id: str) -> stripe.Subscription:
    response = client.raw_request("post", f"/v1/test_helpers/subscriptions/{sub_id}/advance")
    return client.deserialize(response, api_mode="V1")


def event_types(client: stripe.StripeClient) -> list[str]:
    """Every recorded event's type, oldest first."""
    events = client.v1.events.list({"limit": 100}).data
    return [e.type for e in reversed(events)]


def latest_invoice(client: stripe.StripeClient, sub: stripe.Subscription) -> stripe.Invoice:
    return client.v1.invoices.retrieve(sub.latest_invoice, {"expand": ["payments"]})


# --------------------------------------------------------------------------- via Checkout


def test_subscription_checkout_creates_customer_active_subscription_and_paid_invoice(
    stripe_client, emulator_url
):
    price = make_price(
        stripe_client, amount=900, name="Membership", recurring={"interval": "month"}
    )
    session = subscription_session(stripe_client, price)
    assert session.mode == "subscription"
    assert session.amount_total == 900
    status, body = pay(emulator_url, session.id)
    assert status == 200, body
    assert body["redirect_url"].endswith(f"session_id={session.id}")

    done = stripe_client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["subscription", "customer"]}
    )
    assert done.status == "complete"
    assert done.payment_status == "paid"
    assert done.amount_total == 900
    assert done.customer.email == "ada@example.com"
    sub = done.subscription
    assert sub.status == "active"
    assert sub.customer == done.customer.id
    assert sub.metadata.to_dict() == {"member": "ada"}
    assert sub.cancel_at_period_end is False
    item = sub["items"].data[0]
    assert item.price.id == price.id
    assert item.quantity == 1
    assert item.current_period_start == sub.start_date
    assert (item.current_period_end - item.current_period_start) // 86400 in MONTH_DAYS
    # The card is the customer's default for renewals, and the subscription's too.
    assert done.customer.invoice_settings.default_payment_method == sub.default_payment_method
    assert sub.default_payment_method is not None
    assert_stripe_shape(stripe_client.v1.subscriptions.retrieve(sub.id), stripe.Subscription)

    invoice = latest_invoice(stripe_client, sub)
    assert invoice.status == "paid"
    assert invoice.billing_reason == "subscription_create"
    assert invoice.amount_paid == 900
    assert invoice.amount_remaining == 0
    assert invoice.parent.subscription_details.subscription == sub.id
    assert invoice.lines.data[0].period.end == item.current_period_end
    payment = invoice.payments.data[0]
    assert payment.status == "paid"
    pi = stripe_client.v1.payment_intents.retrieve(payment.payment.payment_intent)
    assert pi.status == "succeeded"
    assert pi.amount == 900
    assert pi.customer == sub.customer
    assert_stripe_shape(invoice, stripe.Invoice)
    nested = stripe_client.v1.subscriptions.retrieve(
        sub.id, {"expand": ["latest_invoice.payments"]}
    )
    assert nested.latest_invoice.payments.data[0].id == payment.id
    assert "payments" not in stripe_client.v1.invoices.retrieve(invoice.id)

    types = event_types(stripe_client)
    order = [
        "customer.created",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "checkout.session.completed",
    ]
    assert [t for t in types if t in order] == order
    completed = stripe_client.v1.events.list({"type": "checkout.session.completed"}).data[0]
    assert completed.data.object.subscription == sub.id
    assert completed.data.object.customer == sub.customer
    assert_stripe_shape(completed.data.object, stripe.checkout.Session)


def test_subscription_checkout_for_existing_customer(stripe_client, emulator_url):
    customer = stripe_client.v1.customers.create({"email": "grace@example.com"})
    session = subscription_session(stripe_client, customer=customer.id, customer_email=None)
    status, body = pay(emulator_url, session.id, email="grace@example.com")
    assert status == 200, body
    done = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert done.customer == customer.id
    assert len(stripe_client.v1.customers.list().data) == 1


def test_declined_first_payment_creates_no_subscription(stripe_client, emulator_url):
    session = subscription_session(stripe_client)
    status, body = pay(emulator_url, session.id, "4000000000000341")
    assert status == 402
    assert body["error"]["type"] == "card_error"
    assert stripe_client.v1.subscriptions.list({"status": "all"}).data == []
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "open"
    # A retry with a good card works and reuses the customer made for the first try.
    status, body = pay(emulator_url, session.id)
    assert status == 200, body
    assert len(stripe_client.v1.subscriptions.list().data) == 1
    assert event_types(stripe_client).count("customer.created") == 1


def test_declined_card_is_not_saved_to_the_customer(stripe_client, emulator_url):
    session = subscription_session(stripe_client)
    status, body = pay(emulator_url, session.id, "4000000000000002")
    assert status == 402, body
    (customer,) = stripe_client.v1.customers.list().data
    assert stripe_client.v1.payment_methods.list({"customer": customer.id}).data == []
    status, body = pay(emulator_url, session.id)
    assert status == 200, body
    saved = stripe_client.v1.payment_methods.list({"customer": customer.id}).data
    assert [pm.card.last4 for pm in saved] == ["4242"]
    assert event_types(stripe_client).count("payment_method.attached") == 1


def test_3ds_card_starts_subscription_after_authentication(stripe_client, emulator_url):
    session = subscription_session(stripe_client)
    status, body = pay(emulator_url, session.id, "4000002500003155")
    assert status == 200, body
    assert body["status"] == "requires_action"
    assert stripe_client.v1.subscriptions.list().data == []
    http_authenticate(emulator_url, body["payment_intent"], body["client_secret"])
    done = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert done.status == "complete"
    sub = stripe_client.v1.subscriptions.retrieve(done.subscription)
    assert sub.status == "active"
    assert latest_invoice(stripe_client, sub).status == "paid"


# --------------------------------------------------------------------------- renewals


def test_advance_renews_with_new_period_and_paid_invoice(stripe_client, emulator_url):
    sub = subscribe(stripe_client, emulator_url)
    first = sub["items"].data[0]
    renewed = advance(stripe_client, sub.id)
    assert renewed.status == "active"
    item = renewed["items"].data[0]
    assert item.current_period_start == first.current_period_end
    assert (item.current_period_end - item.current_period_start) // 86400 in MONTH_DAYS
    assert renewed.latest_invoice != sub.latest_invoice
    invoice = latest_invoice(stripe_client, renewed)
    assert invoice.status == "paid"
    assert invoice.billing_reason == "subscription_cycle"
    assert invoice.amount_paid == 900
    assert invoice.lines.data[0].period.start == first.current_period_end
    assert_stripe_shape(invoice, stripe.Invoice)
    assert_stripe_shape(renewed, stripe.Subscription)
    updated = stripe_client.v1.events.list({"type": "customer.subscription.updated"}).data
    periods = updated[-1].data.previous_attributes["items"]["data"][0]
    assert periods["current_period_end"] == first.current_period_end
    listed = stripe_client.v1.invoices.list({"subscription": sub.id})
    assert [i.billing_reason for i in listed.data] == ["subscription_cycle", "subscription_create"]


def test_failed_renewal_makes_subscription_past_due_and_recovers(stripe_client, emulator_url):
    sub = subscribe(stripe_client, emulator_url)
    failing = stripe_client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", {"customer": sub.customer}
    )
    # The subscription's own default is charged before the customer's (still the good card
    # Checkout saved), as on Stripe.
    stripe_client.v1.subscriptions.update(sub.id, {"default_payment_method": failing.id})
    renewed = advance(stripe_client, sub.id)
    assert renewed.status == "past_due"
    invoice = latest_invoice(stripe_client, renewed)
    assert invoice.status == "open"
    assert invoice.attempt_count == 1
    assert invoice.amount_paid == 0
    assert invoice.next_payment_attempt is not None
    failed = stripe_client.v1.events.list({"type": "invoice.payment_failed"}).data
    assert [e.data.object.id for e in failed] == [invoice.id]
    updated = stripe_client.v1.events.list({"type": "customer.subscription.updated"}).data[0]
    assert updated.data.object.status == "past_due"
    assert updated.data.previous_attributes["status"] == "active"
    assert stripe_client.v1.subscriptions.list({"status": "past_due"}).data[0].id == sub.id
    assert stripe_client.v1.invoices.list({"status": "open"}).data[0].id == invoice.id

    good = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": sub.customer})
    stripe_client.v1.subscriptions.update(sub.id, {"default_payment_method": good.id})
    recovered = advance(stripe_client, sub.id)
    assert recovered.status == "active"
    assert latest_invoice(stripe_client, recovered).status == "paid"


def test_renewal_charges_the_subscriptions_card_before_the_customers(stripe_client, emulator_url):
    sub = subscribe(stripe_client, emulator_url)
    failing = stripe_client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", {"customer": sub.customer}
    )
    # A failing customer default does not matter while the subscription has its own card.
    stripe_client.v1.customers.update(
        sub.customer, {"invoice_settings": {"default_payment_method": failing.id}}
    )
    renewed = advance(stripe_client, sub.id)
    assert renewed.status == "active"
    invoice = latest_invoice(stripe_client, renewed)
    pi = stripe_client.v1.payment_intents.retrieve(invoice.payments.data[0].payment.payment_intent)
    assert pi.payment_method == sub.default_payment_method


def test_renewal_without_a_subscription_card_charges_the_customers_default(stripe_client):
    price = make_price(stripe_client, amount=500, recurring={"interval": "week"})
    customer = stripe_client.v1.customers.create({"email": "fallback@example.com"})
    good = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    stripe_client.v1.customers.update(
        customer.id, {"invoice_settings": {"default_payment_method": good.id}}
    )
    sub = stripe_client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"price": price.id}]}
    )
    assert sub.status == "active"
    assert sub.default_payment_method is None
    failing = stripe_client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", {"customer": customer.id}
    )
    stripe_client.v1.customers.update(
        customer.id, {"invoice_settings": {"default_payment_method": failing.id}}
    )
    assert advance(stripe_client, sub.id).status == "past_due"


# --------------------------------------------------------------------------- cancellation


def test_cancel_at_period_end_then_advance_ends_subscription(stripe_client, emulator_url):
    sub = subscribe(stripe_client, emulator_url)
    period_end = sub["items"].data[0].current_period_end
    updated = stripe_client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    assert updated.cancel_at_period_end is True
    assert updated.cancel_at == period_end
    assert updated.status == "active"
    event = stripe_client.v1.events.list({"type": "customer.subscription.updated"}).data[0]
    assert event.data.previous_attributes["cancel_at_period_end"] is False
    assert event.data.object.cancel_at_period_end is True

    resumed = stripe_client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": False})
    assert resumed.cancel_at_period_end is False
    assert resumed.cancel_at is None
    stripe_client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})

    ended = advance(stripe_client, sub.id)
    assert ended.status == "canceled"
    assert ended.ended_at is not None
    assert_stripe_shape(ended, stripe.Subscription)
    deleted = stripe_client.v1.events.list({"type": "customer.subscription.deleted"}).data
    assert [e.data.object.id for e in deleted] == [sub.id]
    # No renewal invoice for an ended subscription.
    assert len(stripe_client.v1.invoices.list({"subscription": sub.id}).data) == 1
    assert stripe_client.v1.subscriptions.list().data == []
    assert [s.id for s in stripe_client.v1.subscriptions.list({"status": "all"}).data] == [sub.id]
    with pytest.raises(stripe.InvalidRequestError):
        advance(stripe_client, sub.id)


def test_cancel_now(stripe_client, emulator_url):
    sub = subscribe(stripe_client, emulator_url)
    canceled = stripe_client.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled"
    assert canceled.canceled_at is not None
    assert canceled.ended_at is not None
    assert canceled.cancellation_details.reason == "cancellation_requested"
    deleted = stripe_client.v1.events.list({"type": "customer.subscription.deleted"}).data
    assert [e.data.object.id for e in deleted] == [sub.id]
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})


# --------------------------------------------------------------------------- API


def test_update_metadata_and_default_payment_method(stripe_client, emulator_url):
    sub = subscribe(stripe_client, emulator_url)
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": sub.customer})
    updated = stripe_client.v1.subscriptions.update(
        sub.id, {"metadata": {"tier": "gold"}, "default_payment_method": pm.id}
    )
    assert updated.metadata.to_dict() == {"member": "ada", "tier": "gold"}
    assert updated.default_payment_method == pm.id
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.subscriptions.update(sub.id, {"default_payment_method": "pm_nope"})
    assert excinfo.value.param == "default_payment_method"


def test_detaching_the_default_card_leaves_no_default_and_says_so(stripe_client, emulator_url):
    """Detach a card that is the subscription's and the customer's default: both become
    null (the renewal then has no card), with customer.updated and
    customer.subscription.updated after payment_method.detached."""
    sub = subscribe(stripe_client, emulator_url)
    card = sub.default_payment_method
    customer = stripe_client.v1.customers.retrieve(sub.customer)
    assert customer.invoice_settings.default_payment_method == card
    other = stripe_client.v1.payment_methods.attach(
        "pm_card_mastercard", {"customer": sub.customer}
    )
    before = len(event_types(stripe_client))

    stripe_client.v1.payment_methods.detach(card)

    assert stripe_client.v1.subscriptions.retrieve(sub.id).default_payment_method is None
    customer = stripe_client.v1.customers.retrieve(sub.customer)
    assert customer.invoice_settings.default_payment_method is None
    listed = stripe_client.v1.customers.payment_methods.list(sub.customer, {"type": "card"})
    assert [pm.id for pm in listed.data] == [other.id]
    assert event_types(stripe_client)[before:] == [
        "payment_method.detached",
        "customer.updated",
        "customer.subscription.updated",
    ]
    events = stripe_client.v1.events.list({"limit": 3}).data
    by_type = {e.type: e for e in events}
    assert by_type["payment_method.detached"].data.previous_attributes.customer == sub.customer
    updated = by_type["customer.subscription.updated"].data
    assert updated.previous_attributes.default_payment_method == card
    assert updated.object.default_payment_method is None
    customer_event = by_type["customer.updated"].data
    assert customer_event.previous_attributes.invoice_settings.default_payment_method == card


def test_detaching_another_card_leaves_the_defaults_alone(stripe_client, emulator_url):
    sub = subscribe(stripe_client, emulator_url)
    other = stripe_client.v1.payment_methods.attach(
        "pm_card_mastercard", {"customer": sub.customer}
    )
    before = len(event_types(stripe_client))
    stripe_client.v1.payment_methods.detach(other.id)
    assert stripe_client.v1.subscriptions.retrieve(sub.id).default_payment_method is not None
    assert event_types(stripe_client)[before:] == ["payment_method.detached"]


def test_customer_payment_methods_list_by_type_and_limit(stripe_client, emulator_url):
    sub = subscribe(stripe_client, emulator_url)
    extra = [
        stripe_client.v1.payment_methods.attach(pm, {"customer": sub.customer})
        for pm in ("pm_card_mastercard", "pm_card_amex")
    ]
    page = stripe_client.v1.customers.payment_methods.list(
        sub.customer, {"type": "card", "limit": 2}
    )
    assert_stripe_shape(page, ListObject[stripe.PaymentMethod])
    assert [pm.id for pm in page.data] == [extra[1].id, extra[0].id]  # newest first
    assert page.has_more is True
    assert [pm.card.brand for pm in page.data] == ["amex", "mastercard"]
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.customers.payment_methods.list(sub.customer, {"type": "card", "bogus": 1})
    assert excinfo.value.code == "parameter_unknown"


def test_list_filters(stripe_client, emulator_url):
    yearly = make_price(
        stripe_client, amount=9000, name="Membership", recurring={"interval": "year"}
    )
    monthly_sub = subscribe(stripe_client, emulator_url)
    session = subscription_session(stripe_client, yearly, customer_email="bob@example.com")
    assert pay(emulator_url, session.id, email="bob@example.com")[0] == 200
    yearly_sub = stripe_client.v1.subscriptions.retrieve(
        stripe_client.v1.checkout.sessions.retrieve(session.id).subscription
    )
    item = yearly_sub["items"].data[0]
    assert (item.current_period_end - item.current_period_start) // 86400 in (365, 366)
    by_customer = stripe_client.v1.subscriptions.list({"customer": monthly_sub.customer})
    assert [s.id for s in by_customer.data] == [monthly_sub.id]
    by_price = stripe_client.v1.subscriptions.list({"price": yearly.id})
    assert [s.id for s in by_price.data] == [yearly_sub.id]
    invoices = stripe_client.v1.invoices.list({"customer": yearly_sub.customer})
    assert [i.amount_paid for i in invoices.data] == [9000]
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.subscriptions.retrieve("sub_nope")
    assert excinfo.value.http_status == 404


def test_create_subscription_through_api(stripe_client):
    price = make_price(stripe_client, amount=500, recurring={"interval": "week"})
    customer = stripe_client.v1.customers.create({"email": "api@example.com"})
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    sub = stripe_client.v1.subscriptions.create(
        {"customer": customer.id, "items": [{"price": price.id}], "default_payment_method": pm.id}
    )
    assert sub.status == "active"
    item = sub["items"].data[0]
    assert item.current_period_end - item.current_period_start == 7 * 86400
    assert latest_invoice(stripe_client, sub).status == "paid"

    failing = stripe_client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", {"customer": customer.id}
    )
    incomplete = stripe_client.v1.subscriptions.create(
        {
            "customer": customer.id,
            "items": [{"price": price.id}],
            "default_payment_method": failing.id,
        }
    )
    assert incomplete.status == "incomplete"
    assert latest_invoice(stripe_client, incomplete).status == "open"


def test_subscription_items_list(stripe_client, emulator_url):
    sub = subscribe(stripe_client, emulator_url)
    items = stripe_client.v1.subscription_items.list({"subscription": sub.id})
    assert [i.id for i in items.data] == [sub["items"].data[0].id]
    assert_stripe_shape(items, ListObject[stripe.SubscriptionItem])


def test_subscription_session_validation(stripe_client):
    monthly = make_price(stripe_client, recurring={"interval": "month"})
    yearly = make_price(stripe_client, recurring={"interval": "year"})
    base: dict[str, Any] = {"success_url": SUCCESS}
    cases: list[tuple[dict[str, Any], str]] = [
        # A recurring price cannot be bought in payment mode...
        (
            {"mode": "payment", "line_items": [{"price": monthly.id, "quantity": 1}]},
            "line_items[0][price]",
        ),
        # ...payment_intent_data belongs to payment mode...
        (
            {
                "mode": "subscription",
                "line_items": [{"price": monthly.id, "quantity": 1}],
                "payment_intent_data": {"metadata": {"a": "b"}},
            },
            "payment_intent_data",
        ),
        # ...and one subscription has one billing interval.
        (
            {
                "mode": "subscription",
                "line_items": [
                    {"price": monthly.id, "quantity": 1},
                    {"price": yearly.id, "quantity": 1},
                ],
            },
            "line_items",
        ),
        (
            {
                "mode": "subscription",
                "line_items": [
                    {
                        "price_data": {
                            "currency": "eur",
                            "unit_amount": 100,
                            "product_data": {"name": "x"},
                        },
                        "quantity": 1,
                    }
                ],
            },
            "line_items[0][price_data][recurring]",
        ),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as excinfo:
            stripe_client.v1.checkout.sessions.create({**base, **params})
        assert excinfo.value.param == param, params


def test_subscription_session_with_price_data(stripe_client, emulator_url):
    session = stripe_client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "line_items": [
                {
                    "price_data": {
                        "currency": "eur",
                        "unit_amount": 400,
                        "product_data": {"name": "Supporter"},
                        "recurring": {"interval": "week", "interval_count": 2},
                    },
                    "quantity": 2,
                }
            ],
            "success_url": SUCCESS,
            "customer_email": "sam@example.com",
        }
    )
    assert session.amount_total == 800
    assert pay(emulator_url, session.id, email="sam@example.com")[0] == 200
    sub = stripe_client.v1.subscriptions.retrieve(
        stripe_client.v1.checkout.sessions.retrieve(session.id).subscription
    )
    item = sub["items"].data[0]
    assert item.quantity == 2
    assert item.current_period_end - item.current_period_start == 14 * 86400
    assert latest_invoice(stripe_client, sub).amount_paid == 800


def test_invoice_expansions_are_checked_against_its_fields(stripe_client, emulator_url):
    sub = subscribe(stripe_client, emulator_url)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.invoices.retrieve(sub.latest_invoice, {"expand": ["subscription"]})
    assert excinfo.value.http_status == 400
    assert excinfo.value.user_message == "This property cannot be expanded (subscription)."
    invoice = stripe_client.v1.invoices.retrieve(
        sub.latest_invoice, {"expand": ["payments", "customer"]}
    )
    assert invoice.customer.id == sub.customer and invoice.payments.data
