"""Saved cards on the checkout page (issue 14), server side through the SDK to the emulator:
a signed-in customer's order gets their Stripe Customer (made once) and the page a Customer
Session for the Payment Element; guests get neither."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from storefront import payments
from storefront.extensions import db
from storefront.models import Customer, Order
from tests.accounts import sign_in
from tests.stripe_helpers import checkout_page_data, press_pay
from tests.test_checkout import add, fail_next, only_order, stripe_intent

EMAIL = "ada@example.com"


def stripe_customers(app) -> list:
    with app.app_context():
        return list(payments.client().v1.customers.list(params={"limit": 100}).data)


def local_customer(app) -> Customer:
    with app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.email == EMAIL))
        db.session.expunge(customer)
        return customer


@pytest.fixture
def signed_in(stripe_app):
    client = stripe_app.test_client()
    sign_in(client, EMAIL)
    add(client, stripe_app)
    return client


def test_a_signed_in_checkout_gets_a_customer_session_and_no_intent(stripe_app, signed_in):
    data = checkout_page_data(signed_in)
    secret = data["customerSessionClientSecret"]
    assert secret.startswith("cuss_secret_")
    [customer] = stripe_customers(stripe_app)
    assert customer.email == EMAIL
    assert local_customer(stripe_app).stripe_customer_id == customer.id
    order = only_order(stripe_app)
    assert order.customer_id == local_customer(stripe_app).id
    assert order.stripe_payment_intent_id is None
    # The session's features: saved cards shown, a new one may be saved for later.
    resp = requests.get(
        stripe_app.config["STRIPE_API_BASE"] + "/v1/elements/sessions",
        params={"customer_session_client_secret": secret},
        headers={"Authorization": f"Bearer {data['publishableKey']}"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["customer"] == customer.id
    features = resp.json()["features"]
    assert features["payment_method_redisplay"] == "enabled"
    assert features["payment_method_save"] == "enabled"
    assert features["payment_method_save_usage"] == "off_session"
    # A reload uses the same session (and never a second customer).
    assert checkout_page_data(signed_in)["customerSessionClientSecret"] == secret
    assert len(stripe_customers(stripe_app)) == 1
    # The email field starts with the signed-in address.
    assert f'value="{EMAIL}"' in signed_in.get("/checkout/").get_data(as_text=True)


def test_pay_makes_the_intent_for_the_customer(stripe_app, signed_in):
    response = press_pay(signed_in)
    assert response.status_code == 200, response.get_json()
    order = only_order(stripe_app)
    pi = stripe_intent(stripe_app, order.stripe_payment_intent_id)
    assert pi.customer == local_customer(stripe_app).stripe_customer_id
    # Saving is the customer's choice (the Payment Element's checkbox), not the intent's.
    assert pi.setup_future_usage is None


def test_a_guest_gets_no_customer_and_no_session(stripe_app):
    client = stripe_app.test_client()
    add(client, stripe_app)
    data = checkout_page_data(client)
    assert "customerSessionClientSecret" not in data
    response = press_pay(client, email=EMAIL)
    assert response.status_code == 200
    order = only_order(stripe_app)
    assert order.customer_id is None
    assert stripe_intent(stripe_app, order.stripe_payment_intent_id).customer is None
    assert stripe_customers(stripe_app) == []


def test_stripe_down_at_page_view_leaves_a_new_card_checkout(stripe_app, signed_in, emulator):
    fail_next(emulator, 500, 20)
    data = checkout_page_data(signed_in)
    assert "customerSessionClientSecret" not in data
    fail_next(emulator, 500, 0)
    # Pay makes the customer then, so the card can still be saved.
    response = press_pay(signed_in, page=data)
    assert response.status_code == 200, response.get_json()
    order = only_order(stripe_app)
    stripe_id = local_customer(stripe_app).stripe_customer_id
    assert stripe_id
    assert stripe_intent(stripe_app, order.stripe_payment_intent_id).customer == stripe_id


def test_an_intent_made_without_the_customer_gets_it_at_pay(stripe_app, signed_in):
    """An order whose intent was made before it had a customer (e.g. before this feature)."""
    data = checkout_page_data(signed_in)
    order = only_order(stripe_app)
    with stripe_app.app_context():
        pi = payments.client().v1.payment_intents.create(
            params={"amount": order.amount_total, "currency": order.currency}
        )
        db.session.get(Order, order.id).stripe_payment_intent_id = pi.id
        db.session.commit()
    response = press_pay(signed_in, page=data)
    assert response.status_code == 200, response.get_json()
    assert (
        stripe_intent(stripe_app, pi.id).customer == local_customer(stripe_app).stripe_customer_id
    )


def test_a_successor_order_stays_the_customers(stripe_app, signed_in):
    """An order whose intent was canceled at Stripe is followed by a new one at Pay: it is
    the customer's too, so their saved cards can pay it."""
    assert press_pay(signed_in).status_code == 200
    order = only_order(stripe_app)
    with stripe_app.app_context():
        payments.client().v1.payment_intents.cancel(order.stripe_payment_intent_id)
    assert press_pay(signed_in).status_code == 200
    with stripe_app.app_context():
        old, new = db.session.scalars(select(Order).order_by(Order.id)).all()
        assert new.id != old.id and new.customer_id == old.customer_id is not None
        pi = payments.client().v1.payment_intents.retrieve(new.stripe_payment_intent_id)
        assert pi.customer == new.customer.stripe_customer_id


def test_a_stored_customer_stripe_no_longer_has_is_made_again(stripe_app, signed_in):
    """E.g. the shop moved from the emulator to real test keys with the same database."""
    with stripe_app.app_context():
        row = db.session.scalar(select(Customer).where(Customer.email == EMAIL))
        row.stripe_customer_id = "cus_from_another_account"
        db.session.commit()
    data = checkout_page_data(signed_in)
    assert data["customerSessionClientSecret"].startswith("cuss_secret_")
    [customer] = stripe_customers(stripe_app)
    assert local_customer(stripe_app).stripe_customer_id == customer.id
    response = press_pay(signed_in, page=data)
    assert response.status_code == 200, response.get_json()
    order = only_order(stripe_app)
    assert stripe_intent(stripe_app, order.stripe_payment_intent_id).customer == customer.id
