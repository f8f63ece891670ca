"""The Coffee Club subscription through Stripe Checkout, driven through the emulator.

Webhook events are the emulator's own, fetched with the SDK and fed to
``webhooks.process_event`` (the code path the endpoint uses), so the tests control
when and in which order the shop hears about each change.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, update

from storefront import billing, payments
from storefront.extensions import db
from storefront.models import Customer, OutboxMessage, Price, Subscription
from storefront.money import format_money
from tests import accounts
from tests.stripe_helpers import EventFeed, pay_hosted_page, session_id_from

EMAIL = "ada@example.com"
MONTHLY = "coffee-club-monthly-usd"
YEARLY = "coffee-club-yearly-usd"


def subscribe(shop, email: str | None = EMAIL, plan: str = MONTHLY) -> str:
    data = {"price": plan, "nonce": "n" * 20 if email else "m" * 20}
    if email:
        data["email"] = email
    resp = shop.post("/membership/subscribe", data=data)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    return session_id_from(resp.headers["Location"])


def sign_in(shop, email: str = EMAIL) -> None:
    accounts.sign_in(shop, email)


def membership(app, email: str = EMAIL) -> Subscription | None:
    with app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.email == email))
        if customer is None or not customer.subscriptions:
            return None
        sub = customer.subscriptions[-1]
        db.session.expunge(sub)
        return sub


def member_shop(stripe_app, emulator) -> tuple:
    """A signed-in customer whose monthly membership was paid and announced by webhooks."""
    shop = stripe_app.test_client()
    cs_id = subscribe(shop)
    assert pay_hosted_page(emulator.url, cs_id, email=EMAIL)["status"] == "complete"
    feed = EventFeed(stripe_app)
    feed.deliver()
    sign_in(shop)
    return shop, feed


def advance(app, sub_id: str) -> None:
    with app.app_context():
        payments.client().raw_request("post", f"/v1/test_helpers/subscriptions/{sub_id}/advance")


def fail_renewals(app, sub_id: str) -> None:
    """Make the subscription's renewals fail, as on Stripe: its own default payment method
    (which Stripe charges before the customer's default) becomes a card that attaches but
    whose charges fail (4000 0000 0000 0341)."""
    with app.app_context():
        sc = payments.client()
        sub = sc.v1.subscriptions.retrieve(sub_id)
        failing = sc.v1.payment_methods.attach(
            "pm_card_chargeCustomerFail", params={"customer": sub.customer}
        )
        sc.v1.subscriptions.update(sub_id, params={"default_payment_method": failing.id})


def test_membership_page_shows_both_plans(client):
    html = client.get("/membership/").get_data(as_text=True)
    assert "Coffee Club" in html
    assert "$9.00" in html and "$90.00" in html
    assert html.count(">Subscribe</button>") == 2
    assert "Save $18.00 a year" in html
    assert 'name="csrf_token"' in html


def test_subscribe_makes_a_subscription_session_with_the_synced_price(stripe_app):
    shop = stripe_app.test_client()
    cs_id = subscribe(shop, plan=YEARLY)
    with stripe_app.app_context():
        cs = payments.retrieve_checkout_session(cs_id, line_items=True)
        yearly = db.session.scalar(select(Price).where(Price.lookup_key == YEARLY))
        assert cs.mode == "subscription"
        # A guest: the typed email goes to Stripe as customer_email, and nothing else.
        assert cs.customer is None and cs.customer_email == EMAIL
        assert db.session.scalar(select(func.count()).select_from(Customer)) == 0
        assert payments.client().v1.customers.list().data == []
        assert [li.price.id for li in cs.line_items.data] == [yearly.stripe_price_id]
        assert cs.amount_total == yearly.unit_amount
        assert cs.success_url.endswith("/membership/welcome?session_id={CHECKOUT_SESSION_ID}")
        assert cs.cancel_url.endswith("/membership/")


def test_customer_is_created_once_per_email_and_reused(stripe_app):
    shop = stripe_app.test_client()
    sign_in(shop)
    subscribe(shop, email=None)
    with stripe_app.app_context():
        first = db.session.scalar(select(Customer.stripe_customer_id))
        assert first is not None
    shop.post("/membership/subscribe", data={"price": YEARLY, "nonce": "x" * 20})
    with stripe_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Customer)) == 1
        assert db.session.scalar(select(Customer.email)) == EMAIL
        assert db.session.scalar(select(Customer.stripe_customer_id)) == first
        stripe_customers = payments.client().v1.customers.list(params={"email": EMAIL})
        assert len(stripe_customers.data) == 1


def test_double_submitted_form_reuses_the_session(stripe_app):
    shop = stripe_app.test_client()
    assert subscribe(shop) == subscribe(shop)


def test_subscribe_needs_an_email_and_a_plan(stripe_app):
    shop = stripe_app.test_client()
    resp = shop.post("/membership/subscribe", data={"price": MONTHLY}, follow_redirects=True)
    assert "valid email address" in resp.get_data(as_text=True)
    resp = shop.post(
        "/membership/subscribe", data={"price": "nope", "email": EMAIL}, follow_redirects=True
    )
    assert "choose a membership plan" in resp.get_data(as_text=True)
    with stripe_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Customer)) == 0


def test_subscribe_refuses_control_characters_and_overlong_emails(stripe_app):
    shop = stripe_app.test_client()
    for email in ("ada\x00@example.com", "a" * 243 + "@example.com"):
        resp = shop.post(
            "/membership/subscribe", data={"price": MONTHLY, "email": email}, follow_redirects=True
        )
        assert "valid email address" in resp.get_data(as_text=True)
    with stripe_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Customer)) == 0
        assert payments.client().v1.customers.list().data == []


def test_stripe_customer_key_stays_short_for_the_longest_email(stripe_app, monkeypatch):
    email = "a" * 242 + "@example.com"  # 254 characters: the longest we accept
    keys: list[str] = []
    real_call = payments.call

    def spy(action, fn, *args, **kwargs):
        if action == "customer create":
            keys.append(kwargs["options"]["idempotency_key"])
        return real_call(action, fn, *args, **kwargs)

    monkeypatch.setattr(payments, "call", spy)
    shop = stripe_app.test_client()
    sign_in(shop, email)
    subscribe(shop, email=None)
    (key,) = keys
    assert len(key) <= 255  # Stripe's limit for idempotency keys
    assert email not in key
    with stripe_app.app_context():
        assert db.session.scalar(select(Customer.email)) == email


def test_signed_in_customer_subscribes_without_typing_an_email(stripe_app):
    shop = stripe_app.test_client()
    sign_in(shop, "grace@example.com")
    html = shop.get("/membership/").get_data(as_text=True)
    assert "Subscribing as <strong>grace@example.com</strong>" in html
    cs_id = subscribe(shop, email=None)
    with stripe_app.app_context():
        cs = payments.retrieve_checkout_session(cs_id)
        customer = db.session.scalar(select(Customer))
        assert customer.email == "grace@example.com"
        assert cs.customer == customer.stripe_customer_id


def test_subscription_becomes_active_only_through_webhooks(stripe_app, emulator):
    shop = stripe_app.test_client()
    cs_id = subscribe(shop)
    pay_hosted_page(emulator.url, cs_id, email=EMAIL)
    assert membership(stripe_app) is None  # paid, but no webhook yet
    html = shop.get(f"/membership/welcome?session_id={cs_id}").get_data(as_text=True)
    assert "Activating" in html
    assert "http-equiv" not in html and 'data-wait-state="activating"' in html
    status_url = f"/membership/welcome/status?session_id={cs_id}"
    assert shop.get(status_url).get_json()["state"] == "activating"
    types = EventFeed(stripe_app).deliver()
    assert "checkout.session.completed" in types
    sub = membership(stripe_app)
    assert sub is not None
    assert sub.status == "active"
    assert sub.grants_access
    assert sub.current_period_end is not None
    assert sub.cancel_at_period_end is False
    assert shop.get(status_url).get_json()["state"] == "active"
    assert "data-wait-url" not in shop.get(f"/membership/welcome?session_id={cs_id}").get_data(
        as_text=True
    )
    with stripe_app.app_context():
        assert sub.price_id == db.session.scalar(
            select(Price.id).where(Price.lookup_key == MONTHLY)
        )
        stripe_sub = payments.retrieve_subscription(sub.stripe_subscription_id)
        period_end = stripe_sub["items"]["data"][0]["current_period_end"]
        # Stored as UTC (SQLite hands it back without a zone).
        assert sub.current_period_end.replace(tzinfo=UTC).timestamp() == period_end
        welcome = db.session.scalar(
            select(OutboxMessage).where(OutboxMessage.kind == "membership_welcome")
        )
        assert welcome.to_email == EMAIL
    html = shop.get(f"/membership/welcome?session_id={cs_id}").get_data(as_text=True)
    assert "Active" in html


def test_members_see_the_badge_and_free_shipping(stripe_app, emulator):
    shop, _ = member_shop(stripe_app, emulator)
    page = shop.get("/").get_data(as_text=True)
    assert 'data-testid="member-badge"' in page
    with stripe_app.app_context():
        price_id = db.session.scalar(
            select(Price.id).where(Price.lookup_key == "stoneware-mug-usd")
        )
    shop.post("/cart/add", data={"price_id": str(price_id), "quantity": "1"})
    cart = shop.get("/cart/").get_data(as_text=True)
    assert "Free for members" in cart
    # Someone else (not signed in) sees neither.
    stranger = stripe_app.test_client()
    assert 'data-testid="member-badge"' not in stranger.get("/").get_data(as_text=True)


def test_events_out_of_order_still_end_in_the_current_state(stripe_app, emulator):
    shop = stripe_app.test_client()
    cs_id = subscribe(shop)
    pay_hosted_page(emulator.url, cs_id, email=EMAIL)
    EventFeed(stripe_app).deliver(reverse=True)
    assert membership(stripe_app).status == "active"


def test_renewal_moves_to_the_next_period(stripe_app, emulator):
    shop, feed = member_shop(stripe_app, emulator)
    before = membership(stripe_app)
    advance(stripe_app, before.stripe_subscription_id)
    assert "invoice.paid" in feed.deliver()
    after = membership(stripe_app)
    assert after.status == "active"
    assert after.current_period_end > before.current_period_end
    html = shop.get("/account/").get_data(as_text=True)
    assert 'data-testid="payment-problem"' not in html
    assert after.current_period_end.strftime("%-d %b %Y") in html


def test_failed_renewal_is_past_due_with_a_banner_and_a_notice(stripe_app, emulator):
    shop, feed = member_shop(stripe_app, emulator)
    sub = membership(stripe_app)
    fail_renewals(stripe_app, sub.stripe_subscription_id)
    advance(stripe_app, sub.stripe_subscription_id)
    assert "invoice.payment_failed" in feed.deliver()
    assert membership(stripe_app).status == "past_due"
    html = shop.get("/account/").get_data(as_text=True)
    assert 'data-testid="payment-problem"' in html
    assert "problem with your membership payment" in html
    with stripe_app.app_context():
        notices = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "membership_payment_problem")
        ).all()
        assert [n.to_email for n in notices] == [EMAIL]
    feed.seen.clear()  # every event delivered again: still one notice
    feed.deliver()
    with stripe_app.app_context():
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.kind == "membership_payment_problem")
            )
            == 1
        )


def failed_renewal_shop(stripe_app, emulator) -> tuple:
    """A signed-in member whose renewal failed (past_due, the README's demo)."""
    shop, feed = member_shop(stripe_app, emulator)
    sub = membership(stripe_app)
    fail_renewals(stripe_app, sub.stripe_subscription_id)
    advance(stripe_app, sub.stripe_subscription_id)
    assert "invoice.payment_failed" in feed.deliver()
    return shop, sub.stripe_subscription_id


def open_invoice(app, sub_id: str):
    with app.app_context():
        return (
            payments.client()
            .v1.invoices.list(params={"subscription": sub_id, "status": "open"})
            .data[0]
        )


def test_past_due_shows_the_amount_due_and_the_next_retry_not_a_next_renewal(stripe_app, emulator):
    shop, sub_id = failed_renewal_shop(stripe_app, emulator)
    invoice = open_invoice(stripe_app, sub_id)
    assert invoice.amount_due > 0 and invoice.next_payment_attempt
    amount = format_money(invoice.amount_due, invoice.currency)
    retry = datetime.fromtimestamp(invoice.next_payment_attempt, UTC).strftime("%-d %b %Y")
    html = shop.get("/account/").get_data(as_text=True)
    assert "Next renewal" not in html
    assert 'data-testid="membership-period-end"' not in html
    assert re.search(rf'data-testid="amount-due">\s*{re.escape(amount)}', html)
    assert f'data-testid="next-payment-attempt">{retry}<' in html
    banner = html.split('data-testid="payment-problem"')[1].split("</div>")[0]
    assert f"couldn't charge your card {amount}" in banner
    assert f"try your card again on {retry}" in banner


def test_active_membership_shows_the_next_renewal_and_nothing_due(stripe_app, emulator):
    shop, _ = member_shop(stripe_app, emulator)
    html = shop.get("/account/").get_data(as_text=True)
    sub = membership(stripe_app)
    assert "Next renewal" in html
    assert sub.current_period_end.strftime("%-d %b %Y") in html
    assert 'data-testid="amount-due' not in html
    assert 'data-testid="next-payment-attempt"' not in html


def test_unpaid_membership_shows_the_amount_due_and_no_next_renewal(stripe_app, emulator):
    shop, sub_id = failed_renewal_shop(stripe_app, emulator)
    with stripe_app.app_context():  # as Stripe leaves it when the retries run out
        db.session.execute(
            update(Subscription)
            .where(Subscription.stripe_subscription_id == sub_id)
            .values(status="unpaid")
        )
        db.session.commit()
    invoice = open_invoice(stripe_app, sub_id)
    html = shop.get("/account/").get_data(as_text=True)
    assert "Next renewal" not in html
    assert format_money(invoice.amount_due, invoice.currency) in html
    assert 'data-testid="membership-unpaid"' in html
    assert 'data-testid="payment-problem"' not in html  # not live: perks are off


def test_amount_due_is_fetched_outside_a_database_transaction(stripe_app, emulator, monkeypatch):
    shop, _ = failed_renewal_shop(stripe_app, emulator)
    real = payments.open_invoice_for_subscription
    seen = []

    def checked(subscription_id):
        seen.append(db.session().in_transaction())
        return real(subscription_id)

    monkeypatch.setattr(payments, "open_invoice_for_subscription", checked)
    assert shop.get("/account/").status_code == 200
    assert seen == [False]


def test_amount_due_unavailable_when_stripe_is_down(stripe_app, emulator, monkeypatch):
    shop, _ = failed_renewal_shop(stripe_app, emulator)

    def down(subscription_id):
        raise payments.PaymentError("unavailable", kind="unavailable")

    monkeypatch.setattr(payments, "open_invoice_for_subscription", down)
    resp = shop.get("/account/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'data-testid="amount-due-unavailable"' in html
    assert "Next renewal" not in html
    assert 'data-testid="payment-problem"' in html


def test_cancel_at_period_end_then_the_membership_ends(stripe_app, emulator):
    shop, feed = member_shop(stripe_app, emulator)
    resp = shop.post("/account/membership/cancel", follow_redirects=True)
    assert "will end at the end of the current period" in resp.get_data(as_text=True)
    # Our record follows Stripe's webhook, not the button; until it comes, the page says so.
    assert membership(stripe_app).cancel_at_period_end is False
    html = shop.get("/account/").get_data(as_text=True)
    assert 'data-testid="awaiting-stripe"' in html
    assert 'data-wait-url="/account/status"' in html and "http-equiv" not in html
    assert shop.get("/account/status").get_json()["state"] == "waiting"
    assert "customer.subscription.updated" in feed.deliver()
    assert shop.get("/account/status").get_json() == {
        "state": "settled",
        "message": "Stripe has confirmed your membership change.",
    }
    sub = membership(stripe_app)
    assert sub.cancel_at_period_end is True
    assert sub.grants_access  # paid until the period ends
    html = shop.get("/account/").get_data(as_text=True)
    assert 'data-testid="awaiting-stripe"' not in html
    assert "Resume membership" in html
    assert "Ends on" in html

    advance(stripe_app, sub.stripe_subscription_id)
    assert "customer.subscription.deleted" in feed.deliver()
    ended = membership(stripe_app)
    assert ended.status == "canceled"
    assert not ended.grants_access
    page = shop.get("/account/").get_data(as_text=True)
    assert "Your membership has ended" in page
    assert 'data-testid="member-badge"' not in page


def test_resume_keeps_the_membership(stripe_app, emulator):
    shop, feed = member_shop(stripe_app, emulator)
    shop.post("/account/membership/cancel")
    feed.deliver()
    assert membership(stripe_app).cancel_at_period_end is True
    shop.post("/account/membership/resume")
    feed.deliver()
    sub = membership(stripe_app)
    assert sub.cancel_at_period_end is False
    advance(stripe_app, sub.stripe_subscription_id)
    feed.deliver()
    assert membership(stripe_app).status == "active"


def test_existing_member_cannot_subscribe_twice(stripe_app, emulator):
    shop, _ = member_shop(stripe_app, emulator)
    resp = shop.post("/membership/subscribe", data={"price": YEARLY, "nonce": "z" * 20})
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/account/")
    html = shop.get("/membership/").get_data(as_text=True)
    assert 'data-testid="already-member"' in html


def session_status(app, cs_id: str) -> str:
    with app.app_context():
        return payments.retrieve_checkout_session(cs_id).status


def test_opening_another_plan_expires_the_first_session(stripe_app):
    shop = stripe_app.test_client()
    monthly = subscribe(shop, plan=MONTHLY)
    yearly = subscribe(shop, plan=YEARLY)
    assert session_status(stripe_app, monthly) == "expired"
    assert session_status(stripe_app, yearly) == "open"
    # The same form sent twice still gets its own session back, open.
    assert subscribe(shop, plan=YEARLY) == yearly
    assert session_status(stripe_app, yearly) == "open"


def test_signed_in_on_another_device_expires_the_first_session(stripe_app):
    first_tab, second_tab = stripe_app.test_client(), stripe_app.test_client()
    sign_in(first_tab)
    sign_in(second_tab)
    first = subscribe(first_tab, email=None)
    resp = second_tab.post("/membership/subscribe", data={"price": MONTHLY, "nonce": "t" * 20})
    second = session_id_from(resp.headers["Location"])
    assert second != first
    assert session_status(stripe_app, first) == "expired"
    assert session_status(stripe_app, second) == "open"
    with stripe_app.app_context():
        customer_id = db.session.scalar(select(Customer.stripe_customer_id))
        open_sessions = payments.list_open_checkout_sessions(customer_id)
        assert [cs.id for cs in open_sessions] == [second]


def test_a_second_paid_subscription_is_reported_to_staff_not_canceled(stripe_app, emulator, caplog):
    from storefront import membership as membership_module

    shop, feed = member_shop(stripe_app, emulator)
    first = membership(stripe_app)
    # Two sessions paid at once (a race the expiry above cannot rule out): the second
    # session is made the way the shop makes them, without expiring the first.
    with stripe_app.test_request_context("/"):
        customer = db.session.scalar(select(Customer))
        yearly = db.session.scalar(select(Price).where(Price.lookup_key == YEARLY))
        cs = payments.create_checkout_session(
            membership_module.subscription_params(
                customer.stripe_customer_id, EMAIL, yearly, "r" * 20
            ),
            "test:second-session",
        )
    assert pay_hosted_page(emulator.url, cs.id, email=EMAIL)["status"] == "complete"
    with caplog.at_level("WARNING", logger="storefront.billing"):
        feed.deliver()
        feed.seen.clear()
        feed.deliver()  # delivered again: still one notice
    assert "2 live subscriptions" in caplog.text
    with stripe_app.app_context():
        notices = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "staff_duplicate_membership")
        ).all()
        assert len(notices) == 1
        assert first.stripe_subscription_id in notices[0].body
        subs = db.session.scalars(select(Subscription.stripe_subscription_id)).all()
        assert len(subs) == 2
        statuses = [payments.retrieve_subscription(s).status for s in subs]
        assert statuses == ["active", "active"]  # nothing canceled


def test_sessions_that_keep_coming_back_expired_are_not_blamed_on_the_plan(
    stripe_app, monkeypatch, caplog
):
    from storefront import membership as membership_module

    real_retrieve = payments.retrieve_checkout_session
    created: list[str] = []

    def always_expired(session_id, **kwargs):
        created.append(session_id)
        cs = real_retrieve(session_id, **kwargs)
        return SimpleNamespace(id=cs.id, status="expired")

    monkeypatch.setattr(payments, "retrieve_checkout_session", always_expired)
    shop = stripe_app.test_client()
    with caplog.at_level("ERROR", logger="storefront.membership"):
        resp = shop.post(
            "/membership/subscribe",
            data={"price": MONTHLY, "email": EMAIL, "nonce": "e" * 20},
            follow_redirects=True,
        )
    page = resp.get_data(as_text=True)
    assert len(set(created)) == membership_module.SESSION_ATTEMPTS  # a new session each time
    assert "already expired" in caplog.text
    assert "NOT offered" not in caplog.text and "sync-stripe" not in caplog.text
    assert membership_module.PLAN_UPDATING not in page
    assert payments.UNAVAILABLE in page


def test_back_to_the_first_plan_from_the_same_page_opens_a_new_session(stripe_app):
    shop = stripe_app.test_client()
    monthly = subscribe(shop, plan=MONTHLY)
    subscribe(shop, plan=YEARLY)  # expires the monthly one
    again = subscribe(shop, plan=MONTHLY)
    assert again != monthly
    assert session_status(stripe_app, again) == "open"


def test_membership_price_changed_but_not_synced_is_refused(stripe_app, caplog):
    from storefront.catalog import sync_catalog

    with stripe_app.app_context():
        yearly = db.session.scalar(select(Price).where(Price.lookup_key == YEARLY))
        yearly.unit_amount += 500  # our price changed; Stripe's Price still has the old one
        new_amount = yearly.unit_amount
        db.session.commit()
    shop = stripe_app.test_client()
    data = {"price": YEARLY, "email": EMAIL, "nonce": "p" * 20}
    with caplog.at_level("ERROR", logger="storefront.membership"):
        resp = shop.post("/membership/subscribe", data=data)
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/membership/")
    page = shop.get("/membership/").get_data(as_text=True)
    assert "This plan is being updated; please try again shortly" in page
    assert "NOT offered" in caplog.text
    with stripe_app.app_context():
        listed = payments.client().v1.checkout.sessions.list(params={"status": "open"})
        assert listed.data == []
        sync_catalog(echo=lambda *_: None)
    # Once synced, the same form is sold at our amount.
    cs_id = session_id_from(shop.post("/membership/subscribe", data=data).headers["Location"])
    with stripe_app.app_context():
        cs = payments.retrieve_checkout_session(cs_id)
        assert cs.status == "open"
        assert cs.amount_total == new_amount


def test_welcome_page_for_an_open_unpaid_session_goes_back(stripe_app):
    shop = stripe_app.test_client()
    cs_id = subscribe(shop)  # opened, never paid
    resp = shop.get(f"/membership/welcome?session_id={cs_id}")
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/membership/")
    assert "Welcome" not in shop.get("/membership/").get_data(as_text=True)
    assert membership(stripe_app) is None


def test_welcome_page_without_a_completed_session_goes_back(client):
    resp = client.get("/membership/welcome?session_id=cs_test_nope")
    assert resp.status_code == 303


def test_active_trialing_and_past_due_grant_access_and_nothing_else_does():
    every = [
        "active",
        "trialing",
        "past_due",
        "unpaid",
        "incomplete",
        "incomplete_expired",
        "canceled",
        "paused",
    ]
    granting = {s for s in every if Subscription(status=s).grants_access}
    assert granting == {"active", "trialing", "past_due"}
    assert {s for s in every if billing.is_live(Subscription(status=s))} == granting
    assert billing.is_live(None) is False


@pytest.mark.parametrize("status", ["unpaid", "incomplete", "paused"])
def test_a_membership_that_is_over_can_be_joined_again(stripe_app, status):
    with stripe_app.app_context():
        customer = billing.get_or_create_customer(EMAIL)
        db.session.add(
            Subscription(stripe_subscription_id="sub_old", customer_id=customer.id, status=status)
        )
        db.session.commit()
    shop = stripe_app.test_client()
    sign_in(shop)
    account = shop.get("/account/").get_data(as_text=True)
    assert "Your membership has ended" in account
    assert 'data-testid="payment-problem"' not in account
    assert "Cancel at period end" not in account
    plans_page = shop.get("/membership/").get_data(as_text=True)
    assert 'data-testid="already-member"' not in plans_page
    # ...and Subscribe agrees: off to Stripe Checkout, not back to My account.
    cs_id = subscribe(shop, email=None)
    assert session_status(stripe_app, cs_id) == "open"
    assert shop.post("/account/membership/cancel").status_code == 404


def without_csrf_tokens(html: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token"', html)


def answer_shape(resp) -> tuple[int, str]:
    """A Subscribe answer with the parts that differ per session removed."""
    location = re.sub(r"cs_\w+", "cs_X", resp.headers.get("Location", ""))
    return resp.status_code, re.sub(r"#.*", "", location)


def test_subscribe_does_not_tell_members_from_strangers(stripe_app, emulator):
    member_shop(stripe_app, emulator)  # EMAIL is a member
    with stripe_app.app_context():
        customers_before = db.session.scalar(select(func.count()).select_from(Customer))
        stripe_customers_before = len(payments.client().v1.customers.list().data)
    answers = {}
    for email in (EMAIL, "stranger@example.com"):
        guest = stripe_app.test_client()
        resp = guest.post(
            "/membership/subscribe", data={"price": YEARLY, "email": email, "nonce": "s" * 20}
        )
        answers[email] = answer_shape(resp)
    # Both off to Stripe Checkout: the answer says nothing about the address.
    assert answers[EMAIL] == answers["stranger@example.com"]
    assert answers[EMAIL][0] == 303 and "/c/pay/cs_X" in answers[EMAIL][1]
    with stripe_app.app_context():
        # No sign-in link, no Customer here or at Stripe for a typed address.
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.kind == "sign_in")
            )
            == 0
        )
        assert db.session.scalar(select(func.count()).select_from(Customer)) == customers_before
        assert len(payments.client().v1.customers.list().data) == stripe_customers_before


def test_a_guest_typing_someones_email_leaves_their_open_session_alone(stripe_app):
    victim = stripe_app.test_client()
    sign_in(victim)
    theirs = subscribe(victim, email=None)
    stranger = stripe_app.test_client()
    mine = subscribe(stranger, email=EMAIL, plan=YEARLY)
    assert mine != theirs
    assert session_status(stripe_app, theirs) == "open"
    assert session_status(stripe_app, mine) == "open"


def test_customer_lists_never_run_without_a_customer(stripe_app, monkeypatch):
    # Stripe ignores an empty filter: the list would be every customer's.
    with stripe_app.app_context():
        monkeypatch.setattr(payments, "call", lambda *a, **k: pytest.fail("asked Stripe"))
        assert payments.list_open_checkout_sessions("") == []


def test_two_memberships_checked_after_both_rows_exist_give_one_staff_notice(app):
    from storefront.billing import _warn_about_other_live_subscriptions

    with app.app_context():
        customer = Customer(email=EMAIL, stripe_customer_id="cus_twice")
        db.session.add(customer)
        rows = [
            Subscription(stripe_subscription_id=f"sub_{n}", customer=customer, status="active")
            for n in ("a", "b")
        ]
        db.session.add_all(rows)
        db.session.commit()
        for row in rows:  # each subscription's webhook runs the check
            _warn_about_other_live_subscriptions(row)
        notices = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "staff_duplicate_membership")
        ).all()
    assert len(notices) == 1
    assert "sub_a" in notices[0].body and "sub_b" in notices[0].body
