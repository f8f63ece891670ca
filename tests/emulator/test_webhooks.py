"""Webhook endpoints and signed webhook delivery, driven through the official SDK."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from flask import Flask
from shapes import assert_stripe_shape
from webhook_receiver import Receiver, start_receiver

from stripe_emulator import core, create_app, webhooks

SECRET_KEY = "sk_test_emulator"
AUTH = {"Authorization": f"Bearer {SECRET_KEY}"}
FAST_RETRIES = [0.2, 0.3, 0.3]


def make_app(tmp_path, **config: Any) -> Flask:
    settings = {
        "EMULATOR_DB": str(tmp_path / "em.sqlite3"),
        "TESTING": True,
        "EMULATOR_WEBHOOK_RETRY_DELAYS": FAST_RETRIES,
        "EMULATOR_WEBHOOK_SEED": 1234,
        "EMULATOR_WEBHOOK_TIMEOUT": 5,
    }
    settings.update(config)
    return create_app(settings)


@pytest.fixture
def emulator_app(tmp_path) -> Iterator[Flask]:
    """Overrides conftest's app: quick retries and a fixed shuffle seed."""
    app = make_app(tmp_path)
    yield app
    webhooks.stop_delivery(app)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = start_receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def emit(app: Flask, type: str = "product.created", **fields: Any) -> dict[str, Any]:
    """Record an event the way the API modules do (a state change of some object)."""
    obj = {"id": core.new_id("prod", 14), "object": "product", "name": "Mug", **fields}
    with app.app_context():
        return core.record_event(type, obj)


def post_endpoint(app: Flask, url: str, **form: str) -> dict[str, Any]:
    """Create an endpoint through the app's test client (for apps not served over HTTP)."""
    data = {"url": url, "enabled_events[]": "*", **form}
    response = app.test_client().post("/v1/webhook_endpoints", data=data, headers=AUTH)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def emulator(url: str, path: str, method: str = "GET", **form: Any) -> dict[str, Any]:
    """Call one of the emulator's ``/_emulator`` test helpers."""
    data = urllib.parse.urlencode(form).encode() if method == "POST" else None
    req = urllib.request.Request(url + path, data=data, method=method, headers=AUTH)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def deliveries(url: str, event_id: str) -> dict[str, Any]:
    return emulator(url, f"/_emulator/deliveries?event={event_id}")


def wait_until(predicate, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not reached before the deadline")


def endpoint_for(client: stripe.StripeClient, url: str, **params: Any) -> stripe.WebhookEndpoint:
    params.setdefault("enabled_events", ["*"])
    return client.v1.webhook_endpoints.create({"url": url, **params})


# --------------------------------------------------------------------------- endpoints


def test_endpoint_create_returns_secret_once_and_sdk_shape(stripe_client):
    created = stripe_client.v1.webhook_endpoints.create(
        {
            "url": "https://shop.example/webhooks/stripe",
            "enabled_events": ["payment_intent.succeeded", "charge.refunded"],
            "description": "shop",
            "metadata": {"env": "test"},
        }
    )
    assert_stripe_shape(created, stripe.WebhookEndpoint)
    assert created.id.startswith("we_")
    assert created.secret.startswith("whsec_") and len(created.secret) > 20
    assert created.status == "enabled"
    assert created.enabled_events == ["payment_intent.succeeded", "charge.refunded"]
    assert created.description == "shop" and created.metadata.to_dict() == {"env": "test"}

    fetched = stripe_client.v1.webhook_endpoints.retrieve(created.id)
    assert_stripe_shape(fetched, stripe.WebhookEndpoint)
    assert fetched.id == created.id
    assert "secret" not in fetched.last_response.data

    listed = stripe_client.v1.webhook_endpoints.list()
    assert_stripe_shape(listed, stripe.ListObject[stripe.WebhookEndpoint])
    assert [e.id for e in listed.data] == [created.id]


def test_endpoint_update_and_delete(stripe_client):
    created = endpoint_for(stripe_client, "https://a.example/hook", metadata={"a": "1", "b": "2"})
    updated = stripe_client.v1.webhook_endpoints.update(
        created.id,
        {
            "url": "https://b.example/hook",
            "enabled_events": ["invoice.paid"],
            "disabled": True,
            "description": "renamed",
            "metadata": {"a": "", "c": "3"},
        },
    )
    assert_stripe_shape(updated, stripe.WebhookEndpoint)
    assert updated.url == "https://b.example/hook"
    assert updated.enabled_events == ["invoice.paid"]
    assert updated.status == "disabled"
    assert updated.description == "renamed"
    assert updated.metadata.to_dict() == {"b": "2", "c": "3"}
    assert stripe_client.v1.webhook_endpoints.update(created.id, {"disabled": False}).status == (
        "enabled"
    )

    deleted = stripe_client.v1.webhook_endpoints.delete(created.id)
    assert deleted.last_response.data == {
        "id": created.id,
        "object": "webhook_endpoint",
        "deleted": True,
    }
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.webhook_endpoints.retrieve(created.id)
    assert exc.value.http_status == 404


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"enabled_events": ["*"]}, "url"),
        ({"url": "https://a.example/hook"}, "enabled_events"),
        ({"url": "not a url", "enabled_events": ["*"]}, "url"),
        ({"url": "https://a.example/hook", "enabled_events": ["payment_intent.paid"]}, None),
        (
            {
                "url": "https://a.example/hook",
                "enabled_events": ["*"],
                "metadata": {"emulator_fault": "sometimes"},
            },
            "metadata[emulator_fault]",
        ),
    ],
)
def test_endpoint_create_rejects_bad_params(stripe_client, params, param):
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stripe_client.v1.webhook_endpoints.create(params)
    assert exc.value.http_status == 400
    if param:
        assert exc.value.param == param
    else:
        assert exc.value.param.startswith("enabled_events")


def test_endpoints_need_the_secret_key(emulator_url):
    client = stripe.StripeClient("pk_test_emulator", base_addresses={"api": emulator_url})
    with pytest.raises(stripe.AuthenticationError):
        client.v1.webhook_endpoints.list()


# --------------------------------------------------------------------------- delivery


def test_event_is_delivered_with_a_valid_stripe_signature(emulator_app, stripe_client, receiver):
    endpoint = endpoint_for(stripe_client, receiver.url + "/webhooks/stripe")
    event = emit(emulator_app)

    (delivery,) = receiver.wait_for(1)
    assert delivery.path == "/webhooks/stripe"
    assert delivery.headers["Content-Type"] == "application/json; charset=utf-8"
    assert delivery.headers["User-Agent"] == "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
    sig = delivery.headers["Stripe-Signature"]
    verified = stripe.Webhook.construct_event(delivery.body, sig, endpoint.secret)
    assert verified.id == event["id"]
    assert verified.type == "product.created"
    assert verified.data.object.id == event["data"]["object"]["id"]
    assert_stripe_shape(json.loads(delivery.body), stripe.Event)

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body, sig, "whsec_not_the_secret")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body.replace(b"Mug", b"Cup"), sig, endpoint.secret)


def test_event_from_an_api_call_reaches_the_receiver(stripe_client, receiver):
    endpoint = endpoint_for(stripe_client, receiver.url, enabled_events=["product.created"])
    product = stripe_client.v1.products.create({"name": "Espresso cup"})
    (delivery,) = receiver.wait_for(1)
    event = stripe.Webhook.construct_event(
        delivery.body, delivery.headers["Stripe-Signature"], endpoint.secret
    )
    assert event.type == "product.created"
    assert event.data.object.id == product.id
    assert stripe_client.v1.events.retrieve(event.id).data.object.name == "Espresso cup"


def test_enabled_events_select_what_each_endpoint_receives(
    emulator_app, emulator_url, stripe_client, receiver
):
    endpoint_for(stripe_client, receiver.url + "/products", enabled_events=["product.created"])
    endpoint_for(stripe_client, receiver.url + "/prices", enabled_events=["price.created"])
    endpoint_for(stripe_client, receiver.url + "/all", enabled_events=["*"])
    product_event = emit(emulator_app, "product.created")
    price_event = emit(emulator_app, "price.created")
    receiver.wait_for(2, "/all")
    receiver.wait_for(1, "/products")
    receiver.wait_for(1, "/prices")
    emulator(emulator_url, "/_emulator/flush_webhooks", "POST")

    assert receiver.event_ids("/all") == [product_event["id"], price_event["id"]]
    assert receiver.event_ids("/products") == [product_event["id"]]
    assert receiver.event_ids("/prices") == [price_event["id"]]


def test_failed_delivery_is_retried_until_the_receiver_accepts(
    emulator_app, emulator_url, stripe_client, receiver
):
    receiver.statuses = [500, 503]
    endpoint_for(stripe_client, receiver.url)
    event = emit(emulator_app)
    assert stripe_client.v1.events.retrieve(event["id"]).pending_webhooks == 1

    got = receiver.wait_for(3)
    assert [d.event["id"] for d in got] == [event["id"]] * 3
    # Each retry is signed afresh.
    assert all(d.headers["Stripe-Signature"].startswith("t=") for d in got)
    log = wait_until(lambda: (d := deliveries(emulator_url, event["id"]))["pending"] == 0 and d)
    assert [(a["attempt"], a["status_code"]) for a in log["data"]] == [(1, 500), (2, 503), (3, 200)]
    assert log["deliveries"][0]["status"] == "succeeded"
    # Backoff: the second attempt waited the first configured delay.
    assert log["data"][1]["at"] - log["data"][0]["at"] >= FAST_RETRIES[0] - 0.05
    assert stripe_client.v1.events.retrieve(event["id"]).pending_webhooks == 0
    assert stripe_client.v1.events.list({"delivery_success": True}).data[0].id == event["id"]


def test_unreachable_endpoint_is_retried_then_given_up(
    emulator_app, emulator_url, stripe_client, refusing_port
):
    endpoint_for(stripe_client, f"http://127.0.0.1:{refusing_port}")
    event = emit(emulator_app)

    log = wait_until(
        lambda: (
            (d := deliveries(emulator_url, event["id"]))["deliveries"][0]["status"] == "failed"
            and d
        )
    )
    assert [a["attempt"] for a in log["data"]] == [1, 2, 3, 4]
    assert all(a["status_code"] is None and a["error"] for a in log["data"])
    # Never reached: Stripe keeps counting it as pending.
    assert stripe_client.v1.events.retrieve(event["id"]).pending_webhooks == 1
    assert stripe_client.v1.events.list({"delivery_success": False}).data[0].id == event["id"]


def test_disabled_endpoint_gets_nothing_but_the_event_is_listed(
    emulator_app, emulator_url, stripe_client, receiver
):
    off = endpoint_for(stripe_client, receiver.url + "/off")
    endpoint_for(stripe_client, receiver.url + "/on")
    stripe_client.v1.webhook_endpoints.update(off.id, {"disabled": True})
    event = emit(emulator_app, "payment_intent.succeeded")

    receiver.wait_for(1, "/on")
    assert emulator(emulator_url, "/_emulator/flush_webhooks", "POST") == {"pending": 0}
    assert receiver.received("/off") == []
    assert off.id not in {
        d["endpoint"] for d in deliveries(emulator_url, event["id"])["deliveries"]
    }
    assert [e.id for e in stripe_client.v1.events.list({"type": "payment_intent.succeeded"})] == [
        event["id"]
    ]


def test_one_endpoint_receives_events_in_order(emulator_app, stripe_client, receiver):
    endpoint_for(stripe_client, receiver.url)
    ids = [emit(emulator_app)["id"] for _ in range(10)]
    receiver.wait_for(10)
    assert receiver.event_ids() == ids


def test_slow_endpoint_does_not_hold_up_another(emulator_app, stripe_client, receiver):
    slow = start_receiver()
    slow.hold = threading.Event()  # the slow endpoint answers nothing until released
    try:
        endpoint_for(stripe_client, slow.url)
        endpoint_for(stripe_client, receiver.url)
        emit(emulator_app)
        emit(emulator_app)
        # Both reach the other endpoint while the slow one still has not answered the first
        # (an order, rather than a wall-clock bound that a busy machine could miss).
        receiver.wait_for(2, timeout=10)
        slow.wait_for(1)
    finally:
        slow.hold.set()
        slow.server.shutdown()
        slow.server.server_close()


def test_flush_sends_held_back_deliveries_now(emulator_app, emulator_url, stripe_client, receiver):
    endpoint_for(
        stripe_client,
        receiver.url,
        metadata={"emulator_fault": "late", "emulator_delay_ms": "60000"},
    )
    event = emit(emulator_app)
    assert emulator(emulator_url, "/_emulator/flush_webhooks", "POST") == {"pending": 0}
    assert receiver.event_ids() == [event["id"]]


def test_pending_deliveries_resume_after_a_restart(tmp_path, receiver):
    first = make_app(tmp_path)
    try:
        endpoint = post_endpoint(
            first,
            receiver.url,
            **{"metadata[emulator_fault]": "late", "metadata[emulator_delay_ms]": "300"},
        )
        event = emit(first)
    finally:
        webhooks.stop_delivery(first)  # the emulator goes down before the event left
    assert receiver.received() == []

    second = make_app(tmp_path)
    try:
        (delivery,) = receiver.wait_for(1)
        verified = stripe.Webhook.construct_event(
            delivery.body, delivery.headers["Stripe-Signature"], endpoint["secret"]
        )
        assert verified.id == event["id"]
    finally:
        webhooks.stop_delivery(second)


def test_deleting_an_endpoint_cancels_its_pending_deliveries(
    emulator_app, emulator_url, stripe_client, receiver
):
    endpoint = endpoint_for(stripe_client, receiver.url, metadata={"emulator_fault": "late"})
    event = emit(emulator_app)
    assert stripe_client.v1.events.retrieve(event["id"]).pending_webhooks == 1
    stripe_client.v1.webhook_endpoints.delete(endpoint.id)
    log = deliveries(emulator_url, event["id"])
    assert [d["status"] for d in log["deliveries"]] == ["skipped"]
    assert stripe_client.v1.events.retrieve(event["id"]).pending_webhooks == 0
    assert emulator(emulator_url, "/_emulator/flush_webhooks", "POST") == {"pending": 0}
    assert receiver.received() == []


def test_reset_forgets_queued_deliveries(emulator_app, emulator_url, stripe_client, receiver):
    endpoint_for(stripe_client, receiver.url, metadata={"emulator_fault": "late"})
    event = emit(emulator_app)
    assert deliveries(emulator_url, event["id"])["pending"] == 1
    emulator(emulator_url, "/_emulator/reset", "POST")
    assert deliveries(emulator_url, event["id"]) == {
        "object": "list",
        "data": [],
        "deliveries": [],
        "pending": 0,
    }


# --------------------------------------------------------------------------- fault modes


def test_fault_duplicate_delivers_each_event_twice(emulator_app, stripe_client, receiver):
    endpoint = endpoint_for(stripe_client, receiver.url, metadata={"emulator_fault": "duplicate"})
    first, second = emit(emulator_app), emit(emulator_app)
    got = receiver.wait_for(4)
    assert sorted(d.event["id"] for d in got) == sorted([first["id"]] * 2 + [second["id"]] * 2)
    for d in got:
        stripe.Webhook.construct_event(d.body, d.headers["Stripe-Signature"], endpoint.secret)


def test_fault_shuffle_delivers_a_batch_out_of_order(emulator_app, stripe_client, receiver):
    endpoint_for(stripe_client, receiver.url, metadata={"emulator_fault": "shuffle"})
    ids = [emit(emulator_app)["id"] for _ in range(8)]
    receiver.wait_for(8)
    got = receiver.event_ids()
    assert sorted(got) == sorted(ids)
    assert got != ids  # seeded: the order is deterministic, and not the original one


def test_fault_shuffle_is_reproducible_with_a_seed(tmp_path, receiver):
    orders = []
    for run in range(2):
        # A window no machine outlasts keeps the six events in one batch (a busy machine
        # once took longer than the default 0.5 s between them, and split it differently in
        # the two runs); the flush then sends the batch in its shuffled order.
        app = make_app(
            tmp_path / str(run),
            EMULATOR_WEBHOOK_FAULT="shuffle",
            EMULATOR_WEBHOOK_SHUFFLE_WINDOW=3600,
        )
        try:
            post_endpoint(app, f"{receiver.url}/{run}")
            ids = [emit(app)["id"] for _ in range(6)]
            flushed = app.test_client().post("/_emulator/flush_webhooks", headers=AUTH)
            assert flushed.get_json() == {"pending": 0}
            receiver.wait_for(6, f"/{run}")
            orders.append([ids.index(i) for i in receiver.event_ids(f"/{run}")])
        finally:
            webhooks.stop_delivery(app)
    assert orders[0] == orders[1]
    assert orders[0] != list(range(6))


def test_fault_late_holds_each_event_back(emulator_app, stripe_client, receiver):
    endpoint_for(
        stripe_client,
        receiver.url,
        metadata={"emulator_fault": "late", "emulator_delay_ms": "400"},
    )
    sent = time.time()
    event = emit(emulator_app)
    (delivery,) = receiver.wait_for(1)
    assert delivery.event["id"] == event["id"]
    assert delivery.received_at - sent >= 0.4


def test_fault_drop_first_loses_the_first_attempt(
    emulator_app, emulator_url, stripe_client, receiver
):
    endpoint_for(stripe_client, receiver.url, metadata={"emulator_fault": "drop_first"})
    event = emit(emulator_app)
    (delivery,) = receiver.wait_for(1)
    assert delivery.event["id"] == event["id"]
    log = wait_until(lambda: (d := deliveries(emulator_url, event["id"]))["pending"] == 0 and d)
    assert [(a["attempt"], a["dropped"], a["status_code"]) for a in log["data"]] == [
        (1, True, None),
        (2, False, 200),
    ]


def test_fault_modes_combine(emulator_app, stripe_client, receiver):
    endpoint_for(stripe_client, receiver.url, metadata={"emulator_fault": "duplicate,drop_first"})
    event = emit(emulator_app)
    got = receiver.wait_for(2)
    assert [d.event["id"] for d in got] == [event["id"]] * 2


def test_fault_from_setting_applies_unless_the_endpoint_overrides_it(tmp_path, receiver):
    app = make_app(tmp_path, EMULATOR_WEBHOOK_FAULT="duplicate")
    try:
        post_endpoint(app, receiver.url + "/default")
        post_endpoint(app, receiver.url + "/plain", **{"metadata[emulator_fault]": "none"})
        event = emit(app)
        receiver.wait_for(2, "/default")
        receiver.wait_for(1, "/plain")
        flushed = app.test_client().post("/_emulator/flush_webhooks", headers=AUTH)
        assert flushed.get_json() == {"pending": 0}
        assert receiver.event_ids("/default") == [event["id"]] * 2
        assert receiver.event_ids("/plain") == [event["id"]]
    finally:
        webhooks.stop_delivery(app)


def test_unknown_fault_setting_is_refused_at_start(tmp_path):
    with pytest.raises(ValueError, match="sometimes"):
        make_app(tmp_path, EMULATOR_WEBHOOK_FAULT="sometimes")


def test_event_recorded_inside_a_transaction_leaves_after_commit(
    emulator_app, stripe_client, receiver
):
    endpoint_for(stripe_client, receiver.url)
    obj = {"id": "prod_tx", "object": "product", "name": "Mug"}
    with emulator_app.app_context(), core.transaction():
        event = core.record_event("product.created", obj)
        time.sleep(0.3)  # the sender is awake but must not see the uncommitted event
        assert receiver.received() == []
    (delivery,) = receiver.wait_for(1)
    assert delivery.event["id"] == event["id"]
    assert delivery.event["pending_webhooks"] == 1
