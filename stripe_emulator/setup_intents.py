"""SetupIntents: save a card for later without charging it (``/v1/setup_intents``).

Create, retrieve, update, confirm, cancel and list, as Stripe answers them; Stripe.js
(``confirmSetup``, ``confirmCardSetup``, ``retrieveSetupIntent``) reaches retrieve and
confirm with the publishable key and the client secret.  What a test card does:

- most cards set up at once: ``succeeded``, the card attached to the intent's customer
  (``payment_method.attached``), ``setup_intent.succeeded``;
- 3-D Secure cards (4000 0025 0000 3155, 4000 0027 6000 3184, ...) need authentication:
  ``requires_action`` with a ``redirect_to_url`` to the emulator's challenge page, whose
  answer (``POST .../authenticate``, emulator-only) succeeds or fails the setup;
- cards the issuer declines outright (4000 0000 0000 0002, lost, stolen, expired, wrong
  CVC, processing error) fail: ``requires_payment_method`` with ``last_setup_error``,
  ``setup_intent.setup_failed`` and a 402 card error, as on Stripe.  Setting up checks no
  funds, so 4000 0000 0000 9995 (insufficient funds) and 4000 0000 0000 0341 (declined
  when charged) set up fine.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Blueprint

from . import cards, core, payments, strict
from .api import AuthenticateParams, PublishableKeyParams

log = logging.getLogger(__name__)

bp = Blueprint("setup_intents", __name__, url_prefix="/v1")

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
# Declines a setup meets (no money moves, so no funds check; 0341 attaches fine).
SETUP_DECLINES = (
    "generic_decline",
    "lost_card",
    "stolen_card",
    "expired_card",
    "incorrect_cvc",
    "processing_error",
)
CARD_0341_FINGERPRINT = cards.fingerprint("4000000000000341")
AUTH_FAILED = (
    "The latest attempt to set up the payment method has failed because authentication failed."
)


def _client_secret(seti_id: str) -> str:
    return f"{seti_id}_secret_{secrets.token_urlsafe(24).replace('-', 'a').replace('_', 'b')}"


def _types(p: dict[str, Any]) -> list[str]:
    """``allowed_payment_method_types``: card (and link) only."""
    value = p.get("allowed_payment_method_types") or ["card"]
    types = [value] if isinstance(value, str) else list(value)
    bad = [t for t in types if t not in ("card", "link")]
    if bad:
        raise core.invalid(
            "allowed_payment_method_types", f"The payment method type {bad[0]!r} is invalid."
        )
    return types


def _usage(value: Any) -> str:
    value = value or "off_session"
    if value not in ("off_session", "on_session"):
        raise core.invalid(
            "usage", f"Invalid usage: must be one of off_session or on_session; got {value}."
        )
    return value


def create(p: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/setup_intents`` (confirms too with ``confirm=true``; may raise 402)."""
    customer = p.get("customer") or None
    if customer:
        core.get_or_404(customer, "customer", "customer")
    apm = p.get("automatic_payment_methods")
    automatic = None
    if isinstance(apm, dict) and core.to_bool(apm.get("enabled")):
        automatic = {"allow_redirects": apm.get("allow_redirects") or "always", "enabled": True}
    if automatic and p.get("allowed_payment_method_types"):
        raise core.StripeError(
            "You may only specify one of these parameters: automatic_payment_methods, "
            "allowed_payment_method_types.",
            param="automatic_payment_methods",
        )
    seti_id = core.new_id("seti")
    seti = {
        "id": seti_id,
        "object": "setup_intent",
        "application": None,
        "automatic_payment_methods": automatic,
        "cancellation_reason": None,
        "client_secret": _client_secret(seti_id),
        "created": core.now(),
        "customer": customer,
        "customer_account": None,
        "description": p.get("description") or None,
        "excluded_payment_method_types": None,
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": core.metadata_from(p),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": _types(p),
        "single_use_mandate": None,
        "status": "requires_payment_method",
        "usage": _usage(p.get("usage")),
    }
    confirm_now = core.to_bool(p.get("confirm", False))
    with core.transaction():
        pm = None if confirm_now else payments._payment_method_from_params(p)
        if pm is not None:
            payments._check_pm_customer(pm, customer, "SetupIntent")
            seti["payment_method"] = pm["id"]
            seti["status"] = "requires_confirmation"
        core.save(seti)
        core.record_event("setup_intent.created", seti)
    if confirm_now:
        return confirm(seti, p)
    return seti


def _unexpected_state(seti: dict[str, Any], action: str) -> core.StripeError:
    return core.StripeError(
        f"You cannot {action} this SetupIntent because it has a status of {seti['status']}.",
        code="setup_intent_unexpected_state",
        extra={"setup_intent": core.present(seti)},
    )


def update(seti: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/setup_intents/{id}`` while no card is set up yet."""
    if seti["status"] not in CONFIRMABLE:
        raise _unexpected_state(seti, "update")
    if "customer" in p:
        if p["customer"]:
            core.get_or_404(p["customer"], "customer", "customer")
        seti["customer"] = p["customer"] or None
    if "description" in p:
        seti["description"] = p["description"] or None
    if "metadata" in p:
        seti["metadata"] = core.metadata_from(p, seti["metadata"])
    pm = payments._payment_method_from_params(p)
    if pm is not None:
        payments._check_pm_customer(pm, seti["customer"], "SetupIntent")
        seti["payment_method"] = pm["id"]
        seti["status"] = "requires_confirmation"
        seti["next_action"] = None
    core.save(seti)
    return seti


def _succeed(seti: dict[str, Any], pm: dict[str, Any]) -> None:
    if seti.get("customer") and pm.get("customer") != seti["customer"]:
        payments.attach_payment_method(pm, seti["customer"])
    seti["status"] = "succeeded"
    seti["next_action"] = None
    seti["last_setup_error"] = None
    core.save(seti)
    core.record_event("setup_intent.succeeded", seti)
    log.info("setup intent %s succeeded (%s)", seti["id"], pm["id"])


def _fail(seti: dict[str, Any], pm: dict[str, Any], decline: cards.Decline) -> core.StripeError:
    seti["status"] = "requires_payment_method"
    seti["payment_method"] = None
    seti["next_action"] = None
    seti["last_setup_error"] = payments._last_payment_error(
        type="card_error",
        code=decline.code,
        message=decline.message,
        pm=pm,
        decline_code=decline.decline_code,
    )
    core.save(seti)
    core.record_event("setup_intent.setup_failed", seti)
    log.info("setup intent %s failed (%s)", seti["id"], decline.decline_code)
    return core.StripeError(
        decline.message,
        status=402,
        type="card_error",
        code=decline.code,
        decline_code=decline.decline_code,
        extra={
            "doc_url": f"https://stripe.com/docs/error-codes/{decline.code.replace('_', '-')}",
            "setup_intent": core.present(seti),
            "payment_method": core.present(pm),
        },
    )


def confirm(seti: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    """Confirm: set the card up, or ask for 3-D Secure (``requires_action``).

    A declined card leaves the failed state saved, then raises a 402 carrying the intent.
    """
    error: core.StripeError | None = None
    with core.transaction():
        seti = core.get_or_404(seti["id"], "setup_intent", "intent")
        if seti["status"] not in CONFIRMABLE:
            raise _unexpected_state(seti, "confirm")
        pm = payments.confirming_payment_method(seti, p, "setup_intent", "SetupIntent")
        seti["payment_method"] = pm["id"]
        seti["last_setup_error"] = None
        profile = cards.profile_by_fingerprint(pm["card"].get("fingerprint"))
        if profile.behaviour in (
            cards.THREE_DS,
            cards.THREE_DS_ALWAYS,
            cards.THREE_DS_THEN_DECLINE,
        ):
            payments.request_3ds(seti, p.get("return_url"))
        elif (
            profile.behaviour == cards.DECLINE
            and profile.decline in SETUP_DECLINES
            and pm["card"].get("fingerprint") != CARD_0341_FINGERPRINT
        ):
            error = _fail(seti, pm, cards.DECLINES[profile.decline])
        else:
            _succeed(seti, pm)
    if error is not None:
        raise error
    return seti


def authenticate(seti: dict[str, Any], result: str) -> dict[str, Any]:
    """Finish the 3-D Secure challenge (emulator-only): ``complete`` or ``fail``."""
    if result not in ("complete", "fail"):
        raise core.invalid("result", "result must be one of complete, fail.")
    with core.transaction():
        seti = core.get_or_404(seti["id"], "setup_intent", "intent")
        if seti["status"] != "requires_action":
            raise _unexpected_state(seti, "authenticate")
        pm = core.get_or_404(seti["payment_method"], "payment_method", "payment_method")
        if result == "fail":
            seti["status"] = "requires_payment_method"
            seti["payment_method"] = None
            seti["next_action"] = None
            seti["last_setup_error"] = payments._last_payment_error(
                type="invalid_request_error",
                code="setup_intent_authentication_failure",
                message=AUTH_FAILED,
                pm=pm,
            )
            core.save(seti)
            core.record_event("setup_intent.setup_failed", seti)
            return seti
        profile = cards.profile_by_fingerprint(pm["card"].get("fingerprint"))
        if profile.behaviour == cards.THREE_DS_THEN_DECLINE:
            _fail(seti, pm, cards.DECLINES[profile.decline or "generic_decline"])
        else:
            _succeed(seti, pm)
    return seti


def cancel(seti: dict[str, Any], reason: str | None) -> dict[str, Any]:
    if reason and reason not in ("abandoned", "duplicate", "requested_by_customer"):
        raise core.invalid("cancellation_reason")
    with core.transaction():
        seti = core.get_or_404(seti["id"], "setup_intent", "intent")
        if seti["status"] not in CANCELABLE:
            raise core.StripeError(
                "You cannot cancel this SetupIntent because it has a status of "
                f"{seti['status']}. Only a SetupIntent with one of the following statuses "
                "may be canceled: requires_payment_method, requires_confirmation, "
                "requires_action.",
                code="setup_intent_unexpected_state",
                extra={"setup_intent": core.present(seti)},
            )
        seti["status"] = "canceled"
        seti["cancellation_reason"] = reason
        seti["next_action"] = None
        core.save(seti)
        core.record_event("setup_intent.canceled", seti)
    return seti


# --------------------------------------------------------------------------- routes

PAYMENT_METHOD = [
    "payment_method",
    "payment_method_data.type",
    "payment_method_data.billing_details",
    "payment_method_data.metadata",
]
FIELDS = [*PAYMENT_METHOD, "customer", "description", "metadata", "expand"]


@bp.post("/setup_intents")
@strict.accepts(
    "SetupIntentCreateParams",
    [
        *FIELDS,
        "automatic_payment_methods",
        "allowed_payment_method_types",
        "usage",
        "confirm",
        "return_url",
    ],
)
def create_route():
    core.authenticate()
    return core.respond(create(core.params()))


@bp.get("/setup_intents/<seti_id>")
@strict.accepts("SetupIntentRetrieveParams", ["client_secret", "expand"])
def retrieve_route(seti_id: str):
    return core.respond(core.intent_for_key(seti_id, "setup_intent"))


@bp.post("/setup_intents/<seti_id>")
@strict.accepts("SetupIntentUpdateParams", FIELDS)
def update_route(seti_id: str):
    core.authenticate()
    p = core.params()
    with core.transaction():
        seti = update(core.get_or_404(seti_id, "setup_intent", "intent"), p)
    return core.respond(seti)


@bp.post("/setup_intents/<seti_id>/confirm")
@strict.accepts(
    "SetupIntentConfirmParams",
    [*PAYMENT_METHOD, "payment_method_data.card", "client_secret", "return_url", "expand"],
    extra=PublishableKeyParams,
)
def confirm_route(seti_id: str):
    seti = core.intent_for_key(seti_id, "setup_intent")
    p = {k: v for k, v in core.params().items() if k not in ("client_secret", "expand")}
    return core.respond(confirm(seti, p))


@bp.post("/setup_intents/<seti_id>/cancel")
@strict.accepts("SetupIntentCancelParams", ["cancellation_reason", "expand"])
def cancel_route(seti_id: str):
    core.authenticate()
    seti = core.get_or_404(seti_id, "setup_intent", "intent")
    return core.respond(cancel(seti, core.params().get("cancellation_reason") or None))


@bp.post("/setup_intents/<seti_id>/authenticate")
@strict.accepts(AuthenticateParams, ["client_secret", "result", "expand"])
def authenticate_route(seti_id: str):
    """Emulator-only: the 3-D Secure challenge page reports ``result=complete|fail``."""
    seti = core.intent_for_key(seti_id, "setup_intent")
    result = core.params().get("result")
    if not result:
        raise core.missing("result")
    return core.respond(authenticate(seti, result))


@bp.get("/setup_intents")
@strict.accepts("SetupIntentListParams", [*strict.LIST, "customer", "payment_method"])
def list_route():
    core.authenticate()
    return core.list_matching("setup_intent", "/v1/setup_intents", "customer", "payment_method")
