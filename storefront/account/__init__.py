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

Modules: ``tokens`` (sign-in links), ``views`` (the page, sign-in and membership actions),
``payment_methods`` (saved cards at Stripe: list, remove, choose the membership's card).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, request, session
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from .. import billing
from ..cart import TOKEN_KEY, new_checkout_token
from ..extensions import db
from ..models import Customer
from ..security import sends_cookies
from ..viewer import (
    GENERATION_KEY,
    PLACED_KEY,
    SESSION_KEY,
    STARTED_KEY,
    mask_email,
    signed_in_email,
)
from .tokens import (
    TOKEN_LIFETIME,
    consume_token,
    new_sign_in_token,
    send_sign_in_link,
    token_hash,
    usable_token,
)

log = logging.getLogger(__name__)

bp = Blueprint("account", __name__, url_prefix="/account")

__all__ = [
    "GENERATION_KEY",
    "SESSION_KEY",
    "TOKEN_LIFETIME",
    "bp",
    "consume_token",
    "mask_email",
    "new_sign_in_token",
    "send_sign_in_link",
    "signed_in_customer",
    "signed_in_email",
    "signed_in_member",
    "template_context",
    "token_hash",
    "usable_token",
]


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
        or not sends_cookies(request)  # every webhook delivery: no header to parse
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


from . import payment_methods, portal, views  # noqa: E402,F401  (register the routes)
