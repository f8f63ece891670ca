"""Payment Element checkout: server side, through the SDK to the emulator."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from unittest.mock import ANY

import pytest
import requests
import stripe
from sqlalchemy import func, select

from storefront import checkout, payments
from storefront.extensions import db
from storefront.models import Order, OrderStatus, OutboxMessage, Price
from tests.stripe_helpers import ADDRESS, checkout_page_data, pay_intent_secret, press_pay


def add(client, app, lookup_key="ethiopia-yirgacheffe-usd", quantity=2):
    with app.app_context():
        pid = db.session.scalar(select(Price.id).where(Price.lookup_key == lookup_key))
    response = client.post("/cart/add", data={"price_id": pid, "quantity": str(quantity)})
    assert response.status_code == 303


def only_order(app) -> Order:
    with app.app_context():
        orders = db.session.scalars(select(Order)).all()
        assert len(orders) == 1
        list(orders[0].items)  # loaded now, read after the session is gone
        db.session.expunge(orders[0])
        return orders[0]


def stripe_intent(app, pi_id):
    with app.app_context():
        return payments.client().v1.payment_intents.retrieve(pi_id)


def intents_at_stripe(app) -> list:
    with app.app_context():
        return list(payments.client().v1.payment_intents.list(params={"limit": 100}).data)


@pytest.fixture
def checkout_client(stripe_app):
    client = stripe_app.test_client()
    add(client, stripe_app)
    add(client, stripe_app, "stoneware-mug-usd", 1)
    return client


def test_checkout_page_makes_the_order_and_no_stripe_object(stripe_app, checkout_client):
    response = checkout_client.get("/checkout/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    order = only_order(stripe_app)
    assert order.status == OrderStatus.PENDING
    assert order.stripe_payment_intent_id is None
    assert intents_at_stripe(stripe_app) == []  # page views create no Stripe objects
    # $36.00 + $32.00: over the free-shipping threshold, so Standard is free.
    assert (order.subtotal, order.shipping_amount, order.amount_total) == (6800, 0, 6800)
    assert "Ethiopia Yirgacheffe" in page and 'id="payment-element"' in page
    assert 'id="address-element"' in page
    assert "clientSecret" not in page
    data = checkout_page_data(checkout_client)
    assert (data["amount"], data["currency"]) == (6800, "usd")
    assert [(r["code"], r["amount"], r["total"]) for r in data["rates"]] == [
        ("standard", 0, 6800),
        ("express", 1500, 8300),
    ]
    assert data["countries"][:3] == ["US", "CA", "GB"]


def test_pay_creates_one_intent_with_the_shipping_and_the_total(stripe_app, checkout_client):
    secret = pay_intent_secret(checkout_client, rate="express")
    order = only_order(stripe_app)
    assert (order.shipping_rate_code, order.shipping_amount, order.amount_total) == (
        "express",
        1500,
        8300,
    )
    assert (order.ship_name, order.ship_city, order.ship_country) == (
        "Ada Lovelace",
        "Albany",
        "US",
    )
    assert order.email == "ada@example.com"
    intent = stripe_intent(stripe_app, order.stripe_payment_intent_id)
    assert (intent.amount, intent.currency, intent.client_secret) == (8300, "usd", secret)
    assert intent.metadata["order_id"] == order.public_id
    assert intent.automatic_payment_methods.enabled is True
    assert intent.receipt_email == "ada@example.com"
    assert intent.shipping.name == "Ada Lovelace"
    assert intent.shipping.address.to_dict() == {
        "line1": "1 Main St",
        "line2": None,
        "city": "Albany",
        "state": "NY",
        "postal_code": "12207",
        "country": "US",
    }
    # Pressing Pay again (a decline, another try) updates that same intent.
    again = pay_intent_secret(checkout_client, rate="standard", city="Troy")
    assert again == secret
    [intent] = intents_at_stripe(stripe_app)
    assert (intent.amount, intent.shipping.address.city) == (6800, "Troy")


def test_the_first_pay_is_one_stripe_call(stripe_app, checkout_client, monkeypatch):
    # The create carries the shipping and the receipt email: no update right after it
    # (a second round trip to Stripe while the customer waits).
    actions: list[str] = []
    original = payments.call

    def spy(action, *args, **kwargs):
        actions.append(action)
        return original(action, *args, **kwargs)

    monkeypatch.setattr(payments, "call", spy)
    pay_intent_secret(checkout_client)
    assert actions == ["payment intent create"]
    [intent] = intents_at_stripe(stripe_app)
    assert (intent.receipt_email, intent.shipping.address.city) == ("ada@example.com", "Albany")


def test_idempotency_key_is_stable_per_order(stripe_app, checkout_client):
    pay_intent_secret(checkout_client)
    order = only_order(stripe_app)
    key = payments.payment_intent_key(order)
    assert key == f"storefront:order:{order.public_id}:payment_intent"
    other = Order(public_id="another-order-id", currency="usd", amount_total=1)
    assert payments.payment_intent_key(other) == "storefront:order:another-order-id:payment_intent"
    with stripe_app.test_request_context():
        same = db.session.get(Order, order.id)
        again = payments.create_payment_intent(same, **checkout.intent_details(same))
    # The same key replays the first answer: never a second intent for one order.
    assert again.id == order.stripe_payment_intent_id


def test_cart_change_updates_the_same_order_and_intent_at_pay(stripe_app, checkout_client):
    pay_intent_secret(checkout_client)
    first = only_order(stripe_app)
    add(checkout_client, stripe_app, "stoneware-mug-usd", 2)
    pay_intent_secret(checkout_client)
    order = only_order(stripe_app)
    assert order.public_id == first.public_id
    assert order.amount_total > first.amount_total
    intent = stripe_intent(stripe_app, order.stripe_payment_intent_id)
    assert intent.id == first.stripe_payment_intent_id
    assert intent.amount == order.amount_total


def test_a_stale_total_gets_409_and_charges_nothing_stale(stripe_app, checkout_client):
    """Tab 1 shows the order; tab 2 adds an item; tab 1's Pay must not take the new amount."""
    tab1 = checkout_page_data(checkout_client)
    add(checkout_client, stripe_app, "travel-tumbler-usd", 1)  # tab 2
    pay_intent_secret(checkout_client)  # tab 2 pays what it shows
    [intent] = intents_at_stripe(stripe_app)
    response = press_pay(checkout_client, page=tab1)  # tab 1: the old total
    assert response.status_code == 409
    assert response.get_json() == {
        "error": "Your order changed — please review the new total.",
        "reload": True,
    }
    [still] = intents_at_stripe(stripe_app)
    assert still.amount == intent.amount == only_order(stripe_app).amount_total == 6800 + 3400


def test_a_total_the_browser_made_up_is_refused(stripe_app, checkout_client):
    response = press_pay(checkout_client, total=1)
    assert response.status_code == 409
    assert intents_at_stripe(stripe_app) == []
    assert only_order(stripe_app).amount_total == 6800


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"name": ""}, "name", "full name"),
        ({"line1": " "}, "line1", "street address"),
        ({"country": "BR"}, "country", "do not ship to"),
        ({"state": ""}, "state", "Enter the state"),
        ({"rate": "teleport"}, "shipping_rate", "shipping rate"),
        ({"city": "Al\x07bany"}, "city", "cannot print"),
    ],
)
def test_pay_checks_every_field_and_changes_nothing(
    stripe_app, checkout_client, change, field, message
):
    page = checkout_page_data(checkout_client)
    rate = change.pop("rate", "standard")
    response = press_pay(checkout_client, page=page, rate=rate, total=6800, **change)
    assert response.status_code == 400
    body = response.get_json()
    assert body["field"] == field and message in body["error"]
    assert only_order(stripe_app).ship_line1 is None
    assert intents_at_stripe(stripe_app) == []


def test_pay_needs_the_pages_csrf_token(tmp_path, emulator):
    from tests.conftest import make_app
    from tests.live import emulator_config

    app = make_app(tmp_path, WTF_CSRF_ENABLED=True, **emulator_config(emulator))
    client = app.test_client()
    page = client.get("/cart/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    with app.app_context():
        pid = db.session.scalar(select(Price.id).where(Price.lookup_key == "colombia-huila-usd"))
    client.post("/cart/add", data={"price_id": pid, "quantity": "1", "csrf_token": token})
    data = checkout_page_data(client)
    refused = press_pay(client, page=data)
    assert refused.status_code == 400
    assert "CSRF" in refused.get_json()["error"]
    ok = press_pay(client, page=data, headers={"X-CSRFToken": data["csrfToken"]})
    assert ok.status_code == 200, ok.get_json()
    with app.app_context():
        db.engine.dispose()


def test_pay_for_another_order_is_refused(stripe_app, checkout_client):
    page = checkout_page_data(checkout_client)
    page["payUrl"] = "/checkout/not-my-order/pay"
    response = press_pay(checkout_client, page=page)
    assert response.status_code == 409
    assert intents_at_stripe(stripe_app) == []


def test_pay_with_a_body_that_is_not_an_object_is_400(stripe_app, checkout_client):
    page = checkout_page_data(checkout_client)
    assert checkout_client.post(page["payUrl"], json=[1, 2]).status_code == 400
    assert checkout_client.post(page["payUrl"], data="x=1").status_code == 400


def test_a_member_pays_no_shipping_at_pay(stripe_app, monkeypatch):
    from storefront import account
    from storefront.models import Customer, Subscription

    with stripe_app.app_context():
        stripe_id = payments.client().v1.customers.create(params={"email": "m@example.com"}).id
        customer = Customer(email="m@example.com", stripe_customer_id=stripe_id)
        db.session.add(customer)
        db.session.flush()
        db.session.add(
            Subscription(stripe_subscription_id="sub_x", customer_id=customer.id, status="active")
        )
        db.session.commit()
    monkeypatch.setattr(account, "signed_in_email", lambda: "m@example.com")
    client = stripe_app.test_client()
    add(client, stripe_app, "colombia-huila-usd", 1)
    page = checkout_page_data(client)
    assert page["rates"][0]["freeReason"] == "Free for members"
    pay_intent_secret(client, page=page)
    order = only_order(stripe_app)
    assert (order.shipping_amount, order.amount_total) == (0, 1650)
    assert stripe_intent(stripe_app, order.stripe_payment_intent_id).amount == 1650


def test_stock_is_checked_again_at_pay(stripe_app, checkout_client):
    page = checkout_page_data(checkout_client)
    with stripe_app.app_context():
        from storefront.models import Product

        db.session.execute(
            db.update(Product).where(Product.slug == "stoneware-mug").values(stock=0)
        )
        db.session.commit()
    response = press_pay(checkout_client, page=page)
    assert response.status_code == 409
    assert "sold out" in response.get_json()["error"]
    assert intents_at_stripe(stripe_app) == []


def test_empty_cart_goes_back_to_cart(stripe_app):
    client = stripe_app.test_client()
    response = client.get("/checkout/", follow_redirects=True)
    assert "Your cart is empty" in response.get_data(as_text=True)
    with stripe_app.app_context():
        assert db.session.scalar(select(func.count(Order.id))) == 0


def test_not_configured_says_so(client, app):
    add(client, app)
    response = client.get("/checkout/", follow_redirects=True)
    assert payments.NOT_CONFIGURED in response.get_data(as_text=True)


def test_checkout_page_sends_a_content_security_policy(stripe_app, checkout_client, emulator):
    response = checkout_client.get("/checkout/")
    csp = response.headers["Content-Security-Policy"]
    assert f"script-src 'self' {emulator.url}" in csp
    assert f"frame-src {emulator.url}" in csp
    assert "default-src 'self'" in csp
    assert "unsafe-eval" not in csp
    assert "script-src 'self' 'unsafe-inline'" not in csp


def test_client_secret_is_never_logged_nor_in_a_url(stripe_app, checkout_client, caplog):
    caplog.set_level(logging.DEBUG)
    secret = pay_intent_secret(checkout_client)
    assert secret not in caplog.text
    page = checkout_client.get("/checkout/").get_data(as_text=True)
    assert secret not in page
    order = only_order(stripe_app)
    order_page = checkout_client.get(f"/orders/{order.public_id}").get_data(as_text=True)
    assert secret not in order_page


def test_stripe_unreachable_gives_a_clear_message_not_500(tmp_path, refusing_port):
    from tests.conftest import make_app

    app = make_app(
        tmp_path,
        STRIPE_SECRET_KEY="sk_test_x",
        STRIPE_PUBLISHABLE_KEY="pk_test_x",
        STRIPE_API_BASE=f"http://127.0.0.1:{refusing_port}",
    )
    client = app.test_client()
    add(client, app)
    response = press_pay(client)
    assert response.status_code == 503
    assert response.get_json()["error"] == payments.UNAVAILABLE


@pytest.mark.parametrize("status", ["429", "500"])
def test_stripe_errors_give_a_clear_message_not_500(stripe_app, checkout_client, emulator, status):
    page = checkout_page_data(checkout_client)
    fail_next(emulator, int(status), 5)
    response = press_pay(checkout_client, page=page)
    assert response.status_code == 503
    assert response.get_json()["error"] == payments.UNAVAILABLE


def test_invalid_api_key_gives_a_generic_message(stripe_app, checkout_client):
    page = checkout_page_data(checkout_client)
    stripe_app.config["STRIPE_SECRET_KEY"] = "sk_live_not_allowed"
    response = press_pay(checkout_client, page=page)
    assert response.status_code == 400
    assert response.get_json()["error"] == payments.GENERIC


# --------------------------------------------------------------------------- order page


def pay(app, order: Order, payment_method: str):
    with app.app_context():
        sc = payments.client()
        # A decline raises CardError; the intent records it, which is what the tests read.
        with contextlib.suppress(stripe.CardError):
            sc.v1.payment_intents.confirm(
                order.stripe_payment_intent_id, params={"payment_method": payment_method}
            )


def test_order_page_waits_for_the_webhook_then_shows_paid(stripe_app, checkout_client):
    pay_intent_secret(checkout_client)
    order = only_order(stripe_app)
    pay(stripe_app, order, "pm_card_visa")
    page = checkout_client.get(
        f"/orders/{order.public_id}?payment_intent={order.stripe_payment_intent_id}"
        "&redirect_status=succeeded"
    ).get_data(as_text=True)
    # Stripe says succeeded, but the webhook (source of truth) has not arrived here.
    assert "Processing" in page
    assert "data-wait-url=" in page and "http-equiv" not in page
    assert only_order(stripe_app).status == OrderStatus.PENDING


def test_order_page_fulfils_itself_when_the_webhook_is_overdue(stripe_app, checkout_client):
    stripe_app.config["WEBHOOK_GRACE_SECONDS"] = 0
    pay_intent_secret(checkout_client)
    order = only_order(stripe_app)
    pay(stripe_app, order, "pm_card_visa")
    page = checkout_client.get(f"/orders/{order.public_id}").get_data(as_text=True)
    assert ">Paid<" in page
    assert only_order(stripe_app).status == OrderStatus.PAID
    # The cart is emptied and the next checkout makes a new order.
    assert "Your cart is empty" in checkout_client.get("/cart/").get_data(as_text=True)
    checkout_client.get(f"/orders/{order.public_id}")
    with stripe_app.app_context():
        [mail] = db.session.scalars(select(OutboxMessage)).all()  # once, to the Pay email
        assert mail.to_email == "ada@example.com"


def test_order_page_shows_a_decline_with_try_again(stripe_app, checkout_client):
    pay_intent_secret(checkout_client)
    order = only_order(stripe_app)
    pay(stripe_app, order, "pm_card_visa_chargeDeclinedInsufficientFunds")
    page = checkout_client.get(f"/orders/{order.public_id}").get_data(as_text=True)
    assert "Payment failed" in page
    assert "insufficient funds" in page
    assert "Try again" in page
    assert only_order(stripe_app).status == OrderStatus.FAILED
    # Trying again reuses the same order and PaymentIntent.
    pay_intent_secret(checkout_client)
    again = only_order(stripe_app)
    assert again.stripe_payment_intent_id == order.stripe_payment_intent_id
    assert again.status == OrderStatus.PENDING


def test_query_hints_alone_never_show_paid(stripe_app, checkout_client):
    pay_intent_secret(checkout_client)
    order = only_order(stripe_app)
    page = checkout_client.get(
        f"/orders/{order.public_id}?redirect_status=succeeded&payment_intent=pi_fake"
    ).get_data(as_text=True)
    assert ">Paid<" not in page
    assert only_order(stripe_app).status == OrderStatus.PENDING


def test_unknown_order_is_404(client):
    assert client.get("/orders/nope").status_code == 404


# --------------------------------------------------------------------------- concurrency


def live_cart(live_shop, lookup_key="ethiopia-yirgacheffe-usd") -> requests.Session:
    """A browser (its cookies) after putting one item in its cart on the live shop."""
    browser = requests.Session()
    page = browser.get(live_shop.url + "/cart/").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    with live_shop.app.app_context():
        pid = db.session.scalar(select(Price.id).where(Price.lookup_key == lookup_key))
    response = browser.post(
        live_shop.url + "/cart/add",
        data={"price_id": pid, "quantity": "1", "csrf_token": token},
        allow_redirects=False,
    )
    assert response.status_code == 303
    return browser


def test_simultaneous_pays_of_one_cart_make_one_order_and_one_intent(live_shop):
    live_shop.with_default_stripe_retries()  # the two Pays reach Stripe at the same moment
    browser = live_cart(live_shop)  # a double click / two tabs: the same cookie
    page = browser.get(live_shop.url + "/checkout/").text
    data = json.loads(re.search(r'id="checkout-data">(.*?)</script>', page, re.S).group(1))
    rate = data["rates"][0]
    body = {"email": "ada@example.com", "shipping_rate": rate["code"], "total": rate["total"]}
    body.update(ADDRESS)
    barrier = threading.Barrier(4)
    answers: list[tuple[int, dict]] = []

    def pay():
        barrier.wait()
        response = browser.post(
            live_shop.url + data["payUrl"],
            json=body,
            headers={"X-CSRFToken": data["csrfToken"]},
            timeout=30,
        )
        answers.append((response.status_code, response.json()))

    threads = [threading.Thread(target=pay) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    order = only_order(live_shop.app)
    [intent] = intents_at_stripe(live_shop.app)
    assert order.stripe_payment_intent_id == intent.id
    # Each Pay got that intent's secret, or (when another tab's request was between
    # its two steps) the 409 that makes the page show the order again: never another intent.
    for status, answer in answers:
        assert (status, answer) in (
            (200, {"clientSecret": intent.client_secret, "returnUrl": ANY}),
            (409, {"error": ANY, "reload": True}),
        ), answer
    assert any(status == 200 for status, _ in answers)


# --------------------------------------------------------------------------- lost answers


def fail_next(emulator, status: int = 500, count: int = 1) -> None:
    """The emulator answers the next ``count`` API requests with ``status``."""
    import urllib.request

    request = urllib.request.Request(
        emulator.url + "/_emulator/fail_next",
        data=f"status={status}&count={count}".encode(),
        headers={"Authorization": "Bearer sk_test_emulator"},
    )
    urllib.request.urlopen(request).close()


def create_intent_answer_lost(app, order: Order) -> str:
    """What a create that reached Stripe but whose answer never came back leaves: an
    intent at Stripe under the order's key, and no id on the order. It was sent by a Pay
    with ``press_pay``'s defaults (the recipient and email are part of the create)."""
    with app.test_request_context():
        pressed = db.session.get(Order, order.id)
        pressed.email = "ada@example.com"
        for name, value in ADDRESS.items():
            setattr(pressed, f"ship_{name}", value or None)
        pi = payments.create_payment_intent(pressed, **checkout.intent_details(pressed))
        db.session.rollback()  # the answer never came: the order is as it was
    return pi.id


def test_pay_after_a_lost_create_answer_gets_that_intent(stripe_app, checkout_client, emulator):
    page = checkout_page_data(checkout_client)
    order = only_order(stripe_app)
    lost = create_intent_answer_lost(stripe_app, order)
    secret = pay_intent_secret(checkout_client, page=page)
    after = only_order(stripe_app)
    # The same key with the same parameters replays the lost answer: that very intent.
    assert after.stripe_payment_intent_id == lost
    intent = stripe_intent(stripe_app, lost)
    assert intent.receipt_email == "ada@example.com"
    assert secret == intent.client_secret


def test_intent_create_refused_for_its_key_starts_a_new_order(stripe_app, checkout_client):
    checkout_client.get("/checkout/")
    first = only_order(stripe_app)
    create_intent_answer_lost(stripe_app, first)
    add(checkout_client, stripe_app, "stoneware-mug-usd", 1)  # the amount changes
    secret = pay_intent_secret(checkout_client, rate="express", city="Troy")
    with stripe_app.app_context():
        old, new = db.session.scalars(select(Order).order_by(Order.id)).all()
        assert old.status == OrderStatus.CANCELED
        assert new.status == OrderStatus.PENDING
        intent = payments.client().v1.payment_intents.retrieve(new.stripe_payment_intent_id)
        assert intent.amount == new.amount_total
        assert intent.metadata["order_id"] == new.public_id
        # The new order keeps what the customer chose and typed.
        assert (new.shipping_rate_code, new.ship_city, new.email) == (
            "express",
            "Troy",
            "ada@example.com",
        )
        assert intent.shipping.address.city == "Troy"
    assert secret == intent.client_secret
    # The session follows the new order, and reloading keeps it.
    assert checkout_client.get("/checkout/").status_code == 200
    with stripe_app.app_context():
        assert db.session.scalar(select(func.count(Order.id))) == 2


def test_stored_intent_unknown_to_stripe_starts_a_new_order(stripe_app, checkout_client):
    pay_intent_secret(checkout_client)
    first = only_order(stripe_app)
    with stripe_app.app_context():
        # e.g. the shop was pointed at another Stripe account since.
        db.session.get(Order, first.id).stripe_payment_intent_id = "pi_unknown_here"
        db.session.commit()
    secret = pay_intent_secret(checkout_client)
    with stripe_app.app_context():
        old, new = db.session.scalars(select(Order).order_by(Order.id)).all()
        assert (old.status, new.status) == (OrderStatus.CANCELED, OrderStatus.PENDING)
        intent = payments.client().v1.payment_intents.retrieve(new.stripe_payment_intent_id)
    assert secret == intent.client_secret
    assert checkout_client.get("/checkout/").status_code == 200
    with stripe_app.app_context():
        assert db.session.scalar(select(func.count(Order.id))) == 2


def test_an_intent_canceled_at_stripe_starts_a_new_order_at_pay(stripe_app, checkout_client):
    pay_intent_secret(checkout_client)
    order = only_order(stripe_app)
    with stripe_app.app_context():
        payments.client().v1.payment_intents.cancel(order.stripe_payment_intent_id)
    secret = pay_intent_secret(checkout_client)
    with stripe_app.app_context():
        old, new = db.session.scalars(select(Order).order_by(Order.id)).all()
        assert (old.status, new.status) == (OrderStatus.CANCELED, OrderStatus.PENDING)
        assert (
            payments.client()
            .v1.payment_intents.retrieve(new.stripe_payment_intent_id)
            .client_secret
            == secret
        )


# --------------------------------------------------------------------------- email rules


@pytest.mark.parametrize(
    "address",
    [
        "ada\x00@example.com",
        "ada@exam\x07ple.com",
        "\x1b[31mada@example.com",
        "ada@example.com\x7f",
        "ada@example\x0b.com",
        "a" * 64 + "@" + "b" * 187 + ".com",  # 256 characters
    ],
)
def test_email_with_control_characters_or_too_long_is_refused(stripe_app, checkout_client, address):
    response = press_pay(checkout_client, email=address)
    assert response.status_code == 400
    if "\x00" not in address:  # JSON holding a NUL is refused before the form is read
        assert response.get_json()["error"] == "Enter a valid email address, like you@example.com."
    assert only_order(stripe_app).email is None
    assert intents_at_stripe(stripe_app) == []


# --------------------------------------------------------------------------- Stripe errors


def test_card_decline_maps_to_its_plain_message_and_logs_the_request_id(
    stripe_app, checkout_client, caplog
):
    pay_intent_secret(checkout_client)
    order = only_order(stripe_app)
    caplog.set_level(logging.INFO, logger="storefront.payments")
    with stripe_app.test_request_context(), pytest.raises(payments.PaymentError) as caught:
        payments.call(
            "payment intent confirm",
            payments.client().v1.payment_intents.confirm,
            order.stripe_payment_intent_id,
            params={"payment_method": "pm_card_visa_chargeDeclinedInsufficientFunds"},
        )
    err = caught.value
    assert err.kind == "card"
    assert err.code == "insufficient_funds"
    assert err.user_message == payments.DECLINE_MESSAGES["insufficient_funds"]
    [line] = [r.getMessage() for r in caplog.records if r.name == "storefront.payments"]
    assert re.fullmatch(
        r"card declined during payment intent confirm: code=card_declined request_id=req_\w+",
        line,
    )
