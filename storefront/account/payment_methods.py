"""My account → Payment methods: the customer's saved cards, as Stripe has them.

The shop stores nothing about cards. The page lists the Stripe Customer's cards
(``customers/{id}/payment_methods``, type card) and marks the one the membership renews
with: the subscription's ``default_payment_method``, else the customer's
``invoice_settings.default_payment_method`` (Stripe's own order). "Use for membership"
sets both; "Remove" detaches the card. Every change is a Stripe call, and the page shows
the result by asking Stripe again.

Removing the card a renewing membership is charged with is refused: Stripe would allow
it, but the next renewal would then fall back to another default or, with none, fail and
leave the membership past due. The customer chooses another card for the membership
first (or cancels the membership, which then no longer renews). Cards of a membership
that ends at the period end, and every other card, can be removed.

Only the owner's cards: every action first retrieves the PaymentMethod and refuses it
unless Stripe says it belongs to the signed-in customer's Stripe Customer (an unknown id
and another customer's id get the same answer).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from .. import billing, payments
from ..models import LIVE_SUBSCRIPTION_STATUSES, Customer, Subscription
from ..viewer import signed_in_email
from . import bp
from .forms import CardActionForm

log = logging.getLogger(__name__)

# What a Stripe PaymentMethod id looks like (pm_…, or card_… for older saved cards):
# anything else is refused before Stripe is asked.
PAYMENT_METHOD_ID = re.compile(r"(pm|card|src)_[A-Za-z0-9]{1,100}")

BRANDS = {
    "amex": "American Express",
    "american_express": "American Express",
    "cartes_bancaires": "Cartes Bancaires",
    "diners": "Diners Club",
    "discover": "Discover",
    "eftpos_au": "eftpos",
    "interac": "Interac",
    "jcb": "JCB",
    "link": "Link",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}

NOT_YOURS = "That card isn't saved on your account. It may have been removed already."
RENEWAL_CARD = (
    "Your membership renews with this card, so it can't be removed. Choose another card "
    "for your membership first (or cancel the membership), then remove this one."
)
NO_MEMBERSHIP = "You have no active membership to choose a card for."
NOT_LOADED = "We couldn't load your saved cards from Stripe just now. Please try again in a moment."
NOT_CHANGED = (
    "We couldn't make that change at Stripe just now. Please try again in a moment; "
    "the cards below are as Stripe has them."
)


def _form_ok() -> bool:
    # The HTML form's fields only: left to itself Flask-WTF also reads a JSON body, and
    # fails on one that is not an object.
    return CardActionForm(request.form).validate_on_submit()


@dataclass(frozen=True)
class SavedCard:
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    renews_membership: bool = False

    @property
    def label(self) -> str:
        """ "Visa •••• 4242"."""
        return f"{self.brand} •••• {self.last4}"

    @property
    def expiry(self) -> str:
        """ "12/34", as printed on the card."""
        return f"{self.exp_month:02d}/{self.exp_year % 100:02d}"

    @property
    def expired(self) -> bool:
        today = datetime.now(UTC)
        return (self.exp_year, self.exp_month) < (today.year, today.month)


def saved_card(pm: Any, renewal_card_id: str | None = None) -> SavedCard:
    """Our view of a Stripe card PaymentMethod (brand, last 4 and expiry only)."""
    brand = str(payments.field(pm, "card", "display_brand") or payments.field(pm, "card", "brand"))
    return SavedCard(
        id=pm.id,
        brand=BRANDS.get(brand, brand.replace("_", " ").title() or "Card"),
        last4=str(payments.field(pm, "card", "last4", default="????")),
        exp_month=int(payments.field(pm, "card", "exp_month", default=0)),
        exp_year=int(payments.field(pm, "card", "exp_year", default=0)),
        renews_membership=pm.id == renewal_card_id,
    )


@dataclass(frozen=True)
class Renewal:
    """The membership's renewal as Stripe has it now."""

    subscription_id: str
    renews: bool  # live and not ending at the period end: it will charge a card
    card_id: str | None  # the card it is charged to (None: no card, the renewal would fail)
    ends_on: datetime | None  # when it ends, for a membership canceled at the period end


def _id_of(value: Any) -> str | None:
    """A Stripe reference that may be an id or an expanded object."""
    if value is None or isinstance(value, str):
        return value or None
    return payments.field(value, "id")


def renewal_of(membership: Subscription | None, customer_id: str) -> Renewal | None:
    """Ask Stripe which card the live membership renews with (raises ``PaymentError``)."""
    if membership is None:
        return None
    subscription_id = membership.stripe_subscription_id
    ends_on = membership.current_period_end
    sub = payments.retrieve_subscription(subscription_id)
    card_id = _id_of(payments.field(sub, "default_payment_method"))
    if card_id is None:
        stripe_customer = payments.retrieve_customer(customer_id)
        card_id = _id_of(
            payments.field(stripe_customer, "invoice_settings", "default_payment_method")
        )
    renews = payments.field(sub, "status") in LIVE_SUBSCRIPTION_STATUSES and not payments.field(
        sub, "cancel_at_period_end", default=False
    )
    return Renewal(subscription_id, renews, card_id, None if renews else ends_on)


# --------------------------------------------------------------------------- views


def _signed_in_customer() -> Customer | None:
    email = signed_in_email()
    return billing.find_customer(email) if email else None


def _page(
    customer: Customer,
    *,
    error: str | None = None,
    status: int = 200,
):
    """The Payment methods page: cards and renewal read from Stripe now. ``error`` is what
    the action just tried said (shown at the top, focused)."""
    customer_id = customer.stripe_customer_id or ""
    membership = billing.live_membership(customer)
    cards: list[SavedCard] = []
    renewal, load_error, owing = None, None, None
    if customer_id:
        try:
            # A failed renewal (past_due): what is owed and when Stripe tries the
            # membership's card again, so the customer knows to choose a working one.
            owing = billing.amount_due(membership)
            renewal = renewal_of(membership, customer_id)
            card_id = renewal.card_id if renewal else None
            cards = [saved_card(pm, card_id) for pm in payments.list_cards(customer_id)]
        except payments.PaymentError:
            load_error = NOT_LOADED  # logged by payments
    html = render_template(
        "account/payment_methods.html",
        cards=cards,
        renewal=renewal,
        has_stripe_customer=bool(customer_id),
        load_error=load_error,
        owing=owing,
        error=error,
    )
    return html, status


@bp.get("/payment-methods")
def payment_methods():
    customer = _signed_in_customer()
    if customer is None:
        return redirect(url_for("account.show"))
    return _page(customer)


def _owned_card(customer: Customer, pm_id: str) -> Any | None:
    """The signed-in customer's card by id, asked of Stripe; None if it is not theirs."""
    if not customer.stripe_customer_id or not PAYMENT_METHOD_ID.fullmatch(pm_id):
        return None
    return payments.customers_card(customer.stripe_customer_id, pm_id)


def _removal_blocked(customer: Customer, pm_id: str) -> tuple[bool, Renewal | None]:
    """Is this the card a renewing membership is charged with? (raises ``PaymentError``)"""
    assert customer.stripe_customer_id
    renewal = renewal_of(billing.live_membership(customer), customer.stripe_customer_id)
    return renewal is not None and renewal.renews and renewal.card_id == pm_id, renewal


@bp.get("/payment-methods/<pm_id>/remove")
def confirm_remove_card(pm_id: str):
    """ "Remove Visa •••• 4242?": what removing means, and the button that does it."""
    customer = _signed_in_customer()
    if customer is None:
        return redirect(url_for("account.show"))
    try:
        pm = _owned_card(customer, pm_id)
        if pm is None:
            return _page(customer, error=NOT_YOURS, status=404)
        blocked, renewal = _removal_blocked(customer, pm_id)
    except payments.PaymentError:
        return _page(customer, error=NOT_LOADED, status=503)
    card = saved_card(pm, renewal.card_id if renewal else None)
    return render_template(
        "account/remove_card.html",
        card=card,
        renewal=renewal,
        error=RENEWAL_CARD if blocked else None,
    ), (409 if blocked else 200)


@bp.post("/payment-methods/<pm_id>/remove")
def remove_card(pm_id: str):
    customer = _signed_in_customer()
    if customer is None:
        return redirect(url_for("account.show"), code=303)
    if not _form_ok():
        return _page(customer, error="Your session expired. Please try again.", status=400)
    try:
        pm = _owned_card(customer, pm_id)
        if pm is None:
            return _page(customer, error=NOT_YOURS, status=404)
        blocked, _ = _removal_blocked(customer, pm_id)
        if blocked:
            return _page(customer, error=RENEWAL_CARD, status=409)
        payments.detach_card(pm_id)
    except payments.PaymentError:
        return _page(customer, error=NOT_CHANGED, status=503)
    flash(f"{saved_card(pm).label} has been removed from your account.", "success")
    return redirect(url_for("account.payment_methods"), code=303)


@bp.post("/payment-methods/<pm_id>/membership")
def use_card_for_membership(pm_id: str):
    customer = _signed_in_customer()
    if customer is None:
        return redirect(url_for("account.show"), code=303)
    if not _form_ok():
        return _page(customer, error="Your session expired. Please try again.", status=400)
    membership = billing.live_membership(customer)
    if membership is None:
        return _page(customer, error=NO_MEMBERSHIP, status=409)
    subscription_id = membership.stripe_subscription_id
    try:
        pm = _owned_card(customer, pm_id)
        if pm is None:
            return _page(customer, error=NOT_YOURS, status=404)
        assert customer.stripe_customer_id
        payments.set_membership_card(customer.stripe_customer_id, subscription_id, pm_id)
    except payments.PaymentError:
        return _page(customer, error=NOT_CHANGED, status=503)
    flash(f"Your membership will renew with {saved_card(pm).label}.", "success")
    return redirect(url_for("account.payment_methods"), code=303)
