"""Checkout Sessions and the API behind the hosted payment page.

A session is created ``open``/``unpaid`` with ``url`` = ``<base>/c/pay/<cs_id>`` (the page
lives in ``browser.py``).  The page reads ``GET /v1/payment_pages/<cs_id>`` and pays with
``POST /v1/payment_pages/<cs_id>/confirm``: in payment mode a PaymentIntent is created and
confirmed; in subscription mode a customer is found or created and the first invoice
charged (the card is attached to the customer when that succeeds) before the subscription
is started.  A card that needs 3-D Secure answers ``requires_action``; the session completes
when that PaymentIntent later succeeds (``payment_intent.succeeded`` listener).  Line items
are not stored on the session's public fields but computed for ``expand[]=line_items``, as
Stripe does.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, NotRequired

from flask import Blueprint, g, jsonify, request
from typing_extensions import TypedDict

from . import billing, core, strict

log = logging.getLogger(__name__)

bp = Blueprint("checkout", __name__)

MIN_EXPIRY = 30 * 60
MAX_EXPIRY = 24 * 3600
SESSION_ID_LENGTH = 58
# Private bookkeeping kept on the stored session, never shown in the API.
_PRIVATE_PREFIX = "_"


# --------------------------------------------------------------------------- helpers


def _base_url() -> str:
    return request.host_url.rstrip("/")


def _present_session(session: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in session.items() if not k.startswith(_PRIVATE_PREFIX)}


core.register_presenter("checkout.session", _present_session)


def _line_items_hook(session: dict[str, Any]) -> dict[str, Any] | None:
    if session.get("object") != "checkout.session":
        return None
    stored = core.get(session["id"], "checkout.session") or {}
    items = stored.get("_line_items") or []
    return core.list_of(items, f"/v1/checkout/sessions/{session['id']}/line_items")


core.register_present_hook("line_items", _line_items_hook)


def redirect_url(session: dict[str, Any]) -> str:
    """``success_url`` with ``{CHECKOUT_SESSION_ID}`` filled in, as Checkout redirects."""
    return (session.get("success_url") or "").replace("{CHECKOUT_SESSION_ID}", session["id"])


def expire_if_due(session: dict[str, Any]) -> dict[str, Any]:
    """Expire a session past ``expires_at`` (the sweep below does it unasked; a read does not
    wait for the sweep)."""
    if session["status"] == "open" and session["expires_at"] <= core.now():
        session = _expire(session)
    return session


def expire_due_sessions() -> float | None:
    """Background sweep: expire open sessions past ``expires_at``, as Stripe does without
    anyone reading them (``checkout.session.expired``).  Returns seconds to the next expiry."""
    rows = (
        core.db()
        .execute(
            "SELECT id, json_extract(data, '$.expires_at') FROM objects "
            "WHERE type='checkout.session' AND json_extract(data, '$.status')='open'"
        )
        .fetchall()
    )
    now = core.now()
    for cs_id, expires_at in rows:
        if expires_at <= now:
            with billing.serialised():
                session = core.get(cs_id, "checkout.session")
                if session is not None:
                    expire_if_due(session)
    later = [expires_at for _, expires_at in rows if expires_at > now]
    return min(later) - core.clock() if later else None


core.on_sweep(expire_due_sessions)


def _expire(session: dict[str, Any]) -> dict[str, Any]:
    from . import payments

    session["status"] = "expired"
    pending = core.get(session.pop("_pending_pi", None), "payment_intent")
    if pending is not None and pending["status"] == "requires_action":
        # An abandoned 3-D Secure challenge must not be able to charge an expired session.
        payments.cancel_payment_intent(pending, "abandoned")
    session.pop("_pending_details", None)
    core.save(session)
    core.record_event("checkout.session.expired", session)
    return session


def awaits_payment(pi_id: str) -> bool:
    """Whether an open session is waiting for this PaymentIntent (3-D Secure on the page)."""
    return bool(
        core.all_of(
            "checkout.session", lambda s: s["status"] == "open" and s.get("_pending_pi") == pi_id
        )
    )


def _session_or_404(cs_id: str) -> dict[str, Any]:
    return core.get_or_404(cs_id, "checkout.session")


# --------------------------------------------------------------------------- line items


def _inline_price(data: Any, param: str, mode: str) -> dict[str, Any]:
    """Create the hidden Price (and Product) that ``price_data`` describes."""
    from . import api

    if not isinstance(data, dict):
        raise core.invalid(param)
    if not data.get("product") and not isinstance(data.get("product_data"), dict):
        raise core.missing(f"{param}[product_data]")
    if mode == "subscription" and not isinstance(data.get("recurring"), dict):
        raise core.missing(f"{param}[recurring]")
    allowed = ("currency", "unit_amount", "unit_amount_decimal", "product", "product_data")
    price_params = {k: v for k, v in data.items() if k in allowed}
    if isinstance(data.get("recurring"), dict):
        price_params["recurring"] = data["recurring"]
    try:
        price = api._create_price(price_params)
    except core.StripeError as err:
        # Report the nested parameter, as Stripe does (``line_items[0][price_data][...]``).
        if err.body.get("param"):
            err.body["param"] = f"{param}[{err.body['param'].replace('[', '][', 1)}"
            if not err.body["param"].endswith("]"):
                err.body["param"] += "]"
        raise
    # Stripe hides ad-hoc prices from the catalogue.
    price["active"] = False
    return core.save(price)


def _build_line_items(p: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    raw_items = p.get("line_items")
    if not raw_items:
        raise core.missing("line_items")
    if not isinstance(raw_items, list):
        raise core.invalid("line_items")
    items: list[dict[str, Any]] = []
    for i, raw in enumerate(raw_items):
        param = f"line_items[{i}]"
        if not isinstance(raw, dict):
            raise core.invalid(param)
        if raw.get("price") and raw.get("price_data"):
            raise core.invalid(
                param, "You may only specify one of these parameters: price, price_data."
            )
        if raw.get("price"):
            price = core.get_or_missing(raw["price"], "price", f"{param}[price]")
            if not price.get("active", True):
                raise core.invalid(
                    f"{param}[price]",
                    f"The price `{price['id']}` is not available to be "
                    "purchased because it is not active.",
                )
        elif raw.get("price_data"):
            price = _inline_price(raw["price_data"], f"{param}[price_data]", mode)
        else:
            raise core.missing(f"{param}[price]")
        if "quantity" not in raw:
            raise core.missing(f"{param}[quantity]")
        quantity = core.to_int(raw["quantity"], f"{param}[quantity]")
        if not 1 <= quantity <= 999_999:
            raise core.invalid(f"{param}[quantity]", "Quantity must be between 1 and 999999.")
        recurring = price.get("type") == "recurring"
        if mode == "payment" and recurring:
            raise core.invalid(
                f"{param}[price]",
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
            )
        if mode == "subscription" and not recurring:
            # Stripe allows one-time extras on the first invoice; the emulator does not.
            raise core.invalid(
                f"{param}[price]",
                "The emulator only supports recurring prices in `subscription` mode.",
            )
        amount = (price.get("unit_amount") or 0) * quantity
        product = core.get(price.get("product"), "product") or {}
        items.append(
            {
                "id": core.new_id("li"),
                "object": "item",
                "adjustable_quantity": None,
                "amount_discount": 0,
                "amount_subtotal": amount,
                "amount_tax": 0,
                "amount_total": amount,
                "currency": price["currency"],
                "description": product.get("name"),
                "metadata": {},
                "price": price,
                "quantity": quantity,
            }
        )
    currencies = {item["currency"] for item in items}
    if len(currencies) > 1:
        raise core.invalid(
            "line_items",
            "All line items must have the same currency; got "
            + ", ".join(sorted(currencies))
            + ".",
        )
    if mode == "subscription":
        intervals = {
            (i["price"]["recurring"]["interval"], i["price"]["recurring"].get("interval_count", 1))
            for i in items
        }
        if len(intervals) > 1:
            raise core.invalid(
                "line_items", "All recurring prices must have the same billing interval."
            )
    return items


# --------------------------------------------------------------------------- shipping

SHIPPING_OPTIONS_MAX = 5
DELIVERY_UNITS = ("business_day", "day", "hour", "month", "week")
TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")


def _shipping_address_collection(p: dict[str, Any]) -> dict[str, Any] | None:
    """``shipping_address_collection[allowed_countries][]``: ISO codes, uppercase."""
    value = p.get("shipping_address_collection")
    if value in (None, ""):
        return None
    param = "shipping_address_collection"
    if not isinstance(value, dict):
        raise core.invalid(param)
    countries = value.get("allowed_countries")
    if isinstance(countries, str):
        countries = [countries]
    if not countries:
        raise core.missing(f"{param}[allowed_countries]")
    if not isinstance(countries, list):
        raise core.invalid(f"{param}[allowed_countries]")
    for i, code in enumerate(countries):
        if not (isinstance(code, str) and len(code) == 2 and code.isalpha() and code.isupper()):
            raise core.invalid(
                f"{param}[allowed_countries][{i}]",
                f"Invalid value for {param}[allowed_countries][{i}]: {code!r} is not a "
                "two-letter uppercase country code.",
            )
    return {"allowed_countries": list(dict.fromkeys(countries))}


def _delivery_bound(data: Any, param: str) -> dict[str, Any] | None:
    if data in (None, ""):
        return None
    if not isinstance(data, dict):
        raise core.invalid(param)
    if data.get("unit") not in DELIVERY_UNITS:
        raise core.invalid(
            f"{param}[unit]",
            f"Invalid {param}[unit]: must be one of " + ", ".join(DELIVERY_UNITS),
        )
    value = core.to_int(data.get("value"), f"{param}[value]")
    if value < 1:
        raise core.invalid(f"{param}[value]", "The value must be greater than 0.")
    return {"unit": data["unit"], "value": value}


def create_shipping_rate(data: Any, param: str) -> dict[str, Any]:
    """Store the ShippingRate that ``shipping_rate_data`` describes (type fixed_amount)."""
    if not isinstance(data, dict):
        raise core.invalid(param)
    if not data.get("display_name"):
        raise core.missing(f"{param}[display_name]")
    if (data.get("type") or "fixed_amount") != "fixed_amount":
        raise core.invalid(f"{param}[type]", "The only shipping rate type is fixed_amount.")
    fixed = data.get("fixed_amount")
    if not isinstance(fixed, dict):
        raise core.missing(f"{param}[fixed_amount]")
    if fixed.get("amount") in (None, ""):
        raise core.missing(f"{param}[fixed_amount][amount]")
    amount = core.to_int(fixed["amount"], f"{param}[fixed_amount][amount]")
    if amount < 0:
        raise core.invalid(f"{param}[fixed_amount][amount]", "The amount must be >= 0.")
    currency = str(fixed.get("currency") or "").lower()
    if len(currency) != 3 or not currency.isalpha():
        raise core.missing(f"{param}[fixed_amount][currency]")
    estimate = data.get("delivery_estimate")
    if estimate not in (None, "") and not isinstance(estimate, dict):
        raise core.invalid(f"{param}[delivery_estimate]")
    estimate = estimate or {}
    bounds = {
        k: _delivery_bound(estimate.get(k), f"{param}[delivery_estimate][{k}]")
        for k in ("maximum", "minimum")
    }
    tax_behavior = data.get("tax_behavior") or "unspecified"
    if tax_behavior not in TAX_BEHAVIORS:
        raise core.invalid(f"{param}[tax_behavior]")
    rate = core.base_object(
        "shr",
        "shipping_rate",
        active=True,
        delivery_estimate=bounds if any(bounds.values()) else None,
        display_name=str(data["display_name"]),
        fixed_amount={"amount": amount, "currency": currency},
        metadata=core.metadata_from(data),
        tax_behavior=tax_behavior,
        tax_code=data.get("tax_code") or None,
        type="fixed_amount",
    )
    return core.save(rate)


def _shipping_options(p: dict[str, Any], mode: str, currency: str) -> list[dict[str, Any]]:
    """``shipping_options[]``: each a ShippingRate id or ``shipping_rate_data``."""
    raw = p.get("shipping_options")
    if raw in (None, "", []):
        return []
    if mode != "payment":
        raise core.invalid(
            "shipping_options", "`shipping_options` can only be used in `payment` mode."
        )
    if not isinstance(raw, list):
        raise core.invalid("shipping_options")
    if len(raw) > SHIPPING_OPTIONS_MAX:
        raise core.invalid(
            "shipping_options", f"You can specify at most {SHIPPING_OPTIONS_MAX} shipping options."
        )
    options = []
    for i, opt in enumerate(raw):
        param = f"shipping_options[{i}]"
        if not isinstance(opt, dict):
            raise core.invalid(param)
        if opt.get("shipping_rate") and opt.get("shipping_rate_data"):
            raise core.invalid(
                param,
                "You may only specify one of these parameters: shipping_rate, shipping_rate_data.",
            )
        if opt.get("shipping_rate"):
            rate = core.get_or_missing(
                opt["shipping_rate"], "shipping_rate", f"{param}[shipping_rate]"
            )
        elif opt.get("shipping_rate_data"):
            rate = create_shipping_rate(opt["shipping_rate_data"], f"{param}[shipping_rate_data]")
        else:
            raise core.missing(f"{param}[shipping_rate]")
        if rate["fixed_amount"]["currency"] != currency:
            raise core.invalid(
                param,
                f"The shipping rate's currency ({rate['fixed_amount']['currency']}) must be "
                f"the session's currency ({currency}).",
            )
        options.append(
            {"shipping_amount": rate["fixed_amount"]["amount"], "shipping_rate": rate["id"]}
        )
    return options


def shipping_cost(option: dict[str, Any] | None) -> dict[str, Any] | None:
    """The session's ``shipping_cost`` for the chosen option (no tax here)."""
    if option is None:
        return None
    amount = option["shipping_amount"]
    return {
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "shipping_rate": option["shipping_rate"],
    }


def choose_shipping(session: dict[str, Any], rate_id: str | None) -> None:
    """Put the chosen option (the first by default) into the session's amounts."""
    options = session.get("shipping_options") or []
    if not options:
        return
    chosen = next((o for o in options if o["shipping_rate"] == rate_id), None)
    if rate_id and chosen is None:
        raise core.invalid("shipping_rate", "Choose one of the session's shipping options.")
    chosen = chosen or options[0]
    session["shipping_cost"] = shipping_cost(chosen)
    session["total_details"] = dict(
        session["total_details"], amount_shipping=chosen["shipping_amount"]
    )
    session["amount_total"] = session["amount_subtotal"] + chosen["shipping_amount"]


# --------------------------------------------------------------------------- sessions API


def _check_url(p: dict[str, Any], name: str, required: bool) -> str | None:
    url = p.get(name)
    if not url:
        if required:
            raise core.missing(name)
        return None
    if not str(url).startswith(("http://", "https://")):
        raise core.invalid(name, "Not a valid URL")
    return str(url)


# What the emulator implements of ``POST /v1/checkout/sessions`` (see ``strict``).
SESSION_FIELDS = [
    "mode",
    "ui_mode",
    "success_url",
    "cancel_url",
    "customer",
    "customer_email",
    "client_reference_id",
    "expires_at",
    "metadata",
    "line_items.price",
    "line_items.quantity",
    "line_items.price_data.currency",
    "line_items.price_data.unit_amount",
    "line_items.price_data.product",
    "line_items.price_data.product_data.name",
    "line_items.price_data.product_data.metadata",
    "line_items.price_data.product_data.tax_code",
    "line_items.price_data.product_data.unit_label",
    "line_items.price_data.recurring.interval",
    "line_items.price_data.recurring.interval_count",
    "payment_intent_data.metadata",
    "payment_intent_data.description",
    "payment_intent_data.receipt_email",
    "subscription_data.metadata",
    "shipping_address_collection.allowed_countries",
    "shipping_options.shipping_rate",
    "shipping_options.shipping_rate_data.display_name",
    "shipping_options.shipping_rate_data.type",
    "shipping_options.shipping_rate_data.fixed_amount.amount",
    "shipping_options.shipping_rate_data.fixed_amount.currency",
    "shipping_options.shipping_rate_data.delivery_estimate",
    "shipping_options.shipping_rate_data.metadata",
    "shipping_options.shipping_rate_data.tax_behavior",
    "saved_payment_method_options.payment_method_save",
    "saved_payment_method_options.allow_redisplay_filters",
    "expand",
]
REDISPLAY_VALUES = ("always", "limited", "unspecified")


def _saved_payment_method_options(p: dict[str, Any], customer_id: str | None) -> Any:
    """``saved_payment_method_options`` as Stripe answers it: with a customer (or options
    given) the redisplay filters (default ``["always"]``) and whether the page offers to
    save a new card; saving needs the customer the card is saved to."""
    given = p.get("saved_payment_method_options")
    if given in (None, ""):
        given = {}
    if not isinstance(given, dict):
        raise core.invalid("saved_payment_method_options")
    if not customer_id and not given:
        return None
    filters = given.get("allow_redisplay_filters") or ["always"]
    if isinstance(filters, str):
        filters = [filters]
    for value in filters:
        if value not in REDISPLAY_VALUES:
            raise core.invalid("saved_payment_method_options[allow_redisplay_filters]")
    save = given.get("payment_method_save") or None
    if save not in (None, "enabled", "disabled"):
        raise core.invalid("saved_payment_method_options[payment_method_save]")
    if save == "enabled" and not customer_id:
        raise core.StripeError(
            "saved_payment_method_options[payment_method_save] can only be enabled with a "
            "`customer` (the emulator does not create one for it).",
            param="saved_payment_method_options[payment_method_save]",
        )
    return {
        "allow_redisplay_filters": list(dict.fromkeys(filters)),
        "payment_method_remove": None,
        "payment_method_save": save,
    }


def saved_cards(session: dict[str, Any]) -> list[dict[str, Any]]:
    """The customer's saved cards the hosted page offers (allow_redisplay in the filters),
    newest first."""
    options = session.get("saved_payment_method_options") or {}
    customer_id = session.get("customer")
    if not customer_id or not options:
        return []
    filters = options.get("allow_redisplay_filters") or ["always"]
    return core.all_of(
        "payment_method",
        lambda pm: (
            pm.get("customer") == customer_id
            and pm.get("type") == "card"
            and (pm.get("allow_redisplay") or "unspecified") in filters
        ),
    )


def _offers_save(session: dict[str, Any]) -> bool:
    options = session.get("saved_payment_method_options") or {}
    return session["mode"] == "payment" and options.get("payment_method_save") == "enabled"


@bp.post("/checkout/sessions")
@strict.accepts("checkout.SessionCreateParams", SESSION_FIELDS)
def create_session():
    """Create an open Checkout Session (payment or subscription mode)."""
    core.authenticate()
    p = core.params()
    mode = p.get("mode")
    if not mode:
        raise core.missing("mode")
    if mode not in ("payment", "subscription"):
        raise core.invalid(
            "mode", f"Invalid mode: {mode}; the emulator supports payment and subscription."
        )
    ui_mode = p.get("ui_mode") or "hosted_page"
    if ui_mode not in ("hosted_page", "hosted"):
        raise core.invalid("ui_mode", "The emulator only serves the hosted Checkout page.")
    success_url = _check_url(p, "success_url", required=True)
    cancel_url = _check_url(p, "cancel_url", required=False)
    if p.get("customer") and p.get("customer_email"):
        raise core.invalid(
            "customer_email",
            "You may only specify one of these parameters: customer, customer_email.",
        )
    customer_id = p.get("customer") or None
    if customer_id:
        core.get_or_missing(customer_id, "customer", "customer")
    customer_email = p.get("customer_email") or None
    if customer_email and "@" not in customer_email:
        raise core.invalid("customer_email", "Invalid email address: " + customer_email)
    if mode != "payment" and p.get("payment_intent_data"):
        raise core.invalid(
            "payment_intent_data",
            "You can not pass `payment_intent_data` in `subscription` mode.",
        )
    if mode != "subscription" and p.get("subscription_data"):
        raise core.invalid(
            "subscription_data", "You can not pass `subscription_data` in `payment` mode."
        )
    pi_data = p.get("payment_intent_data") or {}
    sub_data = p.get("subscription_data") or {}
    if not isinstance(pi_data, dict):
        raise core.invalid("payment_intent_data")
    if not isinstance(sub_data, dict):
        raise core.invalid("subscription_data")
    created = core.now()
    expires_at = created + MAX_EXPIRY
    if p.get("expires_at"):
        expires_at = core.to_int(p["expires_at"], "expires_at")
        if not created + MIN_EXPIRY <= expires_at <= created + MAX_EXPIRY:
            raise core.invalid(
                "expires_at",
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                "Checkout Session creation.",
            )
    client_reference_id = p.get("client_reference_id") or None
    if client_reference_id and len(client_reference_id) > 200:
        raise core.invalid("client_reference_id", "client_reference_id is too long (max 200).")
    items = _build_line_items(p, mode)
    subtotal = sum(i["amount_subtotal"] for i in items)
    address_collection = _shipping_address_collection(p)
    options = _shipping_options(p, mode, items[0]["currency"])
    saved_options = _saved_payment_method_options(p, customer_id)

    cs_id = core.new_id("cs_test", SESSION_ID_LENGTH)
    session = core.base_object(
        "cs_test",
        "checkout.session",
        adaptive_pricing={"enabled": False},
        after_expiration=None,
        allow_promotion_codes=None,
        amount_subtotal=subtotal,
        amount_total=subtotal,
        automatic_tax={"enabled": False, "liability": None, "provider": None, "status": None},
        billing_address_collection=None,
        cancel_url=cancel_url,
        client_reference_id=client_reference_id,
        client_secret=None,
        collected_information=None,
        consent=None,
        consent_collection=None,
        created=created,
        currency=items[0]["currency"],
        currency_conversion=None,
        custom_fields=[],
        custom_text={
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        customer=customer_id,
        customer_account=None,
        customer_creation=None
        if customer_id
        else ("if_required" if mode == "payment" else "always"),
        customer_details=None,
        customer_email=customer_email,
        discounts=[],
        expires_at=expires_at,
        invoice=None,
        invoice_creation=(
            {
                "enabled": False,
                "invoice_data": {
                    "account_tax_ids": None,
                    "custom_fields": None,
                    "description": None,
                    "footer": None,
                    "issuer": None,
                    "metadata": {},
                    "rendering_options": None,
                },
            }
            if mode == "payment"
            else None
        ),
        locale=None,
        metadata=core.metadata_from(p),
        mode=mode,
        origin_context=None,
        payment_intent=None,
        payment_link=None,
        payment_method_collection="if_required" if mode == "payment" else "always",
        payment_method_configuration_details=None,
        payment_method_options={"card": {"request_three_d_secure": "automatic"}},
        payment_method_types=["card"],
        payment_status="unpaid",
        phone_number_collection={"enabled": False},
        recovered_from=None,
        saved_payment_method_options=saved_options,
        setup_intent=None,
        shipping_address_collection=address_collection,
        shipping_cost=None,
        shipping_options=options,
        status="open",
        submit_type=None,
        subscription=None,
        success_url=success_url,
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        ui_mode="hosted_page",
        url=f"{_base_url()}/c/pay/{cs_id}",
        wallet_options=None,
    )
    session["id"] = cs_id
    choose_shipping(session, None)  # the first option is preselected, as on Stripe's page
    session["_line_items"] = items
    session["_pi_data"] = {
        "metadata": core.metadata_from(pi_data),
        "description": pi_data.get("description") or None,
        "receipt_email": pi_data.get("receipt_email") or None,
    }
    session["_sub_data"] = {"metadata": core.metadata_from(sub_data)}
    core.save(session)
    core.wake_background()  # the sweeper expires it at expires_at
    log.info("checkout session %s created (%s)", cs_id, mode)
    return core.respond(session)


@bp.get("/checkout/sessions/<cs_id>")
@strict.accepts("checkout.SessionRetrieveParams", strict.RETRIEVE)
def retrieve_session(cs_id: str):
    core.authenticate()
    with billing.serialised():
        session = expire_if_due(_session_or_404(cs_id))
    return core.respond(session)


@bp.get("/checkout/sessions")
@strict.accepts(
    "checkout.SessionListParams",
    [*strict.LIST, "payment_intent", "customer", "status", "subscription"],
)
def list_sessions():
    core.authenticate()
    with billing.serialised():
        for session in core.all_of("checkout.session", lambda s: s["status"] == "open"):
            expire_if_due(session)
    return core.list_matching(
        "checkout.session",
        "/v1/checkout/sessions",
        "payment_intent",
        "customer",
        "status",
        "subscription",
    )


@bp.get("/checkout/sessions/<cs_id>/line_items")
@strict.accepts("checkout.SessionLineItemListParams", strict.LIST)
def list_line_items(cs_id: str):
    core.authenticate()
    session = _session_or_404(cs_id)
    return core.list_response(session.get("_line_items") or [], request.path)


@bp.post("/checkout/sessions/<cs_id>/expire")
@strict.accepts("checkout.SessionExpireParams", strict.RETRIEVE)
def expire_session(cs_id: str):
    core.authenticate()
    with billing.serialised():
        session = expire_if_due(_session_or_404(cs_id))
        if session["status"] != "open":
            raise core.StripeError(
                f'Only Checkout Sessions with a status in ["open"] can be expired. This '
                f'Checkout Session has a status of "{session["status"]}".',
                code="checkout_session_expired" if session["status"] == "expired" else None,
            )
        session = _expire(session)
    return core.respond(session)


# --------------------------------------------------------------------------- hosted page API


@bp.get("/payment_pages/<cs_id>")
@strict.accepts(None, public=True)
def payment_page(cs_id: str):
    """What the hosted page shows (no key: the session id in the URL is the secret)."""
    with billing.serialised():
        session = expire_if_due(_session_or_404(cs_id))
    # The Customer comes along so the page can show the email Stripe already has for it;
    # the shipping options' rates so it can name them.
    page = core.expand(core.present(session), ["line_items", "customer"])
    page["shipping_options"] = [
        dict(o, shipping_rate=_rate_or_id(o["shipping_rate"]))
        for o in page.get("shipping_options") or []
    ]
    return jsonify(page)


@bp.get("/payment_pages/<cs_id>/saved_payment_methods")
@strict.accepts(None, public=True)
def payment_page_saved_cards(cs_id: str):
    """The returning customer's saved cards the page offers (brand, last 4 and expiry
    only) and whether it offers to save a new one (emulator only; no key, like the page)."""
    session = _session_or_404(cs_id)
    cards = saved_cards(session) if session["status"] == "open" else []
    return jsonify(
        {
            "saved_cards": [
                {
                    "id": pm["id"],
                    "brand": pm["card"]["brand"],
                    "last4": pm["card"]["last4"],
                    "exp_month": pm["card"]["exp_month"],
                    "exp_year": pm["card"]["exp_year"],
                }
                for pm in cards
            ],
            "offers_save": _offers_save(session),
        }
    )


def _rate_or_id(rate_id: str) -> dict[str, Any] | str:
    """A shipping option's rate, expanded (as ``expand[]=shipping_options.shipping_rate``
    would) so the page can name it."""
    rate = core.get(rate_id, "shipping_rate")
    return core.present(rate) if rate is not None else rate_id


def _form_details(session: dict[str, Any]) -> dict[str, Any]:
    p = core.params()
    email = (p.get("email") or session.get("customer_email") or "").strip()
    if not email and session.get("customer"):
        email = (core.get(session["customer"], "customer") or {}).get("email") or ""
    if not email:
        raise core.missing("email")
    if "@" not in email or len(email) > 512:
        raise core.invalid("email", "Your email address is invalid.")
    name = (p.get("billing_name") or "").strip() or None
    saved = p.get("payment_method") or None
    card = p.get("card")
    if saved:
        card = None
        if saved not in {pm["id"] for pm in saved_cards(session)}:
            raise core.not_found(saved, "payment_method", "payment_method")
    elif not isinstance(card, dict) or not card.get("number"):
        raise core.missing("card[number]")
    return {
        "email": email,
        "name": name,
        "card": card,
        "saved_payment_method": saved,
        "save": core.to_bool(p.get("save_payment_method")) and _offers_save(session),
        "shipping": _form_shipping(session, p),
        "shipping_rate": p.get("shipping_rate") or None,
    }


SHIPPING_FIELDS = {
    "name": "Enter the recipient's full name.",
    "line1": "Enter the street address.",
    "city": "Enter the city.",
    "postal_code": "Enter the postal code.",
    "country": "Choose a country.",
}


def _form_shipping(session: dict[str, Any], p: dict[str, Any]) -> dict[str, Any] | None:
    """The address typed into the page, required when the session collects one."""
    collection = session.get("shipping_address_collection")
    if not collection:
        return None
    data = p.get("shipping") if isinstance(p.get("shipping"), dict) else {}
    address = data.get("address") if isinstance(data.get("address"), dict) else {}
    values = {
        "name": str(data.get("name") or "").strip(),
        **{k: str(address.get(k) or "").strip() for k in SHIPPING_FIELDS if k != "name"},
    }
    for key, message in SHIPPING_FIELDS.items():
        if not values[key]:
            param = "shipping[name]" if key == "name" else f"shipping[address][{key}]"
            raise core.StripeError(message, code="parameter_missing", param=param)
    if values["country"].upper() not in collection["allowed_countries"]:
        raise core.invalid("shipping[address][country]", "We cannot ship to that country.")
    return {
        "name": values["name"],
        "address": {
            "city": values["city"],
            "country": values["country"].upper(),
            "line1": values["line1"],
            "line2": str(address.get("line2") or "").strip() or None,
            "postal_code": values["postal_code"],
            "state": str(address.get("state") or "").strip() or None,
        },
    }


class PaymentPageCard(TypedDict):
    # Strings: the page's own checks answer bad values as card errors.
    number: NotRequired[str]
    exp_month: NotRequired[str]
    exp_year: NotRequired[str]
    cvc: NotRequired[str]


class PaymentPageAddress(TypedDict):
    line1: NotRequired[str]
    line2: NotRequired[str]
    city: NotRequired[str]
    state: NotRequired[str]
    postal_code: NotRequired[str]
    country: NotRequired[str]


class PaymentPageShipping(TypedDict):
    name: NotRequired[str]
    address: NotRequired[PaymentPageAddress]


class PaymentPageConfirmParams(TypedDict):
    """``POST /v1/payment_pages/<id>/confirm``: what the hosted page sends (emulator only)."""

    email: NotRequired[str]
    billing_name: NotRequired[str]
    card: NotRequired[PaymentPageCard]
    shipping: NotRequired[PaymentPageShipping]
    shipping_rate: NotRequired[str]
    payment_method: NotRequired[str]  # one of the customer's saved cards, instead of card
    save_payment_method: NotRequired[bool]  # "Save this card" ticked (payment_method_save)


@bp.post("/payment_pages/<cs_id>/confirm")
@strict.accepts(
    PaymentPageConfirmParams,
    [
        "email",
        "billing_name",
        "card",
        "shipping",
        "shipping_rate",
        "payment_method",
        "save_payment_method",
    ],
    public=True,
)
def confirm_payment_page(cs_id: str):
    """Pay a session with the card typed into the hosted page."""
    from . import payments

    with billing.serialised():
        session = expire_if_due(_session_or_404(cs_id))
        if session["status"] == "complete":
            # A second click on "Pay": nothing more to charge.
            return jsonify({"status": "complete", "redirect_url": redirect_url(session)})
        if session["status"] != "open":
            raise core.StripeError(
                "This Checkout Session is no longer active.", code="checkout_session_expired"
            )
        details = _form_details(session)
        choose_shipping(session, details["shipping_rate"])
        core.save(session)
        if details["saved_payment_method"]:
            pm = core.get_or_404(details["saved_payment_method"], "payment_method")
        else:
            pm = payments.create_payment_method_from_card(
                details["card"], {"email": details["email"], "name": details["name"]}
            )
            if details["save"]:
                # Saved with the customer's consent: shown again next time.
                pm["allow_redisplay"] = "always"
                core.save(pm)
        if session["mode"] == "payment":
            pi = _payment_mode_intent(session, pm, details)
        else:
            pi = _subscription_mode_intent(session, pm, details)
        session["_pending_pi"] = pi["id"]
        session["_pending_details"] = {
            "email": details["email"],
            "name": details["name"],
            "shipping": details["shipping"],
        }
        core.save(session)
        # This request finishes the session itself; the listener is for 3-D Secure later.
        g.checkout_confirming = pi["id"]
        try:
            pi = payments.confirm_payment_intent(
                pi, {"payment_method": pm["id"], "return_url": session["url"]}
            )
        finally:
            g.checkout_confirming = None
        session = core.get(cs_id, "checkout.session")
        if pi["status"] == "succeeded":
            session = complete_session(session, pi)
            return jsonify({"status": "complete", "redirect_url": redirect_url(session)})
        if pi["status"] == "requires_action":
            action = (pi.get("next_action") or {}).get("redirect_to_url") or {}
            return jsonify(
                {
                    "status": "requires_action",
                    "redirect_url": action.get("url"),
                    "payment_intent": pi["id"],
                    "client_secret": pi.get("client_secret"),
                }
            )
    # Anything else (e.g. processing) is not something a card payment here can end in.
    raise core.StripeError(
        f"The payment could not be completed (status {pi['status']}).",
        status=402,
        type="card_error",
        code="payment_intent_unexpected_state",
    )


def _payment_mode_intent(
    session: dict[str, Any], pm: dict[str, Any], details: dict[str, Any]
) -> dict[str, Any]:
    from . import payments

    pi_data = session.get("_pi_data") or {}
    params: dict[str, Any] = {
        "amount": session["amount_total"],
        "currency": session["currency"],
        "payment_method": pm["id"],
        "allowed_payment_method_types": ["card"],
        "metadata": pi_data.get("metadata") or {},
        "receipt_email": pi_data.get("receipt_email") or details["email"],
    }
    if pi_data.get("description"):
        params["description"] = pi_data["description"]
    if session.get("customer"):
        params["customer"] = session["customer"]
        if details.get("save"):
            # "Save this card" ticked: attached to the customer once paid.
            params["setup_future_usage"] = "on_session"
    if details.get("shipping"):
        params["shipping"] = details["shipping"]  # Checkout puts the address on its payment
    return payments.create_payment_intent(params)


def _subscription_mode_intent(
    session: dict[str, Any], pm: dict[str, Any], details: dict[str, Any]
) -> dict[str, Any]:
    """Find or create the customer and prepare the first invoice's charge.

    The card is saved to the customer only once it is charged (``setup_future_usage``), so a
    declined card is not left attached.
    """
    from . import api, payments

    customer_id = session.get("customer") or session.get("_customer")
    if not customer_id:
        customer = api.new_customer({"email": details["email"], "name": details["name"]})
        customer_id = customer["id"]
        # Kept so that a retry after a declined card reuses the same customer.
        session["_customer"] = customer_id
        core.save(session)
    return payments.create_payment_intent(
        {
            "amount": session["amount_total"],
            "currency": session["currency"],
            "customer": customer_id,
            "payment_method": pm["id"],
            "allowed_payment_method_types": ["card"],
            "setup_future_usage": "off_session",
            "description": "Subscription creation",
        }
    )


def complete_session(session: dict[str, Any], pi: dict[str, Any]) -> dict[str, Any]:
    """The session's payment succeeded: start the subscription if any, then complete it."""
    details = session.get("_pending_details") or {}
    customer_id = session.get("customer") or session.get("_customer")
    session.update(
        customer_details={
            "address": None,
            "business_name": None,
            "email": details.get("email"),
            "individual_name": None,
            "name": details.get("name"),
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
        payment_status="paid",
        status="complete",
    )
    if details.get("shipping"):
        session["collected_information"] = {
            "business_name": None,
            "individual_name": None,
            "shipping_details": details["shipping"],
        }
    if session["mode"] == "payment":
        session["payment_intent"] = pi["id"]
        session["customer"] = session.get("customer") or pi.get("customer")
    else:
        pm_id = pi["payment_method"]
        _set_default_payment_method(customer_id, pm_id)
        items = [(i["price"], i["quantity"]) for i in session["_line_items"]]
        sub, invoice = billing.start_subscription(
            customer_id,
            items,
            default_payment_method=pm_id,
            payment_intent=pi,
            metadata=(session.get("_sub_data") or {}).get("metadata"),
        )
        session.update(customer=customer_id, subscription=sub["id"], invoice=invoice["id"])
    session.pop("_pending_pi", None)
    core.save(session)
    core.record_event("checkout.session.completed", session)
    log.info("checkout session %s completed", session["id"])
    return session


def _set_default_payment_method(customer_id: str, pm_id: str) -> None:
    """Make the card the customer's default for invoices (records ``customer.updated``)."""
    from . import api

    customer = core.get(customer_id, "customer")
    if customer is None or customer["invoice_settings"].get("default_payment_method") == pm_id:
        return
    before = copy.deepcopy(customer)
    api._customer_fields({"invoice_settings": {"default_payment_method": pm_id}}, customer)
    api._record_update("customer.updated", customer, before)


def _on_payment_intent_succeeded(event: dict[str, Any]) -> None:
    """Complete the open session waiting for this PaymentIntent (after 3-D Secure)."""
    if event["type"] != "payment_intent.succeeded":
        return
    pi = event["data"]["object"]
    if g.get("checkout_confirming") == pi["id"]:
        return
    with billing.serialised():
        waiting = core.all_of("checkout.session", lambda s: s.get("_pending_pi") == pi["id"])
        for session in waiting:
            if session["status"] == "open":
                complete_session(session, core.get(pi["id"], "payment_intent") or pi)


core.on_event(_on_payment_intent_succeeded)
