"""My account: sign-in links through the outbox, orders and membership on the page."""

from __future__ import annotations

import difflib
import re
from datetime import timedelta

import pytest
from itsdangerous.timed import TimestampSigner
from sqlalchemy import func, select, update

from storefront import account
from storefront.extensions import db
from storefront.models import Customer, Order, OrderStatus, OutboxMessage, SignInToken, utcnow
from tests.accounts import session_cookie, sign_in
from tests.threads import run_in_app_threads

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
    assert "/account/sign-in/" not in html  # only in the message (the dispatcher mails it)
    (message,) = sign_in_messages(app)
    assert message.to_email == EMAIL
    assert "/account/sign-in/" in message.body


def request_link(client, app, email: str = EMAIL) -> str:
    """Ask for a link for ``email``; the path of the newest one sent."""
    assert client.post("/account/sign-in", data={"email": email}).status_code == 200
    return link_in([m for m in sign_in_messages(app) if m.to_email == email][-1])


def signed_in_as(client) -> str | None:
    html = client.get("/account/").get_data(as_text=True)
    match = re.search(r"Signed in as <strong>([^<]+)</strong>", html)
    return match.group(1) if match else None


def test_the_link_shows_a_button_and_the_button_signs_the_customer_in(client, app):
    link = request_link(client, app)
    page = client.get(link)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Sign in as a…@example.com" in html
    assert f'action="{link}"' in html and 'method="post"' in html
    # The token stays on this page: no Referer, no cache.
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert '<meta name="referrer" content="no-referrer">' in html
    assert "no-store" in page.headers["Cache-Control"]
    assert signed_in_as(client) is None  # opening the link alone signs nobody in
    resp = client.post(link)
    assert resp.status_code == 303
    assert signed_in_as(client) == EMAIL
    assert "My account" in client.get("/").get_data(as_text=True)


def test_a_link_signs_in_once(client, app, tmp_path):
    link = request_link(client, app)
    assert client.post(link).status_code == 303
    client.post("/account/sign-out")
    # Used: neither the button page nor the POST works again, here or in another browser.
    for browser in (client, app.test_client()):
        page = browser.get(link)
        assert page.status_code == 400
        assert "has been used already" in page.get_data(as_text=True)
        assert browser.post(link).status_code == 400
        assert signed_in_as(browser) is None


def test_two_presses_at_once_sign_in_one_browser(app):
    with app.test_request_context():
        token = account.new_sign_in_token(EMAIL)
        db.session.commit()
    results = run_in_app_threads(app, *[lambda: account.consume_token(token)] * 4)
    assert results.count(EMAIL) == 1 and results.count(None) == 3


def test_only_a_hash_of_the_token_is_stored(client, app):
    token = request_link(client, app).rsplit("/", 1)[1]
    assert len(token) >= 43  # 32 random bytes, base64: 256 bits (at least 128 required)
    with app.app_context():
        (row,) = db.session.scalars(select(SignInToken)).all()
        assert row.token_hash == account.token_hash(token) != token
        assert row.email == EMAIL and row.used_at is None
        lifetime = row.expires_at - row.created_at
        assert lifetime == timedelta(minutes=15)


def test_account_lists_only_the_customers_orders(client, app):
    mine = add_order(app, EMAIL, OrderStatus.PAID, 2400)
    pending = add_order(app, "ADA@example.com", OrderStatus.PENDING, 900)
    theirs = add_order(app, "someone@example.com", OrderStatus.PAID, 5000)
    sign_in(client, EMAIL)
    html = client.get("/account/").get_data(as_text=True)
    assert f"/orders/{mine}" in html and f"/orders/{pending}" in html
    assert f"/orders/{theirs}" not in html
    assert "$24.00" in html and "Paid" in html and "Pending" in html
    assert "You're not a member yet" in html


def test_unknown_or_tampered_tokens_are_refused(client, app):
    token = request_link(client, app).rsplit("/", 1)[1]
    for bad in ("garbage", token[:-2] + "xx", token + "x", "x" * 500):
        for resp in (client.get(f"/account/sign-in/{bad}"), client.post(f"/account/sign-in/{bad}")):
            assert resp.status_code == 400
            assert "expired, has been used already or is not valid" in resp.get_data(as_text=True)
    # A NUL byte in any path is refused before the view (security.py): not found.
    assert client.get("/account/sign-in/%00").status_code == 404
    assert client.post("/account/sign-in/%00").status_code == 404
    assert signed_in_as(client) is None


def test_expired_link_is_refused(client, app):
    link = request_link(client, app)
    with app.app_context():
        db.session.execute(update(SignInToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert client.get(link).status_code == 400
    assert client.post(link).status_code == 400
    assert signed_in_as(client) is None


def without_token_time(html: str) -> str:
    """The page with each CSRF token cut to its session part (its timestamp and signature gone)."""
    return re.sub(r'(name="csrf_token" value="[^".]+)\.[^"]*"', r'\1"', html)


def test_unknown_and_known_emails_get_the_same_answer(client, app, monkeypatch):
    add_order(app, EMAIL)
    # Each answer a second after the last, as when a slow run crosses a second between them.
    seconds = iter(range(1_800_000_000, 1_800_000_100))
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: next(seconds))
    known = client.post("/account/sign-in", data={"email": EMAIL}).get_data(as_text=True)
    unknown = client.post("/account/sign-in", data={"email": "new@example.com"}).get_data(
        as_text=True
    )
    same_known, same_unknown = known.replace(EMAIL, "X"), unknown.replace("new@example.com", "X")
    # A CSRF token is the session's token, a timestamp (one-second resolution) and a signature:
    # two answers a second apart differ there. The session's part must still be the same.
    same_known, same_unknown = without_token_time(same_known), without_token_time(same_unknown)
    diff = difflib.unified_diff(same_known.splitlines(), same_unknown.splitlines(), lineterm="")
    assert same_known == same_unknown, "\n".join(diff)


def test_invalid_email_is_explained(client, app):
    resp = client.post("/account/sign-in", data={"email": "not-an-email"})
    assert resp.status_code == 400
    assert "valid email address" in resp.get_data(as_text=True)
    assert sign_in_messages(app) == []


def test_invalid_email_error_is_on_the_field(client, app):
    """The sign-in form (a FlaskForm) says what is wrong next to the email field, tied to it
    for screen readers and focused, and keeps what was typed; no field at all is refused
    the same way."""
    html = client.post("/account/sign-in", data={"email": "ada@example"}).get_data(as_text=True)
    field = re.search(r"<input[^>]*id=\"sign-in-email\"[^>]*>", html).group(0)
    assert 'aria-invalid="true"' in field
    assert 'aria-describedby="sign-in-email-error"' in field
    assert "autofocus" in field
    assert 'value="ada@example"' in field
    assert re.search(r'id="sign-in-email-error"[^>]*>Please enter a valid email address\.<', html)
    resp = client.post("/account/sign-in", data={})
    assert resp.status_code == 400
    assert 'id="sign-in-email-error"' in resp.get_data(as_text=True)
    assert sign_in_messages(app) == []
    # Shown fresh, the field carries no error.
    assert "aria-invalid" not in client.get("/account/").get_data(as_text=True)


def test_repeated_requests_do_not_flood_the_outbox(client, app):
    for _ in range(5):
        assert client.post("/account/sign-in", data={"email": EMAIL}).status_code == 200
    assert len(sign_in_messages(app)) == 1


def test_sign_out(client, app):
    sign_in(client, EMAIL)
    client.post("/account/sign-out")
    assert "Email me a sign-in link" in client.get("/account/").get_data(as_text=True)


def test_sign_out_ends_every_copy_of_the_session(client, app):
    link = request_link(client, app)
    client.post(link)
    assert signed_in_as(client) == EMAIL
    # Another copy of the signed-in cookie: another device, or one copied off this one.
    copy = app.test_client()
    copy.set_cookie("session", session_cookie(client))
    assert signed_in_as(copy) == EMAIL
    client.post("/account/sign-out")
    assert signed_in_as(client) is None
    assert signed_in_as(copy) is None
    # ...and the old copy stays signed out on every page, not only My account.
    copy.set_cookie("session", session_cookie(copy))
    assert "My account" not in copy.get("/").get_data(as_text=True)
    # Signing in again (a minute later: one message a minute) works, and is not undone
    # by the old sign-out.
    with app.app_context():
        db.session.execute(update(OutboxMessage).values(dedup_key=None))
        db.session.commit()
    client.post(request_link(client, app))
    assert signed_in_as(client) == EMAIL


def test_signing_in_renews_the_session_and_keeps_the_cart(client, app):
    with client.session_transaction() as sess:
        sess["cart"] = {"currency": "usd", "items": {"1": 2}}
        sess["checkout_token"] = "planted-token"
        sess["checkout_order"] = "someone-elses-order"
        sess["anything"] = "from before"
    client.post(request_link(client, app))
    with client.session_transaction() as sess:
        assert sess["cart"] == {"currency": "usd", "items": {"1": 2}}
        assert sess["checkout_token"] not in (None, "planted-token")
        assert "checkout_order" not in sess and "anything" not in sess
        assert sess[account.SESSION_KEY] == EMAIL


def test_signing_out_starts_an_empty_session(client, app):
    client.post(request_link(client, app))
    with client.session_transaction() as sess:
        sess["cart"] = {"currency": "usd", "items": {"1": 2}}
        sess["checkout_token"] = "t" * 32
    client.post("/account/sign-out")
    with client.session_transaction() as sess:
        assert set(sess) <= {"_flashes", "csrf_token"}


def test_sign_in_makes_the_local_customer_without_stripe(client, app):
    client.post(request_link(client, app))
    with app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.email == EMAIL))
        assert customer is not None and customer.stripe_customer_id is None


@pytest.mark.parametrize(
    ("email", "masked"),
    [("ada@example.com", "a…@example.com"), ("x@y.org", "x…@y.org"), (None, "")],
)
def test_mask_email(email, masked):
    assert account.mask_email(email) == masked


def test_membership_actions_need_a_signed_in_member(client, app):
    resp = client.post("/account/membership/cancel")
    assert resp.status_code == 303  # signed out: back to the sign-in page
    sign_in(client, EMAIL)
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
