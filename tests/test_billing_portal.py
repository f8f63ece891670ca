"""Billing self-service for members (issue 14): the Customer Portal configuration made by
``flask catalog sync-stripe``, "Manage billing" on My account, and what the shop shows after
the portal's changes reach it by webhook (a failed renewal paid with a new card, a switch
from monthly to yearly).

The portal page's own actions are driven through its key-less API on the emulator (what
its JavaScript calls); the browser tests press the real buttons."""

from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import select

from storefront import payments
from storefront.extensions import db
from storefront.models import PORTAL_CONFIGURATION, Customer, Price, StripeSetting
from tests.conftest import make_app
from tests.live import emulator_config
from tests.stripe_helpers import EventFeed
from tests.test_membership import (
    EMAIL,
    MONTHLY,
    YEARLY,
    failed_renewal_shop,
    member_shop,
    membership,
)

CARD = {
    "card[number]": "4242424242424242",
    "card[exp_month]": "12",
    "card[exp_year]": "2034",
    "card[cvc]": "123",
}


def stored_configuration(app) -> str | None:
    with app.app_context():
        return db.session.scalar(
            select(StripeSetting.stripe_id).where(StripeSetting.name == PORTAL_CONFIGURATION)
        )


def sync(app) -> str:
    result = app.test_cli_runner().invoke(args=["catalog", "sync-stripe"])
    assert result.exit_code == 0, result.output
    return result.output


def form_key(html: str) -> str:
    return re.search(r'name="form_key" value="([^"]+)"', html).group(1)


def open_portal(shop) -> str:
    """Press Manage billing on My account; returns the portal's url (the redirect)."""
    html = shop.get("/account/").get_data(as_text=True)
    assert ">Manage billing</button>" in html
    resp = shop.post("/account/billing", data={"form_key": form_key(html)})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    return resp.headers["Location"]


def portal_api(url: str, path: str, data: dict | None = None) -> dict:
    base, bps_id = url.split("/p/session/")
    resp = requests.post(f"{base}/v1/portal_pages/{bps_id}{path}", data=data or {}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


# --------------------------------------------------------------------------- the configuration


def test_sync_makes_the_portal_configuration_once_and_keeps_its_id(tmp_path, emulator):
    app = make_app(tmp_path, **emulator_config(emulator))
    output = sync(app)
    config_id = stored_configuration(app)
    assert config_id and config_id.startswith("bpc_")
    assert f"Customer Portal configuration {config_id}: created." in output
    with app.app_context():
        config = payments.client().v1.billing_portal.configurations.retrieve(config_id)
        prices = {
            p.lookup_key: p.stripe_price_id
            for p in db.session.scalars(select(Price).where(Price.lookup_key.like("coffee-club%")))
        }
    features = config.features
    assert features.payment_method_update.enabled and features.invoice_history.enabled
    assert features.subscription_cancel.enabled
    assert features.subscription_cancel.mode == "at_period_end"
    update = features.subscription_update
    assert update.enabled and list(update.default_allowed_updates) == ["price"]
    assert sorted(update.products[0].prices) == sorted([prices[MONTHLY], prices[YEARLY]])
    assert update.proration_behavior == "create_prorations"
    assert config.metadata["storefront"] == "membership-portal"

    again = sync(app)
    assert f"Customer Portal configuration {config_id}: unchanged." in again
    with app.app_context():
        assert len(payments.client().v1.billing_portal.configurations.list().data) == 1

    # A new yearly price (the amount changed): the portal offers it instead of the old one.
    with app.app_context():
        yearly = db.session.scalar(select(Price).where(Price.lookup_key == YEARLY))
        yearly.unit_amount = 9500
        db.session.commit()
    changed = sync(app)
    assert f"Customer Portal configuration {config_id}: updated." in changed
    with app.app_context():
        new_yearly = db.session.scalar(
            select(Price.stripe_price_id).where(Price.lookup_key == YEARLY)
        )
        config = payments.client().v1.billing_portal.configurations.retrieve(config_id)
    assert new_yearly in config.features.subscription_update.products[0].prices
    assert prices[YEARLY] not in config.features.subscription_update.products[0].prices


def test_a_fresh_database_finds_the_accounts_configuration(tmp_path, stripe_app, emulator):
    synced = stored_configuration(stripe_app)
    assert synced
    (tmp_path / "fresh").mkdir()
    fresh = make_app(tmp_path / "fresh", **emulator_config(emulator))
    try:
        output = sync(fresh)
        assert stored_configuration(fresh) == synced
        assert f"{synced}: unchanged" in output
    finally:
        with fresh.app_context():
            db.engine.dispose()


# --------------------------------------------------------------------------- Manage billing


def test_manage_billing_opens_a_portal_session_returning_to_my_account(stripe_app, emulator):
    stripe_app.config["SHOP_BASE_URL"] = "https://shop.example"
    shop, _ = member_shop(stripe_app, emulator)
    url = open_portal(shop)
    assert url.startswith(f"{emulator.url}/p/session/bps_")
    bps_id = url.rsplit("/", 1)[1]
    with stripe_app.app_context():
        events = payments.client().v1.events.list(params={"type": "billing_portal.session.created"})
        session = events.data[0].data.object
        customer = db.session.scalar(select(Customer).where(Customer.email == EMAIL))
    assert session.id == bps_id
    assert session.customer == customer.stripe_customer_id
    assert session.return_url == "https://shop.example/account/"
    assert session.configuration == stored_configuration(stripe_app)
    page = requests.get(url, timeout=10).text
    assert 'href="https://shop.example/account/"' in page
    assert "$9.00" in page and "per month" in page


def test_one_form_opens_one_session_even_when_pressed_twice(stripe_app, emulator):
    shop, _ = member_shop(stripe_app, emulator)
    html = shop.get("/account/").get_data(as_text=True)
    key = form_key(html)
    first = shop.post("/account/billing", data={"form_key": key}).headers["Location"]
    second = shop.post("/account/billing", data={"form_key": key}).headers["Location"]
    assert first == second
    fresh = form_key(shop.get("/account/").get_data(as_text=True))
    assert fresh != key
    assert shop.post("/account/billing", data={"form_key": fresh}).headers["Location"] != first


def test_manage_billing_refuses_without_a_customer_a_form_or_a_sign_in(stripe_app):
    shop = stripe_app.test_client()
    resp = shop.post("/account/billing", data={"form_key": "k" * 24})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/account/")
    from tests import accounts

    accounts.sign_in(shop, "nobody@example.com")  # signed in, but never bought anything
    html = shop.get("/account/").get_data(as_text=True)
    assert "Manage billing" not in html
    resp = shop.post("/account/billing", data={"form_key": "k" * 24}, follow_redirects=True)
    assert "There is no billing to manage yet" in resp.get_data(as_text=True)
    with stripe_app.app_context():
        assert (
            payments.client().v1.events.list(params={"type": "billing_portal.session.created"}).data
            == []
        )
    for bad in ({}, {"form_key": "short"}, {"form_key": "<script>" * 4}):
        resp = shop.post("/account/billing", data=bad, follow_redirects=True)
        assert resp.status_code == 200
        assert "That form has expired" in resp.get_data(as_text=True)


def test_manage_billing_without_a_configuration_says_so(stripe_app, emulator):
    shop, _ = member_shop(stripe_app, emulator)
    with stripe_app.app_context():
        db.session.execute(db.delete(StripeSetting))
        db.session.commit()
    html = shop.get("/account/").get_data(as_text=True)
    resp = shop.post("/account/billing", data={"form_key": form_key(html)}, follow_redirects=True)
    assert "Billing management is not available just now" in resp.get_data(as_text=True)


def test_manage_billing_needs_a_csrf_token(tmp_path, emulator):
    from tests.live import synced_app

    app = synced_app(tmp_path, emulator, WTF_CSRF_ENABLED=True)
    from tests import accounts

    shop = app.test_client()
    accounts.sign_in(shop, EMAIL)
    resp = shop.post("/account/billing", data={"form_key": "k" * 24})
    assert resp.status_code == 400


def test_manage_billing_is_rate_limited(tmp_path, emulator):
    from tests.live import synced_app

    app = synced_app(
        tmp_path, emulator, RATELIMIT_ENABLED=True, RATE_LIMIT_BILLING_PER_SESSION="2 per minute"
    )
    from tests import accounts

    shop = app.test_client()
    accounts.sign_in(shop, "nobody@example.com")
    codes = [
        shop.post("/account/billing", data={"form_key": "k" * 24}).status_code for _ in range(3)
    ]
    assert codes == [303, 303, 429]


# --------------------------------------------------------------------------- after the portal


def test_a_failed_renewal_paid_in_the_portal_clears_the_banner(stripe_app, emulator):
    shop, sub_id = failed_renewal_shop(stripe_app, emulator)
    feed = EventFeed(stripe_app)
    feed.deliver()
    html = shop.get("/account/").get_data(as_text=True)
    assert 'data-testid="payment-problem"' in html
    assert "Update your card and pay now" in html
    assert "Next renewal" not in html

    url = open_portal(shop)
    assert portal_api(url, "/payment_method", CARD)["notice"] == "card_updated_paid"
    # Nothing changes here until Stripe's webhooks arrive.
    assert membership(stripe_app).status == "past_due"
    delivered = feed.deliver()
    assert "invoice.paid" in delivered and "customer.subscription.updated" in delivered

    after = membership(stripe_app)
    assert after.status == "active"
    with stripe_app.app_context():
        sub = payments.client().v1.subscriptions.retrieve(sub_id)
    period_end = sub["items"].data[0].current_period_end
    assert int(after.current_period_end.timestamp()) == period_end
    html = shop.get("/account/").get_data(as_text=True)
    assert 'data-testid="payment-problem"' not in html
    assert 'data-testid="amount-due"' not in html
    assert "Next renewal" in html
    assert after.current_period_end.strftime("%-d %b %Y") in html


def test_switching_to_yearly_in_the_portal_shows_the_new_plan(stripe_app, emulator):
    shop, feed = member_shop(stripe_app, emulator)
    assert "$9.00 / month" in shop.get("/account/").get_data(as_text=True)
    url = open_portal(shop)
    page = requests.get(url, timeout=10).text
    sub_id = re.search(r'data-subscription="(sub_[^"]+)"', page).group(1)
    yearly = re.search(r'name="price" value="(price_[^"]+)"', page).group(1)
    with stripe_app.app_context():
        assert yearly == db.session.scalar(
            select(Price.stripe_price_id).where(Price.lookup_key == YEARLY)
        )
    assert portal_api(url, f"/subscriptions/{sub_id}/update", {"price": yearly})["notice"] == (
        "switched"
    )
    assert membership(stripe_app).stripe_price_id != yearly  # not until the webhook
    assert "customer.subscription.updated" in feed.deliver()

    after = membership(stripe_app)
    assert after.stripe_price_id == yearly
    assert after.status == "active"
    html = shop.get("/account/").get_data(as_text=True)
    assert "$90.00 / year" in html
    assert after.current_period_end.strftime("%-d %b %Y") in html
    assert after.current_period_end.year >= 2027


@pytest.mark.parametrize("cancel_events", [1])
def test_canceling_in_the_portal_shows_the_end_date(stripe_app, emulator, cancel_events):
    shop, feed = member_shop(stripe_app, emulator)
    url = open_portal(shop)
    page = requests.get(url, timeout=10).text
    sub_id = re.search(r'data-subscription="(sub_[^"]+)"', page).group(1)
    portal_api(url, f"/subscriptions/{sub_id}/cancel")
    assert feed.deliver().count("customer.subscription.updated") == cancel_events
    assert membership(stripe_app).cancel_at_period_end is True
    html = shop.get("/account/").get_data(as_text=True)
    assert "Ends on" in html and "Resume membership" in html


def test_portal_events_late_and_out_of_order_end_in_stripes_state(stripe_app, emulator):
    shop, _ = failed_renewal_shop(stripe_app, emulator)
    feed = EventFeed(stripe_app)
    feed.deliver()
    url = open_portal(shop)
    portal_api(url, "/payment_method", CARD)
    page = requests.get(url, timeout=10).text
    sub_id = re.search(r'data-subscription="(sub_[^"]+)"', page).group(1)
    yearly = re.search(r'name="price" value="(price_[^"]+)"', page).group(1)
    portal_api(url, f"/subscriptions/{sub_id}/update", {"price": yearly})
    # Every event of both changes at once, newest first: each handler re-reads Stripe.
    delivered = feed.deliver(reverse=True)
    assert delivered.count("customer.subscription.updated") >= 3
    after = membership(stripe_app)
    assert (after.status, after.stripe_price_id) == ("active", yearly)
    html = shop.get("/account/").get_data(as_text=True)
    assert "$90.00 / year" in html and 'data-testid="payment-problem"' not in html


@pytest.mark.parametrize("old_row_first", [True, False])
def test_the_plan_follows_the_subscriptions_price_not_its_metadata(stripe_app, old_row_first):
    """Checkout wrote the plan it sold into the subscription's metadata; after a switch in the
    portal that metadata still names the old plan, and the price itself must win."""
    from storefront import billing

    with stripe_app.app_context():
        monthly = db.session.scalar(select(Price).where(Price.lookup_key == MONTHLY))
        yearly = db.session.scalar(select(Price).where(Price.lookup_key == YEARLY))
        first, second = (monthly, yearly) if old_row_first else (yearly, monthly)
        sold, now = first, second
        customer = Customer(email=EMAIL, stripe_customer_id="cus_switch")
        db.session.add(customer)
        db.session.flush()
        obj = {
            "id": "sub_switch",
            "customer": "cus_switch",
            "status": "active",
            "cancel_at_period_end": False,
            "metadata": {"customer_email": EMAIL, "price_lookup_key": sold.lookup_key},
            "items": {
                "data": [
                    {
                        "price": {"id": now.stripe_price_id, "lookup_key": None},
                        "current_period_end": 1_900_000_000,
                    }
                ]
            },
        }
        row = billing.apply_subscription(obj)
        assert row.price_id == now.id
        assert row.stripe_price_id == now.stripe_price_id
