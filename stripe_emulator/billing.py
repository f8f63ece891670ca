"""Subscriptions and invoices (enough for a subscription bought through Checkout).

A subscription's items carry their billing period (API 2026: ``current_period_start/end``
live on the subscription items).  Each period's invoice is paid with a PaymentIntent
charged to the customer's default payment method; ``POST
/v1/test_helpers/subscriptions/{id}/advance`` moves a subscription to its next period so
renewals that succeed and renewals that fail can be exercised.  Checkout Sessions live in
``checkout.py`` (a nested blueprint registered at the end of this module).
"""

from __future__ import annotations

import calendar
import copy
import logging
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, request

from . import core

log = logging.getLogger(__name__)

bp = Blueprint("billing", __name__, url_prefix="/v1")

# How long Stripe's Smart Retries wait before the next attempt (shown on a failed invoice).
RETRY_DELAY = 3 * 24 * 3600
ACTIVE_STATUSES = ("active", "past_due", "trialing", "unpaid", "incomplete", "paused")


def serialised():
    """Hold the store's writer lock across a read-modify-write that also charges cards.

    Not ``core.transaction()``: the payment functions called inside save on their own,
    and SQLite transactions do not nest.
    """
    return core._write_lock


# --------------------------------------------------------------------------- periods


def add_interval(ts: int, interval: str, count: int, anchor_day: int | None = None) -> int:
    """``ts`` moved on by ``count`` intervals; months keep the anchor's day (clamped)."""
    if interval == "day":
        return ts + 86400 * count
    if interval == "week":
        return ts + 7 * 86400 * count
    months = count * (12 if interval == "year" else 1)
    dt = datetime.fromtimestamp(ts, UTC)
    month_index = dt.month - 1 + months
    year, month = dt.year + month_index // 12, month_index % 12 + 1
    day = min(anchor_day or dt.day, calendar.monthrange(year, month)[1])
    return int(dt.replace(year=year, month=month, day=day).timestamp())


def _next_period_end(sub: dict[str, Any], start: int) -> int:
    recurring = sub["items"]["data"][0]["price"]["recurring"]
    anchor = datetime.fromtimestamp(sub["billing_cycle_anchor"], UTC).day
    return add_interval(start, recurring["interval"], recurring["interval_count"], anchor)


# --------------------------------------------------------------------------- builders


def plan_from_price(price: dict[str, Any]) -> dict[str, Any]:
    """The legacy ``plan`` view of a recurring price (subscription items still carry it)."""
    recurring = price.get("recurring") or {}
    amount = price.get("unit_amount")
    return {
        "id": price["id"],
        "object": "plan",
        "active": price.get("active", True),
        "amount": amount,
        "amount_decimal": None if amount is None else str(amount),
        "billing_scheme": price.get("billing_scheme") or "per_unit",
        "created": price.get("created") or core.now(),
        "currency": price["currency"],
        "interval": recurring.get("interval", "month"),
        "interval_count": recurring.get("interval_count", 1),
        "livemode": False,
        "metadata": price.get("metadata") or {},
        "meter": None,
        "nickname": price.get("nickname"),
        "product": price.get("product"),
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": recurring.get("usage_type", "licensed"),
    }


def build_subscription(
    customer_id: str,
    items: list[tuple[dict[str, Any], int]],
    *,
    default_payment_method: str | None,
    metadata: dict[str, str] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """A new, not yet saved, active subscription whose first period starts now."""
    start = core.now()
    sub_id = core.new_id("sub")
    first_price = items[0][0]
    sub: dict[str, Any] = core.base_object(
        "sub",
        "subscription",
        application=None,
        application_fee_percent=None,
        automatic_tax={"disabled_reason": None, "enabled": False, "liability": None},
        billing_cycle_anchor=start,
        billing_cycle_anchor_config=None,
        billing_mode={"flexible": None, "type": "classic"},
        billing_schedules=[],
        billing_thresholds=None,
        cancel_at=None,
        cancel_at_period_end=False,
        canceled_at=None,
        cancellation_details={"comment": None, "feedback": None, "reason": None},
        collection_method="charge_automatically",
        currency=first_price["currency"],
        customer=customer_id,
        customer_account=None,
        days_until_due=None,
        default_payment_method=default_payment_method,
        default_source=None,
        default_tax_rates=[],
        description=description,
        discounts=[],
        ended_at=None,
        invoice_settings={"account_tax_ids": None, "issuer": {"type": "self"}},
        items=None,
        latest_invoice=None,
        metadata=dict(metadata or {}),
        next_pending_invoice_item_invoice=None,
        on_behalf_of=None,
        pause_collection=None,
        payment_settings={
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        pending_invoice_item_interval=None,
        pending_setup_intent=None,
        pending_update=None,
        schedule=None,
        start_date=start,
        status="active",
        test_clock=None,
        transfer_data=None,
        trial_end=None,
        trial_settings={"end_behavior": {"missing_payment_method": "create_invoice"}},
        trial_start=None,
    )
    sub["id"] = sub_id
    recurring = first_price["recurring"]
    end = add_interval(start, recurring["interval"], recurring["interval_count"])
    data = [
        {
            "id": core.new_id("si", 14),
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": start,
            "current_period_end": end,
            "current_period_start": start,
            "discounts": [],
            "metadata": {},
            "plan": plan_from_price(price),
            "price": price,
            "quantity": quantity,
            "subscription": sub_id,
            "tax_rates": [],
        }
        for price, quantity in items
    ]
    sub["items"] = core.list_of(data, f"/v1/subscription_items?subscription={sub_id}")
    return sub


def _line_description(price: dict[str, Any], quantity: int) -> str:
    product = core.get(price.get("product"), "product") or {}
    name = product.get("name") or price.get("nickname") or price["id"]
    return f"{quantity} × {name}"


def build_invoice(
    sub: dict[str, Any], billing_reason: str, period: tuple[int, int]
) -> dict[str, Any]:
    """A finalized (open) invoice for the subscription's current items.

    ``period`` is the invoice's own period (for a renewal, the period that just ended);
    each line covers the item's current period.
    """
    created = core.now()
    invoice_id = core.new_id("in")
    customer = core.get(sub["customer"], "customer") or {}
    lines = []
    for item in sub["items"]["data"]:
        price = item["price"]
        amount = (price.get("unit_amount") or 0) * (item.get("quantity") or 1)
        lines.append(
            {
                "id": core.new_id("il"),
                "object": "line_item",
                "amount": amount,
                "currency": price["currency"],
                "description": _line_description(price, item.get("quantity") or 1),
                "discount_amounts": [],
                "discountable": True,
                "discounts": [],
                "invoice": invoice_id,
                "livemode": False,
                "metadata": {},
                "parent": {
                    "invoice_item_details": None,
                    "subscription_item_details": {
                        "invoice_item": None,
                        "proration": False,
                        "proration_details": {"credited_items": None},
                        "subscription": sub["id"],
                        "subscription_item": item["id"],
                    },
                    "type": "subscription_item_details",
                },
                "period": {
                    "end": item["current_period_end"],
                    "start": item["current_period_start"],
                },
                "pretax_credit_amounts": [],
                "pricing": {
                    "price_details": {"price": price["id"], "product": price.get("product")},
                    "type": "price_details",
                    "unit_amount_decimal": str(price.get("unit_amount") or 0),
                },
                "quantity": item.get("quantity"),
                "subscription": sub["id"],
                "subtotal": amount,
                "taxes": [],
            }
        )
    total = sum(line["amount"] for line in lines)
    number_seq = len(core.all_of("invoice")) + 1
    invoice = core.base_object(
        "in",
        "invoice",
        account_country="US",
        account_name="Stripe emulator",
        account_tax_ids=None,
        amount_due=total,
        amount_overpaid=0,
        amount_paid=0,
        amount_remaining=total,
        amount_shipping=0,
        application=None,
        attempt_count=0,
        attempted=False,
        auto_advance=True,
        automatic_tax={
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        automatically_finalizes_at=None,
        billing_reason=billing_reason,
        collection_method="charge_automatically",
        created=created,
        currency=sub["currency"],
        custom_fields=None,
        customer=sub["customer"],
        customer_account=None,
        customer_address=None,
        customer_email=customer.get("email"),
        customer_name=customer.get("name"),
        customer_phone=None,
        customer_shipping=None,
        customer_tax_exempt="none",
        customer_tax_ids=[],
        default_payment_method=None,
        default_source=None,
        default_tax_rates=[],
        description=None,
        discounts=[],
        due_date=None,
        effective_at=created,
        ending_balance=0,
        footer=None,
        from_invoice=None,
        hosted_invoice_url=None,
        invoice_pdf=None,
        issuer={"type": "self"},
        last_finalization_error=None,
        latest_revision=None,
        lines=core.list_of(lines, f"/v1/invoices/{invoice_id}/lines"),
        metadata={},
        next_payment_attempt=None,
        number=f"EMU-{number_seq:04d}",
        on_behalf_of=None,
        parent={
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(sub.get("metadata") or {}),
                "subscription": sub["id"],
            },
            "type": "subscription_details",
        },
        payment_settings={
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        period_end=period[1],
        period_start=period[0],
        post_payment_credit_notes_amount=0,
        pre_payment_credit_notes_amount=0,
        receipt_number=None,
        rendering=None,
        shipping_cost=None,
        shipping_details=None,
        starting_balance=0,
        statement_descriptor=None,
        status="open",
        status_transitions={
            "finalized_at": created,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        subtotal=total,
        subtotal_excluding_tax=total,
        test_clock=None,
        total=total,
        total_discount_amounts=[],
        total_excluding_tax=total,
        total_pretax_credit_amounts=[],
        total_taxes=[],
        webhooks_delivered_at=created,
    )
    invoice["id"] = invoice_id
    return invoice


def _invoice_payment(invoice: dict[str, Any], pi: dict[str, Any]) -> dict[str, Any]:
    paid = pi.get("status") == "succeeded"
    return core.save(
        core.base_object(
            "inpay",
            "invoice_payment",
            amount_paid=pi["amount"] if paid else None,
            amount_requested=invoice["amount_due"],
            currency=invoice["currency"],
            invoice=invoice["id"],
            is_default=True,
            payment={
                "charge": None,
                "payment_intent": pi["id"],
                "payment_record": None,
                "type": "payment_intent",
            },
            status="paid" if paid else "open",
            status_transitions={"canceled_at": None, "paid_at": core.now() if paid else None},
        )
    )


def _invoice_payments(invoice: dict[str, Any]) -> dict[str, Any] | None:
    """``expand[]=payments`` on an invoice: its InvoicePayment list."""
    if invoice.get("object") != "invoice":
        return None
    payments = core.all_of("invoice_payment", lambda p: p["invoice"] == invoice["id"])
    return core.list_of(payments, f"/v1/invoice_payments?invoice={invoice['id']}")


core.register_present_hook("payments", _invoice_payments)


def mark_invoice_paid(invoice: dict[str, Any], pi: dict[str, Any]) -> dict[str, Any]:
    """Record a successful PaymentIntent as the invoice's payment."""
    paid_at = core.now()
    invoice.update(
        amount_paid=invoice["amount_due"],
        amount_remaining=0,
        attempt_count=invoice["attempt_count"] + 1,
        attempted=True,
        auto_advance=False,
        next_payment_attempt=None,
        status="paid",
    )
    invoice["status_transitions"]["paid_at"] = paid_at
    _invoice_payment(invoice, pi)
    return core.save(invoice)


def mark_invoice_failed(invoice: dict[str, Any], pi: dict[str, Any] | None) -> dict[str, Any]:
    """A failed attempt: the invoice stays open and Stripe would retry later."""
    invoice.update(
        attempt_count=invoice["attempt_count"] + 1,
        attempted=True,
        next_payment_attempt=core.now() + RETRY_DELAY,
    )
    if pi is not None:
        _invoice_payment(invoice, pi)
    return core.save(invoice)


def record_invoice_created(invoice: dict[str, Any]) -> None:
    """Events for a new invoice; it is finalized at once (charge_automatically)."""
    draft = copy.deepcopy(invoice)
    draft.update(status="draft", effective_at=None, number=None)
    draft["status_transitions"]["finalized_at"] = None
    core.record_event("invoice.created", draft)
    core.record_event("invoice.finalized", invoice)


def record_invoice_paid(invoice: dict[str, Any]) -> None:
    core.record_event("invoice.paid", invoice)
    core.record_event("invoice.payment_succeeded", invoice)


# --------------------------------------------------------------------------- charging


def payment_method_for(sub: dict[str, Any]) -> str | None:
    """The card a renewal is charged to: the customer's default, else the subscription's."""
    customer = core.get(sub["customer"], "customer") or {}
    settings = customer.get("invoice_settings") or {}
    return settings.get("default_payment_method") or sub.get("default_payment_method")


def charge_invoice(
    invoice: dict[str, Any], pm_id: str | None, *, off_session: bool, description: str
) -> tuple[dict[str, Any] | None, core.StripeError | None]:
    """Charge an invoice's amount with a PaymentIntent; returns (payment_intent, error)."""
    from . import payments

    if not pm_id:
        return None, core.StripeError(
            "This customer has no attached payment source or default payment method.",
            code="invoice_no_customer_line_items",
        )
    pi = payments.create_payment_intent(
        {
            "amount": invoice["amount_due"],
            "currency": invoice["currency"],
            "customer": invoice["customer"],
            "payment_method": pm_id,
            "payment_method_types": ["card"],
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


# --------------------------------------------------------------------------- presenters


def _present_subscription(sub: dict[str, Any]) -> dict[str, Any]:
    # Prices may change after the subscription was made (e.g. archived): show them as now.
    sub = copy.deepcopy(sub)
    for item in sub["items"]["data"]:
        price = core.get(item["price"]["id"], "price")
        if price is not None:
            item["price"] = price
            item["plan"] = plan_from_price(price)
    return sub


core.register_presenter("subscription", _present_subscription)


# --------------------------------------------------------------------------- subscriptions API


def _subscription_or_404(sub_id: str) -> dict[str, Any]:
    return core.get_or_404(sub_id, "subscription")


@bp.get("/subscriptions/<sub_id>")
def retrieve_subscription(sub_id: str):
    core.authenticate()
    return core.respond(_subscription_or_404(sub_id))


@bp.get("/subscriptions")
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
def create_subscription():
    """Create a subscription for a customer and charge its first invoice at once."""
    core.authenticate()
    p = core.params()
    customer_id = p.get("customer")
    if not customer_id:
        raise core.missing("customer")
    customer = core.get(customer_id, "customer")
    if customer is None:
        raise core.not_found(customer_id, "customer")
    raw_items = p.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise core.missing("items")
    items: list[tuple[dict[str, Any], int]] = []
    for i, raw in enumerate(raw_items):
        param = f"items[{i}][price]"
        price_id = raw.get("price") if isinstance(raw, dict) else None
        if not price_id:
            raise core.missing(param)
        price = core.get(price_id, "price")
        if price is None:
            raise core.StripeError(
                f"No such price: '{price_id}'", code="resource_missing", param=param
            )
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


@bp.post("/subscriptions/<sub_id>")
def update_subscription(sub_id: str):
    core.authenticate()
    p = core.params()
    with serialised():
        sub = _subscription_or_404(sub_id)
        changes: dict[str, Any] = {}
        if "metadata" in p:
            changes["metadata"] = core.metadata_from(p, sub.get("metadata"))
        ended = sub["status"] in ("canceled", "incomplete_expired")
        if ended and any(k in p for k in ("cancel_at_period_end", "default_payment_method")):
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
        sub = _update_subscription(sub, **changes)
    return core.respond(sub)


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


# --------------------------------------------------------------------------- renewals


def advance(sub: dict[str, Any]) -> dict[str, Any]:
    """Move a subscription to its next period: end it, or bill the new period."""
    if sub["cancel_at_period_end"]:
        return end_subscription(sub)
    old_items = copy.deepcopy(sub["items"])
    old_latest = sub.get("latest_invoice")
    old_start = min(i["current_period_start"] for i in sub["items"]["data"])
    old_end = max(i["current_period_end"] for i in sub["items"]["data"])
    new_end = _next_period_end(sub, old_end)
    for item in sub["items"]["data"]:
        item["current_period_start"] = old_end
        item["current_period_end"] = new_end
    invoice = build_invoice(sub, "subscription_cycle", (old_start, old_end))
    sub["latest_invoice"] = invoice["id"]
    core.save(sub)
    core.save(invoice)
    core.record_event(
        "customer.subscription.updated",
        sub,
        previous_attributes={"items": old_items, "latest_invoice": old_latest},
    )
    record_invoice_created(invoice)
    pi, err = charge_invoice(
        invoice, payment_method_for(sub), off_session=True, description="Subscription update"
    )
    if err is None and pi is not None:
        invoice = mark_invoice_paid(invoice, pi)
        record_invoice_paid(invoice)
        sub = _update_subscription(sub, status="active")
    else:
        log.info("renewal of %s failed: %s", sub["id"], err)
        invoice = mark_invoice_failed(invoice, pi)
        core.record_event("invoice.payment_failed", invoice)
        sub = _update_subscription(sub, status="past_due")
    return sub


@bp.post("/test_helpers/subscriptions/<sub_id>/advance")
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
def retrieve_invoice(invoice_id: str):
    core.authenticate()
    return core.respond(core.get_or_404(invoice_id, "invoice"))


@bp.get("/invoices")
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


@bp.get("/invoices/<invoice_id>/lines")
def list_invoice_lines(invoice_id: str):
    core.authenticate()
    invoice = core.get_or_404(invoice_id, "invoice")
    return core.list_response(invoice["lines"]["data"], request.path)


@bp.get("/invoice_payments")
def list_invoice_payments():
    core.authenticate()
    invoice_id = core.params().get("invoice")
    found = core.all_of("invoice_payment", lambda p: not invoice_id or p["invoice"] == invoice_id)
    return core.list_response(found, "/v1/invoice_payments")


# Checkout Sessions share this blueprint's /v1 prefix (no edit to the app factory needed).
from . import checkout  # noqa: E402

bp.register_blueprint(checkout.bp)
