"""Payment Element checkout: server side, through the SDK to the emulator."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading

import pytest
import requests
import stripe
from sqlalchemy import func, select

from storefront import payments
from storefront.config import DEFAULTS
from storefront.extensions import db
from storefront.models import Order, OrderStatus, OutboxMessage, Price


def add(client, app, lookup_key="ethiopia-yirgacheffe-usd", quantity=2):
    with app.app_context():
        pid = db.session.scalar(select(Price.id).where(Price.lookup_key == lookup_key))
    response = client.post("/cart/add", data={"price_id": pid, "quantity": str(quantity)})
    assert response.status_code == 303


def only_order(app) -> Order:
    with app.app_context():
        orders = db.session.scalars(select(Order)).all()
        assert len(orders) == 1
        db.session.expunge(orders[0])
        return orders[0]


def stripe_intent(app, pi_id):
    with app.app_context():
        return payments.client().v1.payment_intents.retrieve(pi_id)


def client_secret_in(page: str) -> str:
    return re.search(r'"clientSecret": ?"([^"]+)"', page).group(1)


@pytest.fixture
def checkout_client(stripe_app):
    client = stripe_app.test_client()
    add(client, stripe_app)
    add(client, stripe_app, "stoneware-mug-usd", 1)
    return client


def test_checkout_page_creates_order_and_one_payment_intent(stripe_app, checkout_client):
    response = checkout_client.get("/checkout/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    order = only_order(stripe_app)
    assert order.status == OrderStatus.PENDING
    with stripe_app.app_context():
        prices = {
            p.lookup_key: p.unit_amount
            for p in db.session.scalars(select(Price)).all()
            if p.lookup_key in ("ethiopia-yirgacheffe-usd", "stoneware-mug-usd")
        }
    expected = prices["ethiopia-yirgacheffe-usd"] * 2 + prices["stoneware-mug-usd"]
    assert order.amount_total == expected
    intent = stripe_intent(stripe_app, order.stripe_payment_intent_id)
    assert intent.amount == expected
    assert intent.currency == "usd"
    assert intent.metadata["order_id"] == order.public_id
    assert intent.automatic_payment_methods.enabled is True
    # The client secret is in the page body only.
    assert client_secret_in(page) == intent.client_secret
    assert "Ethiopia Yirgacheffe" in page and 'id="payment-element"' in page


def test_reloading_reuses_the_order_and_intent(stripe_app, checkout_client):
    for _ in range(3):
        assert checkout_client.get("/checkout/").status_code == 200
    order = only_order(stripe_app)
    with stripe_app.app_context():
        intents = payments.client().v1.payment_intents.list(params={"limit": 100})
    assert [pi.id for pi in intents.data] == [order.stripe_payment_intent_id]


def test_idempotency_key_is_stable_per_order(stripe_app, checkout_client):
    checkout_client.get("/checkout/")
    order = only_order(stripe_app)
    key = payments.payment_intent_key(order)
    assert key == f"storefront:order:{order.public_id}:payment_intent"
    other = Order(public_id="another-order-id", currency="usd", amount_total=1)
    assert payments.payment_intent_key(other) == "storefront:order:another-order-id:payment_intent"
    with stripe_app.test_request_context():
        again = payments.create_payment_intent(db.session.get(Order, order.id))
    # The same key replays the first answer: never a second intent for one order.
    assert again.id == order.stripe_payment_intent_id


def test_cart_change_updates_the_same_order_and_intent(stripe_app, checkout_client):
    checkout_client.get("/checkout/")
    first = only_order(stripe_app)
    add(checkout_client, stripe_app, "stoneware-mug-usd", 2)
    checkout_client.get("/checkout/")
    order = only_order(stripe_app)
    assert order.public_id == first.public_id
    assert order.amount_total > first.amount_total
    intent = stripe_intent(stripe_app, order.stripe_payment_intent_id)
    assert intent.id == first.stripe_payment_intent_id
    assert intent.amount == order.amount_total


def test_totals_come_from_the_database_whatever_the_browser_posts(stripe_app, checkout_client):
    response = checkout_client.post("/checkout/", data={"amount": "1", "amount_total": "1"})
    assert response.status_code == 200
    order = only_order(stripe_app)
    assert order.amount_total > 1
    assert stripe_intent(stripe_app, order.stripe_payment_intent_id).amount == order.amount_total


def test_email_is_validated_and_stored_on_order_and_intent(stripe_app, checkout_client):
    checkout_client.get("/checkout/")
    order = only_order(stripe_app)
    url = f"/checkout/{order.public_id}/email"
    bad = checkout_client.post(url, json={"email": "not-an-email"})
    assert bad.status_code == 400
    assert "valid email" in bad.get_json()["error"]
    assert only_order(stripe_app).email is None
    ok = checkout_client.post(url, json={"email": "ada@example.com"})
    assert ok.status_code == 200
    assert only_order(stripe_app).email == "ada@example.com"
    intent = stripe_intent(stripe_app, order.stripe_payment_intent_id)
    assert intent.receipt_email == "ada@example.com"


def test_email_for_another_order_is_refused(stripe_app, checkout_client):
    checkout_client.get("/checkout/")
    response = checkout_client.post("/checkout/not-my-order/email", json={"email": "a@b.co"})
    assert response.status_code == 400


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
    page = checkout_client.get("/checkout/").get_data(as_text=True)
    secret = client_secret_in(page)
    assert secret not in caplog.text
    assert not re.search(r'(href|src|action)="[^"]*' + re.escape(secret), page)
    order = only_order(stripe_app)
    order_page = checkout_client.get(f"/orders/{order.public_id}").get_data(as_text=True)
    assert secret not in order_page


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stripe_unreachable_gives_a_clear_message_not_500(tmp_path):
    from tests.conftest import make_app

    app = make_app(
        tmp_path,
        STRIPE_SECRET_KEY="sk_test_x",
        STRIPE_PUBLISHABLE_KEY="pk_test_x",
        STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}",
    )
    client = app.test_client()
    add(client, app)
    response = client.get("/checkout/", follow_redirects=True)
    assert response.status_code == 200
    assert payments.UNAVAILABLE in response.get_data(as_text=True)


@pytest.mark.parametrize("status", ["429", "500"])
def test_stripe_errors_give_a_clear_message_not_500(stripe_app, checkout_client, emulator, status):
    import urllib.request

    request = urllib.request.Request(
        emulator.url + "/_emulator/fail_next",
        data=f"status={status}&count=5".encode(),
        headers={"Authorization": "Bearer sk_test_emulator"},
    )
    urllib.request.urlopen(request).close()
    response = checkout_client.get("/checkout/", follow_redirects=True)
    assert response.status_code == 200
    assert payments.UNAVAILABLE in response.get_data(as_text=True)


def test_invalid_api_key_gives_a_generic_message(stripe_app, checkout_client):
    stripe_app.config["STRIPE_SECRET_KEY"] = "sk_live_not_allowed"
    stripe_app.extensions["stripe_client"] = None
    response = checkout_client.get("/checkout/", follow_redirects=True)
    assert response.status_code == 200
    assert payments.GENERIC in response.get_data(as_text=True)


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
    checkout_client.get("/checkout/")
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
    checkout_client.get("/checkout/")
    order = only_order(stripe_app)
    pay(stripe_app, order, "pm_card_visa")
    page = checkout_client.get(f"/orders/{order.public_id}").get_data(as_text=True)
    assert ">Paid<" in page
    assert only_order(stripe_app).status == OrderStatus.PAID
    # The cart is emptied and the next checkout makes a new order.
    assert "Your cart is empty" in checkout_client.get("/cart/").get_data(as_text=True)
    checkout_client.get(f"/orders/{order.public_id}")
    with stripe_app.app_context():
        assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0  # no email given


def test_order_page_shows_a_decline_with_try_again(stripe_app, checkout_client):
    checkout_client.get("/checkout/")
    order = only_order(stripe_app)
    pay(stripe_app, order, "pm_card_visa_chargeDeclinedInsufficientFunds")
    page = checkout_client.get(f"/orders/{order.public_id}").get_data(as_text=True)
    assert "Payment failed" in page
    assert "insufficient funds" in page
    assert "Try again" in page
    assert only_order(stripe_app).status == OrderStatus.FAILED
    # Trying again reuses the same order and PaymentIntent.
    checkout_client.get("/checkout/")
    again = only_order(stripe_app)
    assert again.stripe_payment_intent_id == order.stripe_payment_intent_id
    assert again.status == OrderStatus.PENDING


def test_query_hints_alone_never_show_paid(stripe_app, checkout_client):
    checkout_client.get("/checkout/")
    order = only_order(stripe_app)
    page = checkout_client.get(
        f"/orders/{order.public_id}?redirect_status=succeeded&payment_intent=pi_fake"
    ).get_data(as_text=True)
    assert ">Paid<" not in page
    assert only_order(stripe_app).status == OrderStatus.PENDING


def test_unknown_order_is_404(client):
    assert client.get("/orders/nope").status_code == 404


# --------------------------------------------------------------------------- concurrency


def live_cart(live_shop, lookup_key="ethiopia-yirgacheffe-usd") -> dict[str, str]:
    """A browser's cookies after putting one item in its cart on the live shop."""
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
    return browser.cookies.get_dict()


def test_simultaneous_checkouts_of_one_cart_make_one_order_and_one_intent(live_shop):
    # Stripe answers 409 to a create whose key another request is still using; the SDK's
    # network retries (the shop's default; the tests otherwise turn them off) wait for
    # that request's answer.
    live_shop.app.config["STRIPE_MAX_NETWORK_RETRIES"] = DEFAULTS["STRIPE_MAX_NETWORK_RETRIES"]
    live_shop.app.extensions["stripe_client"] = None  # rebuilt with that setting
    cookies = live_cart(live_shop)  # a double click / two tabs: the same cookie
    barrier = threading.Barrier(4)
    answers: list[tuple[int, str]] = []

    def checkout():
        barrier.wait()
        response = requests.get(
            live_shop.url + "/checkout/", cookies=cookies, allow_redirects=False, timeout=30
        )
        answers.append((response.status_code, response.text))

    threads = [threading.Thread(target=checkout) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [status for status, _ in answers] == [200] * 4
    order = only_order(live_shop.app)
    assert order.checkout_token
    with live_shop.app.app_context():
        intents = payments.client().v1.payment_intents.list(params={"limit": 100})
    assert [pi.id for pi in intents.data] == [order.stripe_payment_intent_id]
    assert {client_secret_in(page) for _, page in answers} == {intents.data[0].client_secret}


# --------------------------------------------------------------------------- cart changes


def fail_next(emulator, status: int = 500, count: int = 1) -> None:
    """The emulator answers the next ``count`` API requests with ``status``."""
    import urllib.request

    request = urllib.request.Request(
        emulator.url + "/_emulator/fail_next",
        data=f"status={status}&count={count}".encode(),
        headers={"Authorization": "Bearer sk_test_emulator"},
    )
    urllib.request.urlopen(request).close()


def test_cart_change_after_a_failed_intent_create_is_not_ignored(
    stripe_app, checkout_client, emulator
):
    fail_next(emulator, 500)
    failed = checkout_client.get("/checkout/", follow_redirects=True)
    assert payments.UNAVAILABLE in failed.get_data(as_text=True)
    first = only_order(stripe_app)
    assert first.stripe_payment_intent_id is None  # the order exists, its intent does not
    add(checkout_client, stripe_app, "stoneware-mug-usd", 2)
    page = checkout_client.get("/checkout/")
    assert page.status_code == 200
    order = only_order(stripe_app)
    assert order.public_id == first.public_id
    with stripe_app.app_context():
        prices = dict(db.session.execute(select(Price.lookup_key, Price.unit_amount)).all())
    expected = prices["ethiopia-yirgacheffe-usd"] * 2 + prices["stoneware-mug-usd"] * 3
    assert order.amount_total == expected
    assert stripe_intent(stripe_app, order.stripe_payment_intent_id).amount == expected
    assert client_secret_in(page.get_data(as_text=True))


# --------------------------------------------------------------------------- lost answers


def create_intent_answer_lost(app, order: Order) -> str:
    """What a create that reached Stripe but whose answer never came back leaves: an
    intent at Stripe under the order's key, and no id on the order."""
    with app.test_request_context():
        pi = payments.create_payment_intent(db.session.get(Order, order.id))
    return pi.id


def test_email_saved_after_a_lost_create_answer_does_not_block_checkout(
    stripe_app, checkout_client, emulator
):
    fail_next(emulator, 500)
    checkout_client.get("/checkout/")
    order = only_order(stripe_app)
    lost = create_intent_answer_lost(stripe_app, order)
    saved = checkout_client.post(f"/checkout/{order.public_id}/email", json={"email": "a@b.co"})
    assert saved.status_code == 200
    page = checkout_client.get("/checkout/")
    assert page.status_code == 200
    after = only_order(stripe_app)
    # The same key with the same parameters replays the lost answer: that very intent.
    assert after.stripe_payment_intent_id == lost
    intent = stripe_intent(stripe_app, lost)
    assert intent.receipt_email == "a@b.co"
    assert client_secret_in(page.get_data(as_text=True)) == intent.client_secret


def test_intent_create_refused_for_its_key_starts_a_new_order(
    stripe_app, checkout_client, emulator
):
    fail_next(emulator, 500)
    checkout_client.get("/checkout/")
    first = only_order(stripe_app)
    create_intent_answer_lost(stripe_app, first)
    add(checkout_client, stripe_app, "stoneware-mug-usd", 1)  # the amount changes
    page = checkout_client.get("/checkout/")
    assert page.status_code == 200
    with stripe_app.app_context():
        old, new = db.session.scalars(select(Order).order_by(Order.id)).all()
        assert old.status == OrderStatus.CANCELED
        assert new.status == OrderStatus.PENDING
        intent = payments.client().v1.payment_intents.retrieve(new.stripe_payment_intent_id)
        assert intent.amount == new.amount_total
        assert intent.metadata["order_id"] == new.public_id
        new_id = new.public_id
    assert client_secret_in(page.get_data(as_text=True)) == intent.client_secret
    # The session follows the new order, and reloading keeps it.
    saved = checkout_client.post(f"/checkout/{new_id}/email", json={"email": "a@b.co"})
    assert (saved.status_code, saved.get_json()) == (200, {"ok": True})
    assert checkout_client.get("/checkout/").status_code == 200
    with stripe_app.app_context():
        assert db.session.scalar(select(func.count(Order.id))) == 2


def test_stored_intent_unknown_to_stripe_starts_a_new_order(stripe_app, checkout_client):
    checkout_client.get("/checkout/")
    first = only_order(stripe_app)
    with stripe_app.app_context():
        # e.g. the shop was pointed at another Stripe account since.
        db.session.get(Order, first.id).stripe_payment_intent_id = "pi_unknown_here"
        db.session.commit()
    page = checkout_client.get("/checkout/")
    assert page.status_code == 200
    with stripe_app.app_context():
        old, new = db.session.scalars(select(Order).order_by(Order.id)).all()
        assert (old.status, new.status) == (OrderStatus.CANCELED, OrderStatus.PENDING)
        intent = payments.client().v1.payment_intents.retrieve(new.stripe_payment_intent_id)
    assert client_secret_in(page.get_data(as_text=True)) == intent.client_secret
    assert checkout_client.get("/checkout/").status_code == 200
    with stripe_app.app_context():
        assert db.session.scalar(select(func.count(Order.id))) == 2


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
    checkout_client.get("/checkout/")
    order = only_order(stripe_app)
    response = checkout_client.post(f"/checkout/{order.public_id}/email", json={"email": address})
    assert response.status_code == 400
    assert response.get_json() == {"error": "Enter a valid email address, like you@example.com."}
    assert only_order(stripe_app).email is None
    assert stripe_intent(stripe_app, order.stripe_payment_intent_id).receipt_email is None


# --------------------------------------------------------------------------- Stripe errors


def test_card_decline_maps_to_its_plain_message_and_logs_the_request_id(
    stripe_app, checkout_client, caplog
):
    checkout_client.get("/checkout/")
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


def test_invalid_request_from_stripe_gives_the_generic_message_and_logs_the_request_id(
    stripe_app, checkout_client, caplog
):
    checkout_client.get("/checkout/")
    order = only_order(stripe_app)
    with stripe_app.app_context():
        # Canceled at Stripe behind the shop's back: it can no longer be updated.
        payments.client().v1.payment_intents.cancel(order.stripe_payment_intent_id)
    caplog.set_level(logging.INFO, logger="storefront.payments")
    response = checkout_client.post(
        f"/checkout/{order.public_id}/email", json={"email": "ada@example.com"}
    )
    assert response.status_code == 503
    assert response.get_json() == {"error": payments.GENERIC}
    assert only_order(stripe_app).email is None
    [line] = [r.getMessage() for r in caplog.records if r.name == "storefront.payments"]
    assert re.fullmatch(
        r"Stripe rejected payment intent update: InvalidRequestError "
        r"code=payment_intent_unexpected_state request_id=req_\w+",
        line,
    )
    # The checkout page itself then moves on to a new order rather than failing.
    page = checkout_client.get("/checkout/")
    assert page.status_code == 200
