"""My account: one-time sign-in links by email, the customer's orders and their membership.

There are no passwords. A customer asks for a link; the link holds a random token (256
bits) of which only the SHA-256 is stored, with an expiry (15 minutes) and a used-at
time. Opening the link shows a "Sign in as a…@example.com" button that POSTs: a mail
scanner following links, or a link someone else sent you, signs nobody in. The POST
consumes the token with one guarded UPDATE, so it works exactly once.

Signing in and out start a fresh session (nothing from before survives but the cart,
which gets a new checkout token). The session remembers the customer's *session
generation*; sign-out bumps it, and every request checks it, so sign-out ends every copy
of the session cookie (other devices, a copied cookie), not just this browser's.

The link goes out as mail like every other message (the outbox, sent by the dispatcher;
in development it lands in the mailbox at /dev/mail).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from datetime import timedelta
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
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from . import billing, mail, payments
from .cart import TOKEN_KEY, new_checkout_token
from .extensions import db
from .links import external_url
from .models import Customer, SignInToken, Subscription, utcnow
from .viewer import (
    GENERATION_KEY,
    PLACED_KEY,
    SESSION_KEY,
    STARTED_KEY,
    mask_email,
    signed_in_email,
)

log = logging.getLogger(__name__)

bp = Blueprint("account", __name__, url_prefix="/account")

TOKEN_LIFETIME = timedelta(minutes=15)  # how long a sign-in link stays valid
TOKEN_BYTES = 32  # 256 random bits per link
# How long used and expired links are kept (for support questions) before being deleted.
TOKEN_RETENTION = timedelta(days=1)
PENDING_KEY = "membership_change"
PENDING_SECONDS = 30  # how long the page waits for Stripe's webhook before giving up

INVALID_LINK = (
    "That sign-in link has expired, has been used already or is not valid. Ask for a new one below."
)


# --------------------------------------------------------------------------- tokens


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_sign_in_token(email: str) -> str:
    """Store a new one-time token for ``email`` (the caller commits); returns the token."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    db.session.add(
        SignInToken(
            token_hash=token_hash(token),
            email=email,
            created_at=now,
            expires_at=now + TOKEN_LIFETIME,
        )
    )
    # Housekeeping: links expired long ago are of no use to anyone.
    db.session.execute(delete(SignInToken).where(SignInToken.expires_at < now - TOKEN_RETENTION))
    return token


def usable_token(token: str) -> SignInToken | None:
    """The stored, unused, unexpired token, without using it (the confirmation page)."""
    if not token or len(token) > 100:
        return None
    return db.session.scalar(
        select(SignInToken).where(
            SignInToken.token_hash == token_hash(token),
            SignInToken.used_at.is_(None),
            SignInToken.expires_at > utcnow(),
        )
    )


def consume_token(token: str) -> str | None:
    """Use the token: the email it signs in, or None when it is unknown, expired or used.

    One guarded UPDATE decides, so two presses (two tabs, two browsers) cannot both win.
    Commits.
    """
    row = usable_token(token)
    if row is None:
        return None
    email, token_id = row.email, row.id
    result = db.session.execute(
        update(SignInToken)
        .where(
            SignInToken.id == token_id,
            SignInToken.used_at.is_(None),
            SignInToken.expires_at > utcnow(),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if result.rowcount != 1:
        return None
    return email


def send_sign_in_link(email: str) -> str | None:
    """Write a new sign-in link for ``email`` to the outbox; returns the link, or None
    when one was sent to this email this minute already.

    At most one message per email and minute (the dedup key), so the form cannot be
    used to flood the outbox; the token is stored in the same transaction, so a
    message that is not written leaves no token either.
    """
    token = new_sign_in_token(email)
    link = external_url("account.sign_in", token=token)
    minute = utcnow().strftime("%Y%m%d%H%M")
    db.session.add(
        mail.compose(
            "sign_in",
            email,
            f"Sign in to {current_app.config['SHOP_NAME']}",
            dedup_key=f"sign-in:{payments.email_digest(email)}:{minute}",
            link=link,
            valid_for=f"once, within {int(TOKEN_LIFETIME.total_seconds() // 60)} minutes",
        )
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        log.info("sign-in link for an account: already sent this minute")
        return None
    # Never the link itself: it signs in. (Development: it is in /dev/mail.)
    log.info("outbox: sign-in link written")
    return link


# --------------------------------------------------------------------------- who is signed in


def signed_in_customer() -> Customer | None:
    return billing.find_customer(signed_in_email())


def signed_in_member() -> bool:
    """Is this browser signed in as a Coffee Club member (free Standard shipping)?"""
    email = signed_in_email()
    return billing.is_member(billing.find_customer(email) if email else None)


@bp.before_app_request
def check_session_generation() -> None:
    """A session signed in before the customer's last sign-out no longer counts."""
    if (
        request.endpoint == "static"
        or current_app.config["SESSION_COOKIE_NAME"] not in request.cookies
    ):
        return  # no cookie, nothing to check (and the session left untouched: no Vary)
    if SESSION_KEY not in session:
        return
    generation = db.session.scalar(
        select(Customer.session_generation).where(Customer.email == session[SESSION_KEY])
    )
    if generation is None or session.get(GENERATION_KEY) != generation:
        log.info("session from before a sign-out: signed out")
        new_session(keep_cart=False)


def new_session(*, keep_cart: bool) -> None:
    """Start a fresh session: everything in the old one is dropped (the CSRF token, the
    checkout in progress, pages' notes) so nothing an earlier user of this browser or a
    planted cookie put there carries over. ``keep_cart`` (signing in) keeps the cart's
    items, under a new checkout token so no order made before is picked up again, and
    the orders and subscriptions this browser started (so their pages stay whole)."""
    kept = {key: session.get(key) for key in ("cart", PLACED_KEY, STARTED_KEY)}
    session.clear()
    if not keep_cart:
        return
    for key, value in kept.items():
        if value:
            session[key] = value
    if kept["cart"]:
        session[TOKEN_KEY] = new_checkout_token()


def sign_in_as(email: str) -> None:
    """Renew the session, signed in as ``email`` (its local Customer made if need be: the
    email has just been proven, and its row carries the session generation)."""
    customer = billing.find_customer(email)
    if customer is None:
        db.session.add(Customer(email=email))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
        customer = billing.find_customer(email)
    assert customer is not None
    new_session(keep_cart=True)
    session[SESSION_KEY] = email
    session[GENERATION_KEY] = customer.session_generation


def sign_out_everywhere() -> None:
    """End every session of the signed-in customer (a new generation), then this one."""
    email = signed_in_email()
    if email is not None:
        db.session.execute(
            update(Customer)
            .where(Customer.email == email)
            .values(session_generation=Customer.session_generation + 1)
        )
        db.session.commit()
    new_session(keep_cart=False)


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
    # A failed renewal: what is owed and when Stripe retries, as Stripe has it now.
    owing, owing_unknown = None, False
    try:
        owing = billing.amount_due(membership)
    except payments.PaymentError:
        owing_unknown = True  # logged by payments; the page says it could not be loaded
    return render_template(
        "account/show.html",
        email=email,
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
    send_sign_in_link(email)
    # Development: the message is in the development mailbox (/dev/mail), never on the page.
    dev_mailbox = "devmail.index" in current_app.view_functions
    return render_template("account/sign_in.html", sent_to=email, dev_mailbox=dev_mailbox)


def _invalid_link():
    return render_template("account/sign_in.html", sent_to=None, error=INVALID_LINK), 400


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
