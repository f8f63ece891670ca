"""The webhook endpoint: verification, storage, deduplication, order state from events."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, update

from storefront import webhooks
from storefront.extensions import db
from storefront.fulfilment import fulfil_order
from storefront.models import Order, OrderStatus, OutboxMessage, WebhookEvent, utcnow
from tests.live import Server
from tests.webhook_helpers import (
    charge,
    event_count,
    get_order,
    make_event,
    make_order,
    outbox_count,
    payment_intent,
    post_event,
    sign,
    stock,
)

AMOUNT = 3600  # make_order's default: 2 x 1800 (usd)


@pytest.fixture
def webhook_log(caplog, monkeypatch):
    """caplog for the webhook logger, re-enabled in case an Alembic run (fileConfig) in this
    process disabled existing loggers."""
    monkeypatch.setattr(logging.getLogger("storefront.webhooks"), "disabled", False)
    with caplog.at_level(logging.INFO, logger="storefront.webhooks"):
        yield caplog


def stored(app, event_id: str) -> WebhookEvent | None:
    with app.app_context():
        row = db.session.scalar(
            select(WebhookEvent).where(WebhookEvent.stripe_event_id == event_id)
        )
        if row is not None:
            db.session.expunge(row)
        return row


def in_flight(app, event: dict, **fields) -> None:
    """Store ``event`` as a worker does before processing it: no outcome yet."""
    with app.app_context():
        db.session.add(
            WebhookEvent(
                stripe_event_id=event["id"],
                type=event["type"],
                object_id=event["data"]["object"]["id"],
                stripe_created=event["created"],
                payload="{}",
                outcome=None,
                **fields,
            )
        )
        db.session.commit()


def stale_takeover_works(app, client, event: dict, public_id: str, stamp) -> None:
    """While the stored attempt is recent another delivery leaves it alone ("duplicate");
    once ``stamp`` (a WebhookEvent column) is older than STALE_AFTER it is taken over."""
    assert post_event(client, event).json["outcome"] == "duplicate"
    assert get_order(app, public_id).status == OrderStatus.PENDING
    with app.app_context():
        db.session.execute(
            update(WebhookEvent).values({stamp: utcnow() - webhooks.STALE_AFTER - timedelta(1)})
        )
        db.session.commit()
    assert post_event(client, event).json["outcome"] == "processed"
    assert get_order(app, public_id).status == OrderStatus.PAID


def succeeded_event(public_id: str, pi_id: str = "pi_test_1", amount: int = AMOUNT) -> dict:
    return make_event(
        "payment_intent.succeeded",
        payment_intent(public_id, pi_id=pi_id, status="succeeded", amount=amount),
    )


# --------------------------------------------------------------------------- verification


def test_valid_event_is_processed_and_stored(app, client):
    public_id = make_order(app, pi_id="pi_test_1")
    event = succeeded_event(public_id)
    resp = post_event(client, event)
    assert resp.status_code == 200
    assert resp.json == {"received": True, "outcome": "processed"}
    row = stored(app, event["id"])
    assert row.type == "payment_intent.succeeded"
    assert row.object_id == "pi_test_1"
    assert row.outcome == "processed"
    assert row.processed_at is not None
    assert row.api_version == "2026-10-28.endive"
    assert row.stripe_created == event["created"]
    assert json.loads(row.payload)["id"] == event["id"]
    order = get_order(app, public_id)
    assert order.status == OrderStatus.PAID
    assert order.fulfilled_at is not None
    assert outbox_count(app, public_id) == 1


def test_wrong_secret_is_rejected_and_nothing_recorded(app, client):
    public_id = make_order(app, pi_id="pi_test_1")
    resp = post_event(client, succeeded_event(public_id), secret="whsec_someone_else")
    assert resp.status_code == 400
    assert resp.json == {"error": "invalid signature"}
    assert event_count(app) == 0
    assert get_order(app, public_id).status == OrderStatus.PENDING


def test_tampered_body_is_rejected(app, client):
    public_id = make_order(app, pi_id="pi_test_1")
    payload = json.dumps(succeeded_event(public_id, amount=1))
    header = sign(payload)
    tampered = payload.replace('"amount": 1,', f'"amount": {AMOUNT},')
    assert tampered != payload
    resp = client.post(
        "/webhooks/stripe",
        data=tampered,
        headers={"Stripe-Signature": header},
        content_type="application/json",
    )
    assert resp.status_code == 400
    assert resp.json == {"error": "invalid signature"}
    assert event_count(app) == 0
    assert get_order(app, public_id).status == OrderStatus.PENDING


def test_stale_timestamp_is_rejected(app, client):
    public_id = make_order(app, pi_id="pi_test_1")
    payload = json.dumps(succeeded_event(public_id))
    old = int(time.time()) - 301  # the SDK's default tolerance is 300 s
    resp = client.post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": sign(payload, timestamp=old)},
        content_type="application/json",
    )
    assert resp.status_code == 400
    assert resp.json == {"error": "timestamp outside the tolerance"}
    assert event_count(app) == 0


def test_missing_signature_header_is_rejected(app, client):
    public_id = make_order(app, pi_id="pi_test_1")
    resp = client.post(
        "/webhooks/stripe", data=json.dumps(succeeded_event(public_id)), content_type="text/json"
    )
    assert resp.status_code == 400
    assert resp.json == {"error": "missing Stripe-Signature header"}
    assert event_count(app) == 0


def test_signed_body_that_is_not_json_is_rejected(app, client):
    for body, reason in (
        ("this is not json", "body is not JSON"),
        (b"\xff\xfe not utf-8", "body is not JSON"),
        ("[1, 2, 3]", "body is not a Stripe event"),
        ('{"id": "evt_1"}', "body is not a Stripe event"),
        (
            '{"id": "evt_1", "type": "x", "created": "soon", "data": {"object": {}}}',
            "body is not a Stripe event",
        ),
        (
            '{"id": "evt_1", "type": "x", "created": 1, "data": {"object": "pi_1"}}',
            "body is not a Stripe event",
        ),
        (
            '{"id": "%s", "type": "x", "created": 1, "data": {"object": {}}}' % ("e" * 300),
            "body is not a Stripe event",
        ),
    ):
        text = body if isinstance(body, str) else None
        header = sign(text) if text is not None else _sign_bytes(body)
        resp = client.post(
            "/webhooks/stripe",
            data=body,
            headers={"Stripe-Signature": header},
            content_type="application/json",
        )
        assert resp.status_code == 400, body
        assert resp.json == {"error": reason}, body
    assert event_count(app) == 0


def _sign_bytes(body: bytes) -> str:
    import hashlib
    import hmac

    ts = int(time.time())
    mac = hmac.new(b"whsec_test_secret", f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def test_garbage_signature_headers_never_cause_a_500(client):
    payload = json.dumps(make_event("payment_intent.succeeded", {"id": "pi_x"}))
    for header in ("", "garbage", "t=abc,v1=", "t=,v1=00", "v1=" + "0" * 64, "t=1" * 500):
        resp = client.post(
            "/webhooks/stripe",
            data=payload,
            headers={"Stripe-Signature": header},
            content_type="application/json",
        )
        assert resp.status_code == 400, header


def test_endpoint_is_csrf_exempt(csrf_app):
    client = csrf_app.test_client()
    public_id = make_order(csrf_app, pi_id="pi_test_1")
    resp = post_event(client, succeeded_event(public_id))
    assert resp.status_code == 200
    assert get_order(csrf_app, public_id).status == OrderStatus.PAID


def test_unconfigured_secret_is_not_a_client_error(app, client):
    app.config["STRIPE_WEBHOOK_SECRET"] = None
    resp = post_event(client, make_event("payment_intent.succeeded", {"id": "pi_x"}))
    assert resp.status_code == 503
    assert event_count(app) == 0


# --------------------------------------------------------------------------- storage, dedup


def test_unknown_event_type_is_stored_and_ignored(app, client):
    event = make_event("customer.created", {"id": "cus_123", "object": "customer"})
    resp = post_event(client, event)
    assert resp.status_code == 200
    assert resp.json["outcome"] == "ignored"
    row = stored(app, event["id"])
    assert row.outcome == "ignored"
    assert row.object_id == "cus_123"


def test_event_for_unknown_payment_intent_is_acknowledged(app, client, webhook_log):
    public_id = make_order(app, pi_id="pi_ours")
    event = make_event(
        "payment_intent.succeeded",
        payment_intent(None, pi_id="pi_not_ours", status="succeeded", amount=AMOUNT),
    )
    resp = post_event(client, event)
    assert resp.status_code == 200
    assert resp.json["outcome"] == "ignored"
    assert stored(app, event["id"]).outcome == "ignored"
    assert get_order(app, public_id).status == OrderStatus.PENDING
    assert "pi_not_ours is not for an order" in webhook_log.text


def test_same_event_twice_is_processed_once(app, client):
    public_id = make_order(app, pi_id="pi_test_1")
    before = stock(app)
    event = succeeded_event(public_id)
    first = post_event(client, event)
    second = post_event(client, event)
    assert first.json["outcome"] == "processed"
    assert second.status_code == 200
    assert second.json["outcome"] == "duplicate"
    assert stored(app, event["id"]).attempts == 1
    assert outbox_count(app, public_id) == 1
    assert stock(app) == before - 2


def test_same_event_from_eight_threads_is_processed_once(app, monkeypatch):
    public_id = make_order(app, pi_id="pi_test_1")
    before = stock(app)
    event = succeeded_event(public_id)
    payload = json.dumps(event)
    calls: list[str] = []
    original = webhooks.handler_for("payment_intent.succeeded")

    def counting(evt):
        calls.append(evt["id"])
        time.sleep(0.05)  # widen the window for a second processor, if there could be one
        return original(evt)

    monkeypatch.setitem(webhooks._handlers, "payment_intent.succeeded", counting)
    server = Server(app)
    barrier = threading.Barrier(8)
    results: list[tuple[int, str]] = []

    def deliver():
        barrier.wait()
        resp = requests.post(
            server.url + "/webhooks/stripe",
            data=payload,
            headers={"Stripe-Signature": sign(payload), "Content-Type": "application/json"},
            timeout=20,
        )
        is_json = resp.headers.get("Content-Type", "").startswith("application/json")
        results.append((resp.status_code, resp.json().get("outcome") if is_json else resp.text))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        server.stop()
    assert sorted(results) == [(200, "duplicate")] * 7 + [(200, "processed")]
    assert calls == [event["id"]]
    assert outbox_count(app, public_id) == 1
    assert stock(app) == before - 2
    assert event_count(app) == 1


def test_processing_failure_returns_500_and_the_retry_succeeds(app, client, monkeypatch):
    public_id = make_order(app, pi_id="pi_test_1")
    original = webhooks.handler_for("payment_intent.succeeded")
    failures = []

    def flaky(evt):
        if not failures:
            failures.append(evt["id"])
            raise RuntimeError("database went away")
        return original(evt)

    monkeypatch.setitem(webhooks._handlers, "payment_intent.succeeded", flaky)
    event = succeeded_event(public_id)
    first = post_event(client, event)
    assert first.status_code == 500
    row = stored(app, event["id"])
    assert row.outcome == "failed"
    assert row.error == "RuntimeError: database went away"
    assert get_order(app, public_id).status == OrderStatus.PENDING

    retry = post_event(client, event)
    assert retry.status_code == 200
    assert retry.json["outcome"] == "processed"
    row = stored(app, event["id"])
    assert row.outcome == "processed"
    assert row.error is None
    assert row.attempts == 2
    assert get_order(app, public_id).status == OrderStatus.PAID
    assert outbox_count(app, public_id) == 1


def test_crashed_attempt_is_taken_over_only_when_stale(app, client, monkeypatch):
    public_id = make_order(app, pi_id="pi_test_1")
    event = succeeded_event(public_id)
    # Simulate a worker that stored the event and then died before recording an outcome.
    in_flight(app, event, attempts=1)
    # Recently started: another delivery is presumably still working on it.
    stale_takeover_works(app, client, event, public_id, WebhookEvent.received_at)


def test_amount_mismatch_is_retried_then_reaches_staff_and_is_never_fulfilled(app, client):
    public_id = make_order(app, pi_id="pi_test_1")
    event = succeeded_event(public_id, amount=AMOUNT - 100)
    # The order changed a moment ago (a Pay in another tab may be mid-way): look again later.
    resp = post_event(client, event)
    assert resp.status_code == 500
    assert stored(app, event["id"]).error.startswith("AmountMismatch")
    assert get_order(app, public_id).status == OrderStatus.PENDING
    # Long after its last change the order cannot come to agree: staff are told, once.
    with app.app_context():
        db.session.execute(
            update(Order)
            .where(Order.public_id == public_id)
            .values(updated_at=utcnow() - webhooks.MISMATCH_RETRY_WINDOW - timedelta(seconds=1))
        )
        db.session.commit()
    for _ in range(2):
        resp = post_event(client, event)
        assert resp.status_code == 200  # Stripe retrying cannot fix it
        assert resp.json["outcome"] == "failed"
    row = stored(app, event["id"])
    assert row.outcome == "failed"
    assert row.error.startswith("permanent: amount mismatch")
    order = get_order(app, public_id)
    assert order.status == OrderStatus.PENDING
    assert order.fulfilled_at is None
    with app.app_context():
        notices = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "staff_amount_mismatch")
        ).all()
        assert [(n.to_email, n.dedup_key) for n in notices] == [
            ("staff", "amount-mismatch:pi_test_1")
        ]
        assert "NOT fulfilled" in notices[0].body
        assert (
            db.session.scalar(
                select(func.count(OutboxMessage.id)).where(
                    OutboxMessage.kind == "order_confirmation"
                )
            )
            == 0
        )


def test_amount_mismatch_retried_after_the_order_caught_up_is_fulfilled(app, client):
    public_id = make_order(app, pi_id="pi_test_1")
    event = succeeded_event(public_id, amount=AMOUNT + 600)
    assert post_event(client, event).status_code == 500
    with app.app_context():
        # The other tab's Pay commits: the order now holds what was paid.
        db.session.execute(
            update(Order).where(Order.public_id == public_id).values(amount_total=AMOUNT + 600)
        )
        db.session.commit()
    resp = post_event(client, event)  # Stripe's redelivery
    assert (resp.status_code, resp.json["outcome"]) == (200, "processed")
    assert get_order(app, public_id).status == OrderStatus.PAID


def test_one_log_line_per_event_without_payload(app, client, webhook_log):
    public_id = make_order(app, pi_id="pi_test_1", email="secret-person@example.com")
    event = succeeded_event(public_id)
    post_event(client, event)
    lines = [r.getMessage() for r in webhook_log.records if r.name == "storefront.webhooks"]
    assert len(lines) == 1
    line = lines[0]
    for part in (event["id"], "payment_intent.succeeded", "pi_test_1", public_id, "processed"):
        assert part in line
    assert line.endswith("ms")
    assert "secret-person" not in webhook_log.text
    assert "whsec" not in webhook_log.text


# --------------------------------------------------------------------------- order state


def test_processing_then_failed_then_succeeded(app, client):
    public_id = make_order(app, pi_id="pi_test_1")
    pi = {"pi_id": "pi_test_1", "amount": AMOUNT}
    post_event(
        client,
        make_event(
            "payment_intent.processing", payment_intent(public_id, status="processing", **pi)
        ),
    )
    assert get_order(app, public_id).status == OrderStatus.PROCESSING
    post_event(
        client,
        make_event(
            "payment_intent.payment_failed",
            payment_intent(
                public_id,
                status="requires_payment_method",
                error="Your card was declined.",
                **pi,
            ),
        ),
    )
    order = get_order(app, public_id)
    assert order.status == OrderStatus.FAILED
    assert order.last_payment_error == "Your card was declined."
    post_event(client, succeeded_event(public_id))
    order = get_order(app, public_id)
    assert order.status == OrderStatus.PAID
    assert order.last_payment_error is None


def test_payment_failed_after_succeeded_changes_nothing(app, client):
    public_id = make_order(app, pi_id="pi_test_1")
    post_event(client, succeeded_event(public_id))
    failed = make_event(
        "payment_intent.payment_failed",
        payment_intent(
            public_id,
            pi_id="pi_test_1",
            status="requires_payment_method",
            amount=AMOUNT,
            error="Your card was declined.",
        ),
    )
    resp = post_event(client, failed)
    assert resp.status_code == 200
    order = get_order(app, public_id)
    assert order.status == OrderStatus.PAID
    assert order.last_payment_error is None
    assert outbox_count(app, public_id) == 1


def test_succeeded_after_refund_does_not_undo_it(app, client):
    public_id = make_order(app, pi_id="pi_test_1")
    before = stock(app)
    post_event(client, succeeded_event(public_id))
    post_event(
        client, make_event("charge.refunded", charge("pi_test_1", amount=AMOUNT, refunded=AMOUNT))
    )
    order = get_order(app, public_id)
    assert order.status == OrderStatus.REFUNDED
    assert order.amount_refunded == AMOUNT
    # A redelivered (new id) or replayed success arrives after the refund.
    post_event(client, succeeded_event(public_id))
    order = get_order(app, public_id)
    assert order.status == OrderStatus.REFUNDED
    assert outbox_count(app, public_id) == 1
    assert stock(app) == before - 2


def test_refund_arriving_before_success_records_both(app, client):
    public_id = make_order(app, pi_id="pi_test_1")
    refunded = make_event("charge.refunded", charge("pi_test_1", amount=AMOUNT, refunded=1000))
    assert post_event(client, refunded).json["outcome"] == "processed"
    order = get_order(app, public_id)
    assert order.status == OrderStatus.PARTIALLY_REFUNDED
    assert order.amount_refunded == 1000
    assert order.fulfilled_at is not None
    post_event(client, succeeded_event(public_id))
    order = get_order(app, public_id)
    assert order.status == OrderStatus.PARTIALLY_REFUNDED
    assert outbox_count(app, public_id) == 1


def test_partial_refunds_only_grow(app, client):
    public_id = make_order(app, pi_id="pi_test_1")
    post_event(client, succeeded_event(public_id))
    second = make_event("charge.refunded", charge("pi_test_1", amount=AMOUNT, refunded=2000))
    first = make_event("charge.refunded", charge("pi_test_1", amount=AMOUNT, refunded=500))
    post_event(client, second)
    post_event(client, first)  # older event, delivered late
    order = get_order(app, public_id)
    assert order.status == OrderStatus.PARTIALLY_REFUNDED
    assert order.amount_refunded == 2000
    post_event(
        client, make_event("charge.refunded", charge("pi_test_1", amount=AMOUNT, refunded=AMOUNT))
    )
    assert get_order(app, public_id).status == OrderStatus.REFUNDED


def test_canceled_cancels_an_unpaid_order_only(app, client):
    unpaid = make_order(app, pi_id="pi_unpaid")
    paid = make_order(app, pi_id="pi_paid")
    post_event(client, succeeded_event(paid, pi_id="pi_paid"))
    for public_id, pi_id in ((unpaid, "pi_unpaid"), (paid, "pi_paid")):
        post_event(
            client,
            make_event(
                "payment_intent.canceled",
                payment_intent(public_id, pi_id=pi_id, status="canceled", amount=AMOUNT),
            ),
        )
    assert get_order(app, unpaid).status == OrderStatus.CANCELED
    assert get_order(app, paid).status == OrderStatus.PAID


def refund_notices(app) -> list[OutboxMessage]:
    with app.app_context():
        notices = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.dedup_key.like("refund-needed:%"))
        ).all()
        for notice in notices:
            db.session.expunge(notice)
        return list(notices)


def test_paid_after_cancel_tells_staff_what_to_refund(app, client):
    public_id = make_order(app, pi_id="pi_late")
    post_event(
        client,
        make_event(
            "payment_intent.canceled",
            payment_intent(public_id, pi_id="pi_late", status="canceled", amount=AMOUNT),
        ),
    )
    event = succeeded_event(public_id, pi_id="pi_late")
    post_event(client, event)
    post_event(client, succeeded_event(public_id, pi_id="pi_late"))  # a second delivery
    assert get_order(app, public_id).status == OrderStatus.CANCELED
    (notice,) = refund_notices(app)
    assert notice.to_email == "staff" and notice.order_id == get_order(app, public_id).id
    assert "Refund $36.00 of payment pi_late" in notice.body
    assert "after it was canceled" in notice.subject


def test_paid_twice_tells_staff_to_refund_the_second_payment(app, client):
    public_id = make_order(app, pi_id="pi_first")
    post_event(client, succeeded_event(public_id, pi_id="pi_first"))
    post_event(client, succeeded_event(public_id, pi_id="pi_second"))
    order = get_order(app, public_id)
    assert order.status == OrderStatus.PAID and order.stripe_payment_intent_id == "pi_first"
    (notice,) = refund_notices(app)
    assert "Refund $36.00 of payment pi_second" in notice.body
    assert "paid twice" in notice.subject


def test_events_of_an_abandoned_payment_intent_do_not_touch_the_order(app, client):
    public_id = make_order(app, pi_id="pi_current")
    post_event(
        client,
        make_event(
            "payment_intent.canceled",
            payment_intent(public_id, pi_id="pi_old", status="canceled", amount=AMOUNT),
        ),
    )
    assert get_order(app, public_id).status == OrderStatus.PENDING


def test_order_found_by_metadata_gets_its_payment_intent(app, client):
    public_id = make_order(app, pi_id=None)
    post_event(client, succeeded_event(public_id, pi_id="pi_from_metadata"))
    order = get_order(app, public_id)
    assert order.status == OrderStatus.PAID
    assert order.stripe_payment_intent_id == "pi_from_metadata"


def test_order_without_email_is_fulfilled_without_mail(app, client):
    public_id = make_order(app, pi_id="pi_test_1", email=None)
    post_event(client, succeeded_event(public_id))
    assert get_order(app, public_id).status == OrderStatus.PAID
    with app.app_context():
        assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0


def test_registering_a_second_handler_for_a_type_is_an_error():
    with pytest.raises(ValueError, match="already handled"):

        @webhooks.handles("payment_intent.succeeded")
        def another(event):  # pragma: no cover - never registered
            return None


def checkout_order(app, public_id: str) -> None:
    with app.app_context():
        db.session.execute(
            update(Order)
            .where(Order.public_id == public_id)
            .values(stripe_checkout_session_id="cs_test_1")
        )
        db.session.commit()


def test_checkout_payment_intent_is_left_to_the_checkout_session_events(app, client):
    # Checkout's PaymentIntent carries the order id too, but the email Checkout collected
    # arrives with checkout.session.completed, whose handler fulfils the order.
    public_id = make_order(app, pi_id=None, email=None)
    checkout_order(app, public_id)
    resp = post_event(client, succeeded_event(public_id, pi_id="pi_checkout"))
    assert resp.json["outcome"] == "ignored"
    assert get_order(app, public_id).status == OrderStatus.PENDING
    failed = make_event(
        "payment_intent.payment_failed",
        payment_intent(
            public_id,
            pi_id="pi_checkout",
            status="requires_payment_method",
            amount=AMOUNT,
            error="Your card was declined.",
        ),
    )
    assert post_event(client, failed).json["outcome"] == "ignored"
    assert get_order(app, public_id).status == OrderStatus.PENDING


def test_refund_before_checkout_completion_is_retried(app, client):
    public_id = make_order(app, pi_id=None)
    checkout_order(app, public_id)
    refund = make_event("charge.refunded", charge("pi_checkout", amount=AMOUNT, refunded=AMOUNT))
    refund["data"]["object"]["metadata"] = {"order_id": public_id}
    assert post_event(client, refund).status_code == 500
    # checkout.session.completed is processed meanwhile (here: as its handler would).
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        order.stripe_payment_intent_id = "pi_checkout"
        db.session.commit()
        fulfil_order(order)
    retry = post_event(client, refund)
    assert retry.status_code == 200
    order = get_order(app, public_id)
    assert order.status == OrderStatus.REFUNDED
    assert order.amount_refunded == AMOUNT


def test_late_partial_refund_from_a_stale_copy_never_lowers_the_refunded_total(app, client):
    public_id = make_order(app, pi_id="pi_test_1")
    post_event(client, succeeded_event(public_id))
    partial = make_event("charge.refunded", charge("pi_test_1", amount=AMOUNT, refunded=500))
    full = make_event("charge.refunded", charge("pi_test_1", amount=AMOUNT, refunded=AMOUNT))
    with app.app_context():
        stale = db.session.scalar(select(Order).where(Order.public_id == public_id))
        assert (stale.status, stale.amount_refunded) == (OrderStatus.PAID, 0)
        with app.app_context():  # another worker processes the full refund first
            assert webhooks.handler_for("charge.refunded")(full) == "processed"
        # This worker's copy still says paid with nothing refunded.
        assert webhooks.handler_for("charge.refunded")(partial) == "processed"
        db.session.commit()
    order = get_order(app, public_id)
    assert order.amount_refunded == AMOUNT
    assert order.status == OrderStatus.REFUNDED


MARKER = "marker-4242-payload-value"


@pytest.mark.parametrize("failure", ["database", "message"])
def test_failed_event_logs_one_short_line_without_payload_data(
    app, client, monkeypatch, caplog, failure
):
    public_id = make_order(app, pi_id="pi_test_1")

    def broken(evt):
        if failure == "database":
            # A unique clash on an INSERT that carries payload data (SQL + parameters).
            for _ in range(2):
                db.session.add(
                    OutboxMessage(
                        kind="x", to_email=MARKER, subject=MARKER, body=MARKER, dedup_key="k"
                    )
                )
            db.session.flush()
        raise ValueError(f"could not use the event:\n{MARKER}")

    monkeypatch.setitem(webhooks._handlers, "payment_intent.succeeded", broken)
    monkeypatch.setattr(logging.getLogger("storefront.webhooks"), "disabled", False)
    caplog.set_level(logging.DEBUG, logger="storefront.webhooks")
    event = succeeded_event(public_id)
    assert post_event(client, event).status_code == 500

    records = [r for r in caplog.records if r.name == "storefront.webhooks"]
    # The event's line: one, short, without payload data.
    [line] = [r for r in records if "outcome=" in r.getMessage()]
    assert line.levelno == logging.WARNING
    message = line.getMessage()
    assert event["id"] in message and "outcome=failed" in message
    assert "\n" not in message and MARKER not in message
    expected = "IntegrityError" if failure == "database" else "ValueError: could not use"
    assert f"error={expected}" in message
    assert not line.exc_info
    error = stored(app, event["id"]).error
    assert "\n" not in error and MARKER not in error and len(error) <= 250
    # The traceback, at the default level, in a record of its own: it names the failing
    # handler and the line that raised, and still holds no payload data (the message is
    # cut to its first line; SQL parameters are hidden by hide_parameters).
    [trace] = [r for r in records if r.exc_info]
    assert trace.levelno == logging.ERROR
    text = logging.Formatter().format(trace)
    assert event["id"] in text and "Traceback" in text and "in broken" in text
    assert expected in text
    assert MARKER not in text


def test_a_retry_keeps_the_first_received_at_and_records_its_own_start(app, client, monkeypatch):
    public_id = make_order(app, pi_id="pi_test_1")
    original = webhooks.handler_for("payment_intent.succeeded")
    calls = []

    def flaky(evt):
        calls.append(evt["id"])
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return original(evt)

    monkeypatch.setitem(webhooks._handlers, "payment_intent.succeeded", flaky)
    event = succeeded_event(public_id)
    assert post_event(client, event).status_code == 500
    an_hour_ago = utcnow().replace(tzinfo=None) - timedelta(hours=1)
    with app.app_context():
        db.session.execute(
            update(WebhookEvent).values(received_at=an_hour_ago, attempted_at=an_hour_ago)
        )
        db.session.commit()
    assert post_event(client, event).json["outcome"] == "processed"
    row = stored(app, event["id"])
    assert row.attempts == 2
    assert row.received_at == an_hour_ago  # when Stripe first delivered it
    assert row.attempted_at > an_hour_ago + timedelta(minutes=59)


def test_a_running_retry_of_an_old_event_is_not_taken_over(app, client):
    public_id = make_order(app, pi_id="pi_test_1")
    event = succeeded_event(public_id)
    # First delivered long ago; a retry started a moment ago and is still running.
    in_flight(
        app, event, received_at=utcnow() - timedelta(days=1), attempted_at=utcnow(), attempts=2
    )
    stale_takeover_works(app, client, event, public_id, WebhookEvent.attempted_at)
