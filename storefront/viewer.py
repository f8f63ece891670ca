"""Who is looking: the signed-in email, and what this browser started itself.

Order and membership-welcome pages are found by unguessable ids, but links travel
(forwarded e-mails, shared screens, browser history on a shared computer). So the full
page (email, shipping address, card) is only for the browser that placed the order or
started the subscription, or for the signed-in owner of its email; anyone else with the
link sees the status and items with the email masked. The session remembers what this
browser started (the last few ids), so the check needs no database.

A neutral module below ``account``, ``orders``, ``checkout`` and ``membership`` (it imports
only Flask, the cart's token name and the models), so each of them can ask it.
"""

from __future__ import annotations

from flask import session
from sqlalchemy import select

from .cart import TOKEN_KEY
from .extensions import db
from .models import Customer, Order

# The signed-in email, and the customer's session generation it was signed in with
# (checked on every request by ``account``).
SESSION_KEY = "account_email"
GENERATION_KEY = "account_generation"
# Public ids of the orders this browser placed; ids of the subscription Checkout Sessions
# it opened.
PLACED_KEY = "placed_orders"
STARTED_KEY = "membership_sessions"
# How many of each the session remembers (the cookie stays small).
REMEMBERED = 20


def signed_in_email() -> str | None:
    return session.get(SESSION_KEY)


def _remembered(key: str) -> list[str]:
    value = session.get(key)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _remember(key: str, value: str) -> None:
    kept = [v for v in _remembered(key) if v != value]
    session[key] = [*kept[-(REMEMBERED - 1) :], value]


def remember_placed(order: Order) -> None:
    """This browser placed ``order`` (its checkout made or reused it)."""
    _remember(PLACED_KEY, order.public_id)


def remember_started(checkout_session_id: str) -> None:
    """This browser opened the subscription Checkout Session ``checkout_session_id``."""
    _remember(STARTED_KEY, checkout_session_id)


def started_here(checkout_session_id: str) -> bool:
    return checkout_session_id in _remembered(STARTED_KEY)


def placed_here(order: Order) -> bool:
    """Did this browser place ``order``? Its list says so, or the order holds this
    browser's current checkout token (remembered from then on)."""
    if order.public_id in _remembered(PLACED_KEY):
        return True
    token = session.get(TOKEN_KEY)
    if token and order.checkout_token == token:
        remember_placed(order)
        return True
    return False


def owns_email(email: str | None) -> bool:
    """Is the browser signed in as ``email`` (compared trimmed and without case)?"""
    signed_in = signed_in_email()
    return bool(email and signed_in and email.strip().lower() == signed_in)


def owns_order(order: Order) -> bool:
    """Is the browser signed in as the order's customer or its email?"""
    if owns_email(order.email):
        return True
    email = signed_in_email()
    if not email or order.customer_id is None:
        return False
    customer_id = db.session.scalar(select(Customer.id).where(Customer.email == email))
    return customer_id == order.customer_id


def may_see_order(order: Order) -> bool:
    """The full order page: for the browser that placed it, or its signed-in owner."""
    return placed_here(order) or owns_order(order)


def mask_email(email: str | None) -> str:
    """``ada@example.com`` as ``a…@example.com``: enough to recognise, not to harvest."""
    if not email or "@" not in email:
        return ""
    local, _, domain = email.strip().rpartition("@")
    return f"{local[:1]}…@{domain}"
