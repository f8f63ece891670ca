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


def _line(
    invoice_id: str,
    sub: dict[str, Any],
    item: dict[str, Any],
    price: dict[str, Any],
    *,
    amount: int,
    period: tuple[int, int],
    description: str | None = None,
    proration: bool = False,
    credited: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One invoice line for a subscription item (a proration when ``proration``)."""
    quantity = item.get("quantity") or 1
    return {
        "id": core.new_id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": price["currency"],
        "description": description or _line_description(price, quantity),
        "discount_amounts": [],
        "discountable": not proration,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "parent": {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "proration_details": {"credited_items": credited},
                "subscription": sub["id"],
                "subscription_item": item["id"],
            },
            "type": "subscription_item_details",
        },
        "period": {"end": period[1], "start": period[0]},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price.get("product")},
            "type": "price_details",
            "unit_amount_decimal": str(price.get("unit_amount") or 0),
        },
        "quantity": quantity,
        "subscription": sub["id"],
        "subtotal": amount,
        "taxes": [],
    }


def proration_lines(
    sub: dict[str, Any],
    item: dict[str, Any],
    old_price: dict[str, Any],
    new_price: dict[str, Any] | None,
    at: int,
) -> list[dict[str, Any]]:
    """Stripe's prorations for changing ``item`` from ``old_price`` at ``at``: a credit for
    the unused time on the old price and, when the new price keeps the billing period
    (``new_price`` given), a charge for the remaining time on the new one.  Prorated by the
    second, rounded to the minor unit, as Stripe does.  The lines have no invoice yet."""
    start, end = item["current_period_start"], item["current_period_end"]
    if end <= at or end <= start:
        return []
    quantity = item.get("quantity") or 1
    share = (end - at) / (end - start)
    day = datetime.fromtimestamp(at, UTC).strftime("%-d %b %Y")
    previous = sub.get("latest_invoice")
    credited = None
    if previous:
        invoice = core.get(previous, "invoice") or {}
        ids = [
            line["id"]
            for line in (invoice.get("lines") or {}).get("data", [])
            if (line["parent"]["subscription_item_details"] or {}).get("subscription_item")
            == item["id"]
        ]
        credited = {"invoice": previous, "invoice_line_items": ids} if ids else None
    name = _line_description(old_price, quantity)
    lines = [
        _line(
            "",
            sub,
            item,
            old_price,
            amount=-round((old_price.get("unit_amount") or 0) * quantity * share),
            period=(at, end),
            description=f"Unused time on {name} after {day}",
            proration=True,
            credited=credited,
        )
    ]
    if new_price is not None:
        lines.append(
            _line(
                "",
                sub,
                item,
                new_price,
                amount=round((new_price.get("unit_amount") or 0) * quantity * share),
                period=(at, end),
                description=f"Remaining time on {_line_description(new_price, quantity)} "
                f"after {day}",
                proration=True,
            )
        )
    return lines


def build_invoice(
    sub: dict[str, Any],
    billing_reason: str,
    period: tuple[int, int],
    *,
    prorations: list[dict[str, Any]] | None = None,
    include_items: bool = True,
    apply_balance: bool = False,
) -> dict[str, Any]:
    """A finalized (open) invoice for the subscription's current items.

    ``period`` is the invoice's own period (for a renewal, the period that just ended);
    each line covers the item's current period.  ``prorations`` come first (and a renewal
    also takes the subscription's pending ones, ``_pending_prorations``).  With
    ``apply_balance`` the customer's credit balance (``balance`` < 0) lowers the amount due
    and a negative total becomes credit, as at Stripe's finalization (the caller saves the
    customer: ``apply_customer_balance``).
    """
    created = core.now()
    invoice_id = core.new_id("in")
    customer = core.get(sub["customer"], "customer") or {}
    pending = list(prorations or [])
    if billing_reason == "subscription_cycle":
        pending += sub.pop("_pending_prorations", None) or []
    lines = []
    for line in pending:
        line = copy.deepcopy(line)
        line["invoice"] = invoice_id
        lines.append(line)
    if include_items:
        for item in sub["items"]["data"]:
            price = item["price"]
            amount = (price.get("unit_amount") or 0) * (item.get("quantity") or 1)
            lines.append(
                _line(
                    invoice_id,
                    sub,
                    item,
                    price,
                    amount=amount,
                    period=(item["current_period_start"], item["current_period_end"]),
                )
            )
    total = sum(line["amount"] for line in lines)
    starting_balance = int(customer.get("balance") or 0) if apply_balance else 0
    amount_due = max(0, total + starting_balance)
    number_seq = len(core.all_of("invoice")) + 1
    invoice = core.base_object(
        "in",
        "invoice",
        account_country="US",
        account_name="Stripe emulator",
        account_tax_ids=None,
        amount_due=amount_due,
        amount_overpaid=0,
        amount_paid=0,
        amount_remaining=amount_due,
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
        ending_balance=min(0, total + starting_balance) if apply_balance else 0,
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
        starting_balance=starting_balance,
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


def mark_invoice_paid(invoice: dict[str, Any], pi: dict[str, Any] | None) -> dict[str, Any]:
    """Record a successful PaymentIntent as the invoice's payment (None: nothing was due,
    and Stripe settles such an invoice when it finalizes it)."""
    paid_at = core.now()
    invoice.update(
        amount_paid=invoice["amount_due"],
        amount_remaining=0,
        attempt_count=invoice["attempt_count"] + (1 if pi is not None else 0),
        attempted=True,
        auto_advance=False,
        next_payment_attempt=None,
        status="paid",
    )
    invoice["status_transitions"]["paid_at"] = paid_at
    if pi is not None:
        _invoice_payment(invoice, pi)
    return core.save(invoice)


def mark_invoice_failed(
    invoice: dict[str, Any], pi: dict[str, Any] | None, *, reschedule: bool = True
) -> dict[str, Any]:
    """A failed attempt: the invoice stays open and Stripe retries later (an automatic
    attempt schedules the next one; a payment asked for through the API leaves the
    schedule as it was)."""
    invoice.update(attempt_count=invoice["attempt_count"] + 1, attempted=True)
    if reschedule:
        invoice["next_payment_attempt"] = core.now() + RETRY_DELAY
    if pi is not None:
        _invoice_payment(invoice, pi)
    return core.save(invoice)


def apply_customer_balance(invoice: dict[str, Any]) -> None:
    """Move the customer's balance to what the invoice leaves (``ending_balance``), as
    Stripe does when it finalizes an invoice that used or made credit; records
    ``customer.updated``."""
    if invoice["starting_balance"] == invoice["ending_balance"]:
        return
    customer = core.get(invoice["customer"], "customer")
    if customer is None:
        return
    previous = customer.get("balance", 0)
    customer["balance"] = invoice["ending_balance"]
    core.save(customer)
    core.record_event("customer.updated", customer, previous_attributes={"balance": previous})


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
    sub = {k: copy.deepcopy(v) for k, v in sub.items() if not k.startswith("_")}
    for item in sub["items"]["data"]:
        price = core.get(item["price"]["id"], "price")
        if price is not None:
            item["price"] = price
            item["plan"] = plan_from_price(price)
    return sub


core.register_presenter("subscription", _present_subscription)
