"""Fulfilment from a Checkout Session: the order page and the ``checkout.session.*``
webhooks ask Stripe what was paid (never trusting an event payload or a URL), record
what Checkout collected, and call the shared, exactly-once ``fulfil_order``."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from .. import billing, payments, shipping, webhooks
from ..extensions import db
from ..fulfilment import fulfil_order, notify_staff_of_payment, set_status
from ..models import Order, OrderStatus, ShippingRate
from ..payments import PaymentError, field
from .browser import forget_paid

log = logging.getLogger(__name__)

# Outcomes for the webhook registry ("processed" / "ignored").
PROCESSED = "processed"
IGNORED = "ignored"


def order_for_session(cs: Any) -> Order | None:
    public_id = field(cs, "metadata", "order_id") or field(cs, "client_reference_id")
    if not public_id:
        return None
    return db.session.scalar(select(Order).where(Order.public_id == public_id))


def _chosen_rate(cs: Any, currency: str) -> ShippingRate | None:
    """Our rate for the shipping option chosen on Checkout (by the code we gave it)."""
    code = field(cs, "shipping_cost", "shipping_rate", "metadata", "code")
    if not isinstance(code, str):
        return None
    return next((r for r in shipping.rates_for(currency) if r.code == code), None)


def _paid_amount_matches(cs: Any, order: Order) -> bool:
    """Stripe's items are the order's, and its total is the items plus the shipping it
    reports for one of our rates (the customer picks the rate on Checkout's page)."""
    items = field(cs, "line_items", "data", default=[])
    items_total = sum(field(li, "amount_total", default=0) for li in items)
    shipping_amount = field(cs, "total_details", "amount_shipping", default=0)
    if field(cs, "shipping_cost") is not None and _chosen_rate(cs, order.currency) is None:
        return False
    return (
        field(cs, "currency") == order.currency
        and items_total == order.subtotal
        and isinstance(shipping_amount, int)
        and shipping_amount >= 0
        and field(cs, "amount_total") == items_total + shipping_amount
    )


def _record_shipping(order: Order, cs: Any) -> None:
    """What Checkout collected: the address, the rate and what it cost (so the order's
    total is what was charged), and the card. Before ``fulfil_order`` writes the email."""
    if order.fulfilled_at is not None:
        return
    rate = _chosen_rate(cs, order.currency)
    if rate is not None:
        chosen = field(cs, "shipping_cost", "shipping_rate")
        order.shipping_rate_code = rate.code
        order.shipping_rate_name = field(chosen, "display_name") or rate.display_name
        order.shipping_amount = int(field(cs, "shipping_cost", "amount_total", default=0))
        order.delivery_min_days = rate.delivery_min_days
        order.delivery_max_days = rate.delivery_max_days
    else:
        shipping.apply_quote(order, None)
    order.amount_total = order.subtotal + order.shipping_amount
    details = field(cs, "collected_information", "shipping_details")
    address = field(details, "address")
    if details is not None and field(address, "line1"):
        order.ship_name = str(field(details, "name", default=""))[:200] or None
        order.ship_line1 = str(field(address, "line1"))[:200]
        order.ship_line2 = (field(address, "line2") or None) and str(field(address, "line2"))[:200]
        order.ship_city = (field(address, "city") or None) and str(field(address, "city"))[:100]
        order.ship_state = (field(address, "state") or None) and str(field(address, "state"))[:100]
        postal = field(address, "postal_code")
        order.ship_postal_code = str(postal)[:20] if postal else None
        country = field(address, "country")
        order.ship_country = str(country)[:2] if country else None
    card = field(cs, "payment_intent", "latest_charge", "payment_method_details", "card")
    brand, last4 = field(card, "brand"), field(card, "last4")
    if isinstance(brand, str) and isinstance(last4, str) and order.card_last4 is None:
        order.card_brand, order.card_last4 = brand[:30], last4[:4]
    db.session.commit()


def fulfil_from_session(
    session_id: str, *, order: Order | None = None, from_webhook: bool = False
) -> str:
    """Fulfil the order a Checkout Session paid for, exactly once (Stripe's pattern).

    Called by the webhook and by the order page. Retrieves the session from Stripe with
    its line items (never trusting an event payload or a URL), checks it is paid and that
    the amount is the order's, then calls ``fulfil_order``. Returns "processed" when the
    order is (now or already) paid by this session, else "ignored". Raises
    ``PaymentError`` when Stripe cannot be asked (the webhook then fails and is retried).
    From the webhook, a paid amount that is not the order's raises ``PermanentFailure``
    (recorded as failed for a person to review; Stripe retrying cannot fix it).
    """
    cs = payments.retrieve_checkout_session(session_id, line_items=True, paid_with=True)
    if cs.mode != "payment":
        return IGNORED
    found = order_for_session(cs)
    if found is None or (order is not None and found.id != order.id):
        log.warning("checkout session %s is not for a known order here", session_id)
        return IGNORED
    order = found
    webhooks.note_order(order.public_id)
    if cs.payment_status not in ("paid", "no_payment_required"):
        # A complete, unpaid session: a delayed payment method is under way, and
        # async_payment_succeeded/failed will follow. Only a pending order moves (the state
        # machine alone would also let a failed one, and a late or replayed
        # ``checkout.session.completed`` must not revive a payment that already failed).
        if cs.status == "complete" and set_status(
            order, OrderStatus.PROCESSING, only_from={OrderStatus.PENDING}
        ):
            db.session.commit()
        return IGNORED
    if not _paid_amount_matches(cs, order):
        log.error(
            "order %s NOT fulfilled: checkout session %s paid %s %s but the order is %s %s; "
            "needs review",
            order.public_id,
            cs.id,
            cs.amount_total,
            cs.currency,
            order.amount_total,
            order.currency,
        )
        if from_webhook:
            raise webhooks.PermanentFailure(f"paid amount does not match order {order.public_id}")
        return IGNORED
    _record_payment_details(order, cs)
    _record_shipping(order, cs)
    if fulfil_order(order):
        return PROCESSED
    payment = _payment_intent_id(cs) or cs.id
    if order.fulfilled_at is None:
        # e.g. canceled (its cart changed) while the customer was paying on Stripe's page.
        notify_staff_of_payment(
            order,
            f"was paid through checkout session {cs.id} after it was {order.status}",
            payment,
            cs.amount_total,
            cs.currency,
        )
        return IGNORED
    if order.stripe_checkout_session_id != cs.id:
        notify_staff_of_payment(
            order,
            f"was paid twice: checkout session {cs.id} is a second payment",
            payment,
            cs.amount_total,
            cs.currency,
        )
    return PROCESSED


def _payment_intent_id(cs: Any) -> str | None:
    pi_id = field(cs, "payment_intent")
    return pi_id if isinstance(pi_id, str) or pi_id is None else field(pi_id, "id")


def _record_payment_details(order: Order, cs: Any) -> None:
    """Keep what Checkout collected: the session, its PaymentIntent, the email, the customer."""
    changed = False
    if order.stripe_checkout_session_id != cs.id and order.fulfilled_at is None:
        order.stripe_checkout_session_id = cs.id
        changed = True
    pi_id = _payment_intent_id(cs)
    if pi_id and not order.stripe_payment_intent_id:
        order.stripe_payment_intent_id = pi_id
        changed = True
    # Through the shop's one email rule, as every address we store.
    email = billing.normalise_email(
        field(cs, "customer_details", "email") or field(cs, "customer_email")
    )
    if email and not order.email:
        order.email = email
        changed = True
    if order.customer_id is None and order.email:
        customer = billing.find_customer(order.email)
        if customer is not None:
            order.customer_id = customer.id
            changed = True
    if changed:
        db.session.commit()


def sync_from_session(order: Order, session_id: str | None) -> None:
    """The order page's hook for ``?session_id=``: fulfil now if Stripe says it is paid.

    Only a session we created for this very order counts; anything else in the URL is
    ignored. A Stripe outage leaves the page showing what the database knows (the
    webhook will finish the job).
    """
    if session_id and session_id == order.stripe_checkout_session_id and order.fulfilled_at is None:
        try:
            fulfil_from_session(session_id, order=order)
        except PaymentError as err:
            log.warning("order %s: could not check its checkout session: %s", order.public_id, err)
        db.session.refresh(order)
    forget_paid(order)


# --------------------------------------------------------------------------- webhook helpers


def session_failed(cs: Any) -> str:
    """``checkout.session.async_payment_failed``: the delayed payment did not go through."""
    order = order_for_session(cs)
    if order is None or order.stripe_checkout_session_id != field(cs, "id"):
        return IGNORED
    if set_status(order, OrderStatus.FAILED, error="Your payment could not be completed."):
        db.session.commit()
    return PROCESSED


def session_expired(cs: Any) -> str:
    """``checkout.session.expired``: cancel the order if this was its live session and it
    is still unpaid (a session we replaced ourselves must not cancel the order)."""
    order = order_for_session(cs)
    if order is None or order.stripe_checkout_session_id != field(cs, "id"):
        return IGNORED
    if order.status in (OrderStatus.PENDING, OrderStatus.FAILED) and set_status(
        order, OrderStatus.CANCELED
    ):
        db.session.commit()
        log.info("order %s canceled: its checkout session expired", order.public_id)
    return PROCESSED
