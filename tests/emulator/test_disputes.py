"""After a payment: disputes (0259), early fraud warnings (5423), refunds that fail later
(5126), with their events, and every object in the shape the pinned SDK declares."""

from __future__ import annotations

import time

import pytest
import requests
import stripe
from shapes import assert_stripe_shape
from stripe._list_object import ListObject

from stripe_emulator import core


def pay(client, card: str, amount: int = 2500):
    return client.v1.payment_intents.create(
        params={
            "amount": amount,
            "currency": "usd",
            "payment_method": card,
            "confirm": True,
            "metadata": {"order_id": "o1"},
        }
    )


def events(app, *types: str) -> list[dict]:
    with app.app_context():
        found = list(reversed(core.all_of("event")))
    return [e for e in found if not types or e["type"] in types]


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail("condition not met in time")


def test_0259_payment_succeeds_then_a_dispute_opens(emulator_app, stripe_client):
    pi = pay(stripe_client, "pm_card_createDispute")
    assert pi.status == "succeeded"
    (created,) = events(emulator_app, "charge.dispute.created")
    dispute = created["data"]["object"]
    assert_stripe_shape(created, stripe.Event)
    assert_stripe_shape(dispute, stripe.Dispute)
    assert (dispute["amount"], dispute["reason"], dispute["status"]) == (
        2500,
        "fraudulent",
        "needs_response",
    )
    assert dispute["payment_intent"] == pi.id
    assert dispute["evidence_details"]["due_by"] > time.time() + 6 * 86400
    types = [e["type"] for e in events(emulator_app)]
    assert types.index("payment_intent.succeeded") < types.index("charge.dispute.created")
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert charge.disputed is True
    fetched = stripe_client.v1.disputes.retrieve(dispute["id"], params={"expand": ["charge"]})
    assert_stripe_shape(fetched, stripe.Dispute)
    listed = stripe_client.v1.disputes.list(params={"payment_intent": pi.id})
    assert [d.id for d in listed.data] == [dispute["id"]]
    assert_stripe_shape(listed, ListObject[stripe.Dispute])

    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.refunds.create(params={"payment_intent": pi.id})
    assert refused.value.code == "charge_disputed"


@pytest.mark.parametrize("text,outcome", [("winning_evidence", "won"), ("losing_evidence", "lost")])
def test_evidence_values_close_the_dispute(emulator_app, stripe_client, text, outcome):
    pay(stripe_client, "pm_card_createDispute")
    (created,) = events(emulator_app, "charge.dispute.created")
    dispute_id = created["data"]["object"]["id"]
    updated = stripe_client.v1.disputes.update(
        dispute_id,
        params={"evidence": {"uncategorized_text": text, "customer_name": "Ada"}},
    )
    assert_stripe_shape(updated, stripe.Dispute)
    assert updated.status == outcome
    assert updated.evidence.customer_name == "Ada"
    assert updated.evidence_details.submission_count == 1
    (closed,) = events(emulator_app, "charge.dispute.closed")
    assert closed["data"]["object"]["status"] == outcome
    assert_stripe_shape(closed, stripe.Event)
    assert_stripe_shape(closed["data"]["object"], stripe.Dispute)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.disputes.update(dispute_id, params={"metadata": {"a": "b"}})


def test_staged_evidence_and_accepting_the_dispute(emulator_app, stripe_client):
    pay(stripe_client, "pm_card_createDispute")
    (created,) = events(emulator_app, "charge.dispute.created")
    dispute_id = created["data"]["object"]["id"]
    staged = stripe_client.v1.disputes.update(
        dispute_id, params={"evidence": {"product_description": "Coffee"}, "submit": False}
    )
    assert (staged.status, staged.evidence_details.has_evidence) == ("needs_response", True)
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.disputes.update(dispute_id, params={"evidence": {"nonsense": "x"}})
    closed = stripe_client.v1.disputes.close(dispute_id)
    assert closed.status == "lost"
    assert_stripe_shape(closed, stripe.Dispute)
    assert [e["type"] for e in events(emulator_app, "charge.dispute.closed")] == [
        "charge.dispute.closed"
    ]
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.disputes.retrieve("du_nope")
    assert missing.value.http_status == 404


def test_5423_raises_an_early_fraud_warning(emulator_app, stripe_client):
    pi = pay(stripe_client, "pm_card_createIssuerFraudRecord")
    assert pi.status == "succeeded"
    (created,) = events(emulator_app, "radar.early_fraud_warning.created")
    warning = created["data"]["object"]
    assert_stripe_shape(created, stripe.Event)
    assert_stripe_shape(warning, stripe.radar.EarlyFraudWarning)
    assert (warning["charge"], warning["payment_intent"]) == (pi.latest_charge, pi.id)
    fetched = stripe_client.v1.radar.early_fraud_warnings.retrieve(warning["id"])
    assert_stripe_shape(fetched, stripe.radar.EarlyFraudWarning)
    listed = stripe_client.v1.radar.early_fraud_warnings.list(params={"payment_intent": pi.id})
    assert_stripe_shape(listed, ListObject[stripe.radar.EarlyFraudWarning])
    assert [w.id for w in listed.data] == [warning["id"]]
    # A card without a warning has none.
    plain = pay(stripe_client, "pm_card_visa")
    assert (
        stripe_client.v1.radar.early_fraud_warnings.list(params={"payment_intent": plain.id}).data
        == []
    )
    assert events(emulator_app, "charge.dispute.created") == []


def test_5126_refund_succeeds_then_fails_later(emulator_app, emulator_url, stripe_client):
    pi = pay(stripe_client, "pm_card_refundFail")
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi.id, "amount": 1000})
    assert refund.status == "succeeded"
    assert stripe_client.v1.charges.retrieve(pi.latest_charge).amount_refunded == 1000
    assert events(emulator_app, "refund.failed") == []
    resp = requests.post(
        f"{emulator_url}/_emulator/clock",
        data={"advance": 10},
        headers={"Authorization": "Bearer sk_test_emulator"},
        timeout=5,
    )
    assert resp.status_code == 200
    wait_for(lambda: stripe_client.v1.refunds.retrieve(refund.id).status == "failed")
    failed = stripe_client.v1.refunds.retrieve(refund.id)
    assert failed.failure_reason == "expired_or_canceled_card"
    assert_stripe_shape(failed, stripe.Refund)
    charge = stripe_client.v1.charges.retrieve(pi.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    updated, failed_event = (
        events(emulator_app, "refund.updated")[-1],
        events(emulator_app, "refund.failed")[-1],
    )
    for event in (updated, failed_event):
        assert_stripe_shape(event, stripe.Event)
        assert_stripe_shape(event["data"]["object"], stripe.Refund)
    assert updated["data"]["previous_attributes"] == {"status": "succeeded"}


def test_an_ordinary_refund_never_fails(emulator_app, emulator_url, stripe_client):
    pi = pay(stripe_client, "pm_card_visa")
    refund = stripe_client.v1.refunds.create(params={"payment_intent": pi.id})
    requests.post(
        f"{emulator_url}/_emulator/clock",
        data={"advance": 60},
        headers={"Authorization": "Bearer sk_test_emulator"},
        timeout=5,
    )
    time.sleep(0.3)
    assert stripe_client.v1.refunds.retrieve(refund.id).status == "succeeded"
    assert events(emulator_app, "refund.failed") == []
