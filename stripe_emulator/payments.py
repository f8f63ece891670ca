"""Payment logic: payment methods, PaymentIntents, charges, refunds.

The HTTP routes in ``api.py`` and the billing module (Checkout Sessions, invoices) both
call these functions, so a card is charged the same way wherever the payment starts.

Public, stable functions (parameters are parsed Stripe form params, see ``core.params()``):

- ``create_payment_method_from_card(card, billing_details=None) -> dict``
- ``resolve_payment_method(pm_id) -> dict``
- ``attach_payment_method(pm, customer_id) -> dict``
- ``create_payment_intent(p) -> dict`` (with ``p["confirm"]`` it also confirms, and may raise)
- ``confirm_payment_intent(pi, p, raise_on_decline=True) -> dict``
- ``authenticate_payment_intent(pi, result) -> dict``
  (these three take ``allow_processing=True`` from the public API routes, see below)
- ``cancel_payment_intent(pi, reason=None) -> dict``, ``capture_payment_intent(pi, amount=None)``
- ``create_refund(p) -> dict``

A declined payment is saved (PI back to ``requires_payment_method`` with
``last_payment_error``, a failed charge, events) *before* the 402 ``StripeError`` is raised.

Card payments succeed at once, as with Stripe's test cards.  With the
``EMULATOR_PROCESSING_SECONDS`` setting (env ``STRIPE_EMULATOR_PROCESSING_SECONDS``, default
0 = off), a successful card payment confirmed through the PaymentIntents API instead goes to
``processing`` (charge ``pending``; ``charge.pending`` and ``payment_intent.processing``
events) and succeeds that many seconds later in the background (``charge.succeeded``,
``payment_intent.succeeded``).  Manual capture, Checkout's page and invoices stay immediate.
"""

from __future__ import annotations

import logging
import secrets
from datetime import date
from typing import Any

from flask import current_app, has_request_context, request

from . import cards, core, disputes

log = logging.getLogger(__name__)

PI_UPDATABLE_STATUSES = ("requires_payment_method", "requires_confirmation", "requires_action")
PI_CONFIRMABLE_STATUSES = ("requires_payment_method", "requires_confirmation", "requires_action")
PI_CANCELABLE_STATUSES = (
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "requires_capture",
    "processing",
)


def base_url() -> str:
    """The emulator's own address as the client sees it (for 3-D Secure redirect URLs)."""
    if has_request_context():
        return request.host_url.rstrip("/")
    return current_app.config.get("EMULATOR_BASE_URL", "http://127.0.0.1:12111")


def _card_error(
    message: str, code: str, *, param: str | None = None, decline_code: str | None = None
) -> core.StripeError:
    return core.StripeError(
        message,
        status=402,
        type="card_error",
        code=code,
        param=param,
        decline_code=decline_code,
        extra={"doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"},
    )


def _address(data: Any) -> dict[str, Any]:
    data = data if isinstance(data, dict) else {}
    return {
        k: (data.get(k) or None)
        for k in ("city", "country", "line1", "line2", "postal_code", "state")
    }


def shipping_details(value: Any, param: str = "shipping") -> dict[str, Any] | None:
    """A PaymentIntent's (or Charge's) ``shipping`` from params: name and address[line1] are
    required, as at Stripe; an empty string clears it (updates)."""
    if value in (None, ""):
        return None
    if not isinstance(value, dict):
        raise core.invalid(param)
    address = value.get("address")
    if not isinstance(address, dict):
        raise core.missing(f"{param}[address]")
    if not (address.get("line1") or "").strip():
        raise core.missing(f"{param}[address][line1]")
    if not (value.get("name") or "").strip():
        raise core.missing(f"{param}[name]")
    country = address.get("country")
    if country and not (isinstance(country, str) and len(country) == 2 and country.isalpha()):
        raise core.invalid(f"{param}[address][country]", f"Invalid country: {country}")
    shipping = {
        "address": _address(address),
        "carrier": value.get("carrier") or None,
        "name": value["name"].strip(),
        "phone": value.get("phone") or None,
        "tracking_number": value.get("tracking_number") or None,
    }
    if shipping["address"]["country"]:
        shipping["address"]["country"] = shipping["address"]["country"].upper()
    return shipping


def _billing_details(data: Any) -> dict[str, Any]:
    data = data if isinstance(data, dict) else {}
    return {
        "address": _address(data.get("address")),
        "email": data.get("email") or None,
        "name": data.get("name") or None,
        "phone": data.get("phone") or None,
        "tax_id": data.get("tax_id") or None,
    }


# --------------------------------------------------------------------------- payment methods


def _expiry(card: dict[str, Any]) -> tuple[int, int]:
    """Validated (exp_month, exp_year); 2-digit years mean 20xx, as in card forms."""
    if card.get("exp_month") in (None, ""):
        raise core.missing("card[exp_month]")
    if card.get("exp_year") in (None, ""):
        raise core.missing("card[exp_year]")
    try:
        month = int(str(card["exp_month"]).strip())
    except ValueError:
        month = 0
    try:
        year = int(str(card["exp_year"]).strip())
    except ValueError:
        year = -1
    if 0 <= year < 100:
        year += 2000
    if not 1 <= month <= 12:
        raise _card_error(
            "Your card's expiration month is invalid.", "invalid_expiry_month", param="exp_month"
        )
    today = date.today()
    if year < today.year or year > today.year + 50:
        raise _card_error(
            "Your card's expiration year is invalid.", "invalid_expiry_year", param="exp_year"
        )
    if (year, month) < (today.year, today.month):
        raise _card_error("Your card has expired.", "expired_card", param="exp_month")
    return month, year


def create_payment_method_from_card(
    card: dict[str, Any], billing_details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Validate card details like Stripe and store a ``card`` PaymentMethod (no number kept).

    Raises a 402 card error (``incorrect_number``, ``invalid_expiry_year``...) for bad details.
    """
    if not isinstance(card, dict):
        raise core.missing("card[number]")
    number = "".join(str(card.get("number") or "").split()).replace("-", "")
    if not number:
        raise core.missing("card[number]")
    if not cards.luhn_valid(number):
        raise _card_error("Your card number is incorrect.", "incorrect_number", param="number")
    month, year = _expiry(card)
    cvc = str(card.get("cvc") or "").strip()
    if cvc and not (cvc.isdigit() and 3 <= len(cvc) <= 4):
        raise _card_error("Your card's security code is invalid.", "invalid_cvc", param="cvc")
    profile = cards.profile(number)
    brand = profile.brand or cards.brand_of(number)
    pm = core.base_object(
        "pm",
        "payment_method",
        allow_redisplay="unspecified",
        billing_details=_billing_details(billing_details),
        card={
            "brand": brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "unchecked" if cvc else None,
            },
            "country": profile.country,
            "display_brand": brand.replace("amex", "american_express"),
            "exp_month": month,
            "exp_year": year,
            "fingerprint": cards.fingerprint(number),
            "funding": profile.funding,
            "generated_from": None,
            "last4": number[-4:],
            "networks": {"available": [brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        customer=None,
        customer_account=None,
        metadata={},
        type="card",
    )
    core.save(pm)
    log.info("payment method %s created (%s ending %s)", pm["id"], brand, number[-4:])
    return pm


def create_payment_method(p: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/payment_methods`` with parsed params (``type=card``, ``card[...]``)."""
    pm_type = p.get("type")
    if not pm_type:
        raise core.missing("type")
    if pm_type != "card":
        raise core.invalid("type", f"The payment method type '{pm_type}' is not supported here.")
    redisplay = p.get("allow_redisplay") or "unspecified"
    if redisplay not in ("always", "limited", "unspecified"):
        raise core.invalid("allow_redisplay")
    pm = create_payment_method_from_card(p.get("card") or {}, p.get("billing_details"))
    if p.get("metadata") or redisplay != "unspecified":
        pm["metadata"] = core.metadata_from(p)
        pm["allow_redisplay"] = redisplay
        core.save(pm)
    return pm


def resolve_payment_method(pm_id: str, param: str = "payment_method") -> dict[str, Any]:
    """A stored PaymentMethod, or a fresh one for Stripe's test ids such as ``pm_card_visa``.

    Like Stripe, each use of a test id materialises a new PaymentMethod (so two customers
    can both use ``pm_card_visa``).
    """
    if not isinstance(pm_id, str) or not pm_id:
        raise core.missing(param)
    number = cards.TEST_PAYMENT_METHODS.get(pm_id)
    if number is not None:
        year = date.today().year + 5
        return create_payment_method_from_card(
            {"number": number, "exp_month": 12, "exp_year": year, "cvc": "123"}
        )
    return core.get_or_404(pm_id, "payment_method", param)


def attach_payment_method(pm: dict[str, Any], customer_id: str) -> dict[str, Any]:
    """Attach to a customer (records ``payment_method.attached``)."""
    core.get_or_404(customer_id, "customer", "customer")
    if pm.get("customer") == customer_id:
        return pm
    if pm.get("customer"):
        raise core.StripeError(
            "The payment method you provided has already been attached to a customer.",
            code="payment_method_unexpected_state",
        )
    pm["customer"] = customer_id
    core.save(pm)
    core.record_event("payment_method.attached", pm)
    return pm


def detach_payment_method(pm: dict[str, Any]) -> dict[str, Any]:
    """Detach from its customer (records ``payment_method.detached``).

    As on Stripe, a detached card is no one's default any more: the customer's
    ``invoice_settings.default_payment_method`` (``customer.updated``) and the
    ``default_payment_method`` of the customer's subscriptions that named it
    (``customer.subscription.updated``) become null, so their renewals fall back to the
    customer's default, or fail without one. Call inside ``core.transaction()``.
    """
    from . import billing

    if not pm.get("customer"):
        raise core.StripeError(
            "The payment method you provided is not attached to a customer so detachment "
            "is impossible.",
            code="payment_method_unexpected_state",
        )
    previous = pm["customer"]
    pm["customer"] = None
    core.save(pm)
    core.record_event("payment_method.detached", pm, {"customer": previous})
    customer = core.get(previous, "customer")
    if customer and customer["invoice_settings"].get("default_payment_method") == pm["id"]:
        customer["invoice_settings"] = dict(customer["invoice_settings"])
        customer["invoice_settings"]["default_payment_method"] = None
        core.save(customer)
        core.record_event(
            "customer.updated",
            customer,
            {"invoice_settings": {"default_payment_method": pm["id"]}},
        )
    for sub in core.all_of(
        "subscription",
        lambda s: s.get("customer") == previous and s.get("default_payment_method") == pm["id"],
    ):
        billing._update_subscription(sub, default_payment_method=None)
    return pm


def _payment_method_from_params(p: dict[str, Any]) -> dict[str, Any] | None:
    """``payment_method`` id or inline ``payment_method_data`` (as Stripe.js sends it)."""
    if p.get("payment_method"):
        return resolve_payment_method(p["payment_method"])
    data = p.get("payment_method_data")
    if isinstance(data, dict):
        if data.get("type", "card") != "card":
            raise core.invalid("payment_method_data[type]")
        pm = create_payment_method_from_card(data.get("card") or {}, data.get("billing_details"))
        if isinstance(data.get("metadata"), dict):
            pm["metadata"] = core.metadata_from(data)
            core.save(pm)
        return pm
    return None


# --------------------------------------------------------------------------- payment intents


def _client_secret(pi_id: str) -> str:
    return f"{pi_id}_secret_{secrets.token_urlsafe(18).replace('-', 'a').replace('_', 'b')}"


def _amount(value: Any, param: str = "amount") -> int:
    amount = core.to_int(value, param)
    if amount < 1:
        raise core.StripeError(
            "This value must be greater than or equal to 1.",
            code="parameter_invalid_integer",
            param=param,
        )
    if amount > 99999999:
        raise core.StripeError(
            "Amount must be no more than $999,999.99", code="amount_too_large", param=param
        )
    return amount


def _currency(value: Any) -> str:
    cur = str(value or "").lower()
    if len(cur) != 3 or not cur.isalpha():
        raise core.invalid("currency", f"Invalid currency: {value}.")
    return cur


def _setup_future_usage(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if value not in ("off_session", "on_session"):
        raise core.invalid("setup_future_usage")
    return value


SUPPORTED_PAYMENT_METHOD_TYPES = ("card", "link")


def create_payment_intent(p: dict[str, Any], *, allow_processing: bool = False) -> dict[str, Any]:
    """``POST /v1/payment_intents``; confirms too when ``confirm=true`` (may raise 402)."""
    if p.get("amount") in (None, ""):
        raise core.missing("amount")
    amount = _amount(p["amount"])
    if not p.get("currency"):
        raise core.missing("currency")
    currency = _currency(p["currency"])
    customer = p.get("customer") or None
    if customer:
        core.get_or_404(customer, "customer", "customer")
    capture_method = p.get("capture_method") or "automatic_async"
    if capture_method not in ("automatic", "automatic_async", "manual"):
        raise core.invalid("capture_method")
    apm = p.get("automatic_payment_methods")
    automatic = None
    if isinstance(apm, dict) and core.to_bool(apm.get("enabled")):
        automatic = {"allow_redirects": apm.get("allow_redirects") or "always", "enabled": True}
    allowed = p.get("allowed_payment_method_types") or None
    if isinstance(allowed, str):
        allowed = [allowed]
    if automatic and allowed:
        raise core.StripeError(
            "You may only specify one of these parameters: allowed_payment_method_types, "
            "automatic_payment_methods.",
            param="allowed_payment_method_types",
        )
    # Like Stripe, the allowed types are filtered down to those that can be used here.
    types = [t for t in allowed if t in SUPPORTED_PAYMENT_METHOD_TYPES] if allowed else ["card"]
    if not types:
        raise core.invalid(
            "allowed_payment_method_types",
            "None of the allowed payment method types can be used: the Stripe emulator "
            f"supports {', '.join(SUPPORTED_PAYMENT_METHOD_TYPES)}.",
        )
    pi_id = core.new_id("pi")
    pi = {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "allowed_payment_method_types": list(allowed) if allowed else None,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": automatic,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": capture_method,
        "client_secret": _client_secret(pi_id),
        "confirmation_method": "automatic",
        "created": core.now(),
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "description": p.get("description") or None,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": core.metadata_from(p),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": types,
        "processing": None,
        "receipt_email": p.get("receipt_email") or None,
        "review": None,
        "setup_future_usage": _setup_future_usage(p.get("setup_future_usage")),
        "shipping": shipping_details(p.get("shipping")),
        "source": None,
        "statement_descriptor": p.get("statement_descriptor") or None,
        "statement_descriptor_suffix": p.get("statement_descriptor_suffix") or None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": p.get("transfer_group") or None,
    }
    confirm = core.to_bool(p.get("confirm", False))
    with core.transaction():
        pm = None if confirm else _payment_method_from_params(p)
        if pm is not None:
            _check_pm_customer(pm, customer)
            pi["payment_method"] = pm["id"]
            pi["status"] = "requires_confirmation"
        core.save(pi)
        core.record_event("payment_intent.created", pi)
    if confirm:
        return confirm_payment_intent(pi, p, allow_processing=allow_processing)
    return pi


def update_payment_intent(pi: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/payment_intents/{id}``: only before the payment is made."""
    if pi["status"] not in PI_UPDATABLE_STATUSES:
        raise _unexpected_state(pi, "update")
    previous: dict[str, Any] = {}

    def set_field(name: str, value: Any) -> None:
        if pi.get(name) != value:
            previous[name] = pi.get(name)
            pi[name] = value

    if "amount" in p:
        set_field("amount", _amount(p["amount"]))
    if "currency" in p:
        set_field("currency", _currency(p["currency"]))
    if "metadata" in p:
        set_field("metadata", core.metadata_from(p, pi["metadata"]))
    for name in ("description", "receipt_email", "statement_descriptor", "transfer_group"):
        if name in p:
            set_field(name, p[name] or None)
    if "setup_future_usage" in p:
        set_field("setup_future_usage", _setup_future_usage(p["setup_future_usage"]))
    if "shipping" in p:
        set_field("shipping", shipping_details(p["shipping"]))
    if "customer" in p:
        if p["customer"]:
            core.get_or_404(p["customer"], "customer", "customer")
        set_field("customer", p["customer"] or None)
    pm = _payment_method_from_params(p)
    if pm is not None:
        _check_pm_customer(pm, pi["customer"])
        set_field("payment_method", pm["id"])
        set_field("status", "requires_confirmation")
        set_field("next_action", None)
    core.save(pi)
    return pi


def _unexpected_state(pi: dict[str, Any], action: str) -> core.StripeError:
    return core.StripeError(
        f"This PaymentIntent's {action} could not be performed because it has a status of "
        f"{pi['status']}.",
        code="payment_intent_unexpected_state",
        extra={"payment_intent": core.present(pi)},
    )


def _check_pm_customer(
    pm: dict[str, Any], customer: str | None, label: str = "PaymentIntent"
) -> None:
    if pm.get("customer") and pm["customer"] != customer:
        raise core.StripeError(
            f"The provided PaymentMethod {pm['id']} is attached to another customer "
            f"or to no customer given with this {label}.",
            code="payment_method_unexpected_state" if customer else "parameter_invalid",
            param="payment_method",
        )


def confirming_payment_method(
    intent: dict[str, Any], p: dict[str, Any], kind: str, label: str
) -> dict[str, Any]:
    """The PaymentMethod a confirm of ``intent`` (a ``kind`` such as ``payment_intent``,
    shown as ``label``) uses: the one sent, else the intent's own; Stripe's errors when
    there is none or it belongs to another customer."""
    pm = _payment_method_from_params(p)
    if pm is None and intent.get("payment_method"):
        pm = core.get(intent["payment_method"], "payment_method")
    if pm is None:
        raise core.StripeError(
            f"You cannot confirm this {label} because it's missing a payment method. "
            f"You can either update the {label} with a payment method and then "
            "confirm it again, or confirm it again directly with a payment method.",
            code=f"{kind}_unexpected_state",
            extra={kind: core.present(intent)},
        )
    _check_pm_customer(pm, intent.get("customer"), label)
    return pm


def confirm_payment_intent(
    pi: dict[str, Any],
    p: dict[str, Any],
    raise_on_decline: bool = True,
    *,
    allow_processing: bool = False,
) -> dict[str, Any]:
    """Confirm: charge the card, or ask for 3-D Secure (``requires_action``).

    With ``allow_processing`` and the processing setting on, a good card goes to
    ``processing`` first.  On a decline the failed state is saved first; then a 402 card
    error carrying the PaymentIntent is raised (or, with ``raise_on_decline=False``, the PI
    is returned with ``status == "requires_payment_method"`` and ``last_payment_error`` set).
    """
    error: core.StripeError | None = None
    with core.transaction():
        pi = core.get_or_404(pi["id"], "payment_intent")
        if pi["status"] not in PI_CONFIRMABLE_STATUSES:
            raise _unexpected_state(pi, "confirmation")
        if "receipt_email" in p:
            pi["receipt_email"] = p["receipt_email"] or None
        if "setup_future_usage" in p:
            pi["setup_future_usage"] = _setup_future_usage(p["setup_future_usage"])
        if "shipping" in p:
            # Stripe.js sends the Address Element's address (shipping mode) with the confirm.
            pi["shipping"] = shipping_details(p["shipping"])
        if p.get("capture_method") in ("automatic", "automatic_async", "manual"):
            pi["capture_method"] = p["capture_method"]
        pm = confirming_payment_method(pi, p, "payment_intent", "PaymentIntent")
        pi["payment_method"] = pm["id"]
        pi["last_payment_error"] = None
        pi["next_action"] = None
        off_session = core.to_bool(p.get("off_session", False))
        profile = cards.profile_by_fingerprint(pm["card"].get("fingerprint"))
        needs_3ds = profile.behaviour in (cards.THREE_DS_ALWAYS, cards.THREE_DS_THEN_DECLINE) or (
            profile.behaviour == cards.THREE_DS and not (off_session and pm.get("customer"))
        )
        if needs_3ds and off_session:
            # Nobody is there to authenticate: the issuer declines (Stripe's behaviour).
            pi, error = _charge(pi, pm, decline="authentication_required")
        elif needs_3ds:
            request_3ds(pi, p.get("return_url"))
        else:
            decline = profile.decline if profile.behaviour == cards.DECLINE else None
            settle_after = processing_seconds() if allow_processing else 0
            pi, error = _charge(pi, pm, decline=decline, settle_after=settle_after)
    if error is not None and raise_on_decline:
        raise error
    return pi


def request_3ds(intent: dict[str, Any], return_url: Any) -> None:
    """The PaymentIntent or SetupIntent waits for the customer's 3-D Secure challenge (the
    emulator's /3ds page): ``requires_action`` with its ``redirect_to_url``, and the event."""
    intent["status"] = "requires_action"
    url = f"{base_url()}/3ds/{intent['id']}?client_secret={intent['client_secret']}"
    intent["next_action"] = {
        "type": "redirect_to_url",
        "redirect_to_url": {"return_url": return_url or None, "url": url},
    }
    core.save(intent)
    core.record_event(f"{intent['object']}.requires_action", intent)


def authenticate_payment_intent(
    pi: dict[str, Any], result: str, *, allow_processing: bool = False
) -> dict[str, Any]:
    """Finish the 3-D Secure challenge: ``complete`` charges the card, ``fail`` does not.

    Never raises for a decline: the browser page reads the PI's status.
    """
    if result not in ("complete", "fail"):
        raise core.invalid("result", "result must be one of complete, fail.")
    with core.transaction():
        pi = core.get_or_404(pi["id"], "payment_intent")
        if pi["status"] != "requires_action":
            raise _unexpected_state(pi, "authentication")
        pm = core.get_or_404(pi["payment_method"], "payment_method", "payment_method")
        pi["next_action"] = None
        if result == "fail":
            pi["status"] = "requires_payment_method"
            pi["payment_method"] = None
            pi["last_payment_error"] = _last_payment_error(
                type="invalid_request_error",
                code="payment_intent_authentication_failure",
                message="The provided PaymentMethod has failed authentication. You can provide "
                "payment_method_data or a new PaymentMethod to attempt to fulfill this "
                "PaymentIntent again.",
                pm=pm,
            )
            core.save(pi)
            core.record_event("payment_intent.payment_failed", pi)
            return pi
        profile = cards.profile_by_fingerprint(pm["card"].get("fingerprint"))
        decline = profile.decline if profile.behaviour == cards.THREE_DS_THEN_DECLINE else None
        settle_after = processing_seconds() if allow_processing else 0
        pi, _error = _charge(pi, pm, decline=decline, authenticated=True, settle_after=settle_after)
    return pi


def _last_payment_error(
    *,
    type: str,
    code: str,
    message: str,
    pm: dict[str, Any],
    decline_code: str | None = None,
    charge: str | None = None,
) -> dict[str, Any]:
    err: dict[str, Any] = {
        "type": type,
        "code": code,
        "message": message,
        "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
        "payment_method": core.present(pm),
    }
    if decline_code:
        err["decline_code"] = decline_code
        err["advice_code"] = (
            "try_again_later" if decline_code == "processing_error" else "do_not_try_again"
        )
    if charge:
        err["charge"] = charge
    return err


def _three_d_secure(authenticated: bool) -> dict[str, Any] | None:
    if not authenticated:
        return None
    return {
        "authentication_flow": "challenge",
        "electronic_commerce_indicator": "05",
        "exemption_indicator": None,
        "result": "authenticated",
        "result_reason": None,
        "transaction_id": secrets.token_hex(16),
        "version": "2.2.0",
    }


def _charge(
    pi: dict[str, Any],
    pm: dict[str, Any],
    *,
    decline: str | None,
    authenticated: bool = False,
    settle_after: float = 0,
) -> tuple[dict[str, Any], core.StripeError | None]:
    """Create the charge for a confirmed PI and move the PI on (must run in a transaction).

    ``settle_after`` > 0: a successful automatic-capture payment is ``processing`` (charge
    ``pending``) and succeeds that many seconds later (``settle_due_payments``).
    """
    manual = pi["capture_method"] == "manual"
    card = pm["card"]
    failure = cards.DECLINES[decline] if decline else None
    pending = settle_after > 0 and not failure and not manual
    charge = core.base_object(
        "ch",
        "charge",
        amount=pi["amount"],
        amount_captured=0 if (failure or manual) else pi["amount"],
        amount_refunded=0,
        application=None,
        application_fee=None,
        application_fee_amount=None,
        balance_transaction=None,
        billing_details=pm["billing_details"],
        calculated_statement_descriptor="STRIPE EMULATOR",
        captured=not failure and not manual,
        currency=pi["currency"],
        customer=pi.get("customer"),
        description=pi.get("description"),
        disputed=False,
        failure_balance_transaction=None,
        failure_code=failure.code if failure else None,
        failure_message=failure.message if failure else None,
        fraud_details={},
        metadata=dict(pi["metadata"]),
        on_behalf_of=None,
        outcome=_outcome(failure),
        paid=not failure and not pending,
        payment_intent=pi["id"],
        payment_method=pm["id"],
        payment_method_details={
            "card": {
                "amount_authorized": None if failure else pi["amount"],
                "authorization_code": None if failure else f"{secrets.randbelow(10**6):06d}",
                "brand": card["brand"],
                "checks": dict(
                    card["checks"], cvc_check="pass" if card["checks"]["cvc_check"] else None
                ),
                "country": card["country"],
                "exp_month": card["exp_month"],
                "exp_year": card["exp_year"],
                "extended_authorization": {"status": "disabled"},
                "fingerprint": card["fingerprint"],
                "funding": card["funding"],
                "incremental_authorization": {"status": "unavailable"},
                "installments": None,
                "last4": card["last4"],
                "mandate": None,
                "multicapture": {"status": "unavailable"},
                "network": card["brand"],
                "network_token": {"used": False},
                "network_transaction_id": None if failure else secrets.token_hex(8),
                "overcapture": {
                    "maximum_amount_capturable": pi["amount"],
                    "status": "unavailable",
                },
                "regulated_status": "unregulated",
                "three_d_secure": _three_d_secure(authenticated),
                "wallet": None,
            },
            "type": "card",
        },
        radar_options={},
        receipt_email=pi.get("receipt_email"),
        receipt_number=None,
        receipt_url=None,
        refunded=False,
        review=None,
        shipping=pi.get("shipping"),
        source=None,
        source_transfer=None,
        statement_descriptor=pi.get("statement_descriptor"),
        statement_descriptor_suffix=pi.get("statement_descriptor_suffix"),
        status="failed" if failure else ("pending" if pending else "succeeded"),
        transfer_data=None,
        transfer_group=pi.get("transfer_group"),
    )
    if manual and not failure:
        charge["payment_method_details"]["card"]["capture_before"] = core.now() + 7 * 86400
    core.save(charge)
    pi["latest_charge"] = charge["id"]
    if failure:
        log.info("payment intent %s declined (%s)", pi["id"], failure.decline_code)
        pi["status"] = "requires_payment_method"
        pi["payment_method"] = None
        pi["last_payment_error"] = _last_payment_error(
            type="card_error",
            code=failure.code,
            message=failure.message,
            pm=pm,
            decline_code=failure.decline_code,
            charge=charge["id"],
        )
        core.save(pi)
        core.record_event("charge.failed", charge)
        core.record_event("payment_intent.payment_failed", pi)
        error = _card_error(failure.message, failure.code, decline_code=failure.decline_code)
        error.body["charge"] = charge["id"]
        error.body["payment_intent"] = core.present(pi)
        error.body["payment_method"] = core.present(pm)
        if failure.decline_code:
            error.body["advice_code"] = pi["last_payment_error"].get("advice_code")
        return pi, error
    if pi.get("setup_future_usage") and pi.get("customer") and not pm.get("customer"):
        # Stripe saves the card to the customer when the payment was set up for reuse.
        attach_payment_method(pm, pi["customer"])
    if pending:
        core.record_event("charge.pending", charge)
        pi["status"] = "processing"
        pi["processing"] = {"card": {"customer_notification": None}, "type": "card"}
        core.save(pi)
        core.record_event("payment_intent.processing", pi)
        core.db().execute(
            "INSERT OR REPLACE INTO settlements (payment_intent, due) VALUES (?, ?)",
            (pi["id"], core.clock() + settle_after),
        )
        core.wake_background()
        log.info("payment intent %s processing for %ss", pi["id"], settle_after)
        return pi, None
    core.record_event("charge.succeeded", charge)
    if manual:
        pi["status"] = "requires_capture"
        pi["amount_capturable"] = pi["amount"]
        core.save(pi)
        core.record_event("payment_intent.amount_capturable_updated", pi)
    else:
        pi["status"] = "succeeded"
        pi["amount_received"] = pi["amount"]
        core.save(pi)
        core.record_event("payment_intent.succeeded", pi)
        disputes.after_success(charge)
    log.info("payment intent %s %s", pi["id"], pi["status"])
    return pi, None


def processing_seconds() -> float:
    """The ``EMULATOR_PROCESSING_SECONDS`` setting (0: payments succeed at once)."""
    return float(current_app.config.get("EMULATOR_PROCESSING_SECONDS") or 0)


def settle_due_payments() -> float | None:
    """Background sweep: ``processing`` PaymentIntents whose delay is over succeed.

    Returns the seconds until the next one is due (None: none is processing).
    """
    rows = core.db().execute("SELECT payment_intent, due FROM settlements").fetchall()
    now = core.clock()
    for pi_id, due in rows:
        if due <= now:
            _settle(pi_id)
    later = [due for _, due in rows if due > now]
    return min(later) - now if later else None


def _settle(pi_id: str) -> None:
    with core.transaction() as conn:
        conn.execute("DELETE FROM settlements WHERE payment_intent=?", (pi_id,))
        pi = core.get(pi_id, "payment_intent")
        if pi is None or pi["status"] != "processing":
            return  # canceled meanwhile
        charge = core.get(pi.get("latest_charge"), "charge")
        if charge is not None:
            charge["status"] = "succeeded"
            charge["paid"] = True
            core.save(charge)
            core.record_event("charge.succeeded", charge)
        pi["status"] = "succeeded"
        pi["amount_received"] = pi["amount"]
        pi["processing"] = None
        core.save(pi)
        core.record_event("payment_intent.succeeded", pi)
        if charge is not None:
            disputes.after_success(charge)
    log.info("payment intent %s succeeded after processing", pi_id)


core.on_sweep(settle_due_payments)


def _outcome(failure: cards.Decline | None) -> dict[str, Any]:
    if failure is None:
        return {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    return {
        "advice_code": "try_again_later"
        if failure.decline_code == "processing_error"
        else "do_not_try_again",
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "declined_by_network",
        "reason": failure.decline_code,
        "risk_level": "normal",
        "risk_score": 32,
        "seller_message": "The bank did not return any further details with this decline."
        if failure.decline_code == "generic_decline"
        else f"The bank returned the decline code `{failure.decline_code}`.",
        "type": "issuer_declined",
    }


def cancel_payment_intent(pi: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
    """Cancel an unpaid (or uncaptured) PaymentIntent; an authorisation is released."""
    if reason and reason not in ("duplicate", "fraudulent", "requested_by_customer", "abandoned"):
        raise core.invalid("cancellation_reason")
    with core.transaction():
        pi = core.get_or_404(pi["id"], "payment_intent")
        if pi["status"] not in PI_CANCELABLE_STATUSES:
            raise core.StripeError(
                "You cannot cancel this PaymentIntent because it has a status of "
                f"{pi['status']}. Only a PaymentIntent with one of the following statuses may "
                "be canceled: requires_payment_method, requires_capture, requires_confirmation, "
                "requires_action, processing.",
                code="payment_intent_unexpected_state",
                extra={"payment_intent": core.present(pi)},
            )
        if pi["status"] == "requires_capture" and pi.get("latest_charge"):
            charge = core.get(pi["latest_charge"], "charge")
            if charge:
                charge["amount_refunded"] = charge["amount"]
                charge["refunded"] = True
                core.save(charge)
        if pi["status"] == "processing":
            # The pending charge will never settle now.
            charge = core.get(pi.get("latest_charge"), "charge")
            if charge and charge["status"] == "pending":
                charge["status"] = "failed"
                core.save(charge)
                core.record_event("charge.failed", charge)
            pi["processing"] = None
        pi["status"] = "canceled"
        pi["canceled_at"] = core.now()
        pi["cancellation_reason"] = reason
        pi["amount_capturable"] = 0
        pi["next_action"] = None
        core.save(pi)
        core.record_event("payment_intent.canceled", pi)
    return pi


def capture_payment_intent(pi: dict[str, Any], amount: Any = None) -> dict[str, Any]:
    """Capture an authorised (``requires_capture``) PI, fully or partly."""
    with core.transaction():
        pi = core.get_or_404(pi["id"], "payment_intent")
        if pi["status"] != "requires_capture":
            raise _unexpected_state(pi, "capture")
        to_capture = pi["amount_capturable"] if amount in (None, "") else _amount(amount)
        if to_capture > pi["amount_capturable"]:
            raise core.StripeError(
                "The amount to capture must be less than or equal to the amount capturable.",
                code="amount_too_large",
                param="amount_to_capture",
            )
        charge = core.get_or_404(pi["latest_charge"], "charge", "charge")
        charge["captured"] = True
        charge["amount_captured"] = to_capture
        # The uncaptured rest goes back to the customer, shown as refunded like Stripe.
        charge["amount_refunded"] = charge["amount"] - to_capture
        core.save(charge)
        core.record_event("charge.captured", charge)
        pi["status"] = "succeeded"
        pi["amount_received"] = to_capture
        pi["amount_capturable"] = 0
        core.save(pi)
        core.record_event("payment_intent.succeeded", pi)
        disputes.after_success(charge)
    return pi


# --------------------------------------------------------------------------- refunds


def create_refund(p: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/refunds`` by ``payment_intent`` or ``charge``; ``amount`` defaults to the rest."""
    with core.transaction():
        if p.get("charge"):
            charge = core.get_or_404(p["charge"], "charge", "charge")
        elif p.get("payment_intent"):
            pi = core.get_or_404(p["payment_intent"], "payment_intent", "payment_intent")
            charge = core.get(pi.get("latest_charge"), "charge")
            if pi["status"] != "succeeded" or charge is None:
                raise core.StripeError(
                    f"This PaymentIntent ({pi['id']}) does not have a successful charge to refund.",
                    code="charge_not_refundable" if charge else "resource_missing",
                    param="payment_intent",
                )
        else:
            raise core.StripeError(
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
                code="parameter_missing",
            )
        if charge["status"] != "succeeded" or not charge["captured"]:
            raise core.StripeError(
                f"Charge {charge['id']} has not been captured or did not succeed.",
                code="charge_not_refundable",
                param="charge",
            )
        blocked = disputes.open_dispute_blocks_refund(charge)
        if blocked is not None:
            raise blocked
        remaining = charge["amount_captured"] - _refunded_of(charge)
        if remaining <= 0:
            raise core.StripeError(
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = remaining if p.get("amount") in (None, "") else _amount(p["amount"])
        if amount > remaining:
            raise core.StripeError(
                f"Refund amount ({_money(amount, charge['currency'])}) is greater than unrefunded "
                f"amount on charge ({_money(remaining, charge['currency'])})",
                code="amount_too_large",
                param="amount",
            )
        reason = p.get("reason") or None
        if reason and reason not in ("duplicate", "fraudulent", "requested_by_customer"):
            raise core.invalid("reason")
        refund = core.base_object(
            "re",
            "refund",
            amount=amount,
            balance_transaction=None,
            charge=charge["id"],
            currency=charge["currency"],
            customer=charge.get("customer"),
            description=None,
            destination_details={
                "card": {
                    "reference": None,
                    "reference_status": "pending",
                    "reference_type": "acquirer_reference_number",
                    "type": "refund",
                },
                "type": "card",
            },
            metadata=core.metadata_from(p),
            payment_intent=charge.get("payment_intent"),
            payment_method=charge.get("payment_method"),
            reason=reason,
            receipt_number=None,
            source_transfer_reversal=None,
            status="succeeded",
            transfer_reversal=None,
        )
        refund.pop("livemode")  # a Refund has no livemode field in the pinned API
        core.save(refund)
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        core.save(charge)
        core.record_event("refund.created", refund)
        core.record_event("charge.refunded", charge, previous)
        disputes.schedule_refund_failure(refund, charge)
    log.info("refund %s of %s on charge %s", refund["id"], amount, charge["id"])
    return refund


def _refunded_of(charge: dict[str, Any]) -> int:
    """Refunded part of the captured amount (an uncaptured rest is not refundable again)."""
    uncaptured = charge["amount"] - charge["amount_captured"]
    return charge["amount_refunded"] - uncaptured


def _money(amount: int, currency: str) -> str:
    return f"{currency.upper()} {amount / 100:.2f}"
