"""Rate limits (Flask-Limiter) on what costs the shop or others something.

Several budgets, each counted per client IP and per browser session (and sign-in links
also per email address): starting a payment (every endpoint that makes an order, a
PaymentIntent, a Customer or a Checkout Session shares one), sign-in links (the mail
they send), cart changes, staff actions, and billing changes on My account. The
endpoints are listed here rather than decorated in their modules, so the limits stay
with the endpoint whatever its view becomes; a test checks that each one exists. Limits
come from settings (``RATE_LIMIT_*``) and are counted in ``RATELIMIT_STORAGE_URI``
(memory by default, per process; Redis or any storage Flask-Limiter supports for shops
with several app servers).

A refused request gets 429 with ``Retry-After``: a page saying how long to wait, or
JSON for JSON callers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from flask import Flask, current_app, request
from flask_limiter import Limiter, RateLimitExceeded
from limits.errors import ConfigurationError
from limits.storage import storage_from_string
from werkzeug.exceptions import TooManyRequests

from .billing import normalise_email
from .security import client_id, client_ip, describe_wait, too_many

PAYMENT_ENDPOINTS = (
    "checkout.start",  # the checkout page makes the order (and, until Pay, its intent)
    "checkout.pay",  # Pay on the checkout page (when the page has one)
    "hosted_checkout.start",
    "membership.subscribe",
)
SIGN_IN_ENDPOINTS = ("account.request_link",)
# Subscribe sends a sign-in link to an email that is already a member: same email budget.
EMAIL_ENDPOINTS = ("account.request_link", "membership.subscribe")
CART_ENDPOINTS = ("cart.add", "cart.update", "cart.remove", "cart.currency")
# Billing self-service on My account: each is a change at Stripe (a card detached, the
# membership's card set, a Customer Portal session made by Manage billing). Signed-out
# requests are redirected before any Stripe call, but count all the same.
BILLING_ENDPOINTS = (
    "account.remove_card",
    "account.use_card_for_membership",
    "account.manage_billing",
)
# Staff actions in the back office: refunds create Stripe objects and send mail, the rest
# change data or run work (reconcile lists Stripe's events). The staff check answers 404
# first, so only staff ever spend this budget.
STAFF_ENDPOINTS = (
    "admin.refund",
    "admin.process_event",
    "admin.reconcile",
    "admin.mark_notice",
    "admin.orders_csv",
)


def email_budget(value: object) -> str | None:
    """The address whose budget a sign-in request spends: normalised, and without a
    ``+tag`` (``ada+1@example.com`` and ``Ada+2@example.com`` are one mailbox)."""
    email = normalise_email(value if isinstance(value, str) else None)
    if email is None:
        return None
    local, _, domain = email.rpartition("@")
    return f"{local.split('+', 1)[0] or local}@{domain}"


def _form_email_key() -> str:
    return email_budget(request.form.get("email")) or ""


def _no_form_email() -> bool:
    # No valid address: the view answers with a form error, which sends no mail.
    return email_budget(request.form.get("email")) is None


def _setting(name: str) -> Callable[[], str]:
    return lambda: current_app.config[name]


def _shared(limiter: Limiter, scope: str, setting: str, key_func, **options):
    return limiter.shared_limit(_setting(setting), scope, key_func=key_func, **options)


def init_app(app: Flask) -> None:
    app.register_error_handler(TooManyRequests, _too_many_requests)
    if not app.config["RATELIMIT_ENABLED"]:
        return
    try:
        storage_from_string(app.config["RATELIMIT_STORAGE_URI"])
    except ConfigurationError as err:
        # e.g. a typo in the scheme, or a storage whose client library is not installed.
        raise SystemExit(
            f"Refusing to start: RATELIMIT_STORAGE_URI cannot be used: {err}."
        ) from None
    limiter = Limiter(key_func=client_ip, strategy="moving-window")
    limiter.init_app(app)
    # Stripe's signed deliveries have no budget: they are answered in front of Flask
    # (``webhook_endpoint``), where a forged flood is refused by the timestamp and
    # signature checks before the body is read or stored.
    app.extensions["shop_limiter"] = limiter
    budgets = [
        (PAYMENT_ENDPOINTS, "payment-ip", "RATE_LIMIT_PAYMENT_PER_IP", client_ip, {}),
        (PAYMENT_ENDPOINTS, "payment-session", "RATE_LIMIT_PAYMENT_PER_SESSION", client_id, {}),
        (SIGN_IN_ENDPOINTS, "sign-in-ip", "RATE_LIMIT_SIGN_IN_PER_IP", client_ip, {}),
        (SIGN_IN_ENDPOINTS, "sign-in-session", "RATE_LIMIT_SIGN_IN_PER_SESSION", client_id, {}),
        (
            EMAIL_ENDPOINTS,
            "sign-in-email",
            "RATE_LIMIT_SIGN_IN_PER_EMAIL",
            _form_email_key,
            {"exempt_when": _no_form_email},
        ),
        (CART_ENDPOINTS, "cart-ip", "RATE_LIMIT_CART_PER_IP", client_ip, {}),
        (CART_ENDPOINTS, "cart-session", "RATE_LIMIT_CART_PER_SESSION", client_id, {}),
        (STAFF_ENDPOINTS, "staff-ip", "RATE_LIMIT_STAFF_PER_IP", client_ip, {}),
        (BILLING_ENDPOINTS, "billing-ip", "RATE_LIMIT_BILLING_PER_IP", client_ip, {}),
        (BILLING_ENDPOINTS, "billing-session", "RATE_LIMIT_BILLING_PER_SESSION", client_id, {}),
        (STAFF_ENDPOINTS, "staff-session", "RATE_LIMIT_STAFF_PER_SESSION", client_id, {}),
    ]
    for endpoints, scope, setting, key_func, options in budgets:
        limit = _shared(limiter, scope, setting, key_func, **options)
        for endpoint in endpoints:
            view = app.view_functions.get(endpoint)
            if view is not None:
                # What ``@limit`` under the route decorator would have done.
                app.view_functions[endpoint] = limit(view)


def limited_endpoints(app: Flask) -> set[str]:
    """The endpoints with a limit in this app (for the tests)."""
    limiter = app.extensions.get("shop_limiter")
    if limiter is None:
        return set()
    return {
        endpoint
        for endpoint, view in app.view_functions.items()
        if hasattr(view, "__wrapper-limiter-instance")
    }


def _too_many_requests(err: TooManyRequests):
    retry_after = 60
    limiter = current_app.extensions.get("shop_limiter")
    if isinstance(err, RateLimitExceeded) and limiter is not None and limiter.current_limit:
        retry_after = math.ceil(limiter.current_limit.reset_at - time.time())
    message = (
        "You've made a lot of requests in a short time. "
        f"Please wait {describe_wait(max(1, retry_after))} and try again."
    )
    return too_many(message, retry_after)
