"""API versions: each request is read, and answered, in the version it names.

Stripe validates a request against the API version in its ``Stripe-Version`` header (without
one, the account's default: here the pinned SDK's, ``core.API_VERSION``) and renders objects
in that version; webhook events are rendered in each endpoint's ``api_version``.  The
emulator implements the pinned version; code written against an older SDK keeps working
through the small explicit table below of the differences that matter for the flows the
emulator serves (a request in an older version may use that version's names, and gets the
fields that version had).  The versions Stripe knows are the pinned SDK's list (the
``api_version`` values of ``WebhookEndpointCreateParams``).
"""

from __future__ import annotations

import copy
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from flask import g, request

from . import core

PINNED = core.API_VERSION

# PaymentIntent calls that took ``payment_method_types`` (create, update, confirm).
_PI_WRITES = (
    "api.create_payment_intent",
    "api.update_payment_intent",
    "api.confirm_payment_intent",
)


@dataclass(frozen=True)
class Param:
    """A request parameter that changed: known only from ``added`` (if set); taken under its
    ``old`` name before ``renamed`` (if set), and refused under that name from then on with
    ``refused_code``."""

    endpoints: tuple[str, ...]
    name: str
    added: str | None = None
    old: str | None = None
    renamed: str | None = None
    refused_code: str | None = None
    refused_message: str = ""


@dataclass(frozen=True)
class Field:
    """A field of an API object that versions before ``added`` did not have."""

    object: str
    name: str
    added: str


PARAMS = [
    # 2026-07-29.dahlia adds allowed_payment_method_types (which filters silently where
    # payment_method_types refused); 2026-09-30.endive drops writing payment_method_types.
    Param(_PI_WRITES, "allowed_payment_method_types", added="2026-07-29.dahlia"),
    Param(
        _PI_WRITES,
        "allowed_payment_method_types",
        old="payment_method_types",
        renamed="2026-09-30.endive",
        refused_code="payment_method_types_no_longer_supported",
        refused_message=(
            "payment_method_types is no longer supported on this API version. Use "
            "allowed_payment_method_types, excluded_payment_method_types or "
            "automatic_payment_methods instead."
        ),
    ),
]

FIELDS = [
    Field("payment_intent", "allowed_payment_method_types", added="2026-07-29.dahlia"),
]


@cache
def known_versions() -> tuple[str, ...]:
    from stripe.params import _webhook_endpoint_create_params as module

    hint = module.WebhookEndpointCreateParams.__annotations__["api_version"]
    (inner,) = typing.get_args(hint)  # NotRequired[...]
    if isinstance(inner, typing.ForwardRef):
        inner = eval(inner.__forward_arg__, vars(module))  # noqa: S307 - the SDK's annotation
    options = typing.get_args(inner) if typing.get_origin(inner) is not typing.Literal else ()
    literal = next((a for a in options if typing.get_origin(a) is typing.Literal), inner)
    return tuple(typing.get_args(literal))


def _date(version: str) -> str:
    return version.split(".", 1)[0]


def before(version: str, other: str) -> bool:
    """Whether ``version`` is older than ``other`` (versions are ordered by date)."""
    return _date(version) < _date(other)


def check(version: str, param: str | None = None) -> str:
    """``version`` if Stripe knows it and the emulator can serve it, else Stripe's 400."""
    if version not in known_versions():
        raise core.StripeError(f"Invalid Stripe API version: {version}", param=param)
    if before(PINNED, version):
        raise core.StripeError(
            f"The Stripe emulator serves API versions up to {PINNED}; got {version}.",
            param=param,
        )
    return version


def requested() -> str:
    """The request's API version (``Stripe-Version``, else the account default)."""
    if "api_version" not in g:
        header = request.headers.get("Stripe-Version", "").strip()
        g.api_version = check(header) if header else PINNED
    return g.api_version


def upgrade_params(endpoint: str | None, p: dict[str, Any], version: str) -> dict[str, str]:
    """Rewrite an older version's parameter names to the pinned ones (in place); refuse
    parameters the version does not have.  Returns {pinned name: name as sent}."""
    sent_as: dict[str, str] = {}
    for change in PARAMS:
        if endpoint not in change.endpoints:
            continue
        if change.added and before(version, change.added) and change.name in p:
            raise core.StripeError(
                f"Received unknown parameter: {change.name}",
                code="parameter_unknown",
                param=change.name,
            )
        if change.old and change.old in p:
            if change.renamed and not before(version, change.renamed):
                raise core.StripeError(
                    change.refused_message, code=change.refused_code, param=change.old
                )
            if change.name in p:
                raise core.StripeError(
                    f"You may only specify one of these parameters: {change.name}, {change.old}.",
                    param=change.old,
                )
            p[change.name] = p.pop(change.old)
            sent_as[change.name] = change.old
    return sent_as


def as_sent(err: core.StripeError, sent_as: dict[str, str]) -> core.StripeError:
    """An error about a renamed parameter, named as the request sent it."""
    param = err.body.get("param") or ""
    for new, old in sent_as.items():
        if param == new or param.startswith(new + "["):
            err.body["param"] = old + param[len(new) :]
            err.body["message"] = err.body["message"].replace(new, old)
    return err


def render(body: Any, version: str) -> Any:
    """An API answer as ``version`` had it (a copy; the pinned version is left as is).

    Events inside an answer keep the version they were rendered in (their ``api_version``).
    """
    if version == PINNED or not any(before(version, f.added) for f in FIELDS):
        return body
    return _render(copy.deepcopy(body), version)


def _render(node: Any, version: str) -> Any:
    if isinstance(node, list):
        return [_render(item, version) for item in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("object")
    if kind == "event":
        return node
    for f in FIELDS:
        if f.object == kind and before(version, f.added):
            node.pop(f.name, None)
    for key, value in node.items():
        node[key] = _render(value, version)
    return node


def render_event(event: dict[str, Any], version: str | None) -> dict[str, Any]:
    """An event as a webhook endpoint with ``api_version`` = ``version`` receives it."""
    if not version or version == event.get("api_version"):
        return event
    event = dict(event, api_version=version)
    data = dict(event["data"])
    data["object"] = _render(copy.deepcopy(data["object"]), version)
    if isinstance(data.get("previous_attributes"), dict):
        previous = copy.deepcopy(data["previous_attributes"])
        previous["object"] = data["object"].get("object")
        previous = _render(previous, version)
        previous.pop("object", None)
        data["previous_attributes"] = previous
    event["data"] = data
    return event
