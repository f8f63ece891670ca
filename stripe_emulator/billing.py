"""Subscriptions and invoices (enough for a subscription bought through Checkout).

A subscription's items carry their billing period (API 2026: ``current_period_start/end``
live on the subscription items).  Each period's invoice is paid with a PaymentIntent
charged to the subscription's default payment method (else the customer's); ``POST
/v1/test_helpers/subscriptions/{id}/advance`` moves a subscription to its next period so
renewals that succeed and renewals that fail can be exercised.  The objects are built in
``billing_objects.py``; Checkout Sessions live in ``checkout.py`` (a nested blueprint
registered at the end of this module).
"""

from __future__ import annotations

import copy
import logging
from typing import Any, NotRequired

from flask import Blueprint, request
from typing_extensions import TypedDict

from . import core, strict
from .billing_objects import (
    add_interval,
    apply_customer_balance,
    build_invoice,
    build_subscription,
    mark_invoice_failed,
    mark_invoice_paid,
    next_period_end,
    plan_from_price,
    proration_lines,
    record_invoice_created,
    record_invoice_paid,
)

log = logging.getLogger(__name__)

bp = Blueprint("billing", __name__, url_prefix="/v1")


def serialised():
    """Hold the store's writer lock across a read-modify-write that also charges cards.

    Not ``core.transaction()``: the payment functions called inside save on their own,
    and SQLite transactions do not nest.
    """
    return core._write_lock


# --------------------------------------------------------------------------- charging


def payment_method_for(sub: dict[str, Any]) -> str | None:
    """The card a renewal is charged to, in Stripe's order: the subscription's
    ``default_payment_method``, else the customer's
    ``invoice_settings.default_payment_method``."""
    if sub.get("default_payment_method"):
        return sub["default_payment_method"]
    customer = core.get(sub["customer"], "customer") or {}
    settings = customer.get("invoice_settings") or {}
    return settings.get("default_payment_method")


def charge_invoice(
    invoice: dict[str, Any], pm_id: str | None, *, off_session: bool, description: str
) -> tuple[dict[str, Any] | None, core.StripeError | None]:
    """Charge an invoice's amount with a PaymentIntent; returns (payment_intent, error)."""
    from . import payments

    if not pm_id:
        return None, core.StripeError(
            "This customer has no attached payment source or default payment method.",
            status=402,
            type="card_error",
        )
    pi = payments.create_payment_intent(
        {
            "amount": invoice["amount_due"],
            "currency": invoice["currency"],
            "customer": invoice["customer"],
            "payment_method": pm_id,
            "allowed_payment_method_types": ["card"],
            "description": description,
        }
    )
    confirm: dict[str, Any] = {"payment_method": pm_id}
    if off_session:
        confirm["off_session"] = "true"
    pi = payments.confirm_payment_intent(pi, confirm, raise_on_decline=False)
    error = pi.get("last_payment_error")
    if error:
        return pi, core.StripeError(
            error.get("message") or "Your card was declined.",
            status=402,
            type="card_error",
            code=error.get("code"),
            decline_code=error.get("decline_code"),
        )
    if pi.get("status") != "succeeded":
        # Off-session renewals cannot ask the customer to authenticate.
        return pi, core.StripeError(
            "This payment requires authentication.",
            status=402,
            type="card_error",
            code="authentication_required",
            decline_code="authentication_required",
        )
    return pi, None


def collect(
    invoice: dict[str, Any],
    pm_id: str | None,
    *,
    off_session: bool,
    description: str,
    automatic: bool = True,
) -> tuple[dict[str, Any], core.StripeError | None]:
    """Try to pay an open invoice with ``pm_id`` and record what happened:
    ``invoice.paid`` + ``invoice.payment_succeeded``, or ``invoice.payment_failed``.  An
    invoice with nothing due is settled without a charge.  ``automatic``: Stripe's own
    attempt, which schedules the next retry when it fails.  Returns (invoice, error)."""
    if invoice["amount_due"] == 0:
        invoice = mark_invoice_paid(invoice, None)
        record_invoice_paid(invoice)
        return invoice, None
    pi, err = charge_invoice(invoice, pm_id, off_session=off_session, description=description)
    if err is None and pi is not None:
        invoice = mark_invoice_paid(invoice, pi)
        record_invoice_paid(invoice)
        return invoice, None
    invoice = mark_invoice_failed(invoice, pi, reschedule=automatic)
    core.record_event("invoice.payment_failed", invoice)
    return invoice, err


def open_invoices_of(sub_id: str) -> list[dict[str, Any]]:
    return core.all_of(
        "invoice",
        lambda i: (
            i["status"] == "open"
            and ((i.get("parent") or {}).get("subscription_details") or {}).get("subscription")
            == sub_id
        ),
    )


def start_subscription(
    customer_id: str,
    items: list[tuple[dict[str, Any], int]],
    *,
    default_payment_method: str | None,
    payment_intent: dict[str, Any] | None,
    metadata: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create an active subscription whose first invoice was paid by ``payment_intent``.

    Used by Checkout after the card was charged: records customer.subscription.created,
    invoice.created/finalized/paid/payment_succeeded.  Returns (subscription, invoice).
    """
    sub = build_subscription(
        customer_id, items, default_payment_method=default_payment_method, metadata=metadata
    )
    invoice = build_invoice(sub, "subscription_create", (sub["created"], sub["created"]))
    sub["latest_invoice"] = invoice["id"]
    core.save(sub)
    core.save(invoice)
    core.record_event("customer.subscription.created", sub)
    record_invoice_created(invoice)
    if payment_intent is not None:
        invoice = mark_invoice_paid(invoice, payment_intent)
        record_invoice_paid(invoice)
    return sub, invoice


# --------------------------------------------------------------------------- subscriptions API


def _subscription_or_404(sub_id: str) -> dict[str, Any]:
    return core.get_or_404(sub_id, "subscription")


@bp.get("/subscriptions/<sub_id>")
@strict.accepts("SubscriptionRetrieveParams", strict.RETRIEVE)
def retrieve_subscription(sub_id: str):
    core.authenticate()
    return core.respond(_subscription_or_404(sub_id))


@bp.get("/subscriptions")
@strict.accepts("SubscriptionListParams", [*strict.LIST, "status", "customer", "price"])
def list_subscriptions():
    core.authenticate()
    p = core.params()
    status = p.get("status")
    customer = p.get("customer")
    price = p.get("price")

    def match(sub: dict[str, Any]) -> bool:
        if customer and sub["customer"] != customer:
            return False
        if price and all(i["price"]["id"] != price for i in sub["items"]["data"]):
            return False
        if status == "all":
            return True
        if status == "ended":
            return sub["status"] in ("canceled", "incomplete_expired")
        if status:
            return sub["status"] == status
        # Like Stripe, the default list leaves out ended subscriptions.
        return sub["status"] not in ("canceled", "incomplete_expired")

    return core.list_response(core.all_of("subscription", match), "/v1/subscriptions")


@bp.post("/subscriptions")
@strict.accepts(
    "SubscriptionCreateParams",
    ["customer", "items.price", "items.quantity", "default_payment_method", "metadata", "expand"],
)
def create_subscription():
    """Create a subscription for a customer and charge its first invoice at once."""
    core.authenticate()
    p = core.params()
    customer_id = p.get("customer")
    if not customer_id:
        raise core.missing("customer")
    customer = core.get_or_404(customer_id, "customer", "customer")
    raw_items = p.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise core.missing("items")
    items: list[tuple[dict[str, Any], int]] = []
    for i, raw in enumerate(raw_items):
        param = f"items[{i}][price]"
        price_id = raw.get("price") if isinstance(raw, dict) else None
        if not price_id:
            raise core.missing(param)
        price = core.get_or_missing(price_id, "price", param)
        if price.get("type") != "recurring":
            raise core.invalid(
                param,
                "The price specified is set to `type=one_time` but this field only "
                "accepts prices with `type=recurring`.",
            )
        quantity = core.to_int(raw.get("quantity", 1), f"items[{i}][quantity]")
        items.append((price, quantity))
    if len({price["currency"] for price, _ in items}) > 1:
        raise core.invalid("items", "All prices on a subscription must have the same currency.")
    pm_id = p.get("default_payment_method") or None
    if pm_id:
        _check_customer_pm(pm_id, customer_id, "default_payment_method")
    pm_for_charge = pm_id or (customer.get("invoice_settings") or {}).get("default_payment_method")
    metadata = core.metadata_from(p)
    with serialised():
        sub = build_subscription(
            customer_id, items, default_payment_method=pm_id, metadata=metadata
        )
        invoice = build_invoice(sub, "subscription_create", (sub["created"], sub["created"]))
        sub["latest_invoice"] = invoice["id"]
        sub["status"] = "incomplete"
        core.save(sub)
        core.save(invoice)
        core.record_event("customer.subscription.created", sub)
        record_invoice_created(invoice)
        pi, err = charge_invoice(
            invoice, pm_for_charge, off_session=False, description="Subscription creation"
        )
        if err is None and pi is not None:
            invoice = mark_invoice_paid(invoice, pi)
            record_invoice_paid(invoice)
            _update_subscription(sub, status="active")
        else:
            invoice = mark_invoice_failed(invoice, pi)
            core.record_event("invoice.payment_failed", invoice)
    return core.respond(core.get(sub["id"], "subscription"))


def _check_customer_pm(pm_id: str, customer_id: str, param: str) -> dict[str, Any]:
    from . import payments

    try:
        pm = payments.resolve_payment_method(pm_id)
    except core.StripeError:
        raise core.StripeError(
            f"No such PaymentMethod: '{pm_id}'", code="resource_missing", param=param
        ) from None
    if pm.get("customer") != customer_id:
        raise core.invalid(
            param,
            f"The customer does not have a payment method with the ID {pm_id}. The payment "
            "method must be attached to the customer.",
        )
    return pm


def _update_subscription(sub: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Apply changes, save, and record customer.subscription.updated with what changed."""
    previous = {k: copy.deepcopy(sub.get(k)) for k, v in changes.items() if sub.get(k) != v}
    if not previous:
        return sub
    sub.update(changes)
    core.save(sub)
    core.record_event("customer.subscription.updated", sub, previous_attributes=previous)
    return sub


PRORATION_BEHAVIORS = ("create_prorations", "none", "always_invoice")


@bp.post("/subscriptions/<sub_id>")
@strict.accepts(
    "SubscriptionUpdateParams",
    [
        "metadata",
        "cancel_at_period_end",
        "default_payment_method",
        "description",
        "items.id",
        "items.price",
        "proration_behavior",
        "expand",
    ],
)
def update_subscription(sub_id: str):
    core.authenticate()
    p = core.params()
    with serialised():
        sub = _subscription_or_404(sub_id)
        changes: dict[str, Any] = {}
        if "metadata" in p:
            changes["metadata"] = core.metadata_from(p, sub.get("metadata"))
        ended = sub["status"] in ("canceled", "incomplete_expired")
        if ended and any(
            k in p for k in ("cancel_at_period_end", "default_payment_method", "items")
        ):
            raise core.StripeError(
                "A canceled subscription can only update its cancellation_details and metadata.",
                code="resource_missing",
            )
        if "cancel_at_period_end" in p:
            value = str(p["cancel_at_period_end"]).lower()
            if value not in ("true", "false"):
                raise core.invalid("cancel_at_period_end", "Invalid boolean: " + value)
            at_end = value == "true"
            period_end = max(i["current_period_end"] for i in sub["items"]["data"])
            changes["cancel_at_period_end"] = at_end
            changes["cancel_at"] = period_end if at_end else None
            changes["canceled_at"] = core.now() if at_end else None
            changes["cancellation_details"] = {
                "comment": None,
                "feedback": None,
                "reason": "cancellation_requested" if at_end else None,
            }
        if "default_payment_method" in p:
            pm_id = p["default_payment_method"] or None
            if pm_id:
                _check_customer_pm(pm_id, sub["customer"], "default_payment_method")
            changes["default_payment_method"] = pm_id
        if "description" in p:
            changes["description"] = p["description"] or None
        behavior = p.get("proration_behavior") or "create_prorations"
        if behavior not in PRORATION_BEHAVIORS:
            raise core.invalid("proration_behavior")
        change = _price_change(sub, p["items"]) if "items" in p else None
        sub = _update_subscription(sub, **changes)
        if change is not None:
            sub = change_price(sub, *change, behavior)
    return core.respond(sub)


def _price_change(sub: dict[str, Any], raw: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The (item, new price) that ``items[0][id]`` + ``items[0][price]`` ask for; None when
    the price stays the same.  One item at a time, as the shop (and the portal) change it."""
    if not isinstance(raw, list) or len(raw) != 1 or not isinstance(raw[0], dict):
        raise core.invalid("items", "Pass one item: items[0][id] and items[0][price].")
    item_id, price_id = raw[0].get("id"), raw[0].get("price")
    if not item_id:
        raise core.missing("items[0][id]")
    if not price_id:
        raise core.missing("items[0][price]")
    item = next((i for i in sub["items"]["data"] if i["id"] == item_id), None)
    if item is None:
        raise core.invalid(
            "items[0][id]",
            f"The subscription item {item_id} does not belong to subscription {sub['id']}.",
        )
    price = core.get_or_missing(price_id, "price", "items[0][price]")
    if price.get("type") != "recurring":
        raise core.invalid(
            "items[0][price]",
            "The price specified is set to `type=one_time` but this field only accepts "
            "prices with `type=recurring`.",
        )
    if not price.get("active", True):
        raise core.invalid("items[0][price]", f"The price specified ({price_id}) is inactive.")
    if price["currency"] != sub["currency"]:
        raise core.invalid(
            "items[0][price]",
            "The price specified has a different currency from the subscription: "
            f"{price['currency']} instead of {sub['currency']}.",
        )
    if price["id"] == item["price"]["id"]:
        return None
    return item, price


def _interval(price: dict[str, Any]) -> tuple[str, int]:
    recurring = price.get("recurring") or {}
    return recurring.get("interval", "month"), int(recurring.get("interval_count", 1))


def change_price(
    sub: dict[str, Any], item: dict[str, Any], price: dict[str, Any], behavior: str
) -> dict[str, Any]:
    """Move one item to another price, as Stripe does:

    - the same billing interval: the period stays; with ``create_prorations`` (Stripe's
      default) a credit for the unused time on the old price and a charge for the rest of
      the period on the new one wait for the next invoice (here: kept on the subscription
      and added to the next renewal's invoice; there is no ``/v1/invoiceitems`` API);
      ``always_invoice`` bills them at once; ``none`` makes none;
    - another interval (monthly <-> yearly): the billing cycle restarts now and an invoice
      (``billing_reason=subscription_update``) for the new period is charged at once, less
      the credit for the unused old time (unless ``none``).  Credit beyond the amount goes
      to the customer's balance, which later invoices use.

    Records ``customer.subscription.updated`` (``previous_attributes``: ``items``, and the
    anchor and invoice when they move), then the invoice's events.  A failed charge leaves
    the invoice open and the subscription ``past_due``.
    """
    now = core.now()
    old_items = copy.deepcopy(sub["items"])
    old_price = item["price"]
    new_period = _interval(price) != _interval(old_price)
    prorations = []
    if behavior != "none":
        prorations = proration_lines(sub, item, old_price, None if new_period else price, now)
    item["price"] = price
    item["plan"] = plan_from_price(price)
    previous: dict[str, Any] = {"items": old_items}
    invoice = None
    if new_period:
        previous["billing_cycle_anchor"] = sub["billing_cycle_anchor"]
        previous["latest_invoice"] = sub.get("latest_invoice")
        sub["billing_cycle_anchor"] = now
        interval, count = _interval(price)
        for each in sub["items"]["data"]:
            each["current_period_start"] = now
            each["current_period_end"] = add_interval(now, interval, count)
        invoice = build_invoice(
            sub, "subscription_update", (now, now), prorations=prorations, apply_balance=True
        )
    elif behavior == "always_invoice" and prorations:
        previous["latest_invoice"] = sub.get("latest_invoice")
        invoice = build_invoice(
            sub,
            "subscription_update",
            (now, now),
            prorations=prorations,
            include_items=False,
            apply_balance=True,
        )
    elif prorations:
        sub["_pending_prorations"] = (sub.get("_pending_prorations") or []) + prorations
    if invoice is not None:
        sub["latest_invoice"] = invoice["id"]
        core.save(invoice)
    core.save(sub)
    core.record_event("customer.subscription.updated", sub, previous_attributes=previous)
    log.info("subscription %s: %s -> %s", sub["id"], old_price["id"], price["id"])
    if invoice is None:
        return sub
    apply_customer_balance(invoice)
    record_invoice_created(invoice)
    invoice, err = collect(
        invoice, payment_method_for(sub), off_session=True, description="Subscription update"
    )
    if err is not None:
        log.info("payment for the change of %s failed: %s", sub["id"], err)
        sub = _update_subscription(sub, status="past_due")
    return sub


def end_subscription(sub: dict[str, Any], reason: str = "cancellation_requested") -> dict:
    """Cancel now: status canceled, customer.subscription.deleted."""
    now = core.now()
    sub.update(
        status="canceled",
        ended_at=now,
        canceled_at=sub.get("canceled_at") or now,
        cancel_at=sub.get("cancel_at") or None,
    )
    sub["cancellation_details"] = {
        "comment": None,
        "feedback": None,
        "reason": sub["cancellation_details"].get("reason") or reason,
    }
    core.save(sub)
    core.record_event("customer.subscription.deleted", sub)
    return sub


@bp.delete("/subscriptions/<sub_id>")
@strict.accepts("SubscriptionCancelParams", strict.RETRIEVE)
def cancel_subscription(sub_id: str):
    core.authenticate()
    with serialised():
        sub = _subscription_or_404(sub_id)
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise core.StripeError(
                f"No such subscription: '{sub_id}'", status=404, code="resource_missing"
            )
        sub = end_subscription(sub)
    return core.respond(sub)


@bp.get("/subscription_items")
@strict.accepts("SubscriptionItemListParams", [*strict.LIST, "subscription"])
def list_subscription_items():
    """The items of one subscription (the ``url`` of a subscription's ``items`` list)."""
    core.authenticate()
    sub_id = core.params().get("subscription")
    if not sub_id:
        raise core.missing("subscription")
    sub = core.present(_subscription_or_404(sub_id))
    return core.list_response(sub["items"]["data"], "/v1/subscription_items")


# --------------------------------------------------------------------------- renewals


def advance(sub: dict[str, Any]) -> dict[str, Any]:
    """Move a subscription to its next period: end it, or bill the new period."""
    if sub["cancel_at_period_end"]:
        return end_subscription(sub)
    old_items = copy.deepcopy(sub["items"])
    old_latest = sub.get("latest_invoice")
    old_start = min(i["current_period_start"] for i in sub["items"]["data"])
    old_end = max(i["current_period_end"] for i in sub["items"]["data"])
    new_end = next_period_end(sub, old_end)
    for item in sub["items"]["data"]:
        item["current_period_start"] = old_end
        item["current_period_end"] = new_end
    invoice = build_invoice(sub, "subscription_cycle", (old_start, old_end), apply_balance=True)
    sub["latest_invoice"] = invoice["id"]
    core.save(sub)
    core.save(invoice)
    core.record_event(
        "customer.subscription.updated",
        sub,
        previous_attributes={"items": old_items, "latest_invoice": old_latest},
    )
    apply_customer_balance(invoice)
    record_invoice_created(invoice)
    invoice, err = collect(
        invoice, payment_method_for(sub), off_session=True, description="Subscription update"
    )
    if err is None:
        sub = _update_subscription(sub, status="active")
    else:
        log.info("renewal of %s failed: %s", sub["id"], err)
        sub = _update_subscription(sub, status="past_due")
    return sub


class AdvanceParams(TypedDict):
    """``POST /v1/test_helpers/subscriptions/<id>/advance`` (emulator only)."""

    expand: NotRequired[list[str]]


@bp.post("/test_helpers/subscriptions/<sub_id>/advance")
@strict.accepts(AdvanceParams, strict.RETRIEVE)
def advance_subscription(sub_id: str):
    """Test helper (emulator only): bill the next period now, like a test clock would."""
    core.authenticate()
    with serialised():
        sub = _subscription_or_404(sub_id)
        if sub["status"] in ("canceled", "incomplete_expired"):
            raise core.StripeError(
                "This subscription has ended and cannot be advanced.", param="subscription"
            )
        sub = advance(sub)
    return core.respond(sub)


# --------------------------------------------------------------------------- invoices API


@bp.get("/invoices/<invoice_id>")
@strict.accepts("InvoiceRetrieveParams", strict.RETRIEVE)
def retrieve_invoice(invoice_id: str):
    core.authenticate()
    return core.respond(core.get_or_404(invoice_id, "invoice"))


@bp.get("/invoices")
@strict.accepts("InvoiceListParams", [*strict.LIST, "customer", "subscription", "status"])
def list_invoices():
    core.authenticate()
    p = core.params()
    customer, subscription, status = p.get("customer"), p.get("subscription"), p.get("status")

    def match(inv: dict[str, Any]) -> bool:
        parent = (inv.get("parent") or {}).get("subscription_details") or {}
        return (
            (not customer or inv["customer"] == customer)
            and (not subscription or parent.get("subscription") == subscription)
            and (not status or inv["status"] == status)
        )

    return core.list_response(core.all_of("invoice", match), "/v1/invoices")


def pay_invoice(
    invoice: dict[str, Any], pm_id: str | None = None, *, off_session: bool = True
) -> dict[str, Any]:
    """Pay an open invoice now (``POST /v1/invoices/{id}/pay``, and the portal after a card
    update): with ``pm_id``, else the invoice's, the subscription's or the customer's
    default card.  Success records ``invoice.paid``/``invoice.payment_succeeded`` and moves a
    ``past_due``/``unpaid``/``incomplete`` subscription with nothing else open to
    ``active`` (``customer.subscription.updated``); a decline records
    ``invoice.payment_failed`` and raises Stripe's 402 card error.  Hold ``serialised()``."""
    if invoice["status"] == "paid":
        raise core.StripeError("Invoice is already paid")
    if invoice["status"] != "open":
        raise core.StripeError(
            f"You can only pay an open invoice. This invoice is {invoice['status']}."
        )
    sub_id = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    sub = core.get(sub_id, "subscription") if sub_id else None
    if pm_id:
        _check_customer_pm(pm_id, invoice["customer"], "payment_method")
    else:
        pm_id = invoice.get("default_payment_method") or (
            payment_method_for(sub)
            if sub is not None
            else (
                (core.get(invoice["customer"], "customer") or {}).get("invoice_settings") or {}
            ).get("default_payment_method")
        )
    invoice, err = collect(
        invoice, pm_id, off_session=off_session, description="Invoice payment", automatic=False
    )
    if err is not None:
        if err.body.get("code") == "authentication_required" and not off_session:
            raise core.StripeError(
                "This payment requires additional user action before it can be completed "
                "successfully.",
                status=402,
                type="card_error",
                code="invoice_payment_intent_requires_action",
            )
        raise err
    if (
        sub is not None
        and sub["status"] in ("past_due", "unpaid", "incomplete")
        and not open_invoices_of(sub["id"])
    ):
        _update_subscription(sub, status="active")
    return invoice


@bp.post("/invoices/<invoice_id>/pay")
@strict.accepts("InvoicePayParams", ["payment_method", "off_session", "expand"])
def pay_invoice_route(invoice_id: str):
    core.authenticate()
    p = core.params()
    off_session = str(p.get("off_session", "true")).lower()
    if off_session not in ("true", "false"):
        raise core.invalid("off_session", "Invalid boolean: " + off_session)
    with serialised():
        invoice = pay_invoice(
            core.get_or_404(invoice_id, "invoice"),
            p.get("payment_method") or None,
            off_session=off_session == "true",
        )
    return core.respond(invoice)


@bp.get("/invoices/<invoice_id>/lines")
@strict.accepts("InvoiceLineItemListParams", strict.LIST)
def list_invoice_lines(invoice_id: str):
    core.authenticate()
    invoice = core.get_or_404(invoice_id, "invoice")
    return core.list_response(invoice["lines"]["data"], request.path)


@bp.get("/invoice_payments")
@strict.accepts("InvoicePaymentListParams", [*strict.LIST, "invoice"])
def list_invoice_payments():
    core.authenticate()
    return core.list_matching("invoice_payment", "/v1/invoice_payments", "invoice")


# Checkout Sessions share this blueprint's /v1 prefix (no edit to the app factory needed).
from . import checkout  # noqa: E402

bp.register_blueprint(checkout.bp)
