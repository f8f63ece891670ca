"""Refunds from the back office, against the Stripe emulator through the SDK."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import select

import stripe_emulator.payments
from storefront import payments
from storefront.admin.models import AuditEntry, Refund
from storefront.extensions import db
from storefront.models import OrderStatus, OutboxMessage
from tests.accounts import session_cookie
from tests.admin_helpers import STAFF, feed, form_value, paid_order, sign_in
from tests.webhook_helpers import get_order, stock


@pytest.fixture
def shop(stripe_app):
    stripe_app.config["STAFF_EMAILS"] = STAFF
    return stripe_app


@pytest.fixture
def staff(shop):
    client = shop.test_client()
    sign_in(client, shop, STAFF)
    return client


def stripe_refunds(app, pi_id: str) -> list:
    with app.app_context():
        return list(
            payments.client().v1.refunds.list(params={"payment_intent": pi_id, "limit": 100}).data
        )


def refund_form(staff, public_id: str) -> dict[str, str]:
    html = staff.get(f"/admin/orders/{public_id}").get_data(as_text=True)
    return {"form_key": form_value(html, "form_key")}


def test_partial_refund_double_submitted_refunds_once(shop, staff):
    public_id = paid_order(shop, quantity=2)  # 2 x $18.00
    order = get_order(shop, public_id)
    assert order.status == OrderStatus.PAID
    form = refund_form(staff, public_id)
    data = {**form, "amount": "5.00", "reason": "requested_by_customer"}
    first = staff.post(f"/admin/orders/{public_id}/refund", data=data)
    assert first.status_code == 303
    second = staff.post(f"/admin/orders/{public_id}/refund", data=data)
    assert second.status_code == 303
    page = staff.get(second.location).get_data(as_text=True)
    assert "nothing was refunded twice" in page
    refunds = stripe_refunds(shop, order.stripe_payment_intent_id)
    assert [(r.amount, r.reason) for r in refunds] == [(500, "requested_by_customer")]

    feed(shop).deliver()  # charge.refunded and refund.created reach the shop
    order = get_order(shop, public_id)
    assert (order.status, order.amount_refunded) == (OrderStatus.PARTIALLY_REFUNDED, 500)
    with shop.app_context():
        emails = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "refund")
        ).all()
        assert [(m.to_email, m.order_id) for m in emails] == [("ada@example.com", order.id)]
        assert "$5.00" in emails[0].body
        (row,) = db.session.scalars(select(Refund)).all()
        assert (row.amount, row.status, row.staff_email) == (500, "succeeded", STAFF)
        actions = db.session.scalars(select(AuditEntry.detail)).all()
        assert actions == [
            "$5.00 (requested_by_customer)",
            "$5.00 (requested_by_customer) (repeat)",
        ]
    page = staff.get(f"/admin/orders/{public_id}").get_data(as_text=True)
    assert re.search(r'data-testid="remaining">\$31\.00<', page)


def twin(shop, staff):
    """A second browser of the same staff member (the same session cookie)."""
    other = shop.test_client()
    other.set_cookie("session", session_cookie(staff))
    return other


def test_a_refund_sent_twice_at_once_says_it_is_being_made(shop, staff, monkeypatch):
    # The second submit reaches Stripe while the first is still being made there: Stripe
    # answers 409 "idempotency_key_in_use" (after the SDK's retries, none in the tests).
    # The page must not say that nothing was refunded: the first submit refunds.
    public_id = paid_order(shop, quantity=1)
    order = get_order(shop, public_id)
    data = {**refund_form(staff, public_id), "amount": "4.00", "reason": "duplicate"}
    entered, release = threading.Event(), threading.Event()
    original = stripe_emulator.payments.create_refund

    def held_back(params):
        entered.set()
        release.wait(10)
        return original(params)

    monkeypatch.setattr(stripe_emulator.payments, "create_refund", held_back)
    first: dict = {}
    thread = threading.Thread(
        target=lambda: first.update(
            response=staff.post(f"/admin/orders/{public_id}/refund", data=data)
        )
    )
    thread.start()
    try:
        assert entered.wait(10)
        second = twin(shop, staff).post(f"/admin/orders/{public_id}/refund", data=data)
    finally:
        release.set()
        thread.join(10)
    assert second.status_code == 409
    page = second.get_data(as_text=True)
    assert "This refund is already being made" in page
    assert "nothing was refunded" not in page
    assert form_value(page, "form_key") == data["form_key"]  # sending it again is safe
    assert first["response"].status_code == 303
    refunds = stripe_refunds(shop, order.stripe_payment_intent_id)
    assert [r.amount for r in refunds] == [400]
    again = staff.post(f"/admin/orders/{public_id}/refund", data=data)
    assert again.status_code == 303
    assert "nothing was refunded twice" in staff.get(again.location).get_data(as_text=True)
    assert len(stripe_refunds(shop, order.stripe_payment_intent_id)) == 1


def test_a_refund_stripe_did_not_answer_can_be_sent_again(shop, staff, refusing_port):
    public_id = paid_order(shop, quantity=1)
    order = get_order(shop, public_id)
    data = {**refund_form(staff, public_id), "amount": "3.00", "reason": "duplicate"}
    api_base = shop.config["STRIPE_API_BASE"]
    shop.config["STRIPE_API_BASE"] = f"http://127.0.0.1:{refusing_port}"
    try:
        resp = staff.post(f"/admin/orders/{public_id}/refund", data=data)
    finally:
        shop.config["STRIPE_API_BASE"] = api_base
    assert resp.status_code == 502
    page = resp.get_data(as_text=True)
    assert "we cannot tell whether the refund was made" in page
    assert "nothing was refunded" not in page
    assert form_value(page, "form_key") == data["form_key"]
    again = staff.post(f"/admin/orders/{public_id}/refund", data=data)
    assert again.status_code == 303
    assert [r.amount for r in stripe_refunds(shop, order.stripe_payment_intent_id)] == [300]


def test_a_refund_post_without_its_form_key_refunds_nothing(shop, staff):
    """The form's key is the refund's idempotency key: a POST must bring the one it was shown."""
    public_id = paid_order(shop, quantity=1)
    order = get_order(shop, public_id)
    for data in ({}, {"form_key": "short"}):
        resp = staff.post(
            f"/admin/orders/{public_id}/refund",
            data={**data, "amount": "5.00", "reason": "requested_by_customer"},
        )
        assert resp.status_code == 400
        page = resp.get_data(as_text=True)
        assert "The form was out of date" in page
        assert len(form_value(page, "form_key")) >= 16  # a fresh key to send again with
    assert stripe_refunds(shop, order.stripe_payment_intent_id) == []


def test_more_than_remains_is_refused_clearly(shop, staff):
    public_id = paid_order(shop, quantity=1)  # $18.00
    order = get_order(shop, public_id)
    resp = staff.post(
        f"/admin/orders/{public_id}/refund",
        data={**refund_form(staff, public_id), "amount": "18.01", "reason": "duplicate"},
    )
    assert resp.status_code == 400
    assert "You can refund at most $18.00" in resp.get_data(as_text=True)
    assert stripe_refunds(shop, order.stripe_payment_intent_id) == []
    for bad in ("0", "-3", "abc", "1.234", ""):
        resp = staff.post(
            f"/admin/orders/{public_id}/refund",
            data={**refund_form(staff, public_id), "amount": bad, "reason": "duplicate"},
        )
        assert resp.status_code == 400, bad
    resp = staff.post(
        f"/admin/orders/{public_id}/refund",
        data={**refund_form(staff, public_id), "amount": "5", "reason": "because"},
    )
    assert resp.status_code == 400
    assert stripe_refunds(shop, order.stripe_payment_intent_id) == []
    with shop.app_context():
        outcomes = db.session.scalars(select(AuditEntry.outcome)).all()
    assert set(outcomes) == {"refused"} and len(outcomes) == 7


def test_full_refund_with_restock_returns_the_items_once(shop, staff):
    before = stock(shop)
    public_id = paid_order(shop, quantity=3)
    assert stock(shop) == before - 3
    form = refund_form(staff, public_id)
    resp = staff.post(
        f"/admin/orders/{public_id}/refund",
        data={**form, "amount": "10.00", "reason": "requested_by_customer", "restock": "y"},
    )
    assert resp.status_code == 303
    assert stock(shop) == before
    # A second refund asking to restock does not put the items back twice.
    resp = staff.post(
        f"/admin/orders/{public_id}/refund",
        data={
            **refund_form(staff, public_id),
            "amount": "44.00",
            "reason": "duplicate",
            "restock": "y",
        },
    )
    assert resp.status_code == 303
    assert stock(shop) == before
    feed(shop).deliver()
    order = get_order(shop, public_id)
    assert (order.status, order.amount_refunded) == (OrderStatus.REFUNDED, 5400)
    page = staff.get(f"/admin/orders/{public_id}").get_data(as_text=True)
    assert "This order is refunded in full." in page


def test_a_refund_made_in_the_stripe_dashboard_shows_up(shop, staff):
    public_id = paid_order(shop, quantity=1)
    order = get_order(shop, public_id)
    with shop.app_context():
        payments.client().v1.refunds.create(
            params={"payment_intent": order.stripe_payment_intent_id}
        )
    feed(shop).deliver()
    page = staff.get(f"/admin/orders/{public_id}").get_data(as_text=True)
    assert "Stripe Dashboard</td>" in page
    assert get_order(shop, public_id).status == OrderStatus.REFUNDED


def test_a_full_refund_sent_twice_after_its_webhook_is_still_one_refund(shop, staff):
    public_id = paid_order(shop, quantity=1)
    form = {**refund_form(staff, public_id), "amount": "18.00", "reason": "duplicate"}
    assert staff.post(f"/admin/orders/{public_id}/refund", data=form).status_code == 303
    feed(shop).deliver()
    assert get_order(shop, public_id).status == OrderStatus.REFUNDED
    again = staff.post(f"/admin/orders/{public_id}/refund", data=form, follow_redirects=True)
    assert "nothing was refunded twice" in again.get_data(as_text=True)
    order = get_order(shop, public_id)
    assert len(stripe_refunds(shop, order.stripe_payment_intent_id)) == 1
    # A new form for an order refunded in full is refused, and the page says why.
    fresh = staff.post(
        f"/admin/orders/{public_id}/refund",
        data={**form, "form_key": "another-form-key-0123"},
    )
    assert fresh.status_code == 400
    assert "already refunded in full; nothing was refunded" in fresh.get_data(as_text=True)
    assert len(stripe_refunds(shop, order.stripe_payment_intent_id)) == 1
