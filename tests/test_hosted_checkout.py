"""Stripe Checkout (hosted page) for one-time orders, against the emulator via the SDK."""

from __future__ import annotations

import copy
import logging
import threading

import pytest
import stripe
from sqlalchemy import func, select

from storefront import billing, hosted_checkout, payments, webhooks
from storefront.extensions import db
from storefront.models import Order, OutboxMessage, Price, Product
from storefront.payments import PaymentError
from tests import accounts
from tests.stripe_helpers import (
    EventFeed,
    add_to_cart,
    order_by_public_id,
    pay_hosted_page,
    session_id_from,
    stripe_events,
)
from tests.webhook_helpers import get_order, make_event, post_event

BEANS = "ethiopia-yirgacheffe-usd"
MUG = "stoneware-mug-usd"


@pytest.fixture
def shop(stripe_app):
    return stripe_app.test_client()


def start(shop) -> str:
    resp = shop.post("/checkout/stripe/")
    assert resp.status_code == 303, resp.get_data(as_text=True)
    return session_id_from(resp.headers["Location"])


def retrieve(app, cs_id: str):
    with app.app_context():
        return payments.retrieve_checkout_session(cs_id, line_items=True)


def only_order(app) -> Order:
    orders = db.session.scalars(select(Order)).all()
    assert len(orders) == 1
    return orders[0]


def confirmations(app) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.kind == "order_confirmation")
    )


def catalog_amount(lookup_key: str) -> int:
    return db.session.scalar(select(Price.unit_amount).where(Price.lookup_key == lookup_key))


def test_session_parameters_come_from_the_database(stripe_app, shop):
    add_to_cart(shop, stripe_app, BEANS, 2)
    add_to_cart(shop, stripe_app, MUG, 1)
    cs_id = start(shop)
    cs = retrieve(stripe_app, cs_id)
    with stripe_app.app_context():
        order = only_order(stripe_app)
        expected = catalog_amount(BEANS) * 2 + catalog_amount(MUG)
        synced = {
            p.stripe_price_id
            for p in db.session.scalars(select(Price).where(Price.lookup_key.in_([BEANS, MUG])))
        }
        assert order.amount_total == expected
        assert order.stripe_checkout_session_id == cs_id
        public_id = order.public_id
    assert cs.mode == "payment"
    assert cs.amount_total == expected
    assert cs.currency == "usd"
    assert cs.metadata["order_id"] == public_id
    assert cs.client_reference_id == public_id
    assert cs.success_url == (
        f"http://localhost/orders/{public_id}?session_id={{CHECKOUT_SESSION_ID}}"
    )
    assert cs.cancel_url == "http://localhost/cart/"
    assert {li.price.id for li in cs.line_items.data} == synced
    assert sorted(li.quantity for li in cs.line_items.data) == [1, 2]


def test_payment_intent_carries_the_order_id(stripe_app, shop, emulator):
    add_to_cart(shop, stripe_app, BEANS)
    cs_id = start(shop)
    pay_hosted_page(emulator.url, cs_id)
    cs = retrieve(stripe_app, cs_id)
    with stripe_app.app_context():
        pi = payments.client().v1.payment_intents.retrieve(cs.payment_intent)
        assert pi.metadata["order_id"] == only_order(stripe_app).public_id
        assert pi.amount == only_order(stripe_app).amount_total


def test_unsynced_price_is_sent_as_price_data_with_our_amount(stripe_app, shop):
    with stripe_app.app_context():
        price = db.session.scalar(select(Price).where(Price.lookup_key == BEANS))
        synced_id, amount = price.stripe_price_id, price.unit_amount
        price.stripe_price_id = None
        db.session.commit()
    add_to_cart(shop, stripe_app, BEANS, 3)
    cs = retrieve(stripe_app, start(shop))
    (item,) = cs.line_items.data
    assert item.price.id != synced_id
    assert item.price.unit_amount == amount
    assert cs.amount_total == amount * 3


def test_stale_synced_price_never_decides_the_amount(stripe_app, shop, caplog):
    # Our price changed but was not synced: Stripe's Price still has the old amount.
    with stripe_app.app_context():
        price = db.session.scalar(select(Price).where(Price.lookup_key == BEANS))
        price.unit_amount += 500
        new_amount = price.unit_amount
        db.session.commit()
    add_to_cart(shop, stripe_app, BEANS, 2)
    with caplog.at_level(logging.ERROR, logger="storefront.hosted_checkout"):
        cs_id = start(shop)
    cs = retrieve(stripe_app, cs_id)
    assert cs.amount_subtotal == new_amount * 2  # plus shipping
    assert cs.status == "open"
    assert "retrying with price_data" in caplog.text
    with stripe_app.app_context():
        assert only_order(stripe_app).stripe_checkout_session_id == cs_id


def test_second_press_reuses_the_open_session(stripe_app, shop):
    add_to_cart(shop, stripe_app, BEANS)
    first = start(shop)
    assert shop.get("/cart/").status_code == 200  # back from Stripe via cancel_url
    second = start(shop)
    assert first == second
    with stripe_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Order)) == 1
        sessions = payments.client().v1.checkout.sessions.list(params={"status": "open"})
        assert [s.id for s in sessions.data] == [first]


def sign_in(shop, email: str) -> None:
    accounts.sign_in(shop, email)


def test_signed_in_without_a_stripe_customer_gets_one_made_once(stripe_app, shop):
    """Saved cards need a Stripe Customer: a signed-in customer without one gets it (issue 14)."""
    sign_in(shop, "grace@example.com")
    add_to_cart(shop, stripe_app, BEANS)
    cs = retrieve(stripe_app, start(shop))
    with stripe_app.app_context():
        order = only_order(stripe_app)
        assert order.email == "grace@example.com"
        stripe_customer_id = order.customer.stripe_customer_id
        customers = payments.client().v1.customers.list(params={"limit": 100}).data
    assert [c.id for c in customers] == [stripe_customer_id]
    assert customers[0].email == "grace@example.com"
    assert cs.customer == stripe_customer_id
    assert cs.customer_email is None
    assert cs.saved_payment_method_options.payment_method_save == "enabled"


def test_signed_in_customer_is_passed_as_the_stripe_customer(stripe_app, shop):
    with stripe_app.app_context():
        customer = billing.get_or_create_customer("grace@example.com")
        stripe_customer_id = customer.stripe_customer_id
    sign_in(shop, "grace@example.com")
    add_to_cart(shop, stripe_app, BEANS)
    cs = retrieve(stripe_app, start(shop))
    assert cs.customer == stripe_customer_id
    assert cs.customer_email is None
    # Their cards saved with consent are offered, and a new one may be saved (issue 14).
    assert cs.saved_payment_method_options.allow_redisplay_filters == ["always"]
    assert cs.saved_payment_method_options.payment_method_save == "enabled"
    with stripe_app.app_context():
        order = only_order(stripe_app)
        assert order.customer.stripe_customer_id == stripe_customer_id
        assert order.email == "grace@example.com"


def test_signed_out_shopper_leaves_the_email_to_checkout(stripe_app, shop):
    add_to_cart(shop, stripe_app, BEANS)
    cs = retrieve(stripe_app, start(shop))
    assert cs.customer is None and cs.customer_email is None
    assert cs.saved_payment_method_options is None  # a guest never sees saved cards


def test_session_creation_is_idempotent_per_order(stripe_app, shop):
    add_to_cart(shop, stripe_app, BEANS)
    cs_id = start(shop)
    with stripe_app.test_request_context("/"):
        order = only_order(stripe_app)
        # A retried request (same order, same attempt) gets the same session back.
        again = hosted_checkout.create_session(order, "first")
    assert again.id == cs_id


def test_changed_cart_expires_the_old_session_and_cancels_its_order(stripe_app, shop):
    add_to_cart(shop, stripe_app, BEANS)
    old_cs = start(shop)
    add_to_cart(shop, stripe_app, MUG)
    new_cs = start(shop)
    assert new_cs != old_cs
    assert retrieve(stripe_app, old_cs).status == "expired"
    with stripe_app.app_context():
        orders = db.session.scalars(select(Order).order_by(Order.id)).all()
        assert [o.status for o in orders] == ["canceled", "pending"]
        assert orders[1].stripe_checkout_session_id == new_cs
        assert len(orders[1].items) == 2


def test_expired_session_is_replaced_by_a_new_order(stripe_app, shop):
    add_to_cart(shop, stripe_app, BEANS)
    old_cs = start(shop)
    with stripe_app.app_context():
        payments.expire_checkout_session(old_cs)
    new_cs = start(shop)
    assert new_cs != old_cs
    assert retrieve(stripe_app, new_cs).status == "open"
    with stripe_app.app_context():
        statuses = db.session.scalars(select(Order.status).order_by(Order.id)).all()
        assert statuses == ["canceled", "pending"]


def test_empty_cart_is_refused(stripe_app, shop):
    resp = shop.post("/checkout/stripe/", follow_redirects=True)
    assert "Your cart is empty" in resp.get_data(as_text=True)
    with stripe_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Order)) == 0


def test_without_stripe_keys_the_button_explains(client, app):
    add_to_cart(client, app, BEANS)
    resp = client.post("/checkout/stripe/", follow_redirects=True)
    assert payments.NOT_CONFIGURED in resp.get_data(as_text=True)


def test_stripe_outage_shows_a_message_not_a_500(stripe_app, shop, emulator):
    add_to_cart(shop, stripe_app, BEANS)
    import requests

    requests.post(
        f"{emulator.url}/_emulator/fail_next",
        data={"status": "503", "count": "5"},
        headers={"Authorization": "Bearer sk_test_emulator"},
        timeout=5,
    )
    resp = shop.post("/checkout/stripe/", follow_redirects=True)
    assert resp.status_code == 200
    assert "temporarily unavailable" in resp.get_data(as_text=True)


def test_button_needs_a_csrf_token(csrf_app):
    client = csrf_app.test_client()
    assert client.post("/checkout/stripe/").status_code == 400


def test_cart_shows_the_stripe_checkout_button(stripe_app, shop):
    add_to_cart(shop, stripe_app, BEANS)
    html = shop.get("/cart/").get_data(as_text=True)
    assert "Pay on Stripe's secure page" in html
    assert 'action="/checkout/stripe/"' in html


# --------------------------------------------------------------------------- fulfilment


def paid_order(stripe_app, shop, emulator) -> tuple[str, str]:
    add_to_cart(shop, stripe_app, BEANS, 2)
    cs_id = start(shop)
    result = pay_hosted_page(emulator.url, cs_id, email="grace@example.com")
    assert result["status"] == "complete"
    with stripe_app.app_context():
        return only_order(stripe_app).public_id, cs_id


def test_success_page_fulfils_the_order(stripe_app, shop, emulator):
    public_id, cs_id = paid_order(stripe_app, shop, emulator)
    resp = shop.get(f"/orders/{public_id}?session_id={cs_id}")
    assert resp.status_code == 200
    with stripe_app.app_context():
        order = order_by_public_id(public_id)
        assert order.status == "paid"
        assert order.fulfilled_at is not None
        assert order.email == "grace@example.com"  # collected by Checkout
        assert order.stripe_payment_intent_id == retrieve(stripe_app, cs_id).payment_intent
        assert confirmations(stripe_app) == 1
    # The cart is empty afterwards, so a new purchase makes a new order.
    assert "Your cart is empty" in shop.get("/cart/").get_data(as_text=True)


def beans_stock(app) -> int | None:
    with app.app_context():
        return db.session.scalar(select(Product.stock).join(Price).where(Price.lookup_key == BEANS))


def set_beans_stock(app, stock: int) -> None:
    with app.app_context():
        product = db.session.scalar(select(Product).join(Price).where(Price.lookup_key == BEANS))
        product.stock = stock
        db.session.commit()


def test_webhook_and_success_page_fulfil_exactly_once(stripe_app, shop, emulator):
    public_id, cs_id = paid_order(stripe_app, shop, emulator)
    set_beans_stock(stripe_app, 10)
    types = EventFeed(stripe_app).deliver()
    assert "checkout.session.completed" in types
    shop.get(f"/orders/{public_id}?session_id={cs_id}")
    shop.get(f"/orders/{public_id}?session_id={cs_id}")
    with stripe_app.app_context():
        assert order_by_public_id(public_id).status == "paid"
        assert confirmations(stripe_app) == 1
    assert beans_stock(stripe_app) == 8  # two bags, taken once


def test_webhook_and_success_page_at_the_same_time_fulfil_once(stripe_app, shop, emulator):
    public_id, cs_id = paid_order(stripe_app, shop, emulator)
    set_beans_stock(stripe_app, 10)
    (completed,) = [e for e in stripe_events(stripe_app) if e.type == "checkout.session.completed"]
    barrier = threading.Barrier(4)
    outcomes: list[object] = []
    errors: list[BaseException] = []

    def webhook():
        with stripe_app.test_request_context("/webhooks/stripe"):
            barrier.wait()
            outcomes.append(webhooks.process_event(completed))

    def success_page():
        browser = stripe_app.test_client()
        barrier.wait()
        outcomes.append(browser.get(f"/orders/{public_id}?session_id={cs_id}").status_code)

    def run(target):
        try:
            target()
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    targets = [webhook, success_page, success_page, success_page]
    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert sorted(map(str, outcomes)) == ["200", "200", "200", "processed"]
    with stripe_app.app_context():
        order = order_by_public_id(public_id)
        assert order.status == "paid"
        assert order.fulfilled_at is not None
        assert confirmations(stripe_app) == 1
    assert beans_stock(stripe_app) == 8


def test_concurrent_fulfilment_happens_once(stripe_app, shop, emulator):
    public_id, cs_id = paid_order(stripe_app, shop, emulator)
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def worker():
        try:
            with stripe_app.test_request_context("/"):
                barrier.wait()
                outcomes.append(hosted_checkout.fulfil_from_session(cs_id))
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert outcomes == ["processed"] * 8
    with stripe_app.app_context():
        assert order_by_public_id(public_id).status == "paid"
        assert confirmations(stripe_app) == 1


def test_unpaid_session_does_not_fulfil(stripe_app, shop):
    add_to_cart(shop, stripe_app, BEANS)
    cs_id = start(shop)
    with stripe_app.app_context():
        public_id = only_order(stripe_app).public_id
    shop.get(f"/orders/{public_id}?session_id={cs_id}")
    with stripe_app.test_request_context("/"):
        assert hosted_checkout.fulfil_from_session(cs_id) == "ignored"
        assert order_by_public_id(public_id).status == "pending"


def test_session_of_another_order_in_the_url_is_ignored(stripe_app, shop, emulator):
    public_id, cs_id = paid_order(stripe_app, shop, emulator)
    other = stripe_app.test_client()
    add_to_cart(other, stripe_app, MUG)
    other_cs = start(other)
    with stripe_app.app_context():
        other_order = db.session.scalar(
            select(Order).where(Order.stripe_checkout_session_id == other_cs)
        )
        other_id = other_order.public_id
    # The paid session pasted onto the unpaid order's page must not mark it paid.
    other.get(f"/orders/{other_id}?session_id={cs_id}")
    with stripe_app.test_request_context("/"):
        assert order_by_public_id(other_id).status == "pending"
        assert (
            hosted_checkout.fulfil_from_session(cs_id, order=order_by_public_id(other_id))
            == "ignored"
        )
        assert order_by_public_id(other_id).status == "pending"


def test_amount_mismatch_is_refused(stripe_app, shop, emulator, caplog):
    public_id, cs_id = paid_order(stripe_app, shop, emulator)
    with stripe_app.app_context():
        order = order_by_public_id(public_id)
        order.items[0].unit_amount += 100  # the order now says something else than was paid
        db.session.commit()
    with caplog.at_level(logging.ERROR), stripe_app.test_request_context("/"):
        assert hosted_checkout.fulfil_from_session(cs_id) == "ignored"  # the order page
        # The webhook records it as failed for a person to look at.
        (completed,) = [
            e for e in stripe_events(stripe_app) if e.type == "checkout.session.completed"
        ]
        assert webhooks.process_event(completed) == "failed"
        order = order_by_public_id(public_id)
        assert order.status == "pending"
        assert order.fulfilled_at is None
        assert confirmations(stripe_app) == 0
    assert "NOT fulfilled" in caplog.text


def test_expired_session_webhook_cancels_the_unpaid_order(stripe_app, shop):
    add_to_cart(shop, stripe_app, BEANS)
    cs_id = start(shop)
    with stripe_app.app_context():
        payments.expire_checkout_session(cs_id)
    assert "checkout.session.expired" in EventFeed(stripe_app).deliver()
    with stripe_app.app_context():
        assert only_order(stripe_app).status == "canceled"


def test_expiry_of_a_replaced_session_does_not_cancel_the_order(stripe_app, shop):
    add_to_cart(shop, stripe_app, BEANS)
    cs_id = start(shop)
    with stripe_app.app_context():
        order = only_order(stripe_app)
        order.stripe_checkout_session_id = None  # as if a newer session had taken over
        db.session.commit()
        payments.expire_checkout_session(cs_id)
    EventFeed(stripe_app).deliver()
    with stripe_app.app_context():
        assert only_order(stripe_app).status == "pending"


def test_async_payment_failure_marks_the_order_failed(stripe_app, shop):
    add_to_cart(shop, stripe_app, BEANS)
    cs_id = start(shop)
    cs = retrieve(stripe_app, cs_id)
    # The emulator has no delayed payment methods: hand the handler the event Stripe sends.
    event = {
        "type": "checkout.session.async_payment_failed",
        "data": {"object": cs.to_dict()},
    }
    with stripe_app.test_request_context("/"):
        assert billing.on_checkout_session_payment_failed(event) == "processed"
        order = only_order(stripe_app)
        assert order.status == "failed"
        assert order.last_payment_error


# --------------------------------------------------------------------------- delayed payments
# The emulator has no delayed payment methods (a session that is complete but unpaid until
# async_payment_succeeded/failed), so these tests stand in for Stripe's session API and send
# the shop the signed events Stripe would.


class DelayedStripe:
    """Checkout Sessions as Stripe keeps them, for ``payments``' session functions."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict] = {}
        self.by_key: dict[str, str] = {}

    def create(self, params: dict, key: str):
        if key in self.by_key:
            return self.retrieve(self.by_key[key])
        cs_id = f"cs_test_delayed{len(self.sessions) + 1}"
        items = params["line_items"]
        amount = sum(li["price_data"]["unit_amount"] * li["quantity"] for li in items)
        # Checkout preselects the first shipping option (what the shop sent as the order's).
        rate = params["shipping_options"][0]["shipping_rate_data"]
        shipping = rate["fixed_amount"]["amount"]
        self.sessions[cs_id] = {
            "id": cs_id,
            "object": "checkout.session",
            "mode": params["mode"],
            "status": "open",
            "payment_status": "unpaid",
            "url": f"https://checkout.example/c/pay/{cs_id}",
            "amount_total": amount + shipping,
            "total_details": {"amount_shipping": shipping},
            "shipping_cost": {"amount_total": shipping, "shipping_rate": dict(rate, id="shr_1")},
            "currency": items[0]["price_data"]["currency"],
            "metadata": dict(params["metadata"]),
            "client_reference_id": params.get("client_reference_id"),
            "customer_email": params.get("customer_email"),
            "customer": params.get("customer"),
            "payment_intent": None,
            "line_items": {"object": "list", "data": [{"amount_total": amount}]},
        }
        self.by_key[key] = cs_id
        return self.retrieve(cs_id)

    def retrieve(self, cs_id: str, *, line_items: bool = False, paid_with: bool = False):
        return stripe.StripeObject.construct_from(copy.deepcopy(self.sessions[cs_id]), "sk")

    def expire(self, cs_id: str):
        if self.sessions[cs_id]["status"] != "open":
            raise PaymentError(payments.GENERIC, kind="invalid")
        self.sessions[cs_id]["status"] = "expired"
        return self.retrieve(cs_id)

    def complete_unpaid(self, cs_id: str) -> None:
        """The customer chose a delayed method (e.g. a bank debit) and submitted."""
        self.sessions[cs_id].update(
            status="complete",
            payment_status="unpaid",
            customer_details={"email": "grace@example.com"},
        )


@pytest.fixture
def delayed(app, monkeypatch) -> DelayedStripe:
    fake = DelayedStripe()
    app.config["STRIPE_SECRET_KEY"] = "sk_test_fake"
    monkeypatch.setattr(payments, "create_checkout_session", fake.create)
    monkeypatch.setattr(payments, "retrieve_checkout_session", fake.retrieve)
    monkeypatch.setattr(payments, "expire_checkout_session", fake.expire)
    return fake


def session_event(fake: DelayedStripe, event_type: str, cs_id: str) -> dict:
    return make_event(event_type, copy.deepcopy(fake.sessions[cs_id]))


def delayed_payment_failed(app, client, fake: DelayedStripe) -> tuple[str, str]:
    """A hosted checkout paid with a delayed method whose payment then failed."""
    add_to_cart(client, app, BEANS, 2)
    resp = client.post("/checkout/stripe/")
    assert resp.status_code == 303
    cs_id = resp.headers["Location"].rsplit("/", 1)[1]
    with app.app_context():
        public_id = only_order(app).public_id
    fake.complete_unpaid(cs_id)
    resp = post_event(client, session_event(fake, "checkout.session.completed", cs_id))
    assert resp.status_code == 200
    assert get_order(app, public_id).status == "processing"
    post_event(client, session_event(fake, "checkout.session.async_payment_failed", cs_id))
    assert get_order(app, public_id).status == "failed"
    return public_id, cs_id


def test_failed_delayed_payment_does_not_turn_back_into_processing(app, client, delayed):
    public_id, cs_id = delayed_payment_failed(app, client, delayed)
    # A late (retried) checkout.session.completed, and the success page, both re-check it.
    post_event(client, session_event(delayed, "checkout.session.completed", cs_id))
    assert get_order(app, public_id).status == "failed"
    html = client.get(f"/orders/{public_id}?session_id={cs_id}").get_data(as_text=True)
    assert get_order(app, public_id).status == "failed"
    assert "Processing" not in html


def test_paying_again_after_a_failed_delayed_payment_starts_a_new_order(app, client, delayed):
    public_id, cs_id = delayed_payment_failed(app, client, delayed)
    resp = client.post("/checkout/stripe/")
    assert resp.status_code == 303
    new_cs = resp.headers["Location"].rsplit("/", 1)[1]
    assert new_cs != cs_id
    assert delayed.sessions[new_cs]["status"] == "open"
    with app.app_context():
        orders = db.session.scalars(select(Order).order_by(Order.id)).all()
        assert [o.status for o in orders] == ["canceled", "pending"]
        assert orders[0].public_id == public_id
        assert orders[1].stripe_checkout_session_id == new_cs
    flashed = client.get("/cart/").get_data(as_text=True)
    assert "paid already" not in flashed


def test_delayed_payment_under_way_is_not_called_paid(app, client, delayed):
    add_to_cart(client, app, BEANS)
    cs_id = client.post("/checkout/stripe/").headers["Location"].rsplit("/", 1)[1]
    delayed.complete_unpaid(cs_id)
    resp = client.post("/checkout/stripe/", follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert "being processed" in html
    assert "paid already" not in html
    with app.app_context():
        assert only_order(app).status == "processing"


def test_async_payment_succeeded_webhook_fulfils_the_order(app, client, delayed):
    add_to_cart(client, app, BEANS, 2)
    set_beans_stock(app, 10)
    cs_id = client.post("/checkout/stripe/").headers["Location"].rsplit("/", 1)[1]
    with app.app_context():
        public_id = only_order(app).public_id
    delayed.complete_unpaid(cs_id)
    post_event(client, session_event(delayed, "checkout.session.completed", cs_id))
    assert get_order(app, public_id).status == "processing"
    assert beans_stock(app) == 10
    # Days later the bank debit clears.
    delayed.sessions[cs_id]["payment_status"] = "paid"
    event = session_event(delayed, "checkout.session.async_payment_succeeded", cs_id)
    assert post_event(client, event).status_code == 200
    order = get_order(app, public_id)
    assert order.status == "paid"
    assert order.fulfilled_at is not None
    assert beans_stock(app) == 8
    with app.app_context():
        assert confirmations(app) == 1
    # Delivered again: nothing more happens.
    post_event(client, event)
    post_event(client, session_event(delayed, "checkout.session.async_payment_succeeded", cs_id))
    assert beans_stock(app) == 8
    with app.app_context():
        assert confirmations(app) == 1


# --------------------------------------------------------------------------- issue 13


def test_checkout_email_goes_through_the_shops_email_rule(stripe_app, shop, emulator):
    add_to_cart(shop, stripe_app, BEANS)
    cs_id = start(shop)
    pay_hosted_page(emulator.url, cs_id, email="Ada.Lovelace@Example.COM")
    EventFeed(stripe_app).deliver()
    with stripe_app.app_context():
        order = only_order(stripe_app)
        assert order.status == "paid"
        assert order.email == "ada.lovelace@example.com"


def staff_refund_notices(app) -> list[OutboxMessage]:
    with app.app_context():
        notices = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.dedup_key.like("refund-needed:%"))
        ).all()
        for notice in notices:
            db.session.expunge(notice)
        return list(notices)


def test_a_checkout_paid_after_its_order_was_canceled_tells_staff(stripe_app, shop, emulator):
    from storefront.fulfilment import set_status

    add_to_cart(shop, stripe_app, BEANS)
    cs_id = start(shop)
    with stripe_app.app_context():
        order = only_order(stripe_app)
        assert set_status(order, "canceled")  # e.g. staff canceled it meanwhile
        db.session.commit()
    pay_hosted_page(emulator.url, cs_id)
    feed = EventFeed(stripe_app)
    feed.deliver()
    feed.seen.clear()
    feed.deliver()  # delivered again: still one notice
    cs = retrieve(stripe_app, cs_id)
    with stripe_app.app_context():
        order = only_order(stripe_app)
        assert order.status == "canceled" and order.fulfilled_at is None
        amount = order.amount_total
    (notice,) = staff_refund_notices(stripe_app)
    assert f"payment {cs.payment_intent}" in notice.body
    assert f"Refund ${amount / 100:.2f}" in notice.body
    assert "after it was canceled" in notice.subject


def test_a_second_paid_checkout_session_for_a_paid_order_tells_staff(stripe_app, shop, emulator):
    add_to_cart(shop, stripe_app, BEANS)
    first = start(shop)
    with stripe_app.test_request_context("/"):
        order = only_order(stripe_app)
        # A second session for the same order (a race the one-session rule cannot exclude).
        second = payments.create_checkout_session(
            hosted_checkout.session_params(order), "test:second-session"
        ).id
    pay_hosted_page(emulator.url, first)
    pay_hosted_page(emulator.url, second)
    EventFeed(stripe_app).deliver()
    cs = retrieve(stripe_app, second)
    with stripe_app.app_context():
        order = only_order(stripe_app)
        assert order.status == "paid" and order.stripe_checkout_session_id == first
    (notice,) = staff_refund_notices(stripe_app)
    assert f"payment {cs.payment_intent}" in notice.body and "paid twice" in notice.subject


# --------------------------------------------------------------------------- shipping


def test_session_collects_the_address_and_offers_the_shops_rates(stripe_app, shop):
    add_to_cart(shop, stripe_app, "colombia-huila-usd")  # $16.50: Standard is $6.00
    cs_id = start(shop)
    with stripe_app.app_context():
        cs = payments.retrieve_checkout_session(cs_id, paid_with=True)
        order = only_order(stripe_app)
        assert (order.shipping_rate_code, order.amount_total) == ("standard", 2250)
    assert cs.shipping_address_collection.allowed_countries[:3] == ["US", "CA", "GB"]
    assert [o.shipping_amount for o in cs.shipping_options] == [600, 1500]
    assert cs.amount_total == 2250  # the first option (the order's Standard) is preselected
    assert cs.shipping_cost.shipping_rate.metadata["code"] == "standard"


def test_a_member_is_offered_free_standard_on_checkout(stripe_app, shop, monkeypatch):
    from storefront import account
    from storefront.models import Customer, Subscription

    with stripe_app.app_context():
        customer = Customer(email="m@example.com", stripe_customer_id=None)
        db.session.add(customer)
        db.session.flush()
        db.session.add(
            Subscription(stripe_subscription_id="sub_m", customer_id=customer.id, status="active")
        )
        db.session.commit()
    monkeypatch.setattr(account, "signed_in_email", lambda: "m@example.com")
    add_to_cart(shop, stripe_app, "colombia-huila-usd")
    cs = retrieve(stripe_app, start(shop))
    assert [o.shipping_amount for o in cs.shipping_options] == [0, 1500]
    assert cs.amount_total == 1650


def test_paying_with_express_on_checkout_stores_address_rate_and_total(stripe_app, shop, emulator):
    add_to_cart(shop, stripe_app, "colombia-huila-usd")
    cs_id = start(shop)
    express = retrieve(stripe_app, cs_id).shipping_options[1].shipping_rate
    pay_hosted_page(emulator.url, cs_id, shipping_rate=express)
    EventFeed(stripe_app).deliver()
    with stripe_app.app_context():
        order = only_order(stripe_app)
        assert order.is_paid
        assert (order.shipping_rate_name, order.shipping_amount, order.amount_total) == (
            "Express",
            1500,
            3150,
        )
        assert order.address_lines == ["Ada Lovelace", "1 Main St", "Albany NY 12207", "US"]
        assert (order.card_brand, order.card_last4) == ("visa", "4242")
        body = db.session.scalar(
            select(OutboxMessage.body).where(OutboxMessage.kind == "order_confirmation")
        )
    assert "Shipping (Express, 1–2 business days): $15.00" in body
    assert "Total: $31.50" in body


def test_the_membership_session_sells_no_shipping(stripe_app):
    client = stripe_app.test_client()
    resp = client.post(
        "/membership/subscribe",
        data={"price": "coffee-club-monthly-usd", "email": "new@example.com"},
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)
    cs = retrieve(stripe_app, session_id_from(resp.headers["Location"]))
    assert cs.mode == "subscription"
    assert cs.shipping_options == [] and cs.shipping_address_collection is None
    assert cs.total_details.amount_shipping == 0


# --------------------------------------------------------------------------- one payment per cart


def test_stripe_checkout_after_an_unused_intent_cancels_it(stripe_app, shop):
    from tests.stripe_helpers import pay_intent_secret

    add_to_cart(shop, stripe_app, BEANS)
    pay_intent_secret(shop)  # Pay pressed on the shop's page, never confirmed
    with stripe_app.app_context():
        first = only_order(stripe_app)
        pi_id, first_id = first.stripe_payment_intent_id, first.id
    start(shop)
    with stripe_app.app_context():
        old = db.session.get(Order, first_id)
        assert old.status == "canceled"
        pi = payments.client().v1.payment_intents.retrieve(pi_id)
        assert pi.status == "canceled"
        live = db.session.scalars(select(Order).where(Order.status == "pending")).all()
        assert [o.stripe_checkout_session_id is not None for o in live] == [True]


def test_stripe_checkout_during_a_processing_intent_goes_to_that_order(stripe_app, shop, emulator):
    from tests.stripe_helpers import pay_intent_secret

    emulator.app.config["EMULATOR_PROCESSING_SECONDS"] = 30
    add_to_cart(shop, stripe_app, BEANS)
    pay_intent_secret(shop)
    with stripe_app.app_context():
        order = only_order(stripe_app)
        payments.client().v1.payment_intents.confirm(
            order.stripe_payment_intent_id, params={"payment_method": "pm_card_visa"}
        )
        public_id = order.public_id
    resp = shop.post("/checkout/stripe/")
    assert resp.status_code == 303
    assert resp.headers["Location"] == f"/orders/{public_id}"
    with stripe_app.app_context():
        assert db.session.scalar(select(func.count(Order.id))) == 1
        assert only_order(stripe_app).stripe_checkout_session_id is None


def test_paying_on_the_shops_page_expires_an_open_checkout_session(stripe_app, shop):
    from tests.stripe_helpers import pay_intent_secret

    add_to_cart(shop, stripe_app, BEANS)
    cs_id = start(shop)
    pay_intent_secret(shop)
    assert retrieve(stripe_app, cs_id).status == "expired"
    with stripe_app.app_context():
        statuses = sorted(
            (o.stripe_checkout_session_id is not None, o.status)
            for o in db.session.scalars(select(Order))
        )
    assert statuses == [(False, "pending"), (True, "canceled")]
