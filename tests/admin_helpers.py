"""Helpers for the back-office tests: staff sign-in through the shop's own link, paid
orders (a bare row, paid by a webhook, or paid at the emulator), and Stripe's events fed
to the webhook code."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import select

from storefront import payments
from storefront.extensions import db
from storefront.models import Order, OrderStatus, OutboxMessage, WebhookEvent
from tests.stripe_helpers import EventFeed
from tests.webhook_helpers import make_event, make_order, payment_intent, post_event

STAFF = "staff@example.com"


def sign_in(client, app: Flask, email: str) -> None:
    """Sign in as a customer would: ask for a link, open the one in the outbox, press
    its button."""
    resp = client.post("/account/sign-in", data={"email": email})
    assert resp.status_code == 200, resp.status_code
    with app.app_context():
        body = db.session.scalars(
            select(OutboxMessage.body)
            .where(OutboxMessage.kind == "sign_in", OutboxMessage.to_email == email)
            .order_by(OutboxMessage.id.desc())
        ).first()
    match = re.search(r"https?://[^/\s]+(/account/sign-in/\S+)", body or "")
    assert match, body
    # The link shows a "Sign in as …" button; its POST signs in (once).
    page = client.get(match.group(1))
    assert page.status_code == 200, page.status_code
    html = page.get_data(as_text=True)
    data = {"csrf_token": csrf_token(html)} if 'name="csrf_token"' in html else {}
    resp = client.post(match.group(1), data=data)
    assert resp.status_code in (302, 303), resp.status_code


def stored_order(
    app: Flask, *, email="ada@example.com", status=OrderStatus.PAID, amount=1800, **kw
) -> str:
    """A bare order row (no items, nothing at Stripe), paid unless ``status`` says other."""
    with app.app_context():
        order = Order(email=email, currency="usd", amount_total=amount, status=status, **kw)
        db.session.add(order)
        db.session.commit()
        return order.public_id


def paid_by_webhook(
    app: Flask, client, *, pi_id: str, quantity: int = 2, event_id: str | None = None
) -> tuple[str, int]:
    """An order of ``quantity`` x $18.00 and its ``payment_intent.succeeded`` posted to the
    webhook endpoint; the order's public id and the endpoint's status code."""
    public_id = make_order(app, quantity=quantity, pi_id=pi_id)
    event = make_event(
        "payment_intent.succeeded",
        payment_intent(public_id, pi_id=pi_id, status="succeeded", amount=1800 * quantity),
        event_id=event_id,
    )
    return public_id, post_event(client, event).status_code


def pay_at_emulator(app: Flask, public_id: str, card: str = "pm_card_visa") -> str:
    """Pay the order at the emulator with ``card`` as the checkout would (its intent, then
    a confirm); its events are still to be delivered. The PaymentIntent's id."""
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        pi = payments.create_payment_intent(order)
        order.stripe_payment_intent_id = pi.id
        db.session.commit()
        payments.client().v1.payment_intents.confirm(pi.id, params={"payment_method": card})
    return pi.id


def paid_order(app: Flask, *, quantity: int = 2, card: str = "pm_card_visa", **kw) -> str:
    """An order paid at the emulator with ``card`` and fulfilled by its webhook events."""
    public_id = make_order(app, quantity=quantity, **kw)
    pay_at_emulator(app, public_id, card)
    feed(app).deliver()
    return public_id


def failed_event(app: Flask, event_id: str = "evt_failed") -> str:
    """A stored ``charge.refunded`` whose processing failed (its payload unreadable)."""
    with app.app_context():
        db.session.add(
            WebhookEvent(
                stripe_event_id=event_id,
                type="charge.refunded",
                stripe_created=1,
                payload="{}",
                outcome="failed",
                error="boom",
            )
        )
        db.session.commit()
    return event_id


def feed(app: Flask) -> EventFeed:
    """The app's one event feed, so each of Stripe's events reaches the shop once."""
    return app.extensions.setdefault("test_event_feed", EventFeed(app))


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


def form_value(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" type="hidden" value="([^"]*)"', html) or re.search(
        rf'id="{name}" name="{name}" type="hidden" value="([^"]*)"', html
    )
    assert match, f"no {name} on the page"
    return match.group(1)
