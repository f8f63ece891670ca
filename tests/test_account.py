"""My account: sign-in links through the outbox, orders and membership on the page."""

from __future__ import annotations

import re

from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from storefront import account
from storefront.extensions import db
from storefront.models import Order, OrderStatus, OutboxMessage

EMAIL = "ada@example.com"


def sign_in_messages(app) -> list[OutboxMessage]:
    with app.app_context():
        msgs = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "sign_in").order_by(OutboxMessage.id)
        ).all()
        for m in msgs:
            db.session.expunge(m)
        return list(msgs)


def link_in(message: OutboxMessage) -> str:
    match = re.search(r"http://localhost(/account/sign-in/\S+)", message.body)
    assert match, message.body
    return match.group(1)


def add_order(app, email: str, status: str = OrderStatus.PAID, amount: int = 1800) -> str:
    with app.app_context():
        order = Order(email=email, currency="usd", amount_total=amount, status=status)
        db.session.add(order)
        db.session.commit()
        return order.public_id


def test_account_page_asks_for_an_email_when_signed_out(client):
    html = client.get("/account/").get_data(as_text=True)
    assert "Email me a sign-in link" in html
    assert "Sign in" in html


def test_requesting_a_link_writes_it_to_the_outbox(client, app):
    resp = client.post("/account/sign-in", data={"email": " Ada@Example.com "})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "We've sent you a link" in html
    assert "outbox" in html  # testing/debug: tells where the link went
    (message,) = sign_in_messages(app)
    assert message.to_email == EMAIL
    assert "/account/sign-in/" in message.body


def test_the_link_signs_the_customer_in(client, app):
    client.post("/account/sign-in", data={"email": EMAIL})
    (message,) = sign_in_messages(app)
    resp = client.get(link_in(message))
    assert resp.status_code == 303
    html = client.get("/account/").get_data(as_text=True)
    assert f"Signed in as <strong>{EMAIL}</strong>" in html
    assert "My account" in client.get("/").get_data(as_text=True)


def test_account_lists_only_the_customers_orders(client, app):
    mine = add_order(app, EMAIL, OrderStatus.PAID, 2400)
    pending = add_order(app, "ADA@example.com", OrderStatus.PENDING, 900)
    theirs = add_order(app, "someone@example.com", OrderStatus.PAID, 5000)
    with client.session_transaction() as sess:
        sess[account.SESSION_KEY] = EMAIL
    html = client.get("/account/").get_data(as_text=True)
    assert f"/orders/{mine}" in html and f"/orders/{pending}" in html
    assert f"/orders/{theirs}" not in html
    assert "$24.00" in html and "Paid" in html and "Pending" in html
    assert "You're not a member yet" in html


def test_tampered_or_foreign_tokens_are_refused(client, app):
    forged = URLSafeTimedSerializer("another-secret", salt=account.TOKEN_SALT).dumps(
        {"email": EMAIL}
    )
    for token in (forged, "garbage", forged[:-2] + "xx"):
        resp = client.get(f"/account/sign-in/{token}")
        assert resp.status_code == 400
        assert "expired or is not valid" in resp.get_data(as_text=True)
    assert "Signed in as" not in client.get("/account/").get_data(as_text=True)


def test_expired_link_is_refused(client, app, monkeypatch):
    client.post("/account/sign-in", data={"email": EMAIL})
    (message,) = sign_in_messages(app)
    monkeypatch.setattr(account, "TOKEN_MAX_AGE", -1)
    resp = client.get(link_in(message))
    assert resp.status_code == 400
    assert "Signed in as" not in client.get("/account/").get_data(as_text=True)


def test_unknown_and_known_emails_get_the_same_answer(client, app):
    add_order(app, EMAIL)
    known = client.post("/account/sign-in", data={"email": EMAIL}).get_data(as_text=True)
    unknown = client.post("/account/sign-in", data={"email": "new@example.com"}).get_data(
        as_text=True
    )
    assert known.replace(EMAIL, "X") == unknown.replace("new@example.com", "X")


def test_invalid_email_is_explained(client, app):
    resp = client.post("/account/sign-in", data={"email": "not-an-email"})
    assert resp.status_code == 400
    assert "valid email address" in resp.get_data(as_text=True)
    assert sign_in_messages(app) == []


def test_repeated_requests_do_not_flood_the_outbox(client, app):
    for _ in range(5):
        assert client.post("/account/sign-in", data={"email": EMAIL}).status_code == 200
    assert len(sign_in_messages(app)) == 1


def test_sign_out(client, app):
    with client.session_transaction() as sess:
        sess[account.SESSION_KEY] = EMAIL
    client.post("/account/sign-out")
    assert "Email me a sign-in link" in client.get("/account/").get_data(as_text=True)


def test_membership_actions_need_a_signed_in_member(client, app):
    resp = client.post("/account/membership/cancel")
    assert resp.status_code == 303  # signed out: back to the sign-in page
    with client.session_transaction() as sess:
        sess[account.SESSION_KEY] = EMAIL
    assert client.post("/account/membership/cancel").status_code == 404


def test_forms_need_csrf_tokens(csrf_app):
    client = csrf_app.test_client()
    assert client.post("/account/sign-in", data={"email": EMAIL}).status_code == 400
    assert client.post("/membership/subscribe", data={"price": "x"}).status_code == 400
    with csrf_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    html = client.get("/account/").get_data(as_text=True)
    assert 'name="csrf_token"' in html


# --------------------------------------------------------------------------- odd emails


def long_email(length: int) -> str:
    domain = "@example.com"
    return "a" * (length - len(domain)) + domain


def test_overlong_email_is_a_form_error_and_writes_nothing(client, app):
    for email in (long_email(255), long_email(320)):
        resp = client.post("/account/sign-in", data={"email": email})
        assert resp.status_code == 400
        assert "valid email address" in resp.get_data(as_text=True)
    assert sign_in_messages(app) == []


def test_longest_email_gets_a_link_with_a_short_dedup_key(client, app):
    email = long_email(254)
    assert client.post("/account/sign-in", data={"email": email}).status_code == 200
    (message,) = sign_in_messages(app)
    assert message.to_email == email
    assert len(message.dedup_key) <= 255  # outbox_message.dedup_key is String(255)
    assert email not in message.dedup_key


def test_control_characters_in_the_email_are_a_form_error(client, app):
    for email in ("ada\x00@example.com", "ada@exam\x07ple.com", "ada@example.com\x7f"):
        resp = client.post("/account/sign-in", data={"email": email})
        assert resp.status_code == 400
        assert "valid email address" in resp.get_data(as_text=True)
    assert sign_in_messages(app) == []
