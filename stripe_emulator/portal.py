"""The Customer Portal: ``billing_portal/configurations``, ``billing_portal/sessions`` and the
portal page a session's ``url`` opens.

A configuration says what the portal offers (``features``: update the payment method, the
invoice history, cancel, switch between the configured prices) and the business's
``business_profile``/``default_return_url``.  A session is for one customer; its ``url``
(``<base>/p/session/<bps_id>``, the id being the secret, as with the hosted Checkout page)
shows the customer's subscriptions, default card and invoices, with a "Return to
<business>" link to ``return_url``.  The page acts through key-less ``/v1/portal_pages/...``
endpoints (emulator only), doing what Stripe's portal does:

- **update the card**: a SetupIntent for the customer (3-D Secure cards such as 3155 answer
  ``requires_action`` and the page opens the challenge); once set up, the card becomes the
  customer's ``invoice_settings.default_payment_method`` and every live subscription's
  ``default_payment_method``, and the open invoices of ``past_due``/``unpaid``
  subscriptions are paid with it (``invoice.paid``, the subscription ``active``);
- **cancel**: at the period end (``cancel_at_period_end``, the portal's default mode) or at
  once (``mode=immediately``); a plan set to cancel can be renewed;
- **switch plan**: to another of the configuration's prices for that product, with the
  configuration's ``proration_behavior`` (``billing.change_price``).

Sessions last an hour (``SESSION_SECONDS``); Stripe's are short-lived too.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime
from typing import Any, NotRequired

from flask import Blueprint, current_app, jsonify, render_template
from typing_extensions import TypedDict

from . import billing, core, payments, setup_intents, strict
from .checkout import PaymentPageCard, _set_default_payment_method

log = logging.getLogger(__name__)

bp = Blueprint("portal", __name__)

SESSION_SECONDS = 3600
_PRIVATE_PREFIX = "_"
ENDED = ("canceled", "incomplete_expired", "incomplete")
OWING = ("past_due", "unpaid")


def _strip_private(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith(_PRIVATE_PREFIX)}


core.register_presenter("billing_portal.session", _strip_private)


# --------------------------------------------------------------------------- configurations

# What the emulator implements of a configuration's parameters (see ``strict``).
CONFIGURATION_FIELDS = [
    "business_profile.headline",
    "business_profile.privacy_policy_url",
    "business_profile.terms_of_service_url",
    "default_return_url",
    "metadata",
    "name",
    "features.invoice_history.enabled",
    "features.payment_method_update.enabled",
    "features.subscription_cancel.enabled",
    "features.subscription_cancel.mode",
    "features.subscription_update.enabled",
    "features.subscription_update.default_allowed_updates",
    "features.subscription_update.products.product",
    "features.subscription_update.products.prices",
    "features.subscription_update.proration_behavior",
    "expand",
]


def _new_configuration() -> dict[str, Any]:
    """Every feature off, with Stripe's defaults for the settings left out."""
    now = core.now()
    return core.base_object(
        "bpc",
        "billing_portal.configuration",
        active=True,
        application=None,
        business_profile={
            "headline": None,
            "privacy_policy_url": None,
            "terms_of_service_url": None,
        },
        created=now,
        default_return_url=None,
        features={
            "customer_update": {"allowed_updates": [], "enabled": False},
            "invoice_history": {"enabled": False},
            "payment_method_update": {"enabled": False, "payment_method_configuration": None},
            "subscription_cancel": {
                "cancellation_reason": {
                    "enabled": False,
                    "feedback_options": None,
                    "options": [],
                },
                "enabled": False,
                "mode": "at_period_end",
                "proration_behavior": "none",
            },
            "subscription_pause": {
                "duration": {"interval_options": [], "type": "indefinite"},
                "enabled": False,
            },
            "subscription_update": {
                "billing_cycle_anchor": None,
                "default_allowed_updates": [],
                "enabled": False,
                "products": [],
                "proration_behavior": "none",
                "schedule_at_period_end": {"conditions": []},
                "trial_update_behavior": "end_trial",
            },
        },
        is_default=False,
        login_page={"enabled": False, "url": None},
        metadata={},
        name=None,
        updated=now,
    )


def _url(value: Any, param: str) -> str | None:
    if value in (None, ""):
        return None
    if not str(value).startswith(("http://", "https://")):
        raise core.invalid(param, "Not a valid URL")
    return str(value)


def _products(value: Any) -> list[dict[str, Any]]:
    """``features[subscription_update][products]``: each product with prices of its own."""
    if value == "":
        return []
    if not isinstance(value, list):
        raise core.invalid("features[subscription_update][products]", "Invalid array")
    products = []
    for i, entry in enumerate(value):
        param = f"features[subscription_update][products][{i}]"
        product_id = entry.get("product") if isinstance(entry, dict) else None
        if not product_id:
            raise core.missing(f"{param}[product]")
        core.get_or_404(product_id, "product", f"{param}[product]")
        prices = entry.get("prices")
        if isinstance(prices, str):
            prices = [prices]
        if not prices:
            raise core.missing(f"{param}[prices]")
        for price_id in prices:
            price = core.get_or_404(price_id, "price", f"{param}[prices]")
            if price.get("product") != product_id:
                raise core.invalid(
                    f"{param}[prices]",
                    f"The price {price_id} does not belong to the product {product_id}.",
                )
            if price.get("type") != "recurring":
                raise core.invalid(
                    f"{param}[prices]", f"The price {price_id} is not a recurring price."
                )
        products.append(
            {
                "adjustable_quantity": {"enabled": False, "maximum": None, "minimum": 1},
                "prices": list(prices),
                "product": product_id,
            }
        )
    return products


def _apply_configuration(config: dict[str, Any], p: dict[str, Any]) -> None:
    """Set what ``p`` names on ``config`` (create and update alike)."""
    profile = p.get("business_profile")
    if isinstance(profile, dict):
        if "headline" in profile:
            config["business_profile"]["headline"] = profile["headline"] or None
        for name in ("privacy_policy_url", "terms_of_service_url"):
            if name in profile:
                config["business_profile"][name] = _url(profile[name], f"business_profile[{name}]")
    if "default_return_url" in p:
        config["default_return_url"] = _url(p["default_return_url"], "default_return_url")
    if "metadata" in p:
        config["metadata"] = core.metadata_from(p, config["metadata"])
    if "name" in p:
        config["name"] = p["name"] or None
    if "active" in p:
        active = core.to_bool(p["active"])
        if not active and config["is_default"]:
            raise core.invalid("active", "The default configuration cannot be deactivated.")
        config["active"] = active
    features = p.get("features")
    if not isinstance(features, dict):
        return
    target = config["features"]
    for name in ("invoice_history", "payment_method_update"):
        if isinstance(features.get(name), dict) and "enabled" in features[name]:
            target[name]["enabled"] = core.to_bool(features[name]["enabled"])
    cancel = features.get("subscription_cancel")
    if isinstance(cancel, dict):
        if "enabled" in cancel:
            target["subscription_cancel"]["enabled"] = core.to_bool(cancel["enabled"])
        if cancel.get("mode"):
            target["subscription_cancel"]["mode"] = cancel["mode"]
    update = features.get("subscription_update")
    if isinstance(update, dict):
        su = target["subscription_update"]
        if "enabled" in update:
            su["enabled"] = core.to_bool(update["enabled"])
        if "default_allowed_updates" in update:
            allowed = update["default_allowed_updates"] or []
            allowed = [allowed] if isinstance(allowed, str) else list(allowed)
            others = [a for a in allowed if a != "price"]
            if others:
                raise strict.unsupported(
                    "features[subscription_update][default_allowed_updates]"
                    f" ({others[0]!r}: the emulator's portal switches prices only)"
                )
            su["default_allowed_updates"] = allowed
        if "products" in update:
            su["products"] = _products(update["products"])
        if update.get("proration_behavior"):
            su["proration_behavior"] = update["proration_behavior"]
        if su["enabled"] and not (su["products"] and su["default_allowed_updates"]):
            raise core.StripeError(
                "To enable subscription updates, set features[subscription_update]"
                "[default_allowed_updates] and features[subscription_update][products].",
                param="features[subscription_update]",
            )


@bp.post("/v1/billing_portal/configurations")
@strict.accepts("billing_portal.ConfigurationCreateParams", CONFIGURATION_FIELDS)
def create_configuration():
    core.authenticate()
    p = core.params()
    with core.transaction():
        config = _new_configuration()
        _apply_configuration(config, p)
        core.save(config)
        core.record_event("billing_portal.configuration.created", config)
    return core.respond(config)


@bp.get("/v1/billing_portal/configurations/<config_id>")
@strict.accepts("billing_portal.ConfigurationRetrieveParams", strict.RETRIEVE)
def retrieve_configuration(config_id: str):
    core.authenticate()
    return core.respond(core.get_or_404(config_id, "billing_portal.configuration"))


@bp.post("/v1/billing_portal/configurations/<config_id>")
@strict.accepts("billing_portal.ConfigurationUpdateParams", [*CONFIGURATION_FIELDS, "active"])
def update_configuration(config_id: str):
    core.authenticate()
    p = core.params()
    with core.transaction():
        config = core.get_or_404(config_id, "billing_portal.configuration")
        before = copy.deepcopy(config)
        _apply_configuration(config, p)
        previous = {k: v for k, v in before.items() if config.get(k) != v}
        if previous:
            config["updated"] = core.now()
            core.save(config)
            core.record_event(
                "billing_portal.configuration.updated", config, previous_attributes=previous
            )
    return core.respond(config)


@bp.get("/v1/billing_portal/configurations")
@strict.accepts("billing_portal.ConfigurationListParams", [*strict.LIST, "active", "is_default"])
def list_configurations():
    core.authenticate()
    p = core.params()

    def match(config: dict[str, Any]) -> bool:
        for name in ("active", "is_default"):
            if name in p and config[name] != core.to_bool(p[name]):
                return False
        return True

    return core.list_response(
        core.all_of("billing_portal.configuration", match), "/v1/billing_portal/configurations"
    )


# --------------------------------------------------------------------------- sessions


@bp.post("/v1/billing_portal/sessions")
@strict.accepts(
    "billing_portal.SessionCreateParams", ["customer", "return_url", "configuration", "expand"]
)
def create_session():
    core.authenticate()
    p = core.params()
    customer_id = p.get("customer")
    if not customer_id:
        raise core.missing("customer")
    core.get_or_404(customer_id, "customer", "customer")
    if p.get("configuration"):
        config = core.get_or_404(
            p["configuration"], "billing_portal.configuration", "configuration"
        )
        if not config["active"]:
            raise core.invalid("configuration", f"The configuration {config['id']} is not active.")
    else:
        defaults = core.all_of("billing_portal.configuration", lambda c: c["is_default"])
        if not defaults:
            # A fresh test-mode account has no default (it is saved in the Dashboard).
            raise core.StripeError(
                "You can't create a portal session in test mode until you save your customer "
                "portal settings in test mode at "
                "https://dashboard.stripe.com/test/settings/billing/portal."
            )
        config = defaults[0]
    return_url = _url(p.get("return_url"), "return_url") or config["default_return_url"]
    if not return_url:
        raise core.StripeError(
            "A return_url is required: the configuration has no default_return_url.",
            code="parameter_missing",
            param="return_url",
        )
    session = core.base_object(
        "bps",
        "billing_portal.session",
        after_expiration=None,
        configuration=config["id"],
        customer=customer_id,
        customer_account=None,
        flow=None,
        locale=None,
        on_behalf_of=None,
        return_url=return_url,
        url="",
    )
    session["url"] = f"{payments.base_url()}/p/session/{session['id']}"
    session["_expires_at"] = session["created"] + SESSION_SECONDS
    with core.transaction():
        core.save(session)
        core.record_event("billing_portal.session.created", session)
    log.info("portal session %s for %s", session["id"], customer_id)
    return core.respond(session)


# --------------------------------------------------------------------------- the page


def _session(bps_id: str) -> dict[str, Any]:
    session = core.get(bps_id, "billing_portal.session")
    if session is None:
        raise core.StripeError(
            "This portal link does not exist.", status=404, code="resource_missing"
        )
    if session["_expires_at"] <= core.now():
        raise core.StripeError(
            "This portal session has expired. Return to the business and open it again.",
            status=400,
            code="session_expired",
        )
    return session


def _config(session: dict[str, Any]) -> dict[str, Any]:
    return core.get(session["configuration"], "billing_portal.configuration") or {}


def _live_subscriptions(customer_id: str) -> list[dict[str, Any]]:
    return [
        core.present(s)
        for s in core.all_of(
            "subscription", lambda s: s["customer"] == customer_id and s["status"] not in ENDED
        )
    ]


def _money(amount: int, currency: str) -> str:
    """Stripe's portal shows amounts like "$9.00" / "€90.00"."""
    zero_decimal = currency.lower() in ("jpy", "krw", "vnd", "clp", "isk", "ugx")
    symbol = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}.get(currency.lower())
    value = f"{amount:,}" if zero_decimal else f"{amount / 100:,.2f}"
    return f"{symbol}{value}" if symbol else f"{value} {currency.upper()}"


def _date(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%-d %B %Y") if ts else ""


def _every(price: dict[str, Any]) -> str:
    recurring = price.get("recurring") or {}
    count = recurring.get("interval_count", 1)
    interval = recurring.get("interval", "month")
    return f"per {interval}" if count == 1 else f"every {count} {interval}s"


def _price_view(price: dict[str, Any]) -> dict[str, Any]:
    product = core.get(price.get("product"), "product") or {}
    return {
        "id": price["id"],
        "product": product.get("name") or price.get("nickname") or price["id"],
        "amount": _money(price.get("unit_amount") or 0, price["currency"]),
        "every": _every(price),
        "interval": (price.get("recurring") or {}).get("interval", "month"),
    }


def _switch_options(config: dict[str, Any], sub: dict[str, Any]) -> list[dict[str, Any]]:
    """The configuration's other prices for this subscription's product."""
    update = config.get("features", {}).get("subscription_update") or {}
    if not update.get("enabled") or len(sub["items"]["data"]) != 1:
        return []
    current = sub["items"]["data"][0]["price"]
    options = []
    for product in update.get("products") or []:
        if product["product"] != current.get("product"):
            continue
        for price_id in product["prices"]:
            price = core.get(price_id, "price")
            if (
                price is not None
                and price["id"] != current["id"]
                and price.get("active", True)
                and price["currency"] == current["currency"]
            ):
                options.append(_price_view(price))
    return options


def _card_view(pm_id: str | None) -> dict[str, Any] | None:
    pm = core.get(pm_id, "payment_method") if pm_id else None
    if pm is None or not pm.get("card"):
        return None
    card = pm["card"]
    return {
        "brand": {"amex": "American Express", "mastercard": "Mastercard"}.get(
            card["brand"], card["brand"].capitalize()
        ),
        "last4": card["last4"],
        "expires": f"{card['exp_month']:02d}/{card['exp_year'] % 100:02d}",
    }


def _subscription_view(config: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    item = sub["items"]["data"][0]
    price = _price_view(item["price"])
    period_end = max(i["current_period_end"] for i in sub["items"]["data"])
    owing = None
    if sub["status"] in OWING:
        open_invoices = billing.open_invoices_of(sub["id"])
        if open_invoices:
            due = sum(i["amount_remaining"] for i in open_invoices)
            retry = min((i["next_payment_attempt"] or 0) for i in open_invoices) or None
            owing = {
                "amount": _money(due, sub["currency"]),
                "next_attempt": _date(retry),
            }
    return {
        "id": sub["id"],
        "status": sub["status"],
        "price": price,
        "period_end": _date(period_end),
        "cancel_at_period_end": sub["cancel_at_period_end"],
        "owing": owing,
        "options": _switch_options(config, sub),
    }


def _invoice_view(invoice: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": invoice.get("number") or invoice["id"],
        "date": _date(invoice.get("status_transitions", {}).get("finalized_at")),
        "amount": _money(invoice["total"], invoice["currency"]),
        "status": invoice["status"],
        "url": invoice.get("hosted_invoice_url"),
    }


NOTICES = {
    "card_updated": ("success", "Your payment method was updated."),
    "card_updated_paid": (
        "success",
        "Your payment method was updated and the amount due was paid. Thank you!",
    ),
    "card_updated_unpaid": (
        "error",
        "Your payment method was saved, but the payment of the amount due failed. "
        "Try another card.",
    ),
    "canceled": ("success", "Your plan was canceled."),
    "cancel_scheduled": ("success", "Your plan will be canceled at the end of the period."),
    "renewed": ("success", "Your plan will renew as usual."),
    "switched": ("success", "Your plan was updated."),
}


@bp.get("/p/session/<bps_id>")
def portal_page(bps_id: str):
    """The portal a session's ``url`` opens (the session id is the secret)."""
    from flask import request

    from .browser import business_name

    try:
        session = _session(bps_id)
    except core.StripeError as err:
        response = current_app.make_response(
            (
                render_template(
                    "portal.html", error=err.body["message"], business_name=business_name()
                ),
                err.status,
            )
        )
        response.headers["Cache-Control"] = "no-store"
        return response
    config = _config(session)
    features = config.get("features", {})
    customer = core.get(session["customer"], "customer") or {}
    subs = _live_subscriptions(session["customer"])
    default_pm = (customer.get("invoice_settings") or {}).get("default_payment_method")
    if not default_pm and subs:
        default_pm = billing.payment_method_for(subs[0])
    invoices = []
    if features.get("invoice_history", {}).get("enabled"):
        invoices = [
            _invoice_view(i)
            for i in core.all_of(
                "invoice",
                lambda i: i["customer"] == session["customer"] and i["status"] != "draft",
            )[:24]
        ]
    notice = NOTICES.get(request.args.get("notice", ""))
    response = current_app.make_response(
        render_template(
            "portal.html",
            error=None,
            session=session,
            business_name=business_name(),
            headline=config.get("business_profile", {}).get("headline"),
            email=customer.get("email"),
            subscriptions=[_subscription_view(config, s) for s in subs],
            card=_card_view(default_pm),
            can_update_card=features.get("payment_method_update", {}).get("enabled", False),
            can_cancel=features.get("subscription_cancel", {}).get("enabled", False),
            cancel_mode=features.get("subscription_cancel", {}).get("mode", "at_period_end"),
            show_invoices=features.get("invoice_history", {}).get("enabled", False),
            invoices=invoices,
            notice=notice,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# --------------------------------------------------------------------------- the page's API


def _feature(session: dict[str, Any], name: str) -> dict[str, Any]:
    feature = _config(session).get("features", {}).get(name) or {}
    if not feature.get("enabled"):
        raise core.StripeError("This portal does not offer that.", status=403)
    return feature


def _own_subscription(session: dict[str, Any], sub_id: str) -> dict[str, Any]:
    sub = core.get(sub_id, "subscription")
    if sub is None or sub["customer"] != session["customer"] or sub["status"] in ENDED:
        raise core.StripeError(
            "No such subscription.", status=404, code="resource_missing", param="subscription"
        )
    return sub


class PortalCardParams(TypedDict):
    """``POST /v1/portal_pages/<id>/payment_method`` (emulator only)."""

    card: NotRequired[PaymentPageCard]


class PortalCompleteParams(TypedDict):
    """``POST /v1/portal_pages/<id>/payment_method/complete`` (emulator only)."""

    setup_intent: str


class PortalSubscriptionParams(TypedDict):
    """The portal page's plan actions (emulator only)."""

    price: NotRequired[str]


@bp.post("/v1/portal_pages/<bps_id>/payment_method")
@strict.accepts(PortalCardParams, ["card"], public=True)
def page_update_card(bps_id: str):
    """Set up the typed card for the customer (a SetupIntent); when it needs 3-D Secure
    the page opens the challenge and calls ``.../complete`` after."""
    session = _session(bps_id)
    _feature(session, "payment_method_update")
    card = core.params().get("card")
    customer = core.get(session["customer"], "customer") or {}
    with billing.serialised():
        pm = payments.create_payment_method_from_card(
            card, {"email": customer.get("email"), "name": customer.get("name")}
        )
        seti = setup_intents.create(
            {
                "customer": session["customer"],
                "payment_method": pm["id"],
                "usage": "off_session",
                "description": "Customer portal: payment method update",
            }
        )
        seti = setup_intents.confirm(seti, {"return_url": session["url"]})
        if seti["status"] == "requires_action":
            action = (seti.get("next_action") or {}).get("redirect_to_url") or {}
            return jsonify(
                {
                    "status": "requires_action",
                    "redirect_url": action.get("url"),
                    "setup_intent": seti["id"],
                }
            )
        return jsonify(_use_card(session, seti))


@bp.post("/v1/portal_pages/<bps_id>/payment_method/complete")
@strict.accepts(PortalCompleteParams, ["setup_intent"], public=True)
def page_complete_card(bps_id: str):
    """After the 3-D Secure challenge: use the card if its SetupIntent succeeded."""
    session = _session(bps_id)
    _feature(session, "payment_method_update")
    seti = core.get(core.params().get("setup_intent"), "setup_intent")
    if seti is None or seti.get("customer") != session["customer"]:
        raise core.StripeError(
            "No such setup intent.", status=404, code="resource_missing", param="setup_intent"
        )
    if seti["status"] != "succeeded":
        error = seti.get("last_setup_error") or {}
        raise core.StripeError(
            error.get("message")
            or "We are unable to authenticate your payment method. Please choose a different "
            "payment method and try again.",
            status=402,
            type="card_error",
            code=error.get("code") or "setup_intent_authentication_failure",
        )
    with billing.serialised():
        return jsonify(_use_card(session, seti))


def _use_card(session: dict[str, Any], seti: dict[str, Any]) -> dict[str, Any]:
    """The set-up card becomes the customer's and their subscriptions' default; the open
    invoices of subscriptions that owe are paid with it (as Stripe's portal does)."""
    customer_id = session["customer"]
    pm_id = seti["payment_method"]
    _set_default_payment_method(customer_id, pm_id)
    subs = core.all_of(
        "subscription", lambda s: s["customer"] == customer_id and s["status"] not in ENDED
    )
    for sub in subs:
        if sub.get("default_payment_method") != pm_id:
            billing._update_subscription(sub, default_payment_method=pm_id)
    paid, failed = 0, None
    for sub in subs:
        if sub["status"] not in OWING:
            continue
        for invoice in reversed(billing.open_invoices_of(sub["id"])):  # oldest first
            try:
                billing.pay_invoice(invoice, pm_id, off_session=True)
                paid += 1
            except core.StripeError as err:
                failed = err
                break
    log.info("portal %s: card %s saved, %d invoice(s) paid", session["id"], pm_id, paid)
    if failed is not None:
        return {"status": "succeeded", "notice": "card_updated_unpaid"}
    return {"status": "succeeded", "notice": "card_updated_paid" if paid else "card_updated"}


@bp.post("/v1/portal_pages/<bps_id>/subscriptions/<sub_id>/cancel")
@strict.accepts(PortalSubscriptionParams, [], public=True)
def page_cancel(bps_id: str, sub_id: str):
    session = _session(bps_id)
    feature = _feature(session, "subscription_cancel")
    with billing.serialised():
        sub = _own_subscription(session, sub_id)
        if feature.get("mode") == "immediately":
            billing.end_subscription(sub)
            return jsonify({"status": "succeeded", "notice": "canceled"})
        period_end = max(i["current_period_end"] for i in sub["items"]["data"])
        billing._update_subscription(
            sub,
            cancel_at_period_end=True,
            cancel_at=period_end,
            canceled_at=core.now(),
            cancellation_details={
                "comment": None,
                "feedback": None,
                "reason": "cancellation_requested",
            },
        )
    return jsonify({"status": "succeeded", "notice": "cancel_scheduled"})


@bp.post("/v1/portal_pages/<bps_id>/subscriptions/<sub_id>/renew")
@strict.accepts(PortalSubscriptionParams, [], public=True)
def page_renew(bps_id: str, sub_id: str):
    session = _session(bps_id)
    _feature(session, "subscription_cancel")
    with billing.serialised():
        sub = _own_subscription(session, sub_id)
        billing._update_subscription(
            sub,
            cancel_at_period_end=False,
            cancel_at=None,
            canceled_at=None,
            cancellation_details={"comment": None, "feedback": None, "reason": None},
        )
    return jsonify({"status": "succeeded", "notice": "renewed"})


@bp.post("/v1/portal_pages/<bps_id>/subscriptions/<sub_id>/update")
@strict.accepts(PortalSubscriptionParams, ["price"], public=True)
def page_switch(bps_id: str, sub_id: str):
    """Switch to another of the configuration's prices (its proration_behavior)."""
    session = _session(bps_id)
    feature = _feature(session, "subscription_update")
    price_id = core.params().get("price")
    if not price_id:
        raise core.missing("price")
    with billing.serialised():
        sub = _own_subscription(session, sub_id)
        config = _config(session)
        if price_id not in {o["id"] for o in _switch_options(config, core.present(sub))}:
            raise core.invalid("price", "That plan is not offered here.")
        change = billing._price_change(
            sub, [{"id": sub["items"]["data"][0]["id"], "price": price_id}]
        )
        if change is not None:
            billing.change_price(sub, *change, feature.get("proration_behavior") or "none")
    return jsonify({"status": "succeeded", "notice": "switched"})
