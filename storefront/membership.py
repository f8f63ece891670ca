"""The Coffee Club membership page and subscribing through Stripe Checkout.

Subscribe opens a Checkout Session in ``subscription`` mode with the synced Price:

* signed in (the email is proven): for the customer's Stripe Customer, made once and
  reused, after expiring the customer's other open subscription sessions, so only one
  can be paid;
* a guest: with ``customer_email`` only. An email anyone may type is never looked up
  (the answer is the same for members and strangers: off to Stripe), never gets a Stripe
  Customer and never expires anyone's sessions but this browser's own. Stripe makes the
  customer when the guest pays, and the webhook links it to our Customer by email.

Our ``Subscription`` record is written by the webhooks only (see ``billing``); the
welcome page shows what we know so far, in full only to the browser that subscribed or
the signed-in owner.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select

from . import billing, payments
from .account import signed_in_customer, signed_in_email
from .extensions import db
from .hosted_checkout import SESSION_ID_PLACEHOLDER, synced_price_id, totals_match
from .links import external_url
from .models import Price, Product
from .payments import PaymentError, field
from .security import stripe_page
from .viewer import STARTED_KEY, mask_email, owns_email, remember_started, started_here

log = logging.getLogger(__name__)

bp = Blueprint("membership", __name__, url_prefix="/membership")

_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def membership_product() -> Product:
    product = db.session.scalar(
        select(Product).where(Product.slug == billing.MEMBERSHIP_SLUG, Product.active)
    )
    if product is None:
        abort(404, "The membership is not available right now.")
    return product


def plans(product: Product) -> list[Price]:
    """The active recurring prices, monthly before yearly."""
    order = {"day": 0, "week": 1, "month": 2, "year": 3}
    recurring = [p for p in product.prices if p.active and p.is_recurring]
    return sorted(recurring, key=lambda p: (p.currency, order.get(p.recurring_interval or "", 9)))


def yearly_saving(prices: list[Price]) -> dict[str, int]:
    """Per currency: what the yearly plan saves over twelve monthly payments."""
    monthly = {p.currency: p.unit_amount for p in prices if p.recurring_interval == "month"}
    return {
        p.currency: monthly[p.currency] * 12 - p.unit_amount
        for p in prices
        if p.recurring_interval == "year"
        and p.currency in monthly
        and monthly[p.currency] * 12 > p.unit_amount
    }


@bp.get("/")
@stripe_page(checkout=True)  # Subscribe redirects to Stripe Checkout
def index():
    product = membership_product()
    prices = plans(product)
    customer = signed_in_customer()
    return render_template(
        "membership/index.html",
        product=product,
        prices=prices,
        savings=yearly_saving(prices),
        email=signed_in_email(),
        membership=billing.live_membership(customer),
        # One per page view: a double-submitted form reuses the same Checkout Session.
        nonce=secrets.token_urlsafe(16),
    )


def subscription_params(
    customer_id: str | None, email: str, price: Price, nonce: str = ""
) -> dict[str, Any]:
    """A Checkout Session (mode=subscription) for one membership plan: for the Stripe
    Customer ``customer_id``, or (a guest, ``None``) with ``customer_email`` only.

    The session's metadata also names the form (``nonce``) that asked for it, so a double
    submit of that form is told apart from a session opened elsewhere.
    """
    stripe_price_id = synced_price_id(price, price.unit_amount, price.currency)
    if stripe_price_id:
        item: dict[str, Any] = {"price": stripe_price_id, "quantity": 1}
    else:
        # Not synced (yet): describe the plan with our own amount and interval.
        item = {
            "price_data": {
                "currency": price.currency,
                "unit_amount": price.unit_amount,
                "recurring": {"interval": price.recurring_interval},
                "product_data": {"name": price.product.name},
            },
            "quantity": 1,
        }
    metadata = {"customer_email": email, "price_lookup_key": price.lookup_key}
    who = {"customer": customer_id} if customer_id else {"customer_email": email}
    return {
        "mode": "subscription",
        "line_items": [item],
        **who,
        "client_reference_id": price.lookup_key,
        "metadata": {**metadata, "form_nonce": nonce},
        "subscription_data": {"metadata": metadata},
        "success_url": external_url("membership.welcome") + "?session_id=" + SESSION_ID_PLACEHOLDER,
        "cancel_url": external_url("membership.index"),
    }


PLAN_UPDATING = "This plan is being updated; please try again shortly."


class PlanUnavailable(Exception):
    """Stripe's Price for the plan is not what our database says (not re-synced)."""


def _check_session_price(cs: Any, price: Price) -> None:
    """The session (retrieved with its line items) charges our amount, currency and
    interval, or it is expired and ``PlanUnavailable`` raised: the Stripe Price id came
    from our last sync, and the plan may have changed in our database since (``flask
    catalog sync-stripe`` fixes that)."""
    items = field(cs, "line_items", "data")
    stripe_price = field(items, 0, "price")
    ok = (
        cs.status == "open"
        and totals_match(cs, price.unit_amount, price.currency)
        and len(items or []) == 1
        and field(stripe_price, "active") is True
        and field(stripe_price, "recurring", "interval") == price.recurring_interval
    )
    if ok:
        return
    log.error(
        "membership plan %s NOT offered: Stripe price %s is %s %s per %s (active=%s), "
        "ours is %s %s per %s; run `flask catalog sync-stripe`",
        price.lookup_key,
        field(stripe_price, "id"),
        cs.amount_total,
        cs.currency,
        field(stripe_price, "recurring", "interval"),
        field(stripe_price, "active"),
        price.unit_amount,
        price.currency,
        price.recurring_interval,
    )
    if cs.status == "open":
        payments.expire_checkout_session(cs.id)
    raise PlanUnavailable(price.lookup_key)


# How many subscription sessions one Subscribe makes at most when each comes back expired.
SESSION_ATTEMPTS = 3


class JustSubscribed(Exception):
    """A subscription session of this customer (or this very form) was paid a moment
    ago; the exception's argument is that session's id."""


def _create_session(
    owner: str, stripe_customer_id: str | None, email: str, price: Price, nonce: str
) -> Any:
    """The subscription session for this form (plan and nonce): a double submit gets the
    same one back (idempotency key; ``owner`` names who asks: our customer, or a guest by
    the digest of the email, never the email itself). When that one has expired meanwhile
    (another plan was opened since, or it timed out), a new one is made, keyed by the
    expired one."""
    params = subscription_params(stripe_customer_id, email, price, nonce)
    # The key names the Stripe Price too: after a re-sync the same form makes a new
    # session instead of replaying one made with the stale price.
    sold_as = params["line_items"][0].get("price", "price-data")
    first_key = payments.idempotency_key("subscribe", owner, price.lookup_key, sold_as, nonce)
    key = first_key
    for _ in range(SESSION_ATTEMPTS):
        created = payments.create_checkout_session(params, key)
        # As Stripe has it now (a replayed create answers with the session as it was then).
        cs = payments.retrieve_checkout_session(created.id, line_items=True)
        if cs.status != "expired":
            break
        key = f"{first_key}:after:{cs.id}"
    else:
        # Not the plan's fault: every new session was expired by the time we looked (e.g.
        # another tab expiring this customer's sessions over and over).
        log.error(
            "%s: %d new membership checkout sessions in a row were already "
            "expired (last %s); no session offered",
            owner,
            SESSION_ATTEMPTS,
            cs.id,
        )
        raise PaymentError(payments.UNAVAILABLE, kind="unavailable")
    if cs.status == "complete":
        raise JustSubscribed(cs.id)
    _check_session_price(cs, price)
    return cs


def _expire(cs_id: str) -> None:
    """Expire an open subscription session; ``JustSubscribed`` when it was paid already."""
    try:
        payments.expire_checkout_session(cs_id)
    except PaymentError:
        status = payments.retrieve_checkout_session(cs_id).status
        if status == "complete":
            raise JustSubscribed(cs_id) from None
        if status == "open":
            raise
        return  # it expired by itself meanwhile
    log.info("membership checkout session %s expired: a new one replaces it", cs_id)


def _is_this_form(cs: Any, price: Price, nonce: str) -> bool:
    return (
        field(cs, "metadata", "form_nonce") == nonce
        and field(cs, "metadata", "price_lookup_key") == price.lookup_key
    )


def _expire_other_sessions(stripe_customer_id: str, price: Price, nonce: str) -> None:
    """Before a signed-in customer's new subscription session: expire their other open
    ones (another plan, another tab, another device), so only one can ever be paid. The
    one this very form opened (same plan and nonce) stays: the idempotent create hands it
    back. Raises ``JustSubscribed`` when one of them turns out to be paid already."""
    for cs in payments.list_open_checkout_sessions(stripe_customer_id):
        if cs.mode == "subscription" and not _is_this_form(cs, price, nonce):
            _expire(cs.id)


def _expire_this_browsers_sessions(price: Price, nonce: str) -> None:
    """A guest's version: only the sessions this browser opened (its session remembers
    them) are expired, never one found by the typed email, which may be anyone's."""
    for cs_id in list(session.get(STARTED_KEY) or []):
        if not isinstance(cs_id, str):
            continue
        try:
            cs = payments.retrieve_checkout_session(cs_id)
        except PaymentError:
            continue
        if cs.status == "open" and not _is_this_form(cs, price, nonce):
            _expire(cs.id)


@bp.post("/subscribe")
def subscribe():
    """Subscribe to a plan: 303 to Stripe Checkout."""
    product = membership_product()
    price = next((p for p in plans(product) if p.lookup_key == request.form.get("price")), None)
    if price is None:
        flash("Please choose a membership plan.", "error")
        return redirect(url_for("membership.index"), code=303)
    signed_in = signed_in_email()
    email = signed_in or billing.normalise_email(request.form.get("email"))
    if email is None:
        flash("Please enter a valid email address to subscribe.", "error")
        return redirect(url_for("membership.index"), code=303)
    if not payments.is_configured():
        flash(payments.NOT_CONFIGURED, "error")
        return redirect(url_for("membership.index"), code=303)
    nonce = request.form.get("nonce", "")
    if not _NONCE_RE.match(nonce):
        nonce = secrets.token_urlsafe(16)
    try:
        if signed_in:
            if billing.live_membership(billing.find_customer(email)) is not None:
                raise JustSubscribed("")
            customer = billing.get_or_create_customer(email)
            owner = f"customer {customer.id}"
            _expire_other_sessions(customer.stripe_customer_id or "", price, nonce)
            cs = _create_session(owner, customer.stripe_customer_id or "", email, price, nonce)
        else:
            # A typed email proves nothing: no lookup, no Customer, nobody else's sessions.
            owner = "guest " + payments.email_digest(email)
            _expire_this_browsers_sessions(price, nonce)
            cs = _create_session(owner, None, email, price, nonce)
    except PlanUnavailable:
        flash(PLAN_UPDATING, "error")
        return redirect(url_for("membership.index"), code=303)
    except JustSubscribed as paid:
        return _already_subscribed(str(paid.args[0]) if paid.args else "")
    except PaymentError as err:
        flash(err.user_message, "error")
        return redirect(url_for("membership.index"), code=303)
    remember_started(cs.id)
    log.info("%s: membership checkout session %s (%s)", owner, cs.id, price.lookup_key)
    return redirect(cs.url, code=303)


def _already_subscribed(cs_id: str):
    """Signed in with a live membership: My account. A session paid a moment ago (a
    double submit after paying, another tab): its welcome page, which shows this browser
    as much as it may see."""
    if signed_in_email() and (not cs_id or billing.is_member(signed_in_customer())):
        flash("You already have a Coffee Club membership.", "info")
        return redirect(url_for("account.show"), code=303)
    return redirect(url_for("membership.welcome", session_id=cs_id), code=303)


def _welcome_email() -> str | None:
    """The email of the paid subscription session in ``?session_id=`` (asked of Stripe)."""
    session_id = request.args.get("session_id", "")
    if not (session_id.startswith("cs_") and len(session_id) <= 255):
        return None
    try:
        cs = payments.retrieve_checkout_session(session_id)
    except PaymentError:
        return None
    if cs.mode != "subscription" or cs.status != "complete":
        return None
    return billing.normalise_email(
        field(cs, "customer_details", "email") or field(cs, "metadata", "customer_email")
    )


def _welcome_state(membership: Any) -> str:
    return "active" if membership and membership.grants_access else "activating"


@bp.get("/welcome")
def welcome():
    """Checkout's success page: thanks, and where the membership stands in our records.

    In full (the email, the sign-in button for it) only for the browser that opened the
    session or the signed-in owner; anyone else with the link sees the status and the
    email masked. While activating, static/js/wait.js asks ``welcome_status``."""
    email = _welcome_email()
    if email is None:
        return redirect(url_for("membership.index"), code=303)
    membership = billing.membership_for(billing.find_customer(email))
    signed_in = owns_email(email)
    state = _welcome_state(membership)
    return render_template(
        "membership/welcome.html",
        email=email,
        masked=mask_email(email),
        full=signed_in or started_here(request.args.get("session_id", "")),
        membership=membership,
        signed_in=signed_in,
        state=state,
        status_url=url_for("membership.welcome_status", session_id=request.args["session_id"])
        if state == "activating"
        else None,
    )


@bp.get("/welcome/status")
def welcome_status():
    """The welcome page's state as JSON (``active`` or ``activating``)."""
    email = _welcome_email()
    if email is None:
        abort(404, "We could not find that membership.")
    state = _welcome_state(billing.membership_for(billing.find_customer(email)))
    message = (
        "Your membership is active: every order now ships free."
        if state == "active"
        else "We're still setting up your membership."
    )
    return {"state": state, "message": message}
