"""The back office: who gets in, the orders list and page, events, notices, audit log."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from storefront import webhooks
from storefront.admin.models import AuditEntry, NoticeRead
from storefront.extensions import db
from storefront.models import Order, OrderStatus, OutboxMessage, WebhookEvent
from tests.admin_helpers import STAFF, failed_event, paid_by_webhook, sign_in, stored_order
from tests.conftest import make_app
from tests.webhook_helpers import make_order


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path, STAFF_EMAILS=f" Other@Example.com , {STAFF.upper()} ,not-an-email")
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def staff(client, app):
    sign_in(client, app, STAFF)
    return client


def admin_urls(app, public_id: str, event_id: str, notice_id: int) -> list[tuple[str, str]]:
    """Every (method, URL) under /admin, built with ids of objects that exist."""
    values = {"public_id": public_id, "event_id": event_id, "notice_id": notice_id}
    found = []
    with app.test_request_context():
        adapter = app.url_map.bind("localhost")
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/admin"):
                continue
            args = {name: values.get(name, "read") for name in rule.arguments}
            url = adapter.build(rule.endpoint, args)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                found.append((method, url))
    return found


def existing_objects(app) -> tuple[str, str, int]:
    public_id = stored_order(app)
    with app.app_context():
        notice = OutboxMessage(kind="staff_notice", to_email="staff", subject="s", body="b")
        db.session.add(notice)
        db.session.commit()
        notice_id = notice.id
    return public_id, failed_event(app), notice_id


def test_everyone_but_staff_gets_404_everywhere_under_admin(app, client):
    urls = admin_urls(app, *existing_objects(app))
    assert len(urls) >= 10
    assert ("GET", "/admin/") in urls and ("POST", "/admin/reconcile") in urls
    for method, url in urls:  # signed out
        assert client.open(url, method=method).status_code == 404, (method, url)
    sign_in(client, app, "ada@example.com")  # a customer
    for method, url in urls:
        resp = client.open(url, method=method, data={})
        assert resp.status_code == 404, (method, url)
        assert "Back office" not in resp.get_data(as_text=True)
    assert client.get("/admin/nothing-here").status_code == 404
    with app.app_context():
        assert db.session.scalar(select(AuditEntry)) is None
        assert db.session.scalar(select(NoticeRead)) is None


def test_staff_get_every_page(app, client):
    public_id, event_id, notice_id = existing_objects(app)
    sign_in(client, app, STAFF)  # STAFF_EMAILS is matched without case or spaces
    for method, url in admin_urls(app, public_id, event_id, notice_id):
        if method == "GET":
            resp = client.get(url)
            assert resp.status_code == 200, url
            assert resp.headers["Cache-Control"] == "no-store"


def test_a_second_staff_address_and_a_signed_out_staff_member(app, client):
    sign_in(client, app, "other@example.com")
    assert client.get("/admin/").status_code == 200
    client.post("/account/sign-out")
    assert client.get("/admin/").status_code == 404


def test_no_staff_configured_means_nobody(tmp_path, client):
    (tmp_path / "empty").mkdir()
    app = make_app(tmp_path / "empty")
    c = app.test_client()
    sign_in(c, app, STAFF)
    assert c.get("/admin/").status_code == 404


# --------------------------------------------------------------------------- orders


def test_orders_list_filters_search_and_pages(app, staff):
    paid = stored_order(app, email="ada@example.com", stripe_payment_intent_id="pi_ada")
    pending = stored_order(app, email="bob@example.com", status=OrderStatus.PENDING)
    hosted = stored_order(app, email="cy@example.com", stripe_checkout_session_id="cs_cy")
    old = stored_order(app, email="old@example.com", created_at=datetime(2026, 1, 5, tzinfo=UTC))

    def listed(**args) -> str:
        resp = staff.get("/admin/orders", query_string=args)
        assert resp.status_code == 200
        return resp.get_data(as_text=True)

    html = listed()
    assert all(p[:8] in html for p in (paid, pending, hosted, old))
    html = listed(status="pending")
    assert pending[:8] in html and paid[:8] not in html
    for q, expected in (
        ("ADA@example.com", paid),
        ("pi_ada", paid),
        ("cs_cy", hosted),
        (pending[:8], pending),
    ):
        html = listed(q=q)
        assert expected[:8] in html, q
        assert "1 order</p>" in html, q
    html = listed(date_from="2026-01-01", date_to="2026-01-31")
    assert old[:8] in html and paid[:8] not in html
    assert staff.get("/admin/orders?date_from=yesterday").status_code == 400


def test_orders_search_finds_an_order_by_its_number(app, staff):
    """Staff type the FW- number a customer reads out, in any case, with or without FW-."""
    first = stored_order(app, email="ada@example.com")
    second = stored_order(app, email="bob@example.com")
    with app.app_context():
        number = db.session.scalar(select(Order).where(Order.public_id == second)).number
    digits = number.removeprefix("FW-")
    for q in (number, number.lower(), digits, f" fw {digits} ", f"#{number}"):
        html = staff.get("/admin/orders", query_string={"q": q}).get_data(as_text=True)
        assert second[:8] in html and first[:8] not in html, q
        assert "1 order</p>" in html, q
    for q in ("FW-1", "FW-99999999999999", "FW-", "FW-10001x"):
        html = staff.get("/admin/orders", query_string={"q": q}).get_data(as_text=True)
        assert first[:8] not in html and second[:8] not in html, q


def test_orders_list_pages_by_fifty(app, staff):
    with app.app_context():
        for i in range(55):
            db.session.add(Order(email=f"c{i}@example.com", currency="usd", amount_total=100))
        db.session.commit()
    first = staff.get("/admin/orders").get_data(as_text=True)
    assert "Page 1 of 2" in first and first.count("/admin/orders/") == 50
    second = staff.get("/admin/orders?page=2").get_data(as_text=True)
    assert second.count("/admin/orders/") == 5


def test_csv_export_has_the_filtered_orders(app, staff):
    stored_order(app, email="ada@example.com", amount=2400)
    stored_order(app, email="=cmd@example.com", status=OrderStatus.FAILED)
    resp = staff.get("/admin/orders.csv?status=paid")
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [(r["email"], r["amount_total"], r["total"]) for r in rows] == [
        ("ada@example.com", "2400", "$24.00")
    ]
    rows = list(csv.DictReader(io.StringIO(staff.get("/admin/orders.csv?status=failed").text)))
    assert rows[0]["email"] == "'=cmd@example.com"  # never a formula in a spreadsheet
    with pytest.raises(AssertionError):
        assert rows[0]["email"].startswith("=")
    with staff.application.app_context():
        actions = db.session.scalars(select(AuditEntry.action)).all()
    assert actions == ["export_orders", "export_orders"]


def test_order_page_shows_items_customer_timeline_and_emails(app, staff, client):
    public_id, status = paid_by_webhook(app, client, pi_id="pi_page")
    assert status == 200
    html = staff.get(f"/admin/orders/{public_id}").get_data(as_text=True)
    assert "Ethiopia Yirgacheffe" in html and "ada@example.com" in html
    assert "payment_intent.succeeded" in html  # the timeline, from the stored event
    assert "is confirmed" in html  # the confirmation email
    assert "pi_page" in html
    assert "dashboard.stripe.com" not in html  # the emulator has no Dashboard
    assert 'data-testid="refund-form"' in html
    assert staff.get("/admin/orders/unknown").status_code == 404


def test_dashboard_links_with_real_keys(tmp_path):
    app = make_app(tmp_path, STAFF_EMAILS=STAFF, STRIPE_SECRET_KEY="sk_test_123")
    c = app.test_client()
    public_id = stored_order(app, stripe_payment_intent_id="pi_real")
    sign_in(c, app, STAFF)
    html = c.get(f"/admin/orders/{public_id}").get_data(as_text=True)
    assert 'href="https://dashboard.stripe.com/test/payments/pi_real"' in html


# --------------------------------------------------------------------------- events


def test_a_failed_event_is_processed_again_from_its_page(app, staff, client, monkeypatch):
    original = webhooks.handler_for("payment_intent.succeeded")
    calls = []

    def fails_first(event):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database is locked")
        return original(event)

    monkeypatch.setitem(webhooks._handlers, "payment_intent.succeeded", fails_first)
    public_id, status = paid_by_webhook(
        app, client, pi_id="pi_retry", quantity=1, event_id="evt_retry"
    )
    assert status == 500
    listing = staff.get("/admin/events").get_data(as_text=True)
    assert "evt_retry" in listing and "RuntimeError: database is locked" in listing
    page = staff.get("/admin/events/evt_retry").get_data(as_text=True)
    assert "Process again" in page
    resp = staff.post("/admin/events/evt_retry/process")
    assert resp.status_code == 303
    page = staff.get(resp.location).get_data(as_text=True)
    assert "Event processed: processed." in page
    with app.app_context():
        row = db.session.scalar(
            select(WebhookEvent).where(WebhookEvent.stripe_event_id == "evt_retry")
        )
        assert (row.outcome, row.attempts) == ("processed", 2)
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        assert order.status == OrderStatus.PAID
        entry = db.session.scalar(select(AuditEntry))
        assert (entry.action, entry.target, entry.staff_email) == (
            "process_event",
            "evt_retry",
            STAFF,
        )
    assert "evt_retry" not in staff.get("/admin/events").get_data(as_text=True)


def test_stuck_events_are_listed(app, staff):
    with app.app_context():
        db.session.add(
            WebhookEvent(
                stripe_event_id="evt_stuck",
                type="payment_intent.succeeded",
                stripe_created=1,
                payload="{}",
                outcome=None,
                attempted_at=datetime.now(UTC) - timedelta(minutes=5),
            )
        )
        db.session.commit()
    assert "stuck: started and never finished" in staff.get("/admin/events").text


def test_reconcile_now_without_stripe_says_so(app, staff):
    resp = staff.post("/admin/reconcile", follow_redirects=True)
    assert "Could not list events from Stripe" in resp.get_data(as_text=True)


# --------------------------------------------------------------------------- notices


def test_notices_are_marked_read_and_unread(app, staff):
    with app.app_context():
        notice = OutboxMessage(
            kind="staff_duplicate_membership", to_email="staff", subject="Two memberships", body="x"
        )
        customer_mail = OutboxMessage(
            kind="sign_in", to_email="a@example.com", subject="Hi", body="y"
        )
        db.session.add_all([notice, customer_mail])
        db.session.commit()
        notice_id = notice.id
    html = staff.get("/admin/notices").get_data(as_text=True)
    assert "Two memberships" in html and "unread" in html and "Hi</h2>" not in html
    assert 'data-testid="unread-notices">1<' in staff.get("/admin/").text
    assert staff.post(f"/admin/notices/{notice_id}/read").status_code == 303
    html = staff.get("/admin/notices").get_data(as_text=True)
    assert f"read by {STAFF}" in html and "Mark as unread" in html
    assert 'data-testid="unread-notices">0<' in staff.get("/admin/").text
    staff.post(f"/admin/notices/{notice_id}/unread")
    assert "Mark as read" in staff.get("/admin/notices").text
    audit = staff.get("/admin/audit").get_data(as_text=True)
    assert "notice read" in audit and "notice unread" in audit


def test_staff_actions_need_a_csrf_token(tmp_path):
    app = make_app(tmp_path, STAFF_EMAILS=STAFF, WTF_CSRF_ENABLED=True)
    c = app.test_client()
    with app.app_context():
        notice = OutboxMessage(kind="staff_notice", to_email="staff", subject="s", body="b")
        db.session.add(notice)
        db.session.commit()
        notice_id = notice.id
    page = c.get("/account/").get_data(as_text=True)
    from tests.admin_helpers import csrf_token

    token = csrf_token(page)
    c.post("/account/sign-in", data={"email": STAFF, "csrf_token": token})
    with app.app_context():
        body = db.session.scalar(select(OutboxMessage.body).where(OutboxMessage.kind == "sign_in"))
    link = body[body.index("/account/sign-in/") :].split()[0]
    c.post(link, data={"csrf_token": csrf_token(c.get(link).get_data(as_text=True))})
    assert c.post(f"/admin/notices/{notice_id}/read").status_code == 400
    assert c.post("/admin/reconcile").status_code == 400
    with app.app_context():
        assert db.session.scalar(select(NoticeRead)) is None
    page = c.get("/admin/notices").get_data(as_text=True)
    resp = c.post(f"/admin/notices/{notice_id}/read", data={"csrf_token": csrf_token(page)})
    assert resp.status_code == 303


def test_order_page_shows_the_shipping_rate_and_address(app, staff):
    public_id = stored_order(
        app,
        shipping_rate_code="express",
        shipping_rate_name="Express",
        shipping_amount=1200,
        ship_name="Ada Lovelace",
        ship_line1="12 St James's Square",
        ship_city="London",
        ship_postal_code="SW1Y 4JH",
        ship_country="GB",
        card_brand="visa",
        card_last4="4242",
    )
    html = staff.get(f"/admin/orders/{public_id}").get_data(as_text=True)
    assert "Express · $12.00" in html
    assert "Ada Lovelace<br>12 St James&#39;s Square<br>London SW1Y 4JH<br>GB" in html
    assert "Visa ending 4242" in html
    plain = staff.get(f"/admin/orders/{stored_order(app)}").get_data(as_text=True)
    assert "No shipping address stored for this order." in plain


def test_an_unreadable_stored_event_is_reported_not_processed(app, staff):
    failed_event(app, "evt_broken")
    resp = staff.post("/admin/events/evt_broken/process", follow_redirects=True)
    assert "Could not process it again: stored event evt_broken cannot be read" in resp.text
    with app.app_context():
        assert db.session.scalar(select(func.count(WebhookEvent.id))) == 1
        assert db.session.scalar(select(AuditEntry.outcome)) == "error"


def test_staff_see_which_emails_were_sent_and_which_failed(app, staff):
    public_id = stored_order(app)
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        db.session.add_all(
            [
                OutboxMessage(
                    kind="order_confirmation",
                    to_email="ada@example.com",
                    subject="Your order is confirmed",
                    body="b",
                    order_id=order.id,
                    status="failed",
                    attempts=8,
                    last_error="550 5.1.1 No such user",
                ),
                OutboxMessage(
                    kind="refund",
                    to_email="ada@example.com",
                    subject="Your refund",
                    body="b",
                    order_id=order.id,
                    status="sent",
                    attempts=1,
                    sent_at=datetime(2026, 12, 1, 9, 30),
                ),
            ]
        )
        db.session.commit()
    html = staff.get(f"/admin/orders/{public_id}").get_data(as_text=True)
    assert "failed, 8 attempts: 550 5.1.1 No such user" in html
    assert "sent 1 Dec 2026, 09:30 UTC<" in html
    dashboard = staff.get("/admin/").get_data(as_text=True)
    assert 'data-testid="failed-mail">1 e-mail failed to send' in dashboard


def test_a_paid_order_stock_could_not_cover_is_shown_to_staff(app, client, staff):
    from storefront.fulfilment import fulfil_order
    from storefront.models import Product

    public_id = make_order(app, lookup_key="hand-burr-grinder-usd", quantity=8)
    with app.app_context():
        db.session.execute(
            db.update(Product).where(Product.slug == "hand-burr-grinder").values(stock=3)
        )
        db.session.commit()
        assert fulfil_order(db.session.scalar(select(Order).where(Order.public_id == public_id)))
    dashboard = client.get("/admin/").get_data(as_text=True)
    assert 'data-testid="alert-short-stock"' in dashboard and public_id[:8] in dashboard
    listing = client.get("/admin/orders").get_data(as_text=True)
    assert "needs attention" in listing
    page = client.get(f"/admin/orders/{public_id}").get_data(as_text=True)
    assert 'data-testid="needs-attention"' in page
    assert "8 x Hand burr grinder (in stock: 3)" in client.get("/admin/notices").get_data(
        as_text=True
    )
