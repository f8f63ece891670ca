"""My account → Payment methods: saved cards listed, removed and chosen for the membership,
all at Stripe (the emulator, through the SDK over HTTP)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from storefront import payments, transactions
from storefront.extensions import db
from storefront.models import Customer
from tests import accounts
from tests.stripe_helpers import stripe_events
from tests.test_membership import EMAIL, member_shop, membership

OTHER = "grace@example.com"


def text(resp) -> str:
    """The page's text with tags removed and spaces collapsed (what a reader sees)."""
    html = resp.get_data(as_text=True)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace(" ,", ",")


def stripe_customer_id(app, email: str = EMAIL) -> str:
    with app.app_context():
        return db.session.scalar(select(Customer.stripe_customer_id).where(Customer.email == email))


def attach(app, customer_id: str, test_pm: str = "pm_card_mastercard"):
    with app.app_context():
        return payments.client().v1.payment_methods.attach(
            test_pm, params={"customer": customer_id}
        )


def stripe_cards(app, customer_id: str) -> list[str]:
    with app.app_context():
        return [pm.id for pm in payments.list_cards(customer_id)]


def renewal_card(app, email: str = EMAIL) -> tuple[str | None, str | None]:
    """(subscription's default_payment_method, customer's invoice default) at Stripe."""
    sub_id = membership(app, email).stripe_subscription_id
    with app.app_context():
        sub = payments.retrieve_subscription(sub_id)
        customer = payments.retrieve_customer(sub.customer)
        return sub.default_payment_method, customer.invoice_settings.default_payment_method


def customer_with_cards(app, email: str, *test_pms: str) -> tuple[str, list]:
    """A signed-in-able customer with a Stripe Customer and cards, but no membership."""
    with app.app_context():
        customer_id = payments.create_stripe_customer(email)
        db.session.add(Customer(email=email, stripe_customer_id=customer_id))
        db.session.commit()
    return customer_id, [attach(app, customer_id, pm) for pm in test_pms]


@pytest.fixture
def member(stripe_app, emulator):
    """A signed-in member (paid with 4242 on Stripe Checkout, expires 12/34) who also saved
    a Mastercard."""
    shop, feed = member_shop(stripe_app, emulator)
    customer_id = stripe_customer_id(stripe_app)
    mastercard = attach(stripe_app, customer_id)
    return shop, feed, customer_id, mastercard


# --------------------------------------------------------------------------- the page


def test_signed_out_visitors_are_sent_to_sign_in(client):
    resp = client.get("/account/payment-methods")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account/")
    for path in (
        "/account/payment-methods/pm_x/remove",
        "/account/payment-methods/pm_x/membership",
    ):
        resp = client.post(path)
        assert resp.status_code == 303 and resp.headers["Location"].endswith("/account/")
    assert client.get("/account/payment-methods/pm_x/remove").status_code == 302


def test_a_customer_without_a_stripe_customer_sees_the_empty_state(client, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("no Stripe call without a Stripe Customer")

    monkeypatch.setattr(payments, "call", never)
    accounts.sign_in(client, EMAIL)
    resp = client.get("/account/payment-methods")
    assert resp.status_code == 200
    assert "You have no saved cards." in text(resp)
    assert resp.headers["Cache-Control"] == "no-store"


def test_my_account_links_to_payment_methods(client):
    accounts.sign_in(client, EMAIL)
    html = client.get("/account/").get_data(as_text=True)
    assert 'href="/account/payment-methods"' in html and "Manage payment methods" in html


def test_member_sees_their_cards_from_stripe_and_the_renewal_card(stripe_app, member):
    shop, _, customer_id, mastercard = member
    visa_id, _ = renewal_card(stripe_app)
    resp = shop.get("/account/payment-methods")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    page = text(resp)
    assert "Visa •••• ending in 4242 expires 12/34" in page
    assert f"Mastercard •••• ending in 4444 expires 12/{mastercard.card.exp_year % 100:02d}" in page
    html = resp.get_data(as_text=True)
    rows = dict(re.findall(r'data-card-id="([^"]+)">(.*?)</li>', html, flags=re.S))
    assert set(rows) == {visa_id, mastercard.id}
    assert "Membership renews with this card" in rows[visa_id]
    assert "Membership renews with this card" not in rows[mastercard.id]
    # The renewal card cannot be removed; the other can, or be chosen for the membership.
    assert "/remove" not in rows[visa_id] and "first choose another card" in rows[visa_id]
    assert f"/account/payment-methods/{mastercard.id}/remove" in rows[mastercard.id]
    assert f"/account/payment-methods/{mastercard.id}/membership" in rows[mastercard.id]


def test_a_customer_without_a_membership_can_only_remove(stripe_app):
    shop = stripe_app.test_client()
    _, (visa,) = customer_with_cards(stripe_app, OTHER, "pm_card_visa")
    accounts.sign_in(shop, OTHER)
    resp = shop.get("/account/payment-methods")
    assert "Visa •••• ending in 4242" in text(resp)
    html = resp.get_data(as_text=True)
    assert "Use for membership" not in html and "Membership renews" not in html
    resp = shop.post(f"/account/payment-methods/{visa.id}/membership")
    assert resp.status_code == 409
    assert "You have no active membership" in text(resp)


# --------------------------------------------------------------------------- remove


def test_removing_a_card_detaches_it_at_stripe(stripe_app, member):
    shop, _, customer_id, mastercard = member
    confirm = shop.get(f"/account/payment-methods/{mastercard.id}/remove")
    assert confirm.status_code == 200
    assert "Remove Mastercard •••• 4444?" in confirm.get_data(as_text=True)
    assert confirm.headers["Cache-Control"] == "no-store"

    resp = shop.post(f"/account/payment-methods/{mastercard.id}/remove")
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/account/payment-methods")
    assert mastercard.id not in stripe_cards(stripe_app, customer_id)
    detached = stripe_events(stripe_app, "payment_method.detached")
    assert [e.data.object.id for e in detached] == [mastercard.id]
    page = text(shop.get("/account/payment-methods"))
    assert "Mastercard •••• 4444 has been removed from your account." in page
    assert "ending in 4444" not in page
    # The membership is untouched.
    visa_id, _ = renewal_card(stripe_app)
    assert visa_id is not None and visa_id in stripe_cards(stripe_app, customer_id)


def test_the_card_a_renewing_membership_uses_cannot_be_removed(stripe_app, member):
    shop, _, customer_id, _ = member
    visa_id, _ = renewal_card(stripe_app)
    confirm = shop.get(f"/account/payment-methods/{visa_id}/remove")
    assert confirm.status_code == 409
    html = confirm.get_data(as_text=True)
    assert "can&#39;t be removed" in html and "confirm-remove-card" not in html
    resp = shop.post(f"/account/payment-methods/{visa_id}/remove")
    assert resp.status_code == 409
    html = resp.get_data(as_text=True)
    assert re.search(r'role="alert" tabindex="-1" autofocus data-testid="card-error"', html)
    assert "Your membership renews with this card, so it can&#39;t be removed" in html
    assert visa_id in stripe_cards(stripe_app, customer_id)
    assert stripe_events(stripe_app, "payment_method.detached") == []


def test_a_membership_ending_at_period_end_lets_its_card_go(stripe_app, member):
    shop, feed, customer_id, _ = member
    shop.post("/account/membership/cancel")
    feed.deliver()
    visa_id, _ = renewal_card(stripe_app)
    page = text(shop.get("/account/payment-methods"))
    assert "won't renew, so no card will be charged for it" in page
    confirm = shop.get(f"/account/payment-methods/{visa_id}/remove")
    assert confirm.status_code == 200
    assert "removing the card it was paid with changes nothing" in text(confirm)
    assert shop.post(f"/account/payment-methods/{visa_id}/remove").status_code == 303
    assert visa_id not in stripe_cards(stripe_app, customer_id)
    assert renewal_card(stripe_app) == (None, None)  # as Stripe does on detach


# --------------------------------------------------------------------------- membership card


def test_use_for_membership_sets_both_defaults_at_stripe(stripe_app, member):
    shop, feed, customer_id, mastercard = member
    old_visa, _ = renewal_card(stripe_app)
    resp = shop.post(f"/account/payment-methods/{mastercard.id}/membership")
    assert resp.status_code == 303
    assert renewal_card(stripe_app) == (mastercard.id, mastercard.id)
    assert "customer.subscription.updated" in feed.deliver()
    page = shop.get("/account/payment-methods")
    assert "Your membership will renew with Mastercard •••• 4444." in text(page)
    rows = dict(re.findall(r'data-card-id="([^"]+)">(.*?)</li>', page.get_data(as_text=True), re.S))
    assert "Membership renews with this card" in rows[mastercard.id]
    # Now the old card can go.
    assert shop.post(f"/account/payment-methods/{old_visa}/remove").status_code == 303
    assert stripe_cards(stripe_app, customer_id) == [mastercard.id]
    assert renewal_card(stripe_app) == (mastercard.id, mastercard.id)
    assert membership(stripe_app).grants_access


# --------------------------------------------------------------------------- only the owner


def test_another_customers_card_is_refused_and_left_alone(stripe_app, member):
    shop, _, _, _ = member
    other_customer, (theirs,) = customer_with_cards(stripe_app, OTHER, "pm_card_amex")
    for action in ("remove", "membership"):
        resp = shop.post(f"/account/payment-methods/{theirs.id}/{action}")
        assert resp.status_code == 404, action
        assert "That card isn&#39;t saved on your account." in resp.get_data(as_text=True)
        assert "3782" not in resp.get_data(as_text=True).replace("378282", "")
    confirm = shop.get(f"/account/payment-methods/{theirs.id}/remove")
    assert confirm.status_code == 404 and "ending in 0005" not in text(confirm)
    assert stripe_cards(stripe_app, other_customer) == [theirs.id]
    assert renewal_card(stripe_app)[0] != theirs.id


@pytest.mark.parametrize("pm_id", ["pm_doesNotExist", "x", "pm_" + "a" * 300, "pm_a-b", "pm_é"])
def test_unknown_and_malformed_ids_are_a_clear_404(stripe_app, member, pm_id):
    shop, _, customer_id, mastercard = member
    for action in ("remove", "membership"):
        resp = shop.post(f"/account/payment-methods/{pm_id}/{action}")
        assert resp.status_code == 404
        assert "isn&#39;t saved on your account" in resp.get_data(as_text=True)
    assert mastercard.id in stripe_cards(stripe_app, customer_id)


# --------------------------------------------------------------------------- Stripe trouble


def test_cards_unavailable_when_stripe_is_down(stripe_app, member, monkeypatch):
    shop = member[0]

    def down(customer_id):
        raise payments.PaymentError(payments.UNAVAILABLE, kind="unavailable")

    monkeypatch.setattr(payments, "list_cards", down)
    resp = shop.get("/account/payment-methods")
    assert resp.status_code == 200
    assert "We couldn&#39;t load your saved cards from Stripe" in resp.get_data(as_text=True)
    assert "You have no saved cards" not in resp.get_data(as_text=True)


def test_a_failed_removal_changes_nothing_and_says_so(stripe_app, member, monkeypatch):
    shop, _, customer_id, mastercard = member

    def down(pm_id):
        raise payments.PaymentError(payments.UNAVAILABLE, kind="unavailable")

    monkeypatch.setattr(payments, "detach_card", down)
    resp = shop.post(f"/account/payment-methods/{mastercard.id}/remove")
    assert resp.status_code == 503
    assert "We couldn&#39;t make that change at Stripe" in resp.get_data(as_text=True)
    assert mastercard.id in stripe_cards(stripe_app, customer_id)


def test_no_database_writes_are_held_across_the_stripe_changes(stripe_app, member, monkeypatch):
    shop, _, _, mastercard = member
    visa_id, _ = renewal_card(stripe_app)
    seen = []
    real_call = payments.call

    def checked(action, fn, *args, **kwargs):
        seen.append((action, transactions.holds_writes()))
        return real_call(action, fn, *args, **kwargs)

    monkeypatch.setattr(payments, "call", checked)
    shop.post(f"/account/payment-methods/{mastercard.id}/membership")
    shop.post(f"/account/payment-methods/{visa_id}/remove")
    actions = {action for action, _ in seen}
    assert {"subscription update", "customer update", "payment method detach"} <= actions
    assert not any(holds for _, holds in seen)


def test_signed_in_hostile_bodies_never_get_a_5xx(client):
    """The route walk in test_hostile_inputs is signed out (redirected before any form is
    read); signed in, the actions read their form too."""
    from tests.test_hostile_inputs import bodies

    accounts.sign_in(client, EMAIL)
    for action in ("remove", "membership"):
        for description, kwargs in bodies():
            resp = client.post(f"/account/payment-methods/pm_x/{action}", **kwargs)
            assert resp.status_code < 500, (action, description, resp.status_code)


def test_a_member_whose_renewal_failed_is_told_and_can_switch_to_a_working_card(
    stripe_app, emulator
):
    from tests.test_membership import failed_renewal_shop

    shop, sub_id = failed_renewal_shop(stripe_app, emulator)
    with stripe_app.app_context():
        sub = payments.retrieve_subscription(sub_id)
        failing = sub.default_payment_method
        visa = [c.id for c in payments.list_cards(sub.customer) if c.card.last4 == "4242"][0]
    page = shop.get("/account/payment-methods")
    html = page.get_data(as_text=True)
    assert 'data-testid="renewal-unpaid"' in html
    assert "Your latest membership renewal of $9.00 is unpaid" in text(page)
    assert "Stripe will try again on" in text(page)
    rows = dict(re.findall(r'data-card-id="([^"]+)">(.*?)</li>', html, flags=re.S))
    assert "Membership renews with this card" in rows[failing]
    assert shop.post(f"/account/payment-methods/{visa}/membership").status_code == 303
    assert renewal_card(stripe_app) == (visa, visa)
    # The declined card is no longer the membership's: it can be removed.
    assert shop.post(f"/account/payment-methods/{failing}/remove").status_code == 303
    with stripe_app.app_context():
        assert [c.id for c in payments.list_cards(sub.customer)] == [visa]
