"""The Events API (retrieve, list with filters and pagination), driven through the official SDK."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from flask import Flask
from shapes import assert_stripe_shape

from stripe_emulator import core


def emit(app: Flask, type: str, created: int | None = None) -> dict[str, Any]:
    """Record an event as the API modules do; ``created`` back-dates it."""
    obj = {"id": core.new_id("prod", 14), "object": "product", "name": "Mug"}
    with app.app_context():
        event = core.record_event(type, obj)
        if created is not None:
            event["created"] = created
            core.save(event)
    return event


def ids(page: stripe.ListObject) -> list[str]:
    return [e.id for e in page.data]


def test_retrieve_event_has_the_sdk_shape(emulator_app, stripe_client):
    event = emit(emulator_app, "product.created")
    fetched = stripe_client.v1.events.retrieve(event["id"])
    assert_stripe_shape(fetched, stripe.Event)
    assert fetched.id == event["id"] and fetched.id.startswith("evt_")
    assert fetched.type == "product.created"
    assert fetched.data.object.id == event["data"]["object"]["id"]
    assert fetched.api_version == core.API_VERSION
    assert fetched.pending_webhooks == 0


def test_retrieve_unknown_event_is_404(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.events.retrieve("evt_missing")
    assert exc.value.http_status == 404
    assert exc.value.code == "resource_missing"


def test_events_need_the_secret_key(emulator_app, emulator_url):
    event = emit(emulator_app, "product.created")
    client = stripe.StripeClient("pk_test_emulator", base_addresses={"api": emulator_url})
    with pytest.raises(stripe.AuthenticationError):
        client.v1.events.retrieve(event["id"])
    with pytest.raises(stripe.AuthenticationError):
        client.v1.events.list()


def test_list_is_newest_first_and_pages_with_starting_after(emulator_app, stripe_client):
    created = [emit(emulator_app, "product.created")["id"] for _ in range(5)]
    newest_first = list(reversed(created))

    first = stripe_client.v1.events.list({"limit": 2})
    assert_stripe_shape(first, stripe.ListObject[stripe.Event])
    assert ids(first) == newest_first[:2] and first.has_more is True
    assert first.url == "/v1/events"

    second = stripe_client.v1.events.list({"limit": 2, "starting_after": first.data[-1].id})
    assert ids(second) == newest_first[2:4] and second.has_more is True
    last = stripe_client.v1.events.list({"limit": 2, "starting_after": second.data[-1].id})
    assert ids(last) == newest_first[4:] and last.has_more is False

    before = stripe_client.v1.events.list({"limit": 2, "ending_before": newest_first[3]})
    assert ids(before) == newest_first[1:3]

    # The SDK's auto-pagination walks every page.
    walked = [e.id for e in stripe_client.v1.events.list({"limit": 2}).auto_paging_iter()]
    assert walked == newest_first


def test_list_filters_by_type_types_and_wildcard(emulator_app, stripe_client):
    pi = emit(emulator_app, "payment_intent.succeeded")["id"]
    charge = emit(emulator_app, "charge.succeeded")["id"]
    failed = emit(emulator_app, "payment_intent.payment_failed")["id"]

    assert ids(stripe_client.v1.events.list({"type": "charge.succeeded"})) == [charge]
    assert ids(stripe_client.v1.events.list({"type": "payment_intent.*"})) == [failed, pi]
    both = stripe_client.v1.events.list({"types": ["payment_intent.succeeded", "charge.succeeded"]})
    assert ids(both) == [charge, pi]
    assert ids(stripe_client.v1.events.list({"type": "invoice.paid"})) == []


def test_list_filters_by_created(emulator_app, stripe_client):
    old = emit(emulator_app, "product.created", created=1_000)["id"]
    mid = emit(emulator_app, "product.created", created=2_000)["id"]
    new = emit(emulator_app, "product.created", created=3_000)["id"]

    def listed(created: Any) -> list[str]:
        return ids(stripe_client.v1.events.list({"created": created}))

    assert listed({"gte": 2_000}) == [new, mid]
    assert listed({"gt": 2_000}) == [new]
    assert listed({"lte": 2_000}) == [mid, old]
    assert listed({"lt": 2_000}) == [old]
    assert listed({"gte": 1_500, "lt": 3_000}) == [mid]
    assert listed(2_000) == [mid]


def test_list_rejects_bad_parameters(emulator_app, stripe_client):
    emit(emulator_app, "product.created")
    for params in (
        {"limit": 0},
        {"starting_after": "evt_missing"},
        {"created": {"gte": "yesterday"}},
        {"type": "charge.succeeded", "types": ["charge.failed"]},
    ):
        with pytest.raises(stripe.InvalidRequestError):
            stripe_client.v1.events.list(params)
