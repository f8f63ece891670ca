"""Links we mail (sign-in, notices) come from SHOP_BASE_URL, never from the Host header."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from storefront import create_app, webhooks
from storefront.extensions import db
from storefront.models import OutboxMessage
from tests.stripe_helpers import pay_hosted_page, stripe_events
from tests.test_config import PRODUCTION
from tests.test_membership import (
    EMAIL,
    advance,
    fail_renewals,
    member_shop,
    membership,
    subscribe,
)

BASE = "https://shop.example.com"
EVIL = "evil.example"


def messages(app, kind: str) -> list[OutboxMessage]:
    with app.app_context():
        found = db.session.scalars(select(OutboxMessage).where(OutboxMessage.kind == kind)).all()
        for m in found:
            db.session.expunge(m)
        return list(found)


def test_production_refuses_to_start_without_shop_base_url():
    config = dict(PRODUCTION, DATABASE_URL="sqlite://", SHOP_BASE_URL=None)
    with pytest.raises(SystemExit) as excinfo:
        create_app(config)
    message = str(excinfo.value)
    assert message.startswith("Refusing to start in production: SHOP_BASE_URL is not set")
    assert "\n" not in message
    assert create_app(dict(PRODUCTION, DATABASE_URL="sqlite://")).config["SHOP_BASE_URL"] == BASE


def test_sign_in_link_ignores_a_forged_host_header(app):
    app.config["SHOP_BASE_URL"] = BASE + "/"
    client = app.test_client()
    resp = client.post(
        "/account/sign-in", data={"email": "victim@example.com"}, headers={"Host": EVIL}
    )
    assert resp.status_code == 200
    (message,) = messages(app, "sign_in")
    assert f"{BASE}/account/sign-in/" in message.body
    assert EVIL not in message.body


def test_without_shop_base_url_development_links_use_the_request(app):
    client = app.test_client()
    client.post("/account/sign-in", data={"email": "ada@example.com"})
    (message,) = messages(app, "sign_in")
    assert "http://localhost/account/sign-in/" in message.body


def deliver_via(app, host: str) -> list[str]:
    """Every emulator event to the webhook code, as if the request came for ``host``."""
    events = stripe_events(app)
    with app.test_request_context("/webhooks/stripe", base_url=f"http://{host}"):
        for event in events:
            webhooks.process_event(event)
    return [e.type for e in events]


def test_membership_notices_link_to_shop_base_url(stripe_app, emulator):
    stripe_app.config["SHOP_BASE_URL"] = BASE
    shop = stripe_app.test_client()
    cs_id = subscribe(shop)
    pay_hosted_page(emulator.url, cs_id, email=EMAIL)
    deliver_via(stripe_app, EVIL)
    (welcome,) = messages(stripe_app, "membership_welcome")
    assert f"{BASE}/account/" in welcome.body
    assert EVIL not in welcome.body


def test_payment_problem_notice_links_to_shop_base_url(stripe_app, emulator):
    member_shop(stripe_app, emulator)
    stripe_app.config["SHOP_BASE_URL"] = BASE
    sub = membership(stripe_app)
    fail_renewals(stripe_app, sub.stripe_subscription_id)
    advance(stripe_app, sub.stripe_subscription_id)
    assert "invoice.payment_failed" in deliver_via(stripe_app, EVIL)
    (notice,) = messages(stripe_app, "membership_payment_problem")
    assert f"{BASE}/account/" in notice.body
    assert EVIL not in notice.body
