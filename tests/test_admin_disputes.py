"""Disputes, early fraud warnings and refunds that fail later, from the emulator's test
cards through the webhook code to the back office."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select

from storefront import payments
from storefront.admin.models import Dispute, Refund
from storefront.extensions import db
from storefront.models import OrderStatus, OutboxMessage
from tests.admin_helpers import STAFF, feed, form_value, paid_order, sign_in
from tests.live import wait_until
from tests.webhook_helpers import get_order


@pytest.fixture
def shop(stripe_app):
    stripe_app.config["STAFF_EMAILS"] = STAFF
    return stripe_app


@pytest.fixture
def staff(shop):
    client = shop.test_client()
    sign_in(client, shop, STAFF)
    return client


def staff_notices(app) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(OutboxMessage.subject)
                .where(OutboxMessage.to_email == "staff")
                .order_by(OutboxMessage.id)
            )
        )


def test_a_0259_payment_appears_disputed_with_its_due_date_and_closes_lost(shop, staff):
    public_id = paid_order(shop, quantity=1, card="pm_card_createDispute")
    order = get_order(shop, public_id)
    assert order.status == OrderStatus.PAID  # the dispute does not move the payment status
    due = f"{datetime.now(UTC) + timedelta(days=7):%-d %b %Y}"
    page = staff.get(f"/admin/orders/{public_id}").get_data(as_text=True)
    assert 'data-testid="dispute-badge">disputed<' in page
    assert f'data-testid="evidence-due">{due}<' in page
    assert "reason: fraudulent" in page and "$18.00" in page
    dashboard = staff.get("/admin/").get_data(as_text=True)
    alerts = dashboard.split('data-testid="alerts"')[1].split("</section>")[0]
    assert f"order {public_id[:8]}" in alerts and f"evidence due {due}" in alerts
    assert staff_notices(shop) == [f"Order {order.number} is disputed (fraudulent)"]
    listing = staff.get("/admin/orders?status=disputed").get_data(as_text=True)
    assert public_id[:8] in listing

    with shop.app_context():
        dispute_id = db.session.scalar(select(Dispute.stripe_dispute_id))
        payments.client().v1.disputes.update(
            dispute_id, params={"evidence": {"uncategorized_text": "losing_evidence"}}
        )
    feed(shop).deliver()
    page = staff.get(f"/admin/orders/{public_id}").get_data(as_text=True)
    assert 'data-testid="dispute-outcome">lost<' in page
    assert get_order(shop, public_id).status == OrderStatus.PAID
    assert staff_notices(shop)[-1] == f"Dispute on order {order.number} lost"
    dashboard = staff.get("/admin/").get_data(as_text=True)
    assert 'data-testid="alerts"' not in dashboard  # nothing open any more


def test_a_late_dispute_event_does_not_reopen_a_closed_dispute(shop, staff):
    public_id = paid_order(shop, quantity=1, card="pm_card_createDispute")
    with shop.app_context():
        dispute_id = db.session.scalar(select(Dispute.stripe_dispute_id))
        payments.client().v1.disputes.update(
            dispute_id, params={"evidence": {"uncategorized_text": "winning_evidence"}}
        )
    feed(shop).deliver(reverse=True)  # closed first, then the older updated event
    with shop.app_context():
        assert db.session.scalar(select(Dispute.status)) == "won"
    assert get_order(shop, public_id).status == OrderStatus.PAID


def test_an_early_fraud_warning_flags_the_order_and_suggests_a_refund(shop, staff):
    public_id = paid_order(shop, quantity=1, card="pm_card_createIssuerFraudRecord")
    page = staff.get(f"/admin/orders/{public_id}").get_data(as_text=True)
    assert 'data-testid="fraud-warning"' in page
    assert "Refunding it before it ships avoids a dispute" in page
    dashboard = staff.get("/admin/").get_data(as_text=True)
    assert "Early fraud warning:" in dashboard and public_id[:8] in dashboard
    number = get_order(shop, public_id).number
    assert staff_notices(shop) == [f"Early fraud warning on order {number}"]
    # Refunded in full, the warning leaves the dashboard.
    form_key = form_value(page, "form_key")
    staff.post(
        f"/admin/orders/{public_id}/refund",
        data={"form_key": form_key, "amount": "18.00", "reason": "fraudulent"},
    )
    feed(shop).deliver()
    assert get_order(shop, public_id).status == OrderStatus.REFUNDED
    assert "Early fraud warning:" not in staff.get("/admin/").get_data(as_text=True)


def test_a_refund_that_fails_later_is_shown_and_tells_staff(shop, staff, emulator):
    public_id = paid_order(shop, quantity=1, card="pm_card_refundFail")
    page = staff.get(f"/admin/orders/{public_id}").get_data(as_text=True)
    resp = staff.post(
        f"/admin/orders/{public_id}/refund",
        data={"form_key": form_value(page, "form_key"), "amount": "18.00", "reason": "duplicate"},
    )
    assert resp.status_code == 303
    feed(shop).deliver()
    assert get_order(shop, public_id).status == OrderStatus.REFUNDED
    requests.post(
        f"{emulator.url}/_emulator/clock",
        data={"advance": 10},
        headers={"Authorization": "Bearer sk_test_emulator"},
        timeout=5,
    )

    def failed_delivered() -> bool:
        return "refund.failed" in feed(shop).deliver()

    wait_until(failed_delivered, timeout=10)
    with shop.app_context():
        row = db.session.scalar(select(Refund))
        assert (row.status, row.failure_reason) == ("failed", "expired_or_canceled_card")
    page = staff.get(f"/admin/orders/{public_id}").get_data(as_text=True)
    assert "failed (expired or canceled card)" in page
    assert 'data-testid="remaining">$18.00<' in page  # the money did not go back
    number = get_order(shop, public_id).number
    assert staff_notices(shop) == [f"Refund of $18.00 for order {number} failed"]
    assert "Refund failed:" in staff.get("/admin/").get_data(as_text=True)
