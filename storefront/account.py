"""My account: a sign-in link by email, the customer's orders and their membership.

There are no passwords: a customer asks for a link, which is a signed, expiring token
for their email (itsdangerous, keyed by SECRET_KEY). Sending mail is out of scope, so
the link goes to the outbox (and, in development, the log) like every other message.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError

from . import billing, payments
from .extensions import db
from .links import external_url
from .models import Customer, OutboxMessage, Subscription, utcnow

log = logging.getLogger(__name__)

bp = Blueprint("account", __name__, url_prefix="/account")

SESSION_KEY = "account_email"
TOKEN_SALT = "storefront.account.sign-in"
TOKEN_MAX_AGE = 3600  # seconds a sign-in link stays valid
PENDING_KEY = "membership_change"
PENDING_SECONDS = 30  # how long the page waits for Stripe's webhook before giving up


# --------------------------------------------------------------------------- tokens


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=TOKEN_SALT)


def make_sign_in_token(email: str) -> str:
    return _serializer().dumps({"email": email})


def email_from_token(token: str, max_age: int | None = None) -> str | None:
    """The email a valid, unexpired token was made for; None otherwise."""
    try:
        data = _serializer().loads(token, max_age=TOKEN_MAX_AGE if max_age is None else max_age)
    except (SignatureExpired, BadSignature):
        return None
    email = data.get("email") if isinstance(data, dict) else None
    return billing.normalise_email(email)


def sign_in_link(email: str) -> str:
    return external_url("account.sign_in", token=make_sign_in_token(email))


def send_sign_in_link(email: str) -> str:
    """Write a sign-in link for ``email`` to the outbox; returns the link.

    At most one message per email and minute (the dedup key), so the form cannot be
    used to flood the outbox.
    """
    link = sign_in_link(email)
    minute = utcnow().strftime("%Y%m%d%H%M")
    db.session.add(
        OutboxMessage(
            kind="sign_in",
            to_email=email,
            subject=f"Sign in to {current_app.config['SHOP_NAME']}",
            body=(
                "Use this link to sign in to your account. It works for one hour.\n\n"
                f"{link}\n\nIf you did not ask for it, you can ignore this message."
            ),
            dedup_key=f"sign-in:{payments.email_digest(email)}:{minute}",
        )
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        log.info("sign-in link for an account: already sent this minute")
        return link
    if current_app.debug or current_app.testing:
        # Mail is not sent; in development the log is where you find the link.
        log.info("outbox: sign-in link %s", link)
    else:
        log.info("outbox: sign-in link written")
    return link


# --------------------------------------------------------------------------- who is signed in


def signed_in_email() -> str | None:
    return session.get(SESSION_KEY)


def signed_in_customer() -> Customer | None:
    return billing.find_customer(signed_in_email())


def signed_in_member() -> bool:
    """Is this browser signed in as a Coffee Club member (free Standard shipping)?"""
    email = signed_in_email()
    return billing.is_member(billing.find_customer(email) if email else None)


def template_context() -> dict[str, Any]:
    """Header data on every page: who is signed in and whether they are a member."""
    if request.endpoint == "static":
        return {}
    email = signed_in_email()
    customer = billing.find_customer(email) if email else None
    return {"account_email": email, "is_member": billing.is_member(customer)}


# --------------------------------------------------------------------------- views


@bp.get("/")
def show():
    email = signed_in_email()
    if email is None:
        return render_template("account/sign_in.html", sent_to=None)
    customer = billing.find_customer(email)
    membership = billing.membership_for(customer)
    return render_template(
        "account/show.html",
        email=email,
        orders=billing.orders_for(customer, email),
        membership=membership,
        awaiting_stripe=_awaiting_stripe(membership),
        payment_problem=billing.is_live(membership)
        and membership.status in billing.PROBLEM_STATUSES,
    )


@bp.post("/sign-in")
def request_link():
    email = billing.normalise_email(request.form.get("email"))
    if email is None:
        return render_template(
            "account/sign_in.html",
            sent_to=None,
            error="Please enter a valid email address.",
            email=request.form.get("email", ""),
        ), 400
    return link_sent_page(email)


def link_sent_page(email: str) -> str:
    """Send ``email`` a sign-in link and say so: the same answer whether or not we know the
    email, so the page never reveals customers (also used by Subscribe)."""
    link = send_sign_in_link(email)
    return render_template(
        "account/sign_in.html",
        sent_to=email,
        dev_link=link if current_app.debug else None,
    )


@bp.get("/sign-in/<token>")
def sign_in(token: str):
    email = email_from_token(token)
    if email is None:
        return render_template(
            "account/sign_in.html",
            sent_to=None,
            error="That sign-in link has expired or is not valid. Ask for a new one below.",
        ), 400
    session[SESSION_KEY] = email
    flash("You're signed in.", "success")
    return redirect(url_for("account.show"), code=303)


@bp.post("/sign-out")
def sign_out():
    session.pop(SESSION_KEY, None)
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
        # then the page says so and refreshes itself.
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
