"""My account's pages: the account page, sign-in and sign-out, membership cancel/resume."""

from __future__ import annotations

import logging
import time

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for

from .. import billing, payments
from ..models import Subscription
from ..security import stripe_page
from ..viewer import mask_email, signed_in_email
from . import bp, sign_in_as, sign_out_everywhere, signed_in_customer
from .forms import ManageBillingForm, SignInForm
from .tokens import consume_token, send_sign_in_link, usable_token

log = logging.getLogger(__name__)

PENDING_KEY = "membership_change"
PENDING_SECONDS = 30  # how long the page waits for Stripe's webhook before giving up

INVALID_LINK = (
    "That sign-in link has expired, has been used already or is not valid. Ask for a new one below."
)


@bp.get("/")
@stripe_page(portal=True)  # Manage billing redirects to the Customer Portal
def show():
    email = signed_in_email()
    if email is None:
        return render_template("account/sign_in.html", sent_to=None, form=SignInForm())
    customer = billing.find_customer(email)
    membership = billing.membership_for(customer)
    # A failed renewal: what is owed and when Stripe retries, as Stripe has it now.
    owing, owing_unknown = None, False
    try:
        owing = billing.amount_due(membership)
    except payments.PaymentError:
        owing_unknown = True  # logged by payments; the page says it could not be loaded
    return render_template(
        "account/show.html",
        email=email,
        billing_form=ManageBillingForm() if customer and customer.stripe_customer_id else None,
        orders=billing.orders_for(customer, email),
        membership=membership,
        owing=owing,
        owing_unknown=owing_unknown,
        in_good_standing=membership is not None and membership.status not in billing.OWING_STATUSES,
        awaiting_stripe=_awaiting_stripe(membership),
        payment_problem=billing.is_live(membership)
        and membership.status in billing.PROBLEM_STATUSES,
    )


@bp.get("/status")
def status():
    """Whether a membership change is still waiting for Stripe, as JSON for My account's
    waiting state (static/js/wait.js): ``waiting``, ``settled`` or ``signed_out``."""
    if signed_in_email() is None:
        return {"state": "signed_out", "message": "You're signed out."}
    membership = billing.membership_for(signed_in_customer())
    pending = session.get(PENDING_KEY)
    if _awaiting_stripe(membership):
        return {"state": "waiting", "message": "Still waiting for Stripe to confirm."}
    confirmed = (
        isinstance(pending, dict)
        and membership is not None
        and membership.cancel_at_period_end == pending.get("cancel_at_period_end")
    )
    message = (
        "Stripe has confirmed your membership change."
        if confirmed
        else "Your membership is shown as Stripe last told us."
    )
    return {"state": "settled", "message": message}


@bp.post("/sign-in")
def request_link():
    # The HTML form's fields only: left to itself Flask-WTF also reads a JSON body, and
    # fails on one that is not an object.
    form = SignInForm(request.form)
    if not form.validate_on_submit():
        return render_template("account/sign_in.html", sent_to=None, form=form), 400
    return link_sent_page(form.address)


def link_sent_page(email: str) -> str:
    """Send ``email`` a sign-in link and say so: the same answer whether or not we know the
    email, so the page never reveals customers (also used by Subscribe)."""
    send_sign_in_link(email)
    # Development: the message is in the development mailbox (/dev/mail), never on the page.
    dev_mailbox = "devmail.index" in current_app.view_functions
    return render_template("account/sign_in.html", sent_to=email, dev_mailbox=dev_mailbox)


def _invalid_link():
    return render_template(
        "account/sign_in.html", sent_to=None, error=INVALID_LINK, form=SignInForm(formdata=None)
    ), 400


@bp.get("/sign-in/<token>")
def sign_in(token: str):
    """The link from the email: a button to sign in (it POSTs), never a sign-in by itself."""
    row = usable_token(token)
    if row is None:
        return _invalid_link()
    # The page's address holds the token: keep it out of Referer headers (the header, and
    # a meta tag for good measure; ``security`` makes every account page no-store).
    response = current_app.make_response(
        render_template("account/confirm_sign_in.html", token=token, masked=mask_email(row.email))
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.post("/sign-in/<token>")
def confirm_sign_in(token: str):
    email = consume_token(token)
    if email is None:
        return _invalid_link()
    sign_in_as(email)
    log.info("signed in with a sign-in link")
    flash("You're signed in.", "success")
    return redirect(url_for("account.show"), code=303)


@bp.post("/sign-out")
def sign_out():
    sign_out_everywhere()
    flash("You're signed out.", "success")
    return redirect(url_for("catalog.index"), code=303)


def _awaiting_stripe(membership: Subscription | None) -> bool:
    """True while a cancel/resume we asked Stripe for has not come back by webhook yet."""
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return False
    waiting = (
        membership is not None
        and pending.get("subscription") == membership.stripe_subscription_id
        and membership.cancel_at_period_end != pending.get("cancel_at_period_end")
        and billing.is_live(membership)
        and int(pending.get("until", 0)) > time.time()
    )
    if not waiting:
        session.pop(PENDING_KEY, None)
    return waiting


def _own_membership() -> Subscription:
    membership = billing.live_membership(signed_in_customer())
    if membership is None:
        abort(404, "You have no active membership.")
    return membership


def _set_cancel(cancel: bool, done: str):
    if signed_in_email() is None:
        return redirect(url_for("account.show"), code=303)
    membership = _own_membership()
    try:
        payments.set_cancel_at_period_end(membership.stripe_subscription_id, cancel)
    except payments.PaymentError as err:
        flash(err.user_message, "error")
    else:
        # Our record changes when Stripe's webhook arrives (the source of truth); until
        # then the page says so and asks again in the background.
        session[PENDING_KEY] = {
            "subscription": membership.stripe_subscription_id,
            "cancel_at_period_end": cancel,
            "until": int(time.time()) + PENDING_SECONDS,
        }
        flash(done, "success")
    return redirect(url_for("account.show"), code=303)


@bp.post("/membership/cancel")
def cancel_membership():
    return _set_cancel(True, "Your membership will end at the end of the current period.")


@bp.post("/membership/resume")
def resume_membership():
    return _set_cancel(False, "Your membership will renew as usual.")
