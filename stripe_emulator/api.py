"""Stripe's /v1 HTTP API for the payments core: products, prices, customers, payment
methods, PaymentIntents, charges and refunds; plus the ``/_emulator/fail_next`` test helper.

The payment logic lives in ``payments.py`` (shared with billing); this module parses
requests, checks keys and shapes answers.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal, NotRequired

from flask import Blueprint, jsonify, request
from typing_extensions import TypedDict

from . import core, payments, strict

bp = Blueprint("api", __name__, url_prefix="/v1")

# What the emulator implements of the parameters several endpoints share (see ``strict``).
CUSTOMER_FIELDS = [
    "email",
    "name",
    "description",
    "phone",
    "metadata",
    "address",
    "preferred_locales",
    "invoice_settings.default_payment_method",
    "expand",
]
PI_PAYMENT_METHOD = [
    "payment_method",
    "payment_method_data.type",
    "payment_method_data.billing_details",
    "payment_method_data.metadata",
]
PI_FIELDS = [
    *PI_PAYMENT_METHOD,
    "amount",
    "currency",
    "customer",
    "description",
    "metadata",
    "receipt_email",
    "setup_future_usage",
    "shipping",
    "statement_descriptor",
    "transfer_group",
    "expand",
]


class PublishableCard(TypedDict):
    number: NotRequired[str]
    exp_month: NotRequired[int]
    exp_year: NotRequired[int]
    cvc: NotRequired[str]


class PublishablePaymentMethodData(TypedDict):
    type: Literal["card"]
    card: NotRequired[PublishableCard]


class PublishableKeyParams(TypedDict):
    """What Stripe.js adds to a PaymentIntent call made with a publishable key: the
    ``client_secret`` and raw card details (Stripe knows them; the SDK's server-side
    TypedDicts do not list them)."""

    client_secret: NotRequired[str]
    payment_method_data: NotRequired[PublishablePaymentMethodData]


class AuthenticateParams(TypedDict):
    """``POST /v1/payment_intents/<id>/authenticate`` (emulator only: the 3-D Secure page)."""

    client_secret: NotRequired[str]
    result: Literal["complete", "fail"]
    expand: NotRequired[list[str]]


# --------------------------------------------------------------------------- fault injection

FAIL_STATUSES = {
    429: {
        "type": "invalid_request_error",
        "code": "rate_limit",
        "message": "Too many requests hit the API too quickly. We recommend an exponential "
        "backoff of your requests.",
    },
    500: {
        "type": "api_error",
        "message": "An unknown error occurred (injected by POST /_emulator/fail_next).",
    },
    503: {
        "type": "api_error",
        "message": "Stripe is temporarily unavailable (injected by POST /_emulator/fail_next).",
    },
}


@bp.record_once
def _register_fault_route(state) -> None:
    # The helper lives outside /v1 (so it is never failed itself) but belongs to this module.
    state.app.add_url_rule("/_emulator/fail_next", "fail_next", fail_next, methods=["POST"])


def fail_next():
    """``POST /_emulator/fail_next`` status=429|500|503&count=N: fail the next N /v1 requests."""
    core.authenticate()
    p = core.params()
    status = core.to_int(p.get("status", 500), "status")
    if status not in FAIL_STATUSES:
        raise core.invalid("status", "status must be one of 429, 500, 503.")
    count = core.to_int(p.get("count", 1), "count")
    if count < 0:
        raise core.invalid("count")
    with core.transaction() as conn:
        for name, value in (("fail_next_status", status), ("fail_next_count", count)):
            conn.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )
    return {"status": status, "count": count}


@bp.before_app_request
def _injected_failure():
    """Answer a /v1 request with an injected error while ``fail_next`` has some left."""
    if not request.path.startswith("/v1/") or request.method == "OPTIONS":
        return None
    conn = core.db()
    row = conn.execute("SELECT value FROM counters WHERE name='fail_next_count'").fetchone()
    if not row or row[0] <= 0:
        return None
    with core.transaction() as conn:
        row = conn.execute("SELECT value FROM counters WHERE name='fail_next_count'").fetchone()
        if not row or row[0] <= 0:
            return None
        conn.execute("UPDATE counters SET value = value - 1 WHERE name='fail_next_count'")
        status = conn.execute(
            "SELECT value FROM counters WHERE name='fail_next_status'"
        ).fetchone()[0]
    response = jsonify({"error": FAIL_STATUSES[status]})
    response.status_code = status
    return response


# --------------------------------------------------------------------------- helpers


def _str_list(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [str(v) for v in value.values()]
    return [str(v) for v in value]


def _filter_bool(p: dict[str, Any], name: str):
    if name not in p:
        return None
    return core.to_bool(p[name])


def _record_update(event_type: str, obj: dict[str, Any], before: dict[str, Any]) -> None:
    """Save and record ``*.updated`` with the changed top-level fields' old values."""
    previous = {k: before.get(k) for k in obj if obj.get(k) != before.get(k)}
    core.save(obj)
    if previous:
        core.record_event(event_type, obj, previous)


# --------------------------------------------------------------------------- products


def _product_fields(p: dict[str, Any], product: dict[str, Any]) -> None:
    for name in ("description", "statement_descriptor", "unit_label", "url"):
        if name in p:
            product[name] = p[name] or None
    if "name" in p:
        if not p["name"]:
            raise core.invalid("name", "You must provide a name for the product.")
        product["name"] = p["name"]
    if "active" in p:
        product["active"] = core.to_bool(p["active"])
    if "shippable" in p:
        product["shippable"] = core.to_bool(p["shippable"]) if p["shippable"] != "" else None
    if "images" in p:
        product["images"] = _str_list(p["images"])
    if "metadata" in p:
        product["metadata"] = core.metadata_from(p, product["metadata"])
    if "tax_code" in p:
        product["tax_code"] = p["tax_code"] or None


@bp.post("/products")
@strict.accepts(
    "ProductCreateParams",
    [
        "id",
        "name",
        "description",
        "statement_descriptor",
        "unit_label",
        "url",
        "active",
        "shippable",
        "images",
        "metadata",
        "tax_code",
        "default_price_data.currency",
        "default_price_data.unit_amount",
        "default_price_data.recurring.interval",
        "default_price_data.recurring.interval_count",
        "default_price_data.tax_behavior",
        "default_price_data.metadata",
        "expand",
    ],
)
def create_product():
    core.authenticate()
    p = core.params()
    if not p.get("name"):
        raise core.missing("name")
    with core.transaction():
        pid = p.get("id") or core.new_id("prod", 14)
        if core.get(pid) is not None:
            raise core.StripeError(
                f"Product already exists: {pid}", code="resource_already_exists", param="id"
            )
        product = {
            "id": pid,
            "object": "product",
            "active": True,
            "created": core.now(),
            "default_price": None,
            "description": None,
            "images": [],
            "livemode": False,
            "marketing_features": [],
            "metadata": {},
            "name": p["name"],
            "package_dimensions": None,
            "shippable": None,
            "statement_descriptor": None,
            "tax_code": None,
            "type": "service",
            "unit_label": None,
            "updated": core.now(),
            "url": None,
        }
        _product_fields(p, product)
        core.save(product)
        core.record_event("product.created", product)
        data = p.get("default_price_data")
        if isinstance(data, dict):
            price = _create_price(dict(data, product=pid))
            product["default_price"] = price["id"]
            core.save(product)
    return core.respond(product)


@bp.get("/products/<pid>")
@strict.accepts("ProductRetrieveParams", strict.RETRIEVE)
def retrieve_product(pid: str):
    core.authenticate()
    return core.respond(core.get_or_404(pid, "product"))


@bp.post("/products/<pid>")
@strict.accepts(
    "ProductUpdateParams",
    [
        "name",
        "description",
        "statement_descriptor",
        "unit_label",
        "url",
        "active",
        "shippable",
        "images",
        "metadata",
        "tax_code",
        "default_price",
        "expand",
    ],
)
def update_product(pid: str):
    core.authenticate()
    p = core.params()
    with core.transaction():
        product = core.get_or_404(pid, "product")
        before = dict(product)
        _product_fields(p, product)
        if "default_price" in p:
            if p["default_price"]:
                price = core.get_or_404(p["default_price"], "price", "default_price")
                if price["product"] != pid:
                    raise core.invalid("default_price", "The price belongs to another product.")
            product["default_price"] = p["default_price"] or None
        if product != before:
            product["updated"] = core.now()
        _record_update("product.updated", product, before)
    return core.respond(product)


@bp.get("/products")
@strict.accepts("ProductListParams", [*strict.LIST, "active", "ids"])
def list_products():
    core.authenticate()
    p = core.params()
    active = _filter_bool(p, "active")
    ids = set(_str_list(p.get("ids")))
    objs = core.all_of(
        "product",
        lambda o: (active is None or o["active"] == active) and (not ids or o["id"] in ids),
    )
    return core.list_response(objs, "/v1/products")


# --------------------------------------------------------------------------- prices


def _recurring(data: Any) -> dict[str, Any] | None:
    if data in (None, ""):
        return None
    if not isinstance(data, dict) or not data.get("interval"):
        raise core.missing("recurring[interval]")
    interval = data["interval"]
    if interval not in ("day", "week", "month", "year"):
        raise core.invalid("recurring[interval]", f"Invalid recurring[interval]: {interval}")
    count = core.to_int(data.get("interval_count", 1), "recurring[interval_count]")
    if count < 1:
        raise core.invalid("recurring[interval_count]")
    usage = data.get("usage_type") or "licensed"
    if usage not in ("licensed", "metered"):
        raise core.invalid("recurring[usage_type]")
    trial = data.get("trial_period_days")
    return {
        "interval": interval,
        "interval_count": count,
        "meter": None,
        "trial_period_days": core.to_int(trial, "recurring[trial_period_days]") if trial else None,
        "usage_type": usage,
    }


def _set_lookup_key(price: dict[str, Any], key: str | None, transfer: bool) -> None:
    """Lookup keys are unique; ``transfer_lookup_key`` moves one from another price."""
    if key:
        for other in core.all_of("price", lambda o: o.get("lookup_key") == key):
            if other["id"] == price["id"]:
                continue
            if not transfer:
                raise core.StripeError(
                    f"A price ({other['id']}) already uses that lookup key.",
                    param="lookup_key",
                )
            before = dict(other)
            other["lookup_key"] = None
            _record_update("price.updated", other, before)
    price["lookup_key"] = key or None


def _create_price(p: dict[str, Any]) -> dict[str, Any]:
    """Create a price from parsed params (``product`` or ``product_data``)."""
    if not p.get("currency"):
        raise core.missing("currency")
    currency = str(p["currency"]).lower()
    if p.get("unit_amount") in (None, "") and p.get("unit_amount_decimal") in (None, ""):
        raise core.missing("unit_amount")
    if p.get("unit_amount") not in (None, ""):
        unit_amount = core.to_int(p["unit_amount"], "unit_amount")
    else:
        unit_amount = core.to_int(str(p["unit_amount_decimal"]).split(".")[0], "unit_amount")
    if unit_amount < 0:
        raise core.invalid("unit_amount", "This value must be greater than or equal to 0.")
    if p.get("product"):
        product = core.get_or_404(p["product"], "product", "product")
    elif isinstance(p.get("product_data"), dict):
        data = p["product_data"]
        if not data.get("name"):
            raise core.missing("product_data[name]")
        product = core.base_object(
            "prod",
            "product",
            active=core.to_bool(data.get("active", True)),
            default_price=None,
            description=None,
            images=[],
            marketing_features=[],
            metadata=core.metadata_from(data),
            name=data["name"],
            package_dimensions=None,
            shippable=None,
            statement_descriptor=data.get("statement_descriptor") or None,
            tax_code=data.get("tax_code") or None,
            type="service",
            unit_label=data.get("unit_label") or None,
            url=None,
        )
        product["updated"] = product["created"]
        core.save(product)
        core.record_event("product.created", product)
    else:
        raise core.missing("product")
    recurring = _recurring(p.get("recurring"))
    tax_behavior = p.get("tax_behavior") or "unspecified"
    if tax_behavior not in ("exclusive", "inclusive", "unspecified"):
        raise core.invalid("tax_behavior")
    price = core.base_object(
        "price",
        "price",
        active=core.to_bool(p.get("active", True)),
        billing_scheme="per_unit",
        currency=currency,
        custom_unit_amount=None,
        lookup_key=None,
        metadata=core.metadata_from(p),
        nickname=p.get("nickname") or None,
        product=product["id"],
        recurring=recurring,
        tax_behavior=tax_behavior,
        tiers_mode=None,
        transform_quantity=None,
        type="recurring" if recurring else "one_time",
        unit_amount=unit_amount,
        unit_amount_decimal=str(unit_amount),
    )
    _set_lookup_key(price, p.get("lookup_key"), core.to_bool(p.get("transfer_lookup_key")))
    core.save(price)
    core.record_event("price.created", price)
    return price


@bp.post("/prices")
@strict.accepts(
    "PriceCreateParams",
    [
        "currency",
        "unit_amount",
        "product",
        "product_data.name",
        "product_data.active",
        "product_data.metadata",
        "product_data.statement_descriptor",
        "product_data.tax_code",
        "product_data.unit_label",
        "recurring.interval",
        "recurring.interval_count",
        "recurring.usage_type",
        "recurring.trial_period_days",
        "tax_behavior",
        "active",
        "metadata",
        "nickname",
        "lookup_key",
        "transfer_lookup_key",
        "expand",
    ],
)
def create_price():
    core.authenticate()
    with core.transaction():
        price = _create_price(core.params())
    return core.respond(price)


@bp.get("/prices/<pid>")
@strict.accepts("PriceRetrieveParams", strict.RETRIEVE)
def retrieve_price(pid: str):
    core.authenticate()
    return core.respond(core.get_or_404(pid, "price"))


@bp.post("/prices/<pid>")
@strict.accepts(
    "PriceUpdateParams",
    [
        "active",
        "nickname",
        "metadata",
        "tax_behavior",
        "lookup_key",
        "transfer_lookup_key",
        "expand",
    ],
)
def update_price(pid: str):
    core.authenticate()
    p = core.params()
    with core.transaction():
        price = core.get_or_404(pid, "price")
        before = dict(price)
        if "active" in p:
            price["active"] = core.to_bool(p["active"])
        if "nickname" in p:
            price["nickname"] = p["nickname"] or None
        if "metadata" in p:
            price["metadata"] = core.metadata_from(p, price["metadata"])
        if "tax_behavior" in p:
            price["tax_behavior"] = p["tax_behavior"]
        if "lookup_key" in p:
            _set_lookup_key(price, p["lookup_key"], core.to_bool(p.get("transfer_lookup_key")))
        _record_update("price.updated", price, before)
    return core.respond(price)


@bp.get("/prices")
@strict.accepts(
    "PriceListParams",
    [*strict.LIST, "active", "lookup_keys", "product", "type", "currency", "recurring.interval"],
)
def list_prices():
    core.authenticate()
    p = core.params()
    active = _filter_bool(p, "active")
    keys = set(_str_list(p.get("lookup_keys")))
    product = p.get("product")
    ptype = p.get("type")
    currency = (p.get("currency") or "").lower()
    recurring = p.get("recurring") if isinstance(p.get("recurring"), dict) else {}

    def match(o: dict[str, Any]) -> bool:
        return (
            (active is None or o["active"] == active)
            and (not keys or o.get("lookup_key") in keys)
            and (not product or o["product"] == product)
            and (not ptype or o["type"] == ptype)
            and (not currency or o["currency"] == currency)
            and (
                not recurring.get("interval")
                or (o["recurring"] or {}).get("interval") == recurring["interval"]
            )
        )

    return core.list_response(core.all_of("price", match), "/v1/prices")


# --------------------------------------------------------------------------- customers


def _customer_fields(p: dict[str, Any], customer: dict[str, Any]) -> None:
    for name in ("email", "name", "description", "phone"):
        if name in p:
            customer[name] = p[name] or None
    if "metadata" in p:
        customer["metadata"] = core.metadata_from(p, customer["metadata"])
    if "address" in p:
        customer["address"] = payments._address(p["address"]) if p["address"] else None
    if "preferred_locales" in p:
        customer["preferred_locales"] = _str_list(p["preferred_locales"])
    settings = p.get("invoice_settings")
    if isinstance(settings, dict) and "default_payment_method" in settings:
        pm_id = settings["default_payment_method"]
        if pm_id:
            pm = core.get_or_404(
                pm_id, "payment_method", "invoice_settings[default_payment_method]"
            )
            if pm.get("customer") != customer["id"]:
                raise core.StripeError(
                    f"No such PaymentMethod: '{pm_id}'; It's possible this PaymentMethod "
                    "exists on one of your connected accounts, in which case you should retry "
                    "this request on that connected account.",
                    code="resource_missing",
                    param="invoice_settings[default_payment_method]",
                )
        customer["invoice_settings"] = dict(
            customer["invoice_settings"], default_payment_method=pm_id or None
        )


@bp.post("/customers")
@strict.accepts("CustomerCreateParams", [*CUSTOMER_FIELDS, "payment_method"])
def create_customer():
    core.authenticate()
    return core.respond(new_customer(core.params()))


def new_customer(p: dict[str, Any]) -> dict[str, Any]:
    """Create a customer from parsed params (records ``customer.created``); also used by
    Checkout in subscription mode."""
    with core.transaction():
        customer = core.base_object(
            "cus",
            "customer",
            address=None,
            balance=0,
            currency=None,
            customer_account=None,
            default_source=None,
            delinquent=False,
            description=None,
            discount=None,
            email=None,
            invoice_prefix=secrets.token_hex(4).upper(),
            invoice_settings={
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            metadata={},
            name=None,
            next_invoice_sequence=1,
            phone=None,
            preferred_locales=[],
            shipping=None,
            tax_exempt="none",
            test_clock=None,
        )
        pm = None
        if p.get("payment_method"):
            pm = payments.resolve_payment_method(p["payment_method"])
        core.save(customer)  # exists before its payment method is attached
        if pm is not None:
            payments.attach_payment_method(pm, customer["id"])
        _customer_fields(p, customer)
        core.save(customer)
        core.record_event("customer.created", customer)
    return customer


@bp.get("/customers/<cid>")
@strict.accepts("CustomerRetrieveParams", strict.RETRIEVE)
def retrieve_customer(cid: str):
    core.authenticate()
    return core.respond(core.get_or_404(cid, "customer"))


@bp.post("/customers/<cid>")
@strict.accepts("CustomerUpdateParams", CUSTOMER_FIELDS)
def update_customer(cid: str):
    core.authenticate()
    p = core.params()
    with core.transaction():
        customer = core.get_or_404(cid, "customer")
        before = dict(customer)
        _customer_fields(p, customer)
        _record_update("customer.updated", customer, before)
    return core.respond(customer)


@bp.delete("/customers/<cid>")
@strict.accepts("CustomerDeleteParams")
def delete_customer(cid: str):
    core.authenticate()
    with core.transaction():
        customer = core.get_or_404(cid, "customer")
        core.delete(cid)
        core.record_event("customer.deleted", customer)
    return jsonify({"id": cid, "object": "customer", "deleted": True})


@bp.get("/customers")
@strict.accepts("CustomerListParams", [*strict.LIST, "email"])
def list_customers():
    core.authenticate()
    return core.list_matching("customer", "/v1/customers", "email")


@bp.get("/customers/<cid>/payment_methods")
@strict.accepts("CustomerPaymentMethodListParams", [*strict.LIST, "type"])
def list_customer_payment_methods(cid: str):
    core.authenticate()
    core.get_or_404(cid, "customer")
    return core.list_matching(
        "payment_method", f"/v1/customers/{cid}/payment_methods", "type", customer=cid
    )


# --------------------------------------------------------------------------- payment methods


@bp.post("/payment_methods")
@strict.accepts(
    "PaymentMethodCreateParams",
    [
        "type",
        "allow_redisplay",
        "card.number",
        "card.exp_month",
        "card.exp_year",
        "card.cvc",
        "billing_details",
        "metadata",
        "expand",
    ],
)
def create_payment_method():
    core.authenticate(allow_publishable=True)
    return core.respond(payments.create_payment_method(core.params()))


@bp.get("/payment_methods/<pm_id>")
@strict.accepts("PaymentMethodRetrieveParams", strict.RETRIEVE)
def retrieve_payment_method(pm_id: str):
    core.authenticate()
    return core.respond(payments.resolve_payment_method(pm_id, "payment_method"))


@bp.post("/payment_methods/<pm_id>")
@strict.accepts(
    "PaymentMethodUpdateParams",
    ["metadata", "billing_details", "card.exp_month", "card.exp_year", "expand"],
)
def update_payment_method(pm_id: str):
    core.authenticate()
    p = core.params()
    with core.transaction():
        pm = core.get_or_404(pm_id, "payment_method")
        before = dict(pm)
        if "metadata" in p:
            pm["metadata"] = core.metadata_from(p, pm["metadata"])
        if isinstance(p.get("billing_details"), dict):
            current = pm["billing_details"]
            merged = dict(current, **{k: v for k, v in p["billing_details"].items()})
            merged["address"] = dict(current["address"] or {}, **(merged.get("address") or {}))
            pm["billing_details"] = payments._billing_details(merged)
        if isinstance(p.get("card"), dict):
            card = dict(pm["card"])
            for name in ("exp_month", "exp_year"):
                if name in p["card"]:
                    card[name] = core.to_int(p["card"][name], f"card[{name}]")
            pm["card"] = card
        _record_update("payment_method.updated", pm, before)
    return core.respond(pm)


@bp.post("/payment_methods/<pm_id>/attach")
@strict.accepts("PaymentMethodAttachParams", ["customer", "expand"])
def attach_payment_method(pm_id: str):
    core.authenticate()
    p = core.params()
    if not p.get("customer"):
        raise core.missing("customer")
    with core.transaction():
        pm = payments.resolve_payment_method(pm_id, "payment_method")
        pm = payments.attach_payment_method(pm, p["customer"])
    return core.respond(pm)


@bp.post("/payment_methods/<pm_id>/detach")
@strict.accepts("PaymentMethodDetachParams", strict.RETRIEVE)
def detach_payment_method(pm_id: str):
    core.authenticate()
    with core.transaction():
        pm = payments.detach_payment_method(core.get_or_404(pm_id, "payment_method"))
    return core.respond(pm)


@bp.get("/payment_methods")
@strict.accepts("PaymentMethodListParams", [*strict.LIST, "customer", "type"])
def list_payment_methods():
    core.authenticate()
    return core.list_matching("payment_method", "/v1/payment_methods", "customer", "type")


# --------------------------------------------------------------------------- payment intents


@bp.post("/payment_intents")
@strict.accepts(
    "PaymentIntentCreateParams",
    [
        *PI_FIELDS,
        "capture_method",
        "automatic_payment_methods",
        "allowed_payment_method_types",
        "statement_descriptor_suffix",
        "confirm",
        "return_url",
        "off_session",
    ],
)
def create_payment_intent():
    core.authenticate()
    return core.respond(payments.create_payment_intent(core.params(), allow_processing=True))


@bp.get("/payment_intents/<pi_id>")
@strict.accepts("PaymentIntentRetrieveParams", ["client_secret", "expand"])
def retrieve_payment_intent(pi_id: str):
    return core.respond(core.intent_for_key(pi_id, "payment_intent"))


@bp.post("/payment_intents/<pi_id>")
@strict.accepts("PaymentIntentUpdateParams", PI_FIELDS)
def update_payment_intent(pi_id: str):
    core.authenticate()
    p = core.params()
    with core.transaction():
        pi = payments.update_payment_intent(core.get_or_404(pi_id, "payment_intent"), p)
    return core.respond(pi)


@bp.post("/payment_intents/<pi_id>/confirm")
@strict.accepts(
    "PaymentIntentConfirmParams",
    [
        *PI_PAYMENT_METHOD,
        "payment_method_data.card",
        "client_secret",
        "receipt_email",
        "setup_future_usage",
        "shipping",
        "capture_method",
        "off_session",
        "return_url",
        "expand",
    ],
    extra=PublishableKeyParams,
)
def confirm_payment_intent(pi_id: str):
    pi = core.intent_for_key(pi_id, "payment_intent")
    p = {k: v for k, v in core.params().items() if k not in ("client_secret", "expand")}
    return core.respond(payments.confirm_payment_intent(pi, p, allow_processing=True))


@bp.post("/payment_intents/<pi_id>/authenticate")
@strict.accepts(AuthenticateParams, ["client_secret", "result", "expand"])
def authenticate_payment_intent(pi_id: str):
    """Emulator-only: the 3-D Secure challenge page reports ``result=complete|fail``."""
    from . import checkout

    pi = core.intent_for_key(pi_id, "payment_intent")
    result = core.params().get("result")
    if not result:
        raise core.missing("result")
    # A hosted Checkout payment completes its session at once, processing setting or not.
    allow_processing = not checkout.awaits_payment(pi["id"])
    return core.respond(
        payments.authenticate_payment_intent(pi, result, allow_processing=allow_processing)
    )


@bp.post("/payment_intents/<pi_id>/cancel")
@strict.accepts("PaymentIntentCancelParams", ["cancellation_reason", "expand"])
def cancel_payment_intent(pi_id: str):
    core.authenticate()
    pi = core.get_or_404(pi_id, "payment_intent")
    return core.respond(
        payments.cancel_payment_intent(pi, core.params().get("cancellation_reason") or None)
    )


@bp.post("/payment_intents/<pi_id>/capture")
@strict.accepts("PaymentIntentCaptureParams", ["amount_to_capture", "expand"])
def capture_payment_intent(pi_id: str):
    core.authenticate()
    pi = core.get_or_404(pi_id, "payment_intent")
    return core.respond(payments.capture_payment_intent(pi, core.params().get("amount_to_capture")))


@bp.get("/payment_intents")
@strict.accepts("PaymentIntentListParams", [*strict.LIST, "customer"])
def list_payment_intents():
    core.authenticate()
    return core.list_matching("payment_intent", "/v1/payment_intents", "customer")


# --------------------------------------------------------------------------- charges


@bp.get("/charges/<ch_id>")
@strict.accepts("ChargeRetrieveParams", strict.RETRIEVE)
def retrieve_charge(ch_id: str):
    core.authenticate()
    return core.respond(core.get_or_404(ch_id, "charge", "charge"))


@bp.get("/charges")
@strict.accepts("ChargeListParams", [*strict.LIST, "payment_intent", "customer"])
def list_charges():
    core.authenticate()
    return core.list_matching("charge", "/v1/charges", "payment_intent", "customer")


# --------------------------------------------------------------------------- refunds


@bp.post("/refunds")
@strict.accepts(
    "RefundCreateParams", ["charge", "payment_intent", "amount", "reason", "metadata", "expand"]
)
def create_refund():
    core.authenticate()
    return core.respond(payments.create_refund(core.params()))


@bp.get("/refunds/<re_id>")
@strict.accepts("RefundRetrieveParams", strict.RETRIEVE)
def retrieve_refund(re_id: str):
    core.authenticate()
    return core.respond(core.get_or_404(re_id, "refund", "refund"))


@bp.post("/refunds/<re_id>")
@strict.accepts("RefundUpdateParams", ["metadata", "expand"])
def update_refund(re_id: str):
    core.authenticate()
    p = core.params()
    with core.transaction():
        refund = core.get_or_404(re_id, "refund", "refund")
        before = dict(refund)
        if "metadata" in p:
            refund["metadata"] = core.metadata_from(p, refund["metadata"])
        _record_update("refund.updated", refund, before)
    return core.respond(refund)


@bp.get("/refunds")
@strict.accepts("RefundListParams", [*strict.LIST, "payment_intent", "charge"])
def list_refunds():
    core.authenticate()
    return core.list_matching("refund", "/v1/refunds", "payment_intent", "charge")
