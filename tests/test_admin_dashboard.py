"""The dashboard: the revenue chart drawn on the server, counts, what needs attention."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from storefront.admin.chart import PLOT_H
from storefront.admin.models import Refund
from storefront.extensions import db
from storefront.models import Order, OrderStatus, WebhookEvent
from tests.admin_helpers import STAFF, paid_by_webhook, sign_in
from tests.conftest import make_app
from tests.webhook_helpers import charge, make_event, post_event

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path, STAFF_EMAILS=STAFF)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def staff(client, app):
    sign_in(client, app, STAFF)
    return client


def seed_month(app, seed: int = 7) -> None:
    """A month of paid, refunded and unpaid orders in two currencies, and refunds (one
    failed), plus orders outside the 30 days that must not count."""
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    with app.app_context():
        for i in range(90):
            days_ago = rnd.randrange(0, 40)
            when = now - timedelta(days=days_ago, hours=rnd.randrange(0, 12))
            currency = rnd.choice(["usd", "eur"])
            amount = rnd.randrange(500, 9000)
            status = rnd.choice(
                [OrderStatus.PAID] * 4 + [OrderStatus.PARTIALLY_REFUNDED, OrderStatus.FAILED]
            )
            paid = status != OrderStatus.FAILED
            order = Order(
                email=f"c{i}@example.com",
                currency=currency,
                amount_total=amount,
                status=status,
                created_at=when - timedelta(minutes=5),
                fulfilled_at=when if paid else None,
            )
            db.session.add(order)
            db.session.flush()
            if status == OrderStatus.PARTIALLY_REFUNDED:
                refund_day = min(days_ago, rnd.randrange(0, days_ago + 1))
                db.session.add(
                    Refund(
                        order_id=order.id,
                        stripe_refund_id=f"re_{i}",
                        amount=amount // 3,
                        currency=currency,
                        status=rnd.choice(["succeeded", "succeeded", "pending", "failed"]),
                        created_at=now - timedelta(days=refund_day),
                    )
                )
        for i in range(3):
            db.session.add(
                WebhookEvent(
                    stripe_event_id=f"evt_decline_{i}",
                    type="payment_intent.payment_failed",
                    stripe_created=1,
                    payload="{}",
                    outcome="processed",
                )
            )
        db.session.commit()


def db_totals(app) -> dict[str, dict[str, int]]:
    """Gross and refunds per currency over the chart's 30 days, straight from SQL."""
    today = datetime.now(UTC).date()
    start = datetime.combine(today - timedelta(days=29), datetime.min.time())
    with app.app_context():
        gross = dict(
            db.session.execute(
                select(Order.currency, func.sum(Order.amount_total))
                .where(
                    Order.fulfilled_at >= start,
                    Order.status.in_(["paid", "partially_refunded", "refunded"]),
                )
                .group_by(Order.currency)
            ).all()
        )
        refunds = dict(
            db.session.execute(
                select(Refund.currency, func.sum(Refund.amount))
                .where(Refund.created_at >= start, Refund.status.not_in(["failed", "canceled"]))
                .group_by(Refund.currency)
            ).all()
        )
    return {
        cur: {"gross": gross.get(cur, 0), "refunds": refunds.get(cur, 0)}
        for cur in set(gross) | set(refunds)
    }


def charts(html: str) -> dict[str, ET.Element]:
    found = {}
    for match in re.finditer(r"<svg [^>]*class=\"revenue-chart\".*?</svg>", html, re.S):
        svg = ET.fromstring(match.group(0))
        found[svg.get("data-currency")] = svg
    return found


def test_the_charts_totals_equal_the_databases_sums(app, staff):
    seed_month(app)
    resp = staff.get("/admin/")
    assert resp.status_code == 200
    svgs = charts(resp.get_data(as_text=True))
    expected = db_totals(app)
    assert set(svgs) == set(expected) == {"usd", "eur"}
    for currency, svg in svgs.items():
        days = svg.findall(f"{SVG}g[@class='day']")
        assert len(days) == 30
        gross = sum(int(d.get("data-gross")) for d in days)
        refunds = sum(int(d.get("data-refunds")) for d in days)
        net = sum(int(d.get("data-net")) for d in days)
        assert gross == expected[currency]["gross"] > 0, currency
        assert refunds == expected[currency]["refunds"] > 0, currency
        assert net == gross - refunds
        assert int(svg.get("data-total-gross")) == gross
        # The bars are drawn to scale: the largest day fills the plot's height.
        heights = {
            int(d.get("data-gross")): float(d.find(f"{SVG}rect[@class='gross']").get("height"))
            for d in days
        }
        top = max(heights)
        assert heights[top] == pytest.approx(PLOT_H, abs=0.1)
        for amount, height in heights.items():
            assert height == pytest.approx(amount / top * PLOT_H, abs=0.1)


def test_counts_by_status_and_declines(app, staff):
    seed_month(app)
    html = staff.get("/admin/").get_data(as_text=True)
    with app.app_context():
        failed = db.session.scalar(select(func.count(Order.id)).where(Order.status == "failed"))
    assert f'data-status="failed">{failed}<' in html
    assert 'data-testid="declined-count">3<' in html


def test_an_empty_shop_has_no_chart(app, staff):
    html = staff.get("/admin/").get_data(as_text=True)
    assert "No sales or refunds in the last 30 days." in html
    assert "<svg" not in html.split("revenue-heading")[1]


def test_refunds_known_only_from_charge_refunded_count(app, staff, client):
    """A refund Stripe reports only in the charge's total (``charge.refunded``: made before
    the refund table, or its ``refund.created`` never came) is in the day's refunds; one
    with a refund row too is counted once."""
    paid = {}
    for name, pi_id in (("bare", "pi_bare"), ("rowed", "pi_rowed")):
        paid[name], status = paid_by_webhook(app, client, pi_id=pi_id)  # 2 x $18.00
        assert status == 200
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.public_id == paid["rowed"]))
        db.session.add(
            Refund(
                order_id=order.id,
                stripe_refund_id="re_rowed",
                amount=1000,
                currency="usd",
                status="succeeded",
            )
        )
        db.session.commit()
    for pi_id, refunded in (("pi_bare", 1200), ("pi_rowed", 1000)):
        event = make_event("charge.refunded", charge(pi_id, amount=3600, refunded=refunded))
        assert post_event(client, event).status_code == 200
    (svg,) = charts(staff.get("/admin/").get_data(as_text=True)).values()
    days = svg.findall(f"{SVG}g[@class='day']")
    total = {k: sum(int(d.get(f"data-{k}")) for d in days) for k in ("gross", "refunds", "net")}
    assert total == {"gross": 7200, "refunds": 1200 + 1000, "net": 7200 - 2200}
