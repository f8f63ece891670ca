"""Helpers for tests that drive Stripe Checkout through the emulator (server side)."""

from __future__ import annotations

from typing import Any

import requests
from flask import Flask
from sqlalchemy import select

from storefront import payments, webhooks
from storefront.extensions import db
from storefront.models import Order, Price

CARD_OK = "4242424242424242"


def price_id(app: Flask, lookup_key: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Price.id).where(Price.lookup_key == lookup_key))


def add_to_cart(client, app: Flask, lookup_key: str, quantity: int = 1) -> None:
    resp = client.post(
        "/cart/add", data={"price_id": str(price_id(app, lookup_key)), "quantity": quantity}
    )
    assert resp.status_code == 303


def session_id_from(location: str) -> str:
    """The Checkout Session id at the end of ``<emulator>/c/pay/<cs_id>``."""
    assert "/c/pay/cs_" in location, location
    return location.rsplit("/", 1)[1]


def pay_hosted_page(
    emulator_url: str,
    cs_id: str,
    *,
    email: str = "ada@example.com",
    card: str = CARD_OK,
    shipping_rate: str | None = None,
) -> dict[str, Any]:
    """Pay on the hosted page the way its JavaScript does (the emulator's page API), with
    the shipping address a session that collects one needs (and the rate picked, if any)."""
    data = {
        "email": email,
        "billing_name": "Ada Lovelace",
        "card[number]": card,
        "card[exp_month]": "12",
        "card[exp_year]": "2034",
        "card[cvc]": "123",
        "shipping[name]": "Ada Lovelace",
        "shipping[address][line1]": "1 Main St",
        "shipping[address][city]": "Albany",
        "shipping[address][state]": "NY",
        "shipping[address][postal_code]": "12207",
        "shipping[address][country]": "US",
    }
    if shipping_rate:
        data["shipping_rate"] = shipping_rate
    resp = requests.post(f"{emulator_url}/v1/payment_pages/{cs_id}/confirm", data=data, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def stripe_events(app: Flask, *types: str) -> list[Any]:
    """The emulator's events, oldest first (optionally of some types only)."""
    with app.app_context():
        page = payments.client().v1.events.list(params={"limit": 100})
        events = list(reversed(page.data))
    return [e for e in events if not types or e.type in types]


class EventFeed:
    """Feeds the emulator's events to ``webhooks.process_event``, each once, in order."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.seen: set[str] = set()

    def deliver(self, *, reverse: bool = False) -> list[str]:
        new = [e for e in stripe_events(self.app) if e.id not in self.seen]
        if reverse:
            new.reverse()
        with self.app.test_request_context("/"):
            for event in new:
                webhooks.process_event(event)
                self.seen.add(event.id)
        return [e.type for e in new]


def order_by_public_id(public_id: str) -> Order:
    return db.session.scalar(select(Order).where(Order.public_id == public_id))


# --------------------------------------------------------------------------- the shop's Pay

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Main St",
    "line2": "",
    "city": "Albany",
    "state": "NY",
    "postal_code": "12207",
    "country": "US",
}


def checkout_page_data(client) -> dict[str, Any]:
    """GET /checkout/ and the page's JSON data (what checkout.js reads)."""
    import json
    import re

    response = client.get("/checkout/")
    assert response.status_code == 200, response.status_code
    text = response.get_data(as_text=True)
    raw = re.search(
        r'<script type="application/json" id="checkout-data">(.*?)</script>', text, re.S
    )
    return json.loads(raw.group(1))


def press_pay(
    client,
    *,
    rate: str = "standard",
    email: str = "ada@example.com",
    total: int | None = None,
    page: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    **address: str,
):
    """What checkout.js does on Pay: POST the address, rate and shown total (from the page
    unless given). Returns the response."""
    page = page or checkout_page_data(client)
    if total is None:
        total = next(r["total"] for r in page["rates"] if r["code"] == rate)
    body = {"email": email, "shipping_rate": rate, "total": total, **ADDRESS, **address}
    return client.post(page["payUrl"], json=body, headers=headers or {})


def pay_intent_secret(client, **kwargs: Any) -> str:
    """Press Pay and return the client secret it answers with."""
    response = press_pay(client, **kwargs)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["clientSecret"]
