"""End to end: payments through the SDK against the emulator, webhooks delivered to the
served shop under the emulator's fault modes. Every paid order is fulfilled exactly once."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest
import stripe
from sqlalchemy import select

from storefront import payments
from storefront.extensions import db
from storefront.models import Order, OrderStatus, WebhookEvent
from tests.live import wait_until
from tests.webhook_helpers import get_order, make_order, outbox_count, stock


class WebhookCounter:
    """Wraps the shop's WSGI app to count webhook responses by outcome."""

    def __init__(self, app) -> None:
        self.inner = app.wsgi_app
        self.outcomes: Counter[str] = Counter()
        self.lock = threading.Lock()
        app.wsgi_app = self

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != "/webhooks/stripe":
            return self.inner(environ, start_response)
        status: list[str] = []

        def capture(code, headers, exc_info=None):
            status.append(code)
            return start_response(code, headers, exc_info)

        body = b"".join(self.inner(environ, capture))
        try:
            outcome = json.loads(body).get("outcome") or status[0]
        except ValueError:
            outcome = status[0]
        with self.lock:
            self.outcomes[outcome] += 1
        return [body]

    def total(self) -> int:
        with self.lock:
            return sum(self.outcomes.values())


def set_fault(app, fault: str) -> None:
    with app.app_context():
        sc = payments.client()
        (endpoint,) = sc.v1.webhook_endpoints.list().data
        sc.v1.webhook_endpoints.update(
            endpoint.id,
            params={"metadata": {"emulator_fault": fault, "emulator_delay_ms": "300"}},
        )


def create_pi(app, public_id: str) -> str:
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        pi = payments.client().v1.payment_intents.create(
            params={
                "amount": order.amount_total,
                "currency": order.currency,
                "metadata": {"order_id": order.public_id},
                "allowed_payment_method_types": ["card"],
            },
            options={"idempotency_key": payments.idempotency_key("test-pi", public_id)},
        )
        order.stripe_payment_intent_id = pi.id
        db.session.commit()
        return pi.id


def confirm(app, pi_id: str, card: str) -> None:
    with app.app_context():
        payments.client().v1.payment_intents.confirm(pi_id, params={"payment_method": card})


def shop_events(app, since: int) -> list:
    """Events the emulator sends to the shop's endpoint, created since ``since``."""
    with app.app_context():
        page = payments.list_events(since)
        assert not page.has_more
        return list(page.data)


@pytest.mark.parametrize("fault", ["duplicate", "shuffle", "late", "drop_first"])
def test_every_paid_order_is_fulfilled_exactly_once(live_shop, fault):
    app = live_shop.app
    counter = WebhookCounter(app)
    set_fault(app, fault)
    since = int(time.time()) - 1
    before = stock(app)

    paid = [make_order(app, quantity=1) for _ in range(3)]
    retried = make_order(app, quantity=1)  # declined first, then paid with another card
    refunded = make_order(app, quantity=1)  # paid, then partly refunded right away
    unpaid = make_order(app, quantity=1)  # declined only
    for public_id in paid:
        confirm(app, create_pi(app, public_id), "pm_card_visa")
    retried_pi = create_pi(app, retried)
    with pytest.raises(stripe.CardError):
        confirm(app, retried_pi, "pm_card_chargeDeclined")
    confirm(app, retried_pi, "pm_card_visa")
    refunded_pi = create_pi(app, refunded)
    confirm(app, refunded_pi, "pm_card_visa")
    with app.app_context():
        payments.client().v1.refunds.create(params={"payment_intent": refunded_pi, "amount": 500})
    with pytest.raises(stripe.CardError):
        confirm(app, create_pi(app, unpaid), "pm_card_chargeDeclinedInsufficientFunds")

    events = shop_events(app, since)
    types = Counter(e.type for e in events)
    assert types["payment_intent.succeeded"] == 5
    assert types["payment_intent.payment_failed"] == 2
    assert types["charge.refunded"] == 1
    copies = 2 if fault == "duplicate" else 1
    # Wait until every delivery (including duplicate copies) has been answered.
    wait_until(lambda: counter.total() >= copies * len(events), timeout=20)
    wait_until(lambda: all(e.pending_webhooks == 0 for e in shop_events(app, since)), timeout=20)

    for public_id in [*paid, retried]:
        order = get_order(app, public_id)
        assert order.status == OrderStatus.PAID, (fault, public_id)
        assert order.last_payment_error is None
        assert outbox_count(app, public_id) == 1
    order = get_order(app, refunded)
    assert order.status == OrderStatus.PARTIALLY_REFUNDED
    assert order.amount_refunded == 500
    assert outbox_count(app, refunded) == 2  # the confirmation and the refund email, once each
    order = get_order(app, unpaid)
    assert order.status == OrderStatus.FAILED
    assert order.last_payment_error
    assert outbox_count(app, unpaid) == 0
    assert stock(app) == before - 5

    with app.app_context():
        rows = db.session.scalars(select(WebhookEvent)).all()
        assert {r.stripe_event_id for r in rows} >= {e.id for e in events}
        assert all(r.outcome in ("processed", "ignored") for r in rows)
        assert all(r.attempts == 1 for r in rows)
    assert counter.outcomes["processed"] == len(events)
    assert counter.outcomes["duplicate"] == (len(events) if fault == "duplicate" else 0)
    assert counter.total() == copies * len(events)


def test_processing_failure_is_retried_by_the_emulator(live_shop, monkeypatch):
    from storefront import webhooks

    app = live_shop.app
    counter = WebhookCounter(app)
    original = webhooks.handler_for("payment_intent.succeeded")
    failures: list[str] = []

    def fails_once(event):
        if not failures:
            failures.append(event["id"])
            raise RuntimeError("disk full")
        return original(event)

    monkeypatch.setitem(webhooks._handlers, "payment_intent.succeeded", fails_once)
    public_id = make_order(app, quantity=1)
    confirm(app, create_pi(app, public_id), "pm_card_visa")
    wait_until(lambda: get_order(app, public_id).status == OrderStatus.PAID, timeout=15)
    assert counter.outcomes["500 INTERNAL SERVER ERROR"] == 1
    assert outbox_count(app, public_id) == 1

    def retried_row():
        # The order is paid inside the handler; the outcome is stored just after.
        with app.app_context():
            row = db.session.scalar(
                select(WebhookEvent).where(WebhookEvent.stripe_event_id == failures[0])
            )
            return row if row is not None and row.outcome == "processed" else None

    row = wait_until(retried_row)
    assert row.attempts == 2


def test_stale_failure_event_acts_on_the_payment_intent_as_it_is_now(stripe_app):
    """payment_failed processed after the retry succeeded (late or reordered): the handler
    asks Stripe and fulfils instead of failing the order."""
    from storefront import webhooks

    app = stripe_app
    since = int(time.time()) - 1
    public_id = make_order(app, quantity=1)
    pi_id = create_pi(app, public_id)
    with pytest.raises(stripe.CardError):
        confirm(app, pi_id, "pm_card_chargeDeclined")
    confirm(app, pi_id, "pm_card_visa")
    (failed,) = [e for e in shop_events(app, since) if e.type == "payment_intent.payment_failed"]
    assert failed.data.object.status == "requires_payment_method"  # the event's snapshot
    with app.test_request_context("/"):
        assert webhooks.process_event(failed) == "processed"
    order = get_order(app, public_id)
    assert order.status == OrderStatus.PAID
    assert order.last_payment_error is None
    assert outbox_count(app, public_id) == 1
