"""The order page (the Payment Element's return_url) and the checkout page's headers.

Server side, through the SDK to the emulator; the browser tests cover the same flows
with Chromium in tests/browser/test_payment_element.py.
"""

from __future__ import annotations

import contextlib
import re
import urllib.parse
import urllib.request

import pytest
import stripe
from sqlalchemy import select

from storefront import payments
from storefront.extensions import db
from storefront.models import Order, OrderStatus, Price
from tests.stripe_helpers import pay_intent_secret, press_pay


def add(client, app, lookup_key="colombia-huila-usd", quantity=1):
    with app.app_context():
        pid = db.session.scalar(select(Price.id).where(Price.lookup_key == lookup_key))
    response = client.post("/cart/add", data={"price_id": pid, "quantity": str(quantity)})
    assert response.status_code == 303


def all_orders(app) -> list[Order]:
    with app.app_context():
        orders = db.session.scalars(select(Order).order_by(Order.id)).all()
        for order in orders:
            list(order.items)  # loaded now, read after the session is gone
            db.session.expunge(order)
        return orders


def confirm(app, order: Order, payment_method: str, **params):
    """Confirm the order's PaymentIntent the way Stripe.js would, from the test."""
    with app.app_context(), contextlib.suppress(stripe.CardError):
        payments.client().v1.payment_intents.confirm(
            order.stripe_payment_intent_id,
            params={"payment_method": payment_method, **params},
        )


def intent(app, pi_id: str):
    with app.app_context():
        return payments.client().v1.payment_intents.retrieve(pi_id)


def cart_count(client) -> int:
    page = client.get("/cart/").get_data(as_text=True)
    return int(re.search(r'data-testid="cart-count">(\d+)<', page).group(1))


@pytest.fixture
def shopper(stripe_app):
    """A browser session with a coffee in its cart that pressed Pay once (not confirmed)."""
    client = stripe_app.test_client()
    add(client, stripe_app)
    pay_intent_secret(client)  # the page's Pay: address, rate, the PaymentIntent
    return client


@pytest.fixture
def paid_now(stripe_app):
    """No webhook in these tests: let the order page's own check fulfil at once."""
    stripe_app.config["WEBHOOK_GRACE_SECONDS"] = 0
    return stripe_app


# --------------------------------------------------------------------------- headers


def test_order_page_allows_nothing_from_elsewhere(stripe_app, shopper, emulator):
    [order] = all_orders(stripe_app)
    response = shopper.get(f"/orders/{order.public_id}")
    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert "script-src" not in directives  # falls back to default-src 'self'
    assert directives["frame-ancestors"] == "'none'"
    assert emulator.url not in csp and "stripe.com" not in csp


def test_checkout_csp_for_real_stripe_allows_its_subdomains_and_3ds_frames(client):
    # The plain ``app`` points STRIPE_JS_URL at js.stripe.com and has no API base.
    csp = client.get("/checkout/").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self' https://js.stripe.com https://*.js.stripe.com"
    assert directives["frame-src"] == (
        "https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com"
    )
    assert directives["connect-src"] == "'self' https://js.stripe.com https://api.stripe.com"
    assert "unsafe-inline" not in directives["script-src"]


def test_checkout_csp_for_the_emulator_names_only_its_origin(stripe_app, shopper, emulator):
    csp = shopper.get("/checkout/").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == f"'self' {emulator.url}"
    assert directives["frame-src"] == emulator.url
    assert directives["connect-src"] == f"'self' {emulator.url}"
    assert "stripe.com" not in csp


def test_checkout_page_has_no_inline_script(stripe_app, shopper, emulator):
    page = shopper.get("/checkout/").get_data(as_text=True)
    tags = re.findall(r"<script\b[^>]*>", page)
    assert f'<script src="{emulator.url}/v3/">' in tags
    for tag in tags:
        # Everything that runs comes from a file; the page data is inert JSON.
        assert "src=" in tag or 'type="application/json"' in tag, tag


# --------------------------------------------------------------------------- order page states


def test_paid_order_page_shows_the_receipt_and_empties_the_cart(paid_now, shopper):
    [order] = all_orders(paid_now)
    confirm(paid_now, order, "pm_card_visa")
    response = shopper.get(f"/orders/{order.public_id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-testid="order-status">Paid<' in page
    assert "Colombia Huila" in page and "ada@example.com" in page
    assert re.search(r'data-testid="order-total">\$\d+\.\d\d<', page)
    assert 'http-equiv="refresh"' not in page
    assert all_orders(paid_now)[0].status == OrderStatus.PAID
    assert cart_count(shopper) == 0


def test_a_new_purchase_after_payment_makes_a_new_order(paid_now, shopper):
    [first] = all_orders(paid_now)
    confirm(paid_now, first, "pm_card_visa")
    shopper.get(f"/orders/{first.public_id}")
    add(shopper, paid_now, "stoneware-mug-usd")
    assert shopper.get("/checkout/").status_code == 200
    paid, second = all_orders(paid_now)
    assert paid.status == OrderStatus.PAID and second.status == OrderStatus.PENDING
    assert second.stripe_payment_intent_id is None  # until Pay
    pay_intent_secret(shopper)
    paid, second = all_orders(paid_now)
    assert second.stripe_payment_intent_id not in (None, paid.stripe_payment_intent_id)
    assert [item.product_name for item in second.items] == ["Stoneware mug"]


def test_someone_else_viewing_a_paid_order_keeps_their_cart(paid_now, shopper):
    [order] = all_orders(paid_now)
    confirm(paid_now, order, "pm_card_visa")
    other = paid_now.test_client()
    add(other, paid_now)
    assert ">Paid<" in other.get(f"/orders/{order.public_id}").get_data(as_text=True)
    assert cart_count(other) == 1


def test_processing_page_asks_in_the_background_instead_of_reloading(stripe_app, shopper):
    [order] = all_orders(stripe_app)
    confirm(stripe_app, order, "pm_card_visa")  # paid at Stripe; no webhook here yet
    page = shopper.get(f"/orders/{order.public_id}").get_data(as_text=True)
    assert 'data-testid="order-status">' in page and "Processing" in page
    # No meta refresh: wait.js asks the status endpoint; without JavaScript, a plain link.
    assert "http-equiv" not in page
    assert f'data-wait-url="/orders/{order.public_id}/status"' in page
    assert 'data-wait-state="processing"' in page
    assert f'href="/orders/{order.public_id}">Check again</a>' in page
    assert "js/wait.js" in page and "checkout.js" not in page
    status = shopper.get(f"/orders/{order.public_id}/status")
    assert status.status_code == 200
    assert status.headers["Cache-Control"] == "no-store"
    assert status.get_json()["state"] == "processing"


def test_order_status_endpoint_follows_the_order(stripe_app, shopper):
    [order] = all_orders(stripe_app)
    assert shopper.get(f"/orders/{order.public_id}/status").get_json() == {
        "state": "pending",
        "message": "This order hasn't been paid yet.",
    }
    stripe_app.config["WEBHOOK_GRACE_SECONDS"] = 0  # the page may fulfil it itself
    confirm(stripe_app, order, "pm_card_visa")
    answer = shopper.get(f"/orders/{order.public_id}/status").get_json()
    assert answer["state"] == "paid" and "Payment confirmed" in answer["message"]
    assert all_orders(stripe_app)[0].status == OrderStatus.PAID
    missing = shopper.get("/orders/nope/status", headers={"Accept": "application/json"})
    assert missing.status_code == 404 and "error" in missing.get_json()


def test_no_template_refreshes_itself():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    refresh = re.compile(r"http-equiv\s*=\s*[\"']?refresh", re.IGNORECASE)
    pages = [
        p for folder in ("templates", "stripe_emulator") for p in (root / folder).rglob("*.html")
    ]
    assert len(pages) > 20
    assert [p.name for p in pages if refresh.search(p.read_text())] == []


def test_failed_3d_secure_shows_payment_failed_with_try_again(stripe_app, shopper):
    [order] = all_orders(stripe_app)
    return_url = f"http://localhost/orders/{order.public_id}"
    confirm(stripe_app, order, "pm_card_threeDSecure2Required", return_url=return_url)
    pi = intent(stripe_app, order.stripe_payment_intent_id)
    assert pi.status == "requires_action"
    # What the challenge page does when the customer presses "Fail authentication".
    with stripe_app.app_context():
        payments.client().raw_request(
            "post",
            f"/v1/payment_intents/{pi.id}/authenticate",
            client_secret=pi.client_secret,
            result="fail",
            api_key="pk_test_emulator",  # a request option, not a parameter
        )
    page = shopper.get(
        f"/orders/{order.public_id}?payment_intent={pi.id}&redirect_status=failed"
    ).get_data(as_text=True)
    assert "Payment failed" in page
    assert 'href="/checkout/">Try again<' in page
    assert all_orders(stripe_app)[0].status == OrderStatus.FAILED
    # Try again: the same order and PaymentIntent, pending again.
    assert shopper.get("/checkout/").status_code == 200
    pay_intent_secret(shopper)
    [again] = all_orders(stripe_app)
    assert again.stripe_payment_intent_id == pi.id
    assert again.status == OrderStatus.PENDING


def test_cart_change_during_3d_secure_cancels_that_attempt_and_starts_a_new_order(
    stripe_app, shopper
):
    [order] = all_orders(stripe_app)
    confirm(stripe_app, order, "pm_card_threeDSecure2Required", return_url="http://localhost/x")
    add(shopper, stripe_app, "stoneware-mug-usd")
    pay_intent_secret(shopper)
    old, new = all_orders(stripe_app)
    assert old.status == OrderStatus.CANCELED
    assert intent(stripe_app, old.stripe_payment_intent_id).status == "canceled"
    assert new.status == OrderStatus.PENDING
    assert intent(stripe_app, new.stripe_payment_intent_id).amount == new.amount_total
    canceled_page = shopper.get(f"/orders/{old.public_id}").get_data(as_text=True)
    assert ">Canceled<" in canceled_page


def test_order_page_during_a_stripe_outage_shows_the_order_not_a_500(
    stripe_app, shopper, refusing_port
):
    [order] = all_orders(stripe_app)
    stripe_app.config["STRIPE_API_BASE"] = f"http://127.0.0.1:{refusing_port}"
    response = shopper.get(f"/orders/{order.public_id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Awaiting payment" in page and "Colombia Huila" in page


def test_order_page_after_server_errors_from_stripe_is_not_a_500(stripe_app, shopper, emulator):
    [order] = all_orders(stripe_app)
    request = urllib.request.Request(
        emulator.url + "/_emulator/fail_next",
        data=b"status=500&count=5",
        headers={"Authorization": "Bearer sk_test_emulator"},
    )
    urllib.request.urlopen(request).close()
    response = shopper.get(f"/orders/{order.public_id}?redirect_status=succeeded")
    assert response.status_code == 200
    # Stripe could not be asked: the page waits (and refreshes) rather than guessing.
    assert "Processing" in response.get_data(as_text=True)


# --------------------------------------------------------------------------- Pay


def test_pay_cannot_change_a_paid_order(paid_now, shopper):
    [order] = all_orders(paid_now)
    confirm(paid_now, order, "pm_card_visa")
    shopper.get(f"/orders/{order.public_id}")
    page = {
        "payUrl": f"/checkout/{order.public_id}/pay",
        "rates": [{"code": "standard", "total": 1}],
    }
    response = press_pay(shopper, page=page, email="x@example.com")
    assert response.status_code == 409
    [after] = all_orders(paid_now)
    assert (after.email, after.status) == ("ada@example.com", OrderStatus.PAID)


def test_client_secret_is_not_in_the_return_url(stripe_app, shopper):
    answer = press_pay(shopper).get_json()
    return_url, secret = answer["returnUrl"], answer["clientSecret"]
    assert secret not in return_url
    assert urllib.parse.urlsplit(return_url).query == ""


def test_return_url_uses_shop_base_url_not_the_request_address(stripe_app):
    stripe_app.config["SHOP_BASE_URL"] = "https://shop.example.com/"
    client = stripe_app.test_client()  # requests come for http://localhost
    add(client, stripe_app)
    page = client.get("/checkout/").get_data(as_text=True)
    data = re.search(r'id="checkout-data">(.*?)</script>', page).group(1)
    return_url = re.search(r'"returnUrl": ?"([^"]+)"', data).group(1)
    [order] = all_orders(stripe_app)
    assert return_url == f"https://shop.example.com/orders/{order.public_id}"


def test_return_url_with_the_client_secret_redirects_to_a_clean_address(stripe_app, shopper):
    [order] = all_orders(stripe_app)
    pi = intent(stripe_app, order.stripe_payment_intent_id)
    response = shopper.get(
        f"/orders/{order.public_id}?payment_intent={pi.id}"
        f"&payment_intent_client_secret={pi.client_secret}&redirect_status=succeeded"
    )
    assert response.status_code == 303
    location = response.headers["Location"]
    assert pi.client_secret not in location
    assert location == (
        f"/orders/{order.public_id}?payment_intent={pi.id}&redirect_status=succeeded"
    )
    assert shopper.get(location).status_code == 200


def test_checkout_during_a_processing_payment_goes_to_the_order_page(stripe_app, shopper):
    [order] = all_orders(stripe_app)
    with stripe_app.app_context():
        # What payment_intent.processing does (a bank debit that takes days, say).
        db.session.get(Order, order.id).status = OrderStatus.PROCESSING
        db.session.commit()
    response = shopper.get("/checkout/")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/orders/{order.public_id}"
    assert len(all_orders(stripe_app)) == 1


def test_back_to_checkout_after_the_webhook_paid_goes_to_the_order_page(stripe_app, shopper):
    from storefront.fulfilment import fulfil_order

    [order] = all_orders(stripe_app)
    confirm(stripe_app, order, "pm_card_visa")
    with stripe_app.app_context():
        fulfil_order(db.session.get(Order, order.id))  # what the webhook does
    # The customer never saw the order page (closed the tab) and comes back to checkout.
    response = shopper.get("/checkout/")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/orders/{order.public_id}"
    assert len(all_orders(stripe_app)) == 1
    assert ">Paid<" in shopper.get(response.headers["Location"]).get_data(as_text=True)
    assert cart_count(shopper) == 0


def test_stripe_saying_unpaid_beats_the_succeeded_hint(stripe_app, shopper):
    [order] = all_orders(stripe_app)
    pi = intent(stripe_app, order.stripe_payment_intent_id)
    assert pi.status == "requires_payment_method" and pi.last_payment_error is None
    response = shopper.get(
        f"/orders/{order.public_id}?payment_intent={pi.id}&redirect_status=succeeded"
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-testid="order-status">Awaiting payment<' in page
    assert "Continue to payment" in page
    assert 'http-equiv="refresh"' not in page  # no "Processing" forever
    assert all_orders(stripe_app)[0].status == OrderStatus.PENDING


def test_a_session_id_that_is_not_the_orders_own_is_ignored(app, client):
    from tests.webhook_helpers import make_order

    public_id = make_order(app)  # unpaid, no PaymentIntent to ask Stripe about
    response = client.get(f"/orders/{public_id}?session_id=cs_test_someone_elses")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Processing" not in page
    assert 'http-equiv="refresh"' not in page


@pytest.mark.parametrize("public_id", ["a%00b", "a%20b", "x" * 65, "%C3%A9t%C3%A9", "a.b"])
def test_order_ids_that_cannot_exist_are_404_not_a_query(client, public_id):
    response = client.get(f"/orders/{public_id}")
    assert response.status_code == 404
    # A NUL byte is refused for every page before the view (security.py), as "that page".
    assert "We could not find that" in response.get_data(as_text=True)
