"""Subscription, invoice and invoice-payment objects, shaped as the stripe SDK declares them.

Builders and state changes only (no HTTP): ``billing.py`` has the API and the charging,
``checkout.py`` starts subscriptions from Checkout Sessions.
"""

from __future__ import annotations

import calendar
import copy
from datetime import UTC, datetime
from typing import Any

from . import core

# How long Stripe's Smart Retries wait before the next attempt (shown on a failed invoice).
RETRY_DELAY = 3 * 24 * 3600

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


def next_period_end(sub: dict[str, Any], start: int) -> int:
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
