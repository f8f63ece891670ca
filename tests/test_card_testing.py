"""Card-testing defence: declines Stripe reports pause payments for a browser, IP or order."""

from __future__ import annotations

import contextlib
import logging

import pytest
import stripe
from sqlalchemy import func, select

from storefront import card_testing, payments
from storefront.card_testing import PaymentBlock, PaymentClient, PaymentDecline
from storefront.extensions import db
from storefront.models import Order, OutboxMessage
from tests.webhook_helpers import make_event, make_order, post_event

ATTACKER = "198.51.100.66"


def from_ip(ip: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": ip}}


def started_payment(app, client, ip: str = ATTACKER) -> str:
    """An order this browser (from ``ip``) is paying, as the checkout leaves it."""
    public_id = make_order(app, pi_id=None)
    with client.session_transaction() as sess:
        sess["checkout_order"] = public_id
    # Any payment endpoint notes who pays the session's order (here: not configured).
    client.get("/checkout/", **from_ip(ip))
    return public_id


def failed_event(public_id: str, pi_id: str, attempt: int) -> dict:
    pi = {
        "id": pi_id,
        "object": "payment_intent",
        "amount": 100,
        "currency": "usd",
        "status": "requires_payment_method",
        "metadata": {"order_id": public_id},
        "last_payment_error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": "Your card was declined.",
            "charge": f"ch_attempt_{pi_id}_{attempt}",
            "payment_method": {"id": f"pm_{attempt}", "object": "payment_method"},
        },
    }
    return make_event("payment_intent.payment_failed", pi)


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_the_payment_endpoint_remembers_who_pays(app):
    client = app.test_client()
    public_id = started_payment(app, client)
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        row = db.session.get(PaymentClient, order.id)
        assert row.ip_digest == card_testing.digest("ip", ATTACKER)
        assert ATTACKER not in (row.ip_digest, row.client_digest)


def test_declines_from_webhooks_trip_the_pause_with_a_log_line_and_a_staff_notice(app, caplog):
    app.config["CARD_DECLINE_LIMIT"] = 3
    attacker = app.test_client()
    public_id = started_payment(app, attacker)
    caplog.set_level(logging.INFO, logger="storefront.card_testing")
    for attempt in range(2):
        assert (
            post_event(app.test_client(), failed_event(public_id, "pi_a", attempt)).status_code
            == 200
        )
    # The same decline again (a redelivered or duplicated report) counts once.
    again = failed_event(public_id, "pi_a", 1)
    assert post_event(app.test_client(), again).status_code == 200
    assert count(app, PaymentDecline) == 2
    assert count(app, PaymentBlock) == 0
    assert attacker.get("/checkout/", **from_ip(ATTACKER)).status_code == 303

    post_event(app.test_client(), failed_event(public_id, "pi_a", 2))
    with app.app_context():
        kinds = {block.kind for block in db.session.scalars(select(PaymentBlock))}
        notices = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "staff_notice")
        ).all()
    assert kinds == {"order", "browser", "ip"}
    assert len(notices) == 3 and all(n.to_email == "staff" for n in notices)
    assert "card testing suspected: 3 declines" in caplog.text
    assert ATTACKER not in caplog.text

    # This browser cannot start another payment, by any way to pay; the page says why.
    for method, path in (("get", "/checkout/"), ("post", "/checkout/stripe/")):
        response = getattr(attacker, method)(path, **from_ip(ATTACKER))
        assert response.status_code == 429, path
        assert "declined" in response.get_data(as_text=True)
        assert 3500 <= int(response.headers["Retry-After"]) <= 3600
    response = attacker.post("/membership/subscribe", json={"price": "x"}, **from_ip(ATTACKER))
    assert response.status_code == 429 and "declined" in response.get_json()["error"]
    # A fresh browser from the same IP is paused too (the IP tripped) ...
    assert app.test_client().get("/checkout/", **from_ip(ATTACKER)).status_code == 429
    # ... and everyone else can pay.
    assert app.test_client().get("/checkout/", **from_ip("203.0.113.5")).status_code == 303


def test_the_pause_ends_after_the_cooling_off_period(app):
    app.config.update(CARD_DECLINE_LIMIT=1, CARD_DECLINE_COOLOFF_SECONDS=60)
    client = app.test_client()
    public_id = started_payment(app, client)
    post_event(app.test_client(), failed_event(public_id, "pi_b", 0))
    assert client.get("/checkout/", **from_ip(ATTACKER)).status_code == 429
    with app.app_context():
        for block in db.session.scalars(select(PaymentBlock)):
            block.until = block.created_at  # as if the hour had passed
        db.session.commit()
    assert client.get("/checkout/", **from_ip(ATTACKER)).status_code == 303


def test_declines_outside_the_window_do_not_count(app):
    app.config["CARD_DECLINE_LIMIT"] = 2
    client = app.test_client()
    public_id = started_payment(app, client)
    post_event(app.test_client(), failed_event(public_id, "pi_c", 0))
    with app.app_context():
        for decline in db.session.scalars(select(PaymentDecline)):
            decline.created_at = decline.created_at.replace(year=2020)
        db.session.commit()
    post_event(app.test_client(), failed_event(public_id, "pi_c", 1))
    assert count(app, PaymentBlock) == 0


def test_a_decline_the_server_retrieves_from_stripe_counts(stripe_app):
    """The order page asks Stripe for the PaymentIntent: a decline it reports counts, once,
    however often the page is loaded."""
    stripe_app.config["CARD_DECLINE_LIMIT"] = 1
    client = stripe_app.test_client()
    public_id = started_payment(stripe_app, client)
    with stripe_app.app_context():
        sc = payments.client()
        pi = sc.v1.payment_intents.create(
            params={"amount": 100, "currency": "usd", "metadata": {"order_id": public_id}}
        )
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        order.stripe_payment_intent_id = pi.id
        db.session.commit()
        with contextlib.suppress(stripe.CardError):
            sc.v1.payment_intents.confirm(
                pi.id, params={"payment_method": "pm_card_chargeDeclined"}
            )
    for _ in range(2):
        assert client.get(f"/orders/{public_id}", **from_ip(ATTACKER)).status_code == 200
    assert count(stripe_app, PaymentDecline) == 1
    assert client.get("/checkout/", **from_ip(ATTACKER)).status_code == 429


@pytest.mark.parametrize("reported", [None, {}])
def test_a_payment_intent_without_a_decline_counts_nothing(app, reported):
    with app.app_context():
        pi = {"id": "pi_x", "status": "requires_payment_method", "last_payment_error": reported}
        assert card_testing.record_decline(pi) is False
    assert count(app, PaymentDecline) == 0
