"""Paying an open invoice (``POST /v1/invoices/{id}/pay``) and changing a subscription's price
(``items[0][id]`` + ``items[0][price]``, ``proration_behavior``), through the SDK."""

from __future__ import annotations

import pytest
import stripe
from shapes import assert_stripe_shape
from test_checkout_sessions import make_price, pay
from test_subscriptions import (
    advance,
    event_types,
    latest_invoice,
    subscribe,
    subscription_session,
)


def failed_renewal(client: stripe.StripeClient, base: str) -> stripe.Subscription:
    """The README's demo: a member whose renewal was declined (past_due, one open invoice)."""
    sub = subscribe(client, base)
    failing = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", {"customer": sub.customer}
    )
    client.v1.subscriptions.update(sub.id, {"default_payment_method": failing.id})
    renewed = advance(client, sub.id)
    assert renewed.status == "past_due"
    return renewed


@pytest.fixture
def past_due(stripe_client, emulator_url) -> tuple[stripe.Subscription, stripe.Invoice]:
    """A member whose renewal was declined, and the open invoice it left."""
    sub = failed_renewal(stripe_client, emulator_url)
    return sub, latest_invoice(stripe_client, sub)


def events_since(client: stripe.StripeClient, count: int) -> list[str]:
    return event_types(client)[count:]


# --------------------------------------------------------------------------- invoices pay


def test_paying_the_open_invoice_with_a_new_card_makes_the_subscription_active(
    stripe_client, past_due
):
    sub, invoice = past_due
    assert invoice.status == "open"
    good = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": sub.customer})
    before = len(event_types(stripe_client))

    paid = stripe_client.v1.invoices.pay(invoice.id, {"payment_method": good.id})

    assert paid.status == "paid"
    assert paid.amount_paid == paid.amount_due == 900
    assert paid.amount_remaining == 0
    assert paid.next_payment_attempt is None
    assert paid.attempt_count == 2
    assert_stripe_shape(paid, stripe.Invoice)
    types = events_since(stripe_client, before)
    assert {"payment_intent.succeeded", "charge.succeeded"} <= set(types)
    assert types[-3:] == [
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]
    updated = stripe_client.v1.events.list({"type": "customer.subscription.updated"}).data[0]
    assert updated.data.object.status == "active"
    assert updated.data.previous_attributes["status"] == "past_due"
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "active"
    # The charge went to the card asked for, not the failing default.
    with_payments = latest_invoice(stripe_client, sub)
    pi_id = with_payments.payments.data[0].payment.payment_intent  # newest first
    assert stripe_client.v1.payment_intents.retrieve(pi_id).payment_method == good.id


def test_pay_without_a_card_uses_the_subscriptions_default(stripe_client, past_due):
    sub, invoice = past_due
    good = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": sub.customer})
    stripe_client.v1.subscriptions.update(sub.id, {"default_payment_method": good.id})
    assert stripe_client.v1.invoices.pay(invoice.id).status == "paid"
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_a_declined_pay_is_stripes_card_error_and_changes_nothing_else(stripe_client, past_due):
    sub, invoice = past_due
    before = len(event_types(stripe_client))
    with pytest.raises(stripe.CardError) as excinfo:
        stripe_client.v1.invoices.pay(invoice.id)  # the failing default again
    assert excinfo.value.http_status == 402
    assert excinfo.value.code == "card_declined"
    assert excinfo.value.error.decline_code == "generic_decline"
    assert "invoice.payment_failed" in events_since(stripe_client, before)
    assert "customer.subscription.updated" not in events_since(stripe_client, before)
    again = stripe_client.v1.invoices.retrieve(invoice.id)
    assert again.status == "open"
    assert again.attempt_count == 2
    # An attempt asked for through the API does not move Stripe's retry schedule.
    assert again.next_payment_attempt == invoice.next_payment_attempt
    assert stripe_client.v1.subscriptions.retrieve(sub.id).status == "past_due"


def test_pay_refuses_paid_invoices_other_customers_cards_and_unknown_params(
    stripe_client, emulator_url
):
    sub = subscribe(stripe_client, emulator_url)
    first = latest_invoice(stripe_client, sub)
    with pytest.raises(stripe.InvalidRequestError, match="Invoice is already paid"):
        stripe_client.v1.invoices.pay(first.id)
    declined = failed_renewal(stripe_client, emulator_url)
    other = stripe_client.v1.customers.create({"email": "other@example.com"})
    theirs = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": other.id})
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.invoices.pay(
            latest_invoice(stripe_client, declined).id, {"payment_method": theirs.id}
        )
    assert excinfo.value.param == "payment_method"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.invoices.pay(first.id, {"paid_out_of_band": True})
    assert excinfo.value.code == "parameter_unsupported"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.invoices.pay("in_missing")
    assert excinfo.value.http_status == 404


# --------------------------------------------------------------------------- price changes


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


def test_monthly_to_yearly_restarts_the_period_and_charges_the_prorated_difference(
    stripe_client, emulator_url
):
    monthly, yearly = plans(stripe_client)

    session = subscription_session(stripe_client, monthly)
    assert pay(emulator_url, session.id)[0] == 200
    sub_id = stripe_client.v1.checkout.sessions.retrieve(session.id).subscription
    sub = stripe_client.v1.subscriptions.retrieve(sub_id)
    item = sub["items"].data[0]
    before = len(event_types(stripe_client))

    changed = stripe_client.v1.subscriptions.update(
        sub.id,
        {
            "items": [{"id": item.id, "price": yearly.id}],
            "proration_behavior": "create_prorations",
        },
    )

    assert_stripe_shape(changed, stripe.Subscription)
    new_item = changed["items"].data[0]
    assert new_item.id == item.id
    assert new_item.price.id == yearly.id
    assert new_item.current_period_end - new_item.current_period_start >= 365 * 86400
    assert changed.status == "active"
    assert changed.latest_invoice != sub.latest_invoice
    invoice = stripe_client.v1.invoices.retrieve(changed.latest_invoice)
    assert_stripe_shape(invoice, stripe.Invoice)
    assert invoice.billing_reason == "subscription_update"
    assert invoice.status == "paid"
    credit, charge = invoice.lines.data
    assert credit.parent.subscription_item_details.proration is True
    assert credit.description.startswith("Unused time on 1 × Membership")
    assert -900 <= credit.amount < -890  # nearly the whole month is unused
    assert charge.amount == 9000
    assert charge.parent.subscription_item_details.proration is False
    assert invoice.amount_due == 9000 + credit.amount
    types = events_since(stripe_client, before)
    assert types[0] == "customer.subscription.updated"
    assert types[-2:] == ["invoice.paid", "invoice.payment_succeeded"]
    event = stripe_client.v1.events.list({"type": "customer.subscription.updated"}).data[0]
    assert event.data.object["items"].data[0].price.id == yearly.id
    previous = event.data.previous_attributes
    assert previous["items"]["data"][0]["price"]["id"] == monthly.id
    assert previous["billing_cycle_anchor"] == sub.billing_cycle_anchor
    assert previous["latest_invoice"] == sub.latest_invoice


def test_yearly_to_monthly_leaves_credit_that_pays_later_invoices(stripe_client, emulator_url):
    monthly, yearly = plans(stripe_client)

    session = subscription_session(stripe_client, yearly)
    assert pay(emulator_url, session.id)[0] == 200
    sub = stripe_client.v1.subscriptions.retrieve(
        stripe_client.v1.checkout.sessions.retrieve(session.id).subscription
    )
    item = sub["items"].data[0]
    changed = stripe_client.v1.subscriptions.update(
        sub.id, {"items": [{"id": item.id, "price": monthly.id}]}
    )
    invoice = stripe_client.v1.invoices.retrieve(changed.latest_invoice)
    # 900 for the new month less ~9000 of unused year: nothing to pay, the rest is credit.
    assert invoice.total < 0
    assert invoice.amount_due == 0
    assert invoice.status == "paid"
    assert invoice.ending_balance == invoice.total
    customer = stripe_client.v1.customers.retrieve(sub.customer)
    assert customer.balance == invoice.total
    renewed = advance(stripe_client, sub.id)
    renewal = latest_invoice(stripe_client, renewed)
    assert renewal.amount_due == 0
    assert renewal.starting_balance == invoice.total
    assert renewal.ending_balance == invoice.total + 900
    assert stripe_client.v1.customers.retrieve(sub.customer).balance == invoice.total + 900


def test_same_interval_change_keeps_the_period_and_prorates_on_the_next_invoice(
    stripe_client, emulator_url
):
    monthly, _ = plans(stripe_client)
    dearer = stripe_client.v1.prices.create(
        {
            "product": monthly.product,
            "unit_amount": 1500,
            "currency": "eur",
            "recurring": {"interval": "month"},
        }
    )

    session = subscription_session(stripe_client, monthly)
    assert pay(emulator_url, session.id)[0] == 200
    sub = stripe_client.v1.subscriptions.retrieve(
        stripe_client.v1.checkout.sessions.retrieve(session.id).subscription
    )
    item = sub["items"].data[0]
    changed = stripe_client.v1.subscriptions.update(
        sub.id, {"items": [{"id": item.id, "price": dearer.id}]}
    )
    assert changed.latest_invoice == sub.latest_invoice  # nothing billed now
    assert changed["items"].data[0].current_period_end == item.current_period_end
    assert "_pending_prorations" not in changed.last_response.data
    renewal = latest_invoice(stripe_client, advance(stripe_client, sub.id))
    amounts = [line.amount for line in renewal.lines.data]
    prorations = [
        line for line in renewal.lines.data if line.parent.subscription_item_details.proration
    ]
    assert len(prorations) == 2
    assert -900 <= prorations[0].amount < 0 < prorations[1].amount <= 1500
    assert amounts[-1] == 1500
    assert renewal.amount_due == sum(amounts)
    # Nothing left pending for the renewal after.
    again = latest_invoice(stripe_client, advance(stripe_client, sub.id))
    assert [line.amount for line in again.lines.data] == [1500]


def test_proration_behavior_none_and_always_invoice(stripe_client, emulator_url):
    monthly, yearly = plans(stripe_client)

    session = subscription_session(stripe_client, monthly)
    assert pay(emulator_url, session.id)[0] == 200
    sub = stripe_client.v1.subscriptions.retrieve(
        stripe_client.v1.checkout.sessions.retrieve(session.id).subscription
    )
    item = sub["items"].data[0]
    changed = stripe_client.v1.subscriptions.update(
        sub.id, {"items": [{"id": item.id, "price": yearly.id}], "proration_behavior": "none"}
    )
    invoice = stripe_client.v1.invoices.retrieve(changed.latest_invoice)
    assert [line.amount for line in invoice.lines.data] == [9000]
    dearer = stripe_client.v1.prices.create(
        {
            "product": monthly.product,
            "unit_amount": 12000,
            "currency": "eur",
            "recurring": {"interval": "year"},
        }
    )
    billed = stripe_client.v1.subscriptions.update(
        sub.id,
        {"items": [{"id": item.id, "price": dearer.id}], "proration_behavior": "always_invoice"},
    )
    now_invoice = stripe_client.v1.invoices.retrieve(billed.latest_invoice)
    assert now_invoice.billing_reason == "subscription_update"
    assert len(now_invoice.lines.data) == 2
    assert all(line.parent.subscription_item_details.proration for line in now_invoice.lines.data)
    assert 0 < now_invoice.amount_due <= 3000


def test_price_change_is_refused_for_bad_items(stripe_client, emulator_url):
    sub = subscribe(stripe_client, emulator_url)
    item = sub["items"].data[0]
    one_time = make_price(stripe_client, amount=500)
    usd = stripe_client.v1.prices.create(
        {
            "product": one_time.product,
            "unit_amount": 500,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )
    cases = [
        ({"items": [{"id": "si_nope", "price": usd.id}]}, "items[0][id]"),
        ({"items": [{"id": item.id, "price": "price_nope"}]}, "items[0][price]"),
        ({"items": [{"id": item.id, "price": one_time.id}]}, "items[0][price]"),
        ({"items": [{"id": item.id, "price": usd.id}]}, "items[0][price]"),
        ({"items": [{"id": item.id}]}, "items[0][price]"),
        ({"items": [{"id": item.id, "price": usd.id, "quantity": 2}]}, "items[0][quantity]"),
        ({"proration_behavior": "sometimes"}, "proration_behavior"),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as excinfo:
            stripe_client.v1.subscriptions.update(sub.id, params)
        assert excinfo.value.param == param, params
    assert stripe_client.v1.subscriptions.retrieve(sub.id)["items"].data[0].price.id == (
        item.price.id
    )
