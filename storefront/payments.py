"""The one module that talks to Stripe (or the bundled emulator: same code, other base URL).

It builds a ``StripeClient`` from config, with the SDK's own network retries, and
gives every create an idempotency key derived from our own ids. Stripe errors are
turned into ``PaymentError`` with a message fit for a customer; the log gets ids
and request ids, never keys, client secrets or card data.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import stripe
from flask import Flask, current_app

from .transactions import before_stripe_call

log = logging.getLogger(__name__)

UNAVAILABLE = "Payments are temporarily unavailable; you have not been charged. Please try again."
GENERIC = "We could not process your payment. You have not been charged."
NOT_CONFIGURED = "Payments are not configured on this shop yet."


class PaymentError(Exception):
    """A Stripe failure, carrying what the customer may be told."""

    def __init__(self, user_message: str, *, kind: str, code: str | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.kind = kind  # "card" | "unavailable" | "invalid" | "not_configured"
        self.code = code


@dataclass(frozen=True)
class StripeSettings:
    """What the ``StripeClient`` is built from: a change to any of them builds a new one."""

    secret_key: str
    api_base: str | None
    max_network_retries: int


def init_app(app: Flask) -> None:
    """Build the client lazily on first use, from the settings of that moment."""
    app.extensions["stripe_client"] = None


def is_configured() -> bool:
    return bool(current_app.config.get("STRIPE_SECRET_KEY"))


# Per request to Stripe (connect and each read), instead of the SDK's 80 s: a customer
# waits at most about this times (1 + STRIPE_MAX_NETWORK_RETRIES) before "try again".
HTTP_TIMEOUT_SECONDS = 10


def client() -> stripe.StripeClient:
    """The app's ``StripeClient``; ``STRIPE_API_BASE`` points it at the emulator.

    One per app, kept with the settings it was built from and built again when they
    change (a key rotated in the config, the tests pointing the shop elsewhere)."""
    cfg = current_app.config
    if not cfg.get("STRIPE_SECRET_KEY"):
        raise PaymentError(NOT_CONFIGURED, kind="not_configured")
    settings = StripeSettings(
        secret_key=cfg["STRIPE_SECRET_KEY"],
        api_base=cfg.get("STRIPE_API_BASE") or None,
        max_network_retries=int(cfg.get("STRIPE_MAX_NETWORK_RETRIES", 2)),
    )
    existing = current_app.extensions.get("stripe_client")
    if existing is not None and existing[0] == settings:
        return existing[1]
    kwargs: dict[str, Any] = {}
    if settings.api_base:
        base = settings.api_base.rstrip("/")
        kwargs["base_addresses"] = {
            "api": base,
            "files": base,
            "connect": base,
            "meter_events": base,
        }
    new = stripe.StripeClient(
        settings.secret_key,
        max_network_retries=settings.max_network_retries,
        http_client=stripe.RequestsClient(timeout=HTTP_TIMEOUT_SECONDS),
        **kwargs,
    )
    current_app.extensions["stripe_client"] = (settings, new)
    return new


def idempotency_key(*parts: object) -> str:
    """A key derived from our own ids, so a retried request can never create twice."""
    return "storefront:" + ":".join(str(p) for p in parts)


DECLINE_MESSAGES = {
    "insufficient_funds": "Your card has insufficient funds. Try another card.",
    "lost_card": "Your card was reported lost or stolen. Try another card.",
    "stolen_card": "Your card was reported lost or stolen. Try another card.",
    "expired_card": "Your card has expired. Check the date or use another card.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again in a moment.",
    "generic_decline": "Your card was declined. Try another card.",
    "card_declined": "Your card was declined. Try another card.",
    "incorrect_number": "Your card number is incorrect.",
}


def decline_message(code: str | None, decline_code: str | None, fallback: str | None) -> str:
    """Plain words for a card decline (decline code first, then error code)."""
    for key in (decline_code, code):
        if key and key in DECLINE_MESSAGES:
            return DECLINE_MESSAGES[key]
    return fallback or DECLINE_MESSAGES["generic_decline"]


def translate(err: stripe.StripeError, action: str) -> PaymentError:
    """Map an SDK error to a ``PaymentError`` and log it (ids only)."""
    request_id = getattr(err, "request_id", None)
    if isinstance(err, stripe.CardError):
        log.info("card declined during %s: code=%s request_id=%s", action, err.code, request_id)
        decline = getattr(err, "error", None)
        decline_code = getattr(decline, "decline_code", None) if decline else None
        return PaymentError(
            decline_message(err.code, decline_code, err.user_message),
            kind="card",
            code=decline_code or err.code,
        )
    if isinstance(err, stripe.RateLimitError | stripe.APIConnectionError | stripe.APIError):
        log.warning(
            "Stripe unavailable during %s: %s request_id=%s",
            action,
            type(err).__name__,
            request_id,
        )
        return PaymentError(UNAVAILABLE, kind="unavailable")
    log.error(
        "Stripe rejected %s: %s code=%s request_id=%s",
        action,
        type(err).__name__,
        getattr(err, "code", None),
        request_id,
    )
    return PaymentError(GENERIC, kind="invalid")


def call(
    action: str,
    fn: Any,
    *args: Any,
    raise_as_is: Callable[[stripe.StripeError], bool] | None = None,
    **kwargs: Any,
) -> Any:
    """Run one SDK call, turning any Stripe error into a ``PaymentError``.

    Errors for which ``raise_as_is`` is true are raised unchanged (and not logged here):
    the caller has its own outcome for them.
    """
    before_stripe_call(action)  # no transaction open across the call
    try:
        return fn(*args, **kwargs)
    except stripe.StripeError as err:
        if raise_as_is is not None and raise_as_is(err):
            raise
        raise translate(err, action) from err


# --------------------------------------------------------------------------- catalog sync


def find_price_by_lookup_key(lookup_key: str) -> stripe.Price | None:
    prices = call(
        "price lookup",
        client().v1.prices.list,
        params={"lookup_keys": [lookup_key], "expand": ["data.product"], "limit": 1},
    )
    return prices.data[0] if prices.data else None


def sync_product(product: Any) -> tuple[str, list[tuple[str, str]]]:
    """Create or update a Product and its Prices in Stripe, by lookup key.

    Returns the Stripe product id and ``(lookup_key, action)`` pairs where action is
    "created", "updated" or "unchanged". Prices are immutable in Stripe, so a changed
    amount makes a new Price that takes over the lookup key.
    """
    sc = client()
    results: list[tuple[str, str]] = []
    stripe_product_id = product.stripe_product_id
    existing = {p.lookup_key: find_price_by_lookup_key(p.lookup_key) for p in product.prices}
    if not stripe_product_id:
        for found in existing.values():
            if found is not None:
                prod = found.product
                stripe_product_id = prod if isinstance(prod, str) else prod.id
                break
    product_fields = {
        "name": product.name,
        "description": product.description or None,
        "active": product.active,
        "metadata": {"slug": product.slug},
    }
    if stripe_product_id:
        call("product update", sc.v1.products.update, stripe_product_id, params=product_fields)
    else:
        created = call(
            "product create",
            sc.v1.products.create,
            params=product_fields,
            options={"idempotency_key": idempotency_key("product", product.slug)},
        )
        stripe_product_id = created.id
    product.stripe_product_id = stripe_product_id

    for price in product.prices:
        found = existing[price.lookup_key]
        same = (
            found is not None
            and found.unit_amount == price.unit_amount
            and found.currency == price.currency
            and (found.recurring.interval if found.recurring else None) == price.recurring_interval
        )
        if same:
            if found.active != price.active:
                call("price update", sc.v1.prices.update, found.id, params={"active": price.active})
                results.append((price.lookup_key, "updated"))
            else:
                results.append((price.lookup_key, "unchanged"))
            price.stripe_price_id = found.id
            continue
        params: dict[str, Any] = {
            "product": stripe_product_id,
            "currency": price.currency,
            "unit_amount": price.unit_amount,
            "lookup_key": price.lookup_key,
            "transfer_lookup_key": True,
            "active": price.active,
        }
        if price.recurring_interval:
            params["recurring"] = {"interval": price.recurring_interval}
        # The key names the price being replaced too: after A -> B -> A the second "A"
        # is a new creation (replaying the first would hand back a price that lost its
        # lookup key), while a retry of this very request still replays.
        replaces = found.id if found is not None else "new"
        created = call(
            "price create",
            sc.v1.prices.create,
            params=params,
            options={
                "idempotency_key": idempotency_key(
                    "price", price.lookup_key, price.currency, price.unit_amount, replaces
                )
            },
        )
        price.stripe_price_id = created.id
        results.append((price.lookup_key, "created" if found is None else "updated"))
    return stripe_product_id, results


# --------------------------------------------------------------------------- webhook endpoints

# The events the shop handles; a deploy registers its endpoint for exactly these.
WEBHOOK_EVENTS = [
    "payment_intent.succeeded",
    "charge.succeeded",
    "payment_intent.processing",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "radar.early_fraud_warning.created",
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "invoice.paid",
    "invoice.payment_failed",
    "customer.subscription.updated",
    "customer.subscription.deleted",
]


def register_webhook_endpoint(url: str) -> str:
    """Point a webhook endpoint at ``url`` (replacing older ones there); returns its secret."""
    sc = client()
    existing = call("webhook endpoint list", sc.v1.webhook_endpoints.list, params={"limit": 100})
    for endpoint in existing.data:
        if endpoint.url == url:
            call("webhook endpoint delete", sc.v1.webhook_endpoints.delete, endpoint.id)
    created = call(
        "webhook endpoint create",
        sc.v1.webhook_endpoints.create,
        params={
            "url": url,
            "enabled_events": WEBHOOK_EVENTS,  # type: ignore[typeddict-item]
            "description": "Fernwood storefront",
        },
    )
    log.info("webhook endpoint %s -> %s", created.id, url)
    return created.secret


# --------------------------------------------------------------------------- Stripe Checkout,
# customers and subscriptions (hosted Checkout / membership issue)


def create_checkout_session(params: dict[str, Any], key: str) -> Any:
    """Create a Checkout Session; ``key`` makes a retried or doubled request return the same one."""
    return call(
        "checkout session create",
        client().v1.checkout.sessions.create,
        params=params,
        options={"idempotency_key": key},
    )


def retrieve_checkout_session(
    session_id: str, *, line_items: bool = False, paid_with: bool = False
) -> Any:
    """A Checkout Session as Stripe has it now, optionally with ``line_items`` expanded;
    ``paid_with`` also expands the chosen shipping rate and the payment's charge (card)."""
    expand = ["line_items"] if line_items else []
    if paid_with:
        expand += ["shipping_cost.shipping_rate", "payment_intent.latest_charge"]
    params: dict[str, Any] = {"expand": expand} if expand else {}
    return call(
        "checkout session retrieve",
        client().v1.checkout.sessions.retrieve,
        session_id,
        params=params,
    )


def expire_checkout_session(session_id: str) -> Any:
    """Expire an open Checkout Session so it can no longer be paid."""
    return call("checkout session expire", client().v1.checkout.sessions.expire, session_id)


def list_open_checkout_sessions(customer_id: str) -> list[Any]:
    """A customer's open Checkout Sessions, every mode (Stripe cannot filter by mode)."""
    if not customer_id:  # an empty filter would list every customer's sessions
        return []
    page = call(
        "checkout session list",
        client().v1.checkout.sessions.list,
        params={"customer": customer_id, "status": "open", "limit": 100},
    )
    return list(page.data)


def email_digest(email: str) -> str:
    """A fixed-length stand-in for an email in keys (idempotency, outbox dedup).

    ``email`` is already normalised (``billing.normalise_email``, which every form and
    lookup goes through), so one address always gives one digest."""
    return hashlib.sha256(email.encode()).hexdigest()


def create_stripe_customer(email: str) -> str:
    """Create the Stripe Customer for an email, once: the key comes from the email."""
    created = call(
        "customer create",
        client().v1.customers.create,
        params={"email": email, "metadata": {"source": "storefront"}},
        # A digest, not the address: Stripe keys are at most 255 characters.
        options={"idempotency_key": idempotency_key("customer", email_digest(email))},
    )
    return created.id


def retrieve_subscription(subscription_id: str) -> Any:
    """A Subscription as Stripe has it now (the source of truth when events disagree)."""
    return call("subscription retrieve", client().v1.subscriptions.retrieve, subscription_id)


def open_invoice_for_subscription(subscription_id: str) -> Any | None:
    """The subscription's latest open invoice (a renewal Stripe has not collected yet),
    or None. Stripe lists invoices newest first."""
    if not subscription_id:  # an empty filter would list every customer's invoices
        return None
    page = call(
        "invoice list",
        client().v1.invoices.list,
        params={"subscription": subscription_id, "status": "open", "limit": 1},
    )
    return page.data[0] if page.data else None


def set_cancel_at_period_end(subscription_id: str, cancel: bool) -> Any:
    """Ask Stripe to end (or keep) a subscription at the end of its current period."""
    return call(
        "subscription update",
        client().v1.subscriptions.update,
        subscription_id,
        params={"cancel_at_period_end": cancel},
    )


# --------------------------------------------------------------------------- saved cards
# (My account → Payment methods). Nothing about cards is stored by the shop: each page
# reads them from Stripe, and each change is a Stripe call.

SAVED_CARDS_LIMIT = 100  # Stripe's largest page; a customer with more sees the newest 100


def list_cards(customer_id: str) -> list[Any]:
    """The customer's saved cards as Stripe has them, newest first."""
    if not customer_id:  # never a list without a customer
        return []
    page = call(
        "customer payment methods list",
        client().v1.customers.payment_methods.list,
        customer_id,
        params={"type": "card", "limit": SAVED_CARDS_LIMIT},
    )
    return list(page.data)


def retrieve_customer(customer_id: str) -> Any:
    """A Customer as Stripe has it now (its ``invoice_settings.default_payment_method``)."""
    return call("customer retrieve", client().v1.customers.retrieve, customer_id)


def customers_card(customer_id: str, payment_method_id: str) -> Any | None:
    """The PaymentMethod if it is a card attached to ``customer_id``; None when Stripe
    has no such PaymentMethod or it belongs to someone else (the caller refuses both
    alike, so the answer never tells whether another customer's id exists)."""
    if not customer_id or not payment_method_id:
        return None
    try:
        pm = call(
            "payment method retrieve",
            client().v1.payment_methods.retrieve,
            payment_method_id,
            raise_as_is=_missing,
        )
    except stripe.InvalidRequestError:  # only a missing one gets here
        return None
    if field(pm, "customer") != customer_id or field(pm, "type") != "card":
        log.info("payment method %s is not a card of customer %s", pm.id, customer_id)
        return None
    return pm


def detach_card(payment_method_id: str) -> Any:
    """Remove a saved card from its customer (Stripe sends ``payment_method.detached``)."""
    detached = call("payment method detach", client().v1.payment_methods.detach, payment_method_id)
    log.info("payment method %s detached", payment_method_id)
    return detached


def set_membership_card(customer_id: str, subscription_id: str, payment_method_id: str) -> None:
    """Make a saved card the one the membership renews with: the subscription's own
    ``default_payment_method`` (which Stripe charges first) and the customer's invoice
    default (what a new subscription or invoice falls back to)."""
    call(
        "subscription update",
        client().v1.subscriptions.update,
        subscription_id,
        params={"default_payment_method": payment_method_id},
    )
    call(
        "customer update",
        client().v1.customers.update,
        customer_id,
        params={"invoice_settings": {"default_payment_method": payment_method_id}},
    )
    log.info("subscription %s renews with %s", subscription_id, payment_method_id)


# --------------------------------------------------------------------------- Customer Portal
# (issue 14: billing self-service for members)

# Marks the portal configuration this shop made (found again if our stored id is lost).
PORTAL_METADATA = {"storefront": "membership-portal"}


def retrieve_portal_configuration(configuration_id: str) -> Any | None:
    """The portal configuration, or None when Stripe has none by that id (another
    account, or it was never made there)."""
    try:
        return call(
            "portal configuration retrieve",
            client().v1.billing_portal.configurations.retrieve,
            configuration_id,
            raise_as_is=_missing,
        )
    except stripe.InvalidRequestError:
        return None


def find_portal_configuration() -> Any | None:
    """The active portal configuration this shop made, by its metadata (newest first)."""
    page = call(
        "portal configuration list",
        client().v1.billing_portal.configurations.list,
        params={"active": True, "limit": 100},
    )
    for config in page.data:
        metadata = config.metadata.to_dict() if config.metadata else {}
        if metadata.get("storefront") == PORTAL_METADATA["storefront"]:
            return config
    return None


def create_portal_configuration(params: dict[str, Any]) -> Any:
    """Create the portal configuration; the key comes from the parameters, so a retry (or a
    second sync of the same settings) never makes two."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
    return call(
        "portal configuration create",
        client().v1.billing_portal.configurations.create,
        params=params,
        options={"idempotency_key": idempotency_key("portal-configuration", digest)},
    )


def update_portal_configuration(configuration_id: str, params: dict[str, Any]) -> Any:
    return call(
        "portal configuration update",
        client().v1.billing_portal.configurations.update,
        configuration_id,
        params=params,
    )


def create_portal_session(
    customer_id: str, return_url: str, configuration_id: str, key: str
) -> Any:
    """A Customer Portal session for the customer; ``key`` (from the My account form shown)
    makes a doubled press open the same session."""
    session = call(
        "portal session create",
        client().v1.billing_portal.sessions.create,
        params={
            "customer": customer_id,
            "return_url": return_url,
            "configuration": configuration_id,
        },
        options={"idempotency_key": idempotency_key("portal-session", customer_id, key)},
    )
    log.info("portal session %s for %s", session.id, customer_id)
    return session


def field(obj: Any, *path: str | int, default: Any = None) -> Any:
    """``obj[a][b]...`` for Stripe objects and plain dicts alike; ``default`` when missing.

    Events may reach us as ``stripe.Event`` (webhook) or as dicts (tests, reconcile), and
    ``StripeObject`` has no ``.get``; this reads both the same way.
    """
    for key in path:
        if obj is None:
            return default
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError):
            return default
    return default if obj is None else obj


# --------------------------------------------------------------------------- webhooks and
# reconciliation (webhooks issue)


def payment_intent_now(payment_intent_id: str) -> Any:
    """A PaymentIntent as Stripe has it now: what a webhook acts on when events disagree."""
    return call("payment intent retrieve", client().v1.payment_intents.retrieve, payment_intent_id)


def list_events(created_gte: int | None, starting_after: str | None = None) -> Any:
    """One page (up to 100, newest first) of the events our endpoint subscribes to,
    optionally created at or after a time."""
    params: dict[str, Any] = {"limit": 100, "types": WEBHOOK_EVENTS}
    if created_gte is not None:
        params["created"] = {"gte": created_gte}
    if starting_after:
        params["starting_after"] = starting_after
    return call("event list", client().v1.events.list, params=params)


# --------------------------------------------------------------------------- Payment Element
# One PaymentIntent per order: the idempotency key is derived from the order, so a
# retried or double-submitted checkout can never create a second one.


def payment_intent_key(order: Any) -> str:
    return idempotency_key("order", order.public_id, "payment_intent")


class IntentUnusable(PaymentError):
    """The order's PaymentIntent cannot be had: Stripe refused its create (the key was
    used with other parameters) or no longer knows the stored one. Checkout gives up on
    that order and starts a new one."""


def payment_intent_params(order: Any, **details: Any) -> dict[str, Any]:
    """What the create sends: what the order's items fix (amount, currency, ids), and the
    checkout's ``details`` (``shipping``, ``receipt_email``).

    Retrying with the same key must send the very same parameters, or Stripe refuses it
    (``IntentUnusable``; checkout then starts a successor order). With the details in the
    create that happens when an earlier create reached Stripe and its answer was lost,
    and the items, the address or the email changed before Pay was pressed again: rare,
    where an update after every create would cost each first Pay a second Stripe call.
    Once the order holds its intent's id, later changes are updates.
    """
    params: dict[str, Any] = {
        "amount": order.amount_total,
        "currency": order.currency,
        "automatic_payment_methods": {"enabled": True},
        "metadata": {"order_id": order.public_id},
        "description": f"Order {order.number}",
        **details,
    }
    stripe_customer_id = order_stripe_customer_id(order)
    if stripe_customer_id:
        # A signed-in customer (fixed for the order: signing in or out starts a new one):
        # their saved cards can pay it, and a card they save is attached to them.
        params["customer"] = stripe_customer_id
    return params


def order_stripe_customer_id(order: Any) -> str | None:
    customer = getattr(order, "customer", None)
    return customer.stripe_customer_id if customer is not None else None


# The Payment Element's saved-card features for a signed-in customer (Stripe's "save
# payment details during payment" guide): their cards saved with consent
# (allow_redisplay "always") are offered above a new-card form, and "Save this card for
# next time" under a new card confirms with setup_future_usage=off_session (so a card
# saved here can also renew the membership). Removing cards is My account's job.
CUSTOMER_SESSION_FEATURES = {
    "payment_method_redisplay": "enabled",
    "payment_method_save": "enabled",
    "payment_method_save_usage": "off_session",
}


class CustomerMissing(PaymentError):
    """Stripe has no Customer by the id we stored (the shop was pointed at another Stripe
    account, or the emulator was reset): the caller makes a new one."""


def create_customer_session(stripe_customer_id: str, key: str) -> Any:
    """A Customer Session letting the checkout page's Payment Element show and save this
    customer's cards; its ``client_secret`` goes to Stripe.js only, for 30 minutes.
    Raises ``CustomerMissing`` when Stripe does not know the customer."""
    try:
        return call(
            "customer session create",
            client().v1.customer_sessions.create,
            params={
                "customer": stripe_customer_id,
                "components": {
                    "payment_element": {"enabled": True, "features": CUSTOMER_SESSION_FEATURES}
                },
            },
            options={"idempotency_key": key},
            raise_as_is=_missing,
        )
    except stripe.InvalidRequestError as err:  # only a missing customer gets here
        log.warning(
            "customer %s not found at Stripe request_id=%s", stripe_customer_id, err.request_id
        )
        raise CustomerMissing(GENERIC, kind="invalid") from err


def create_payment_intent(order: Any, **details: Any) -> Any:
    """The order's PaymentIntent: amount and currency from the order, never the browser;
    ``details`` as ``payment_intent_params`` says (checkout's shipping and receipt email).

    Raises ``IntentUnusable`` when Stripe has this order's key with other parameters (an
    earlier create reached Stripe, its answer was lost, then the cart changed).

    Stripe answers 409 while another request with this key is still running (two tabs
    checking out one order at once); the SDK retries that, like network errors and 5xx,
    up to ``STRIPE_MAX_NETWORK_RETRIES`` times with its own backoff, and the retry gets
    the other request's answer. With retries off, the 409 is "try again" (unavailable).
    """
    public_id = order.public_id  # read now: the call's commit expires the order
    try:
        pi = call(
            "payment intent create",
            client().v1.payment_intents.create,
            params=payment_intent_params(order, **details),
            options={"idempotency_key": payment_intent_key(order)},
            raise_as_is=lambda err: isinstance(err, stripe.IdempotencyError),
        )
    except stripe.IdempotencyError as err:
        log.warning(
            "order %s: payment intent key already used with other parameters request_id=%s",
            public_id,
            err.request_id,
        )
        raise IntentUnusable(GENERIC, kind="invalid") from err
    log.info("order %s: payment intent %s", public_id, pi.id)
    return pi


def _missing(err: stripe.StripeError) -> bool:
    return (
        isinstance(err, stripe.InvalidRequestError)
        and err.http_status == 404
        and err.code == "resource_missing"
    )


def retrieve_payment_intent(payment_intent_id: str, *, with_charge: bool = False) -> Any:
    """The PaymentIntent as Stripe has it now; ``IntentUnusable`` if Stripe has none by
    that id (e.g. the shop was pointed at another Stripe account)."""
    params = {"expand": ["latest_charge"]} if with_charge else None
    try:
        return call(
            "payment intent retrieve",
            client().v1.payment_intents.retrieve,
            payment_intent_id,
            params=params,
            raise_as_is=_missing,
        )
    except stripe.InvalidRequestError as err:  # only a missing intent gets here
        log.warning(
            "payment intent %s not found at Stripe request_id=%s",
            payment_intent_id,
            err.request_id,
        )
        raise IntentUnusable(GENERIC, kind="invalid") from err


def update_payment_intent(payment_intent_id: str, **fields: Any) -> Any:
    """Change amount/currency/shipping/receipt_email of an intent not paid yet."""
    return call(
        "payment intent update",
        client().v1.payment_intents.update,
        payment_intent_id,
        params=fields,
    )


def cancel_payment_intent(payment_intent_id: str) -> Any:
    return call(
        "payment intent cancel",
        client().v1.payment_intents.cancel,
        payment_intent_id,
        params={"cancellation_reason": "abandoned"},
    )


# --------------------------------------------------------------------------- refunds and
# the Stripe Dashboard (back office)


class RefundRefused(PaymentError):
    """Stripe refused the refund for a reason staff can act on (e.g. more than remains)."""


class RefundInProgress(PaymentError):
    """Another request with this refund's key is still running at Stripe (the form sent
    twice at once): that request makes the refund; this one does not know its answer."""


# Stripe's refusals staff can act on: its own words are shown to them.
_REFUND_REFUSALS = (
    "amount_too_large",
    "charge_already_refunded",
    "charge_disputed",
    "charge_not_refundable",
)


def _refund_refusal(err: stripe.StripeError) -> bool:
    """The refund errors ``create_refund`` answers itself (the rest: ``translate``)."""
    refused = isinstance(err, stripe.InvalidRequestError) and err.code in _REFUND_REFUSALS
    return refused or _key_in_use(err)


def _key_in_use(err: stripe.StripeError) -> bool:
    # A 409 reaches the SDK's v1 error mapping as a plain APIError; the code is in the body.
    error = getattr(err, "error", None)
    return err.http_status == 409 and getattr(error, "code", None) == "idempotency_key_in_use"


def create_refund(
    payment_intent_id: str, amount: int, *, reason: str | None, key: str, order_id: str
) -> Any:
    """Refund ``amount`` (minor units) of a PaymentIntent's charge, once per ``key``.

    The key comes from the refund form (one per form shown), so a double submit replays
    Stripe's first answer instead of refunding twice. Raises ``RefundRefused`` with
    Stripe's own words when Stripe says no (already refunded, more than remains), and
    ``RefundInProgress`` while the first submit's request is still running.
    """
    params: dict[str, Any] = {
        "payment_intent": payment_intent_id,
        "amount": amount,
        "metadata": {"order_id": order_id},
    }
    if reason:
        params["reason"] = reason
    try:
        refund = call(
            "refund create",
            client().v1.refunds.create,
            params=params,
            options={"idempotency_key": key},
            raise_as_is=_refund_refusal,
        )
    except stripe.APIError as err:  # only the key in use (_refund_refusal), after retries
        log.info(
            "refund of %s already in progress (same key) request_id=%s",
            payment_intent_id,
            err.request_id,
        )
        raise RefundInProgress(
            "This refund is already being made: the form was sent twice at once. Reload the "
            "order in a moment to see it; it is made once.",
            kind="unavailable",
            code="idempotency_key_in_use",
        ) from err
    except stripe.InvalidRequestError as err:
        log.info(
            "refund of %s refused: code=%s request_id=%s",
            payment_intent_id,
            err.code,
            err.request_id,
        )
        raise RefundRefused(err.user_message or GENERIC, kind="invalid", code=err.code) from err
    log.info("refund %s of %s on %s (%s)", refund.id, amount, payment_intent_id, refund.status)
    return refund


def dashboard_url(kind: str, stripe_id: str | None) -> str | None:
    """A link to the object in the Stripe Dashboard, with real keys only (None otherwise).

    ``kind`` is the Dashboard's section: "payments", "customers", "disputes", "events".
    Without real keys (the emulator) the Dashboard has no such object.
    """
    cfg = current_app.config
    key = str(cfg.get("STRIPE_SECRET_KEY") or "")
    if not stripe_id or cfg.get("STRIPE_API_BASE") or not key.startswith(("sk_", "rk_")):
        return None
    mode = "" if key.startswith(("sk_live_", "rk_live_")) else "test/"
    return f"https://dashboard.stripe.com/{mode}{kind}/{stripe_id}"
