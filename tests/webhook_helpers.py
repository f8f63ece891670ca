"""Signed Stripe webhook payloads and test orders, for the webhook tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from storefront.extensions import db
from storefront.models import (
    Order,
    OrderItem,
    OrderStatus,
    OutboxMessage,
    Price,
    Product,
    WebhookEvent,
)

TEST_SECRET = "whsec_test_secret"  # tests/conftest.py TEST_CONFIG


def sign(payload: str | bytes, secret: str = TEST_SECRET, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header: ``t=<ts>,v1=HMAC-SHA256(secret, "<ts>.<payload>")``."""
    ts = int(time.time()) if timestamp is None else timestamp
    body = payload.decode() if isinstance(payload, bytes) else payload
    mac = hmac.new(secret.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def make_event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> dict:
    """An event shaped like Stripe's (API 2026)."""
    return {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def post_event(
    client,
    event: dict | str,
    secret: str = TEST_SECRET,
    path: str = "/webhooks/stripe",
    base_url: str = "http://localhost",
    **headers,
):
    payload = event if isinstance(event, str) else json.dumps(event)
    return client.post(
        path,
        data=payload,
        headers={"Stripe-Signature": sign(payload, secret), **headers},
        content_type="application/json",
        base_url=base_url,
    )


def make_order(
    app: Flask,
    *,
    lookup_key: str = "ethiopia-yirgacheffe-usd",
    quantity: int = 2,
    email: str | None = "ada@example.com",
    pi_id: str | None = None,
) -> str:
    """A pending order for ``quantity`` of one price; returns its public id."""
    with app.app_context():
        price = db.session.scalar(select(Price).where(Price.lookup_key == lookup_key))
        order = Order(
            email=email,
            currency=price.currency,
            amount_total=price.unit_amount * quantity,
            status=OrderStatus.PENDING,
            stripe_payment_intent_id=pi_id,
        )
        order.items.append(
            OrderItem(
                product_id=price.product_id,
                price_id=price.id,
                product_name=price.product.name,
                price_lookup_key=price.lookup_key,
                unit_amount=price.unit_amount,
                quantity=quantity,
            )
        )
        db.session.add(order)
        db.session.commit()
        return order.public_id


def get_order(app: Flask, public_id: str) -> Order:
    """The order, detached (attributes loaded) for assertions outside the app context."""
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        db.session.expunge(order)
        return order


def outbox_count(app: Flask, public_id: str) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count(OutboxMessage.id))
            .join(Order, Order.id == OutboxMessage.order_id)
            .where(Order.public_id == public_id)
        )


def stock(app: Flask, slug: str = "ethiopia-yirgacheffe") -> int | None:
    with app.app_context():
        return db.session.scalar(select(Product.stock).where(Product.slug == slug))


def payment_intent(
    public_id: str | None,
    *,
    pi_id: str,
    status: str,
    amount: int,
    currency: str = "usd",
    error: str | None = None,
) -> dict[str, Any]:
    """The fields of a PaymentIntent the handlers read."""
    return {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "currency": currency,
        "status": status,
        "metadata": {"order_id": public_id} if public_id else {},
        "last_payment_error": {"message": error, "code": "card_declined"} if error else None,
    }


def charge(pi_id: str, *, amount: int, refunded: int, currency: str = "usd") -> dict[str, Any]:
    return {
        "id": "ch_" + secrets.token_hex(8),
        "object": "charge",
        "amount": amount,
        "amount_refunded": refunded,
        "currency": currency,
        "paid": True,
        "refunded": refunded >= amount,
        "status": "succeeded",
        "payment_intent": pi_id,
        "metadata": {},
    }


def event_count(app: Flask) -> int:
    """How many webhook events the shop has stored."""
    with app.app_context():
        return db.session.scalar(select(func.count(WebhookEvent.id)))
