"""``flask stripe reconcile`` and ``flask stripe events`` against the emulator."""

from __future__ import annotations

import re

from sqlalchemy import select

from storefront import payments
from storefront.extensions import db
from storefront.models import Order, OrderStatus, WebhookEvent
from tests.webhook_helpers import (
    get_order,
    make_event,
    make_order,
    outbox_count,
    payment_intent,
    post_event,
    stock,
)


def endpoint_id(app) -> str:
    with app.app_context():
        (endpoint,) = payments.client().v1.webhook_endpoints.list().data
        return endpoint.id


def set_endpoint(app, **params) -> None:
    with app.app_context():
        payments.client().v1.webhook_endpoints.update(endpoint_id(app), params=params)


def pay(app, public_id: str, card: str = "pm_card_visa") -> str:
    """Create and confirm the order's PaymentIntent through the SDK, as checkout would."""
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        pi = payments.client().v1.payment_intents.create(
            params={
                "amount": order.amount_total,
                "currency": order.currency,
                "metadata": {"order_id": order.public_id},
                "allowed_payment_method_types": ["card"],
            }
        )
        order.stripe_payment_intent_id = pi.id
        db.session.commit()
        payments.client().v1.payment_intents.confirm(pi.id, params={"payment_method": card})
        return pi.id


def counts(output: str) -> dict[str, int]:
    found = re.search(
        r"seen (\d+), already processed (\d+), processed now (\d+) \((\d+) ignored\), failed (\d+)",
        output,
    )
    assert found, output
    keys = ("seen", "already", "now", "ignored", "failed")
    return dict(zip(keys, map(int, found.groups()), strict=True))


def stored_outcomes(app) -> dict[str, str | None]:
    with app.app_context():
        return {r.type: r.outcome for r in db.session.scalars(select(WebhookEvent))}


def test_reconcile_after_missed_events_fulfils_once(live_shop):
    app = live_shop.app
    set_endpoint(app, disabled=True)
    public_id = make_order(app, quantity=1)
    before = stock(app)
    pay(app, public_id)
    # The shop heard nothing: the order is still pending.
    assert get_order(app, public_id).status == OrderStatus.PENDING

    runner = app.test_cli_runner()
    result = runner.invoke(args=["stripe", "reconcile"])
    assert result.exit_code == 0, result.output
    first = counts(result.output)
    assert first["seen"] >= 1  # payment_intent.succeeded (and whatever else the shop subscribes to)
    assert first["already"] == 0
    assert first["now"] == first["seen"]
    assert first["failed"] == 0
    order = get_order(app, public_id)
    assert order.status == OrderStatus.PAID
    assert outbox_count(app, public_id) == 1
    assert stock(app) == before - 1
    assert stored_outcomes(app)["payment_intent.succeeded"] == "processed"

    again = counts(runner.invoke(args=["stripe", "reconcile"]).output)
    assert again == {**first, "already": first["seen"], "now": 0, "ignored": 0}
    assert outbox_count(app, public_id) == 1


def test_reconcile_skips_events_the_webhook_already_processed(live_shop):
    from tests.live import wait_until

    app = live_shop.app
    public_id = make_order(app, quantity=1)
    pay(app, public_id)
    wait_until(lambda: get_order(app, public_id).status == OrderStatus.PAID)
    wait_until(lambda: stored_outcomes(app).get("payment_intent.succeeded") == "processed")
    result = app.test_cli_runner().invoke(args=["stripe", "reconcile"])
    got = counts(result.output)
    assert got["already"] >= 1
    assert got["failed"] == 0
    assert outbox_count(app, public_id) == 1


def test_reconcile_since_excludes_older_events(live_shop):
    app = live_shop.app
    set_endpoint(app, disabled=True)
    public_id = make_order(app, quantity=1)
    pay(app, public_id)
    result = app.test_cli_runner().invoke(args=["stripe", "reconcile", "--since", "2100-01-01"])
    assert result.exit_code == 0, result.output
    assert counts(result.output)["seen"] == 0
    assert get_order(app, public_id).status == OrderStatus.PENDING


def test_reconcile_rejects_a_bad_since(app):
    result = app.test_cli_runner().invoke(args=["stripe", "reconcile", "--since", "yesterday"])
    assert result.exit_code == 2
    assert "is not an ISO time" in result.output


def test_reconcile_retries_failed_events_and_reports_failures(live_shop, monkeypatch):
    from storefront import webhooks

    app = live_shop.app
    set_endpoint(app, disabled=True)
    public_id = make_order(app, quantity=1)
    pay(app, public_id)

    def broken(event):
        raise RuntimeError("fulfilment backend down")

    monkeypatch.setitem(webhooks._handlers, "payment_intent.succeeded", broken)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["stripe", "reconcile"])
    assert result.exit_code == 1
    assert counts(result.output)["failed"] == 1
    assert "RuntimeError: fulfilment backend down" in result.output
    assert get_order(app, public_id).status == OrderStatus.PENDING

    listed = runner.invoke(args=["stripe", "events", "--failed"])
    assert "payment_intent.succeeded" in listed.output
    assert "failed (attempts 1)" in listed.output

    monkeypatch.undo()
    result = runner.invoke(args=["stripe", "reconcile"])
    assert result.exit_code == 0, result.output
    assert counts(result.output)["failed"] == 0
    assert get_order(app, public_id).status == OrderStatus.PAID
    assert "No failed events." in runner.invoke(args=["stripe", "events", "--failed"]).output


def test_events_lists_stored_events_and_outcomes(app, client):
    runner = app.test_cli_runner()
    assert "No events stored yet." in runner.invoke(args=["stripe", "events"]).output
    public_id = make_order(app, pi_id="pi_listed")
    post_event(
        client,
        make_event(
            "payment_intent.succeeded",
            payment_intent(public_id, pi_id="pi_listed", status="succeeded", amount=3600),
            event_id="evt_listed",
        ),
    )
    post_event(client, make_event("customer.created", {"id": "cus_1"}, event_id="evt_other"))
    output = runner.invoke(args=["stripe", "events"]).output
    lines = output.strip().splitlines()
    assert len(lines) == 2
    assert "evt_other" in lines[0] and "ignored" in lines[0]  # newest first
    assert "evt_listed" in lines[1] and "pi_listed" in lines[1] and "processed" in lines[1]
    assert "No failed events." in runner.invoke(args=["stripe", "events", "--failed"]).output


def test_reconcile_and_the_webhook_agree_on_a_shipped_order(live_shop):
    """Two shoppers pay with Express to an address: one order hears the webhook, the other
    only `flask stripe reconcile`; both end paid with the same address, rate, total and card."""
    from tests.stripe_helpers import checkout_page_data, pay_intent_secret

    app = live_shop.app
    results = {}
    for via in ("webhook", "reconcile"):
        set_endpoint(app, disabled=via == "reconcile")
        shopper = app.test_client()
        with app.app_context():
            from storefront.models import Price

            pid = db.session.scalar(
                select(Price.id).where(Price.lookup_key == "colombia-huila-usd")
            )
        cart = shopper.get("/cart/").get_data(as_text=True)
        form_token = re.search(r'name="csrf_token" value="([^"]+)"', cart).group(1)
        shopper.post("/cart/add", data={"price_id": pid, "quantity": "1", "csrf_token": form_token})
        data = checkout_page_data(shopper)
        pay_intent_secret(
            shopper, rate="express", page=data, headers={"X-CSRFToken": data["csrfToken"]}
        )
        with app.app_context():
            order = db.session.scalars(select(Order).order_by(Order.id.desc())).first()
            payments.client().v1.payment_intents.confirm(
                order.stripe_payment_intent_id, params={"payment_method": "pm_card_visa"}
            )
            results[via] = order.public_id
    result = app.test_cli_runner().invoke(args=["stripe", "reconcile"])
    assert result.exit_code == 0, result.output
    from tests.live import wait_until

    wait_until(lambda: get_order(app, results["webhook"]).status == OrderStatus.PAID)
    shipped = []
    for public_id in results.values():
        order = get_order(app, public_id)
        assert order.status == OrderStatus.PAID
        shipped.append(
            (
                order.shipping_rate_code,
                order.shipping_amount,
                order.amount_total,
                order.ship_line1,
                order.card_brand,
                order.card_last4,
            )
        )
    assert shipped[0] == shipped[1] == ("express", 1500, 3150, "1 Main St", "visa", "4242")
    # Run again: nothing new, nothing failed.
    again = counts(app.test_cli_runner().invoke(args=["stripe", "reconcile"]).output)
    assert again["failed"] == 0 and again["now"] == 0
