"""Customer Sessions (``POST /v1/customer_sessions``): Stripe.js's access to one customer's
saved payment methods, for the Payment Element.

The server makes a session for its signed-in customer with the Payment Element's features
and hands its ``client_secret`` (``cuss_secret_...``) to ``stripe.elements({...,
customerSessionClientSecret})``.  What the features do in the Payment Element stand-in:

- ``payment_method_redisplay``: the customer's saved cards whose ``allow_redisplay`` is in
  ``payment_method_allow_redisplay_filters`` (default ``["always"]``), at most
  ``payment_method_redisplay_limit`` (default 3, at most 10), newest first, are offered
  above the new-card form; paying with one confirms with that PaymentMethod;
- ``payment_method_save``: a "Save this card for next time" checkbox under a new card; when
  ticked the card is created with ``allow_redisplay: "always"`` and a PaymentIntent is
  confirmed with ``setup_future_usage`` = ``payment_method_save_usage`` (when given;
  otherwise the intent's own, as a deferred group's ``setupFutureUsage`` says, else
  ``off_session``), so the card is attached to the intent's customer once paid
  (``payment_method.attached``); both ``payment_method_save_usage`` and ``setupFutureUsage``
  is Stripe.js's IntegrationError, reported as the element's ``loaderror``;
- ``payment_method_remove``: a Remove button next to each saved card (detaches it,
  ``payment_method.detached``).

Only the Payment Element component is implemented; the others are refused
(``parameter_unsupported``).  Two emulator-only endpoints serve the stand-in, with the
publishable key and the session's client secret, as Stripe.js's own private calls do:
``GET /v1/elements/sessions`` (the features and the cards to show) and ``POST
/v1/elements/payment_methods/<id>/detach`` (Remove).
"""

from __future__ import annotations

import secrets
from typing import Any, NotRequired

from flask import Blueprint, jsonify
from typing_extensions import TypedDict

from . import core, payments, strict

bp = Blueprint("customer_sessions", __name__, url_prefix="/v1")

# Stripe: a Customer Session's client secret is usable for 30 minutes.
LIFETIME_SECONDS = 30 * 60
REDISPLAY_VALUES = ("always", "limited", "unspecified")
DEFAULT_REDISPLAY_LIMIT = 3
MAX_REDISPLAY_LIMIT = 10
FEATURES = "components[payment_element][features]"


def _client_secret() -> str:
    token = secrets.token_urlsafe(36).replace("-", "a").replace("_", "b")
    return f"cuss_secret_{token}"


def _enabled(value: Any, param: str, default: str = "disabled") -> str:
    value = value or default
    if value not in ("enabled", "disabled"):
        raise core.invalid(param, f"Invalid {param}: must be one of enabled or disabled")
    return value


def _features(data: Any) -> dict[str, Any]:
    """The Payment Element's features as Stripe answers them (defaults filled in)."""
    data = data if isinstance(data, dict) else {}
    filters = data.get("payment_method_allow_redisplay_filters")
    if filters in (None, ""):
        filters = ["always"]
    elif isinstance(filters, str):
        filters = [filters]
    for value in filters:
        if value not in REDISPLAY_VALUES:
            raise core.invalid(
                f"{FEATURES}[payment_method_allow_redisplay_filters]",
                "Invalid payment_method_allow_redisplay_filters: must be a list of always, "
                "limited, unspecified",
            )
    limit = data.get("payment_method_redisplay_limit")
    if limit in (None, ""):
        limit = DEFAULT_REDISPLAY_LIMIT
    else:
        limit = core.to_int(limit, f"{FEATURES}[payment_method_redisplay_limit]")
        if not 1 <= limit <= MAX_REDISPLAY_LIMIT:
            raise core.invalid(
                f"{FEATURES}[payment_method_redisplay_limit]",
                f"payment_method_redisplay_limit must be between 1 and {MAX_REDISPLAY_LIMIT}.",
            )
    usage = data.get("payment_method_save_usage") or None
    if usage not in (None, "off_session", "on_session"):
        raise core.invalid(f"{FEATURES}[payment_method_save_usage]")
    return {
        "payment_method_allow_redisplay_filters": list(dict.fromkeys(filters)),
        "payment_method_redisplay": _enabled(
            data.get("payment_method_redisplay"), f"{FEATURES}[payment_method_redisplay]"
        ),
        "payment_method_redisplay_limit": limit,
        "payment_method_remove": _enabled(
            data.get("payment_method_remove"), f"{FEATURES}[payment_method_remove]"
        ),
        "payment_method_save": _enabled(
            data.get("payment_method_save"), f"{FEATURES}[payment_method_save]"
        ),
        "payment_method_save_usage": usage,
    }


def create(p: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/customer_sessions``."""
    customer_id = p.get("customer")
    if not customer_id:
        raise core.missing("customer")
    core.get_or_404(customer_id, "customer", "customer")
    components = p.get("components")
    if not isinstance(components, dict):
        raise core.missing("components")
    element = components.get("payment_element")
    enabled = isinstance(element, dict) and core.to_bool(element.get("enabled"))
    if isinstance(element, dict) and "enabled" not in element:
        raise core.missing("components[payment_element][enabled]")
    if not enabled:
        raise core.StripeError(
            "At least 1 component must be enabled.", code="parameter_invalid", param="components"
        )
    created = core.now()
    session = {
        # Stored under its client secret (a Customer Session has no id of its own).
        "id": _client_secret(),
        "object": "customer_session",
        "components": {
            "active_entitlements": {"enabled": False},
            "buy_button": {"enabled": False},
            "customer_portal": {"enabled": False},
            "customer_sheet": {"enabled": False, "features": None},
            "mobile_payment_element": {"enabled": False, "features": None},
            "payment_element": {"enabled": True, "features": _features(element.get("features"))},
            "pricing_table": {"enabled": False},
        },
        "created": created,
        "customer": customer_id,
        "customer_account": None,
        "expires_at": created + LIFETIME_SECONDS,
        "livemode": False,
    }
    with core.transaction():
        core.save(session)
    return session


def _present(session: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in session.items() if k != "id"}
    out["client_secret"] = session["id"]
    return out


core.register_presenter("customer_session", _present)


def usable(secret: Any, param: str = "customer_session_client_secret") -> dict[str, Any]:
    """The live session a client secret names (Stripe.js's calls), or Stripe's 400."""
    if not secret or not isinstance(secret, str):
        raise core.missing(param)
    session = core.get(secret, "customer_session") if secret.startswith("cuss_secret_") else None
    if session is None:
        raise core.StripeError(
            "The customer session client secret provided is invalid.",
            code="resource_missing",
            param=param,
        )
    if session["expires_at"] <= core.now():
        raise core.StripeError(
            "The customer session client secret provided has expired.",
            code="customer_session_expired",
            param=param,
        )
    return session


def features_of(session: dict[str, Any]) -> dict[str, Any]:
    return session["components"]["payment_element"]["features"]


def shown_payment_methods(session: dict[str, Any]) -> list[dict[str, Any]]:
    """The saved cards the Payment Element offers: the customer's, filtered and capped."""
    features = features_of(session)
    if features["payment_method_redisplay"] != "enabled":
        return []
    filters = features["payment_method_allow_redisplay_filters"]
    cards = core.all_of(
        "payment_method",
        lambda pm: (
            pm.get("customer") == session["customer"]
            and pm.get("type") == "card"
            and (pm.get("allow_redisplay") or "unspecified") in filters
        ),
    )
    return [core.present(pm) for pm in cards[: features["payment_method_redisplay_limit"]]]


# --------------------------------------------------------------------------- routes


@bp.post("/customer_sessions")
@strict.accepts(
    "CustomerSessionCreateParams",
    [
        "customer",
        "components.payment_element.enabled",
        "components.payment_element.features.payment_method_allow_redisplay_filters",
        "components.payment_element.features.payment_method_redisplay",
        "components.payment_element.features.payment_method_redisplay_limit",
        "components.payment_element.features.payment_method_remove",
        "components.payment_element.features.payment_method_save",
        "components.payment_element.features.payment_method_save_usage",
        "expand",
    ],
)
def create_route():
    core.authenticate()
    return core.respond(create(core.params()))


class ElementsSessionParams(TypedDict):
    """``GET /v1/elements/sessions`` (emulator only: what the Payment Element shows)."""

    customer_session_client_secret: str


class ElementsDetachParams(TypedDict):
    """``POST /v1/elements/payment_methods/<id>/detach`` (emulator only: Remove)."""

    customer_session_client_secret: str
    expand: NotRequired[list[str]]


@bp.get("/elements/sessions")
@strict.accepts(ElementsSessionParams, ["customer_session_client_secret"])
def elements_session():
    """The Customer Session's Payment Element features and the saved cards to offer
    (publishable key; the client secret grants access to this one customer)."""
    core.authenticate(allow_publishable=True)
    session = usable(core.params().get("customer_session_client_secret"))
    return jsonify(
        {
            "object": "elements_session",
            "customer": session["customer"],
            "expires_at": session["expires_at"],
            "features": features_of(session),
            "payment_methods": shown_payment_methods(session),
        }
    )


@bp.post("/elements/payment_methods/<pm_id>/detach")
@strict.accepts(ElementsDetachParams, ["customer_session_client_secret", "expand"])
def elements_detach(pm_id: str):
    """Remove a saved card from the Payment Element (``payment_method_remove``)."""
    core.authenticate(allow_publishable=True)
    session = usable(core.params().get("customer_session_client_secret"))
    if features_of(session)["payment_method_remove"] != "enabled":
        raise core.StripeError(
            "This customer session does not allow removing payment methods "
            "(components[payment_element][features][payment_method_remove] is disabled).",
            status=403,
        )
    with core.transaction():
        pm = core.get(pm_id, "payment_method")
        if pm is None or pm.get("customer") != session["customer"]:
            raise core.not_found(pm_id, "payment_method", "payment_method")
        pm = payments.detach_payment_method(pm)
    return core.respond(pm)
