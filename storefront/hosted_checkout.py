"""Pay with Stripe Checkout (the hosted payment page) for one-time orders.

Flow: the cart's "Pay with Stripe Checkout" button POSTs here; we make (or reuse) the
pending ``Order`` and exactly one live Checkout Session for it, and redirect to Stripe.
Stripe sends the customer back to the order page with ``?session_id=...``; that page and
the ``checkout.session.completed`` webhook both call ``fulfil_from_session``, which asks
Stripe what was paid and calls the shared, exactly-once ``fulfil_order``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    flash,
    redirect,
    session,
    url_for,
)
from sqlalchemy import select

from . import billing, payments, shipping, webhooks
from .cart import Cart, CartError
from .extensions import db
from .fulfilment import fulfil_order, notify_staff_of_payment, set_status
from .links import external_url
from .models import PAYABLE_STATUSES, Order, OrderStatus, Price, ShippingRate
from .orders import create_order_from_cart, order_matches_cart
from .payments import PaymentError, field
from .viewer import remember_placed

log = logging.getLogger(__name__)

bp = Blueprint("hosted_checkout", __name__, url_prefix="/checkout/stripe")

# The browser session remembers the order its hosted checkout is for, so a second
# press (e.g. after "back" from Stripe's page) finds the same order and session.
SESSION_KEY = "hosted_checkout_order"

# Checkout's placeholder, filled in by Stripe when it redirects to success_url.
SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"

# Outcomes for the webhook registry ("processed" / "ignored").
PROCESSED = "processed"
IGNORED = "ignored"


class AlreadyPaid(Exception):
    """The order's Checkout Session was paid already: show the order instead."""

    def __init__(self, order: Order) -> None:
        super().__init__(order.public_id)
        self.order = order


# --------------------------------------------------------------------------- URLs


def success_url(order: Order) -> str:
    # Built by hand: url_for would percent-encode the braces Stripe looks for.
    return external_url("orders.show", public_id=order.public_id) + (
        "?session_id=" + SESSION_ID_PLACEHOLDER
    )


# --------------------------------------------------------------------------- session params


def synced_price_id(price: Price | None, unit_amount: int, currency: str) -> str | None:
    """The Stripe Price to sell ``price`` with: only when it is synced and active and our
    record still has this amount and currency. None: describe the item with ``price_data``
    or refuse. What Stripe's Price itself says is checked on the session afterwards
    (``totals_match``): our record may have changed without a re-sync."""
    if (
        price is not None
        and price.stripe_price_id
        and price.active
        and price.unit_amount == unit_amount
        and price.currency == currency
    ):
        return price.stripe_price_id
    return None


def totals_match(cs: Any, amount_total: int, currency: str) -> bool:
    """Stripe's total for a new session is the amount our database says."""
    return field(cs, "amount_total") == amount_total and field(cs, "currency") == currency


def line_items(order: Order, *, use_price_ids: bool = True) -> list[dict[str, Any]]:
    """Line items from the order's snapshots: a synced Price when it still has the order's
    amount, otherwise ``price_data`` carrying the amount from our database."""
    result: list[dict[str, Any]] = []
    for item in order.items:
        synced = (
            synced_price_id(item.price, item.unit_amount, order.currency) if use_price_ids else None
        )
        if synced:
            result.append({"price": synced, "quantity": item.quantity})
        else:
            result.append(
                {
                    "price_data": {
                        "currency": order.currency,
                        "unit_amount": item.unit_amount,
                        "product_data": {"name": item.product_name},
                    },
                    "quantity": item.quantity,
                }
            )
    return result


def _member() -> bool:
    from .account import signed_in_member

    return signed_in_member()


def shipping_options(order: Order, *, member: bool) -> list[dict[str, Any]]:
    """The shop's rates for this order as Checkout ``shipping_options`` (inline
    ``shipping_rate_data``: the amounts come from our database, free where our rules say,
    e.g. Standard for a member); the first, preselected by Checkout, is the order's own."""
    quotes = shipping.quotes(order.currency, order.subtotal, member=member)
    quotes.sort(key=lambda q: q.code != order.shipping_rate_code)
    return [
        {
            "shipping_rate_data": {
                "type": "fixed_amount",
                "display_name": q.rate.display_name,
                "fixed_amount": {"amount": q.amount, "currency": order.currency},
                "delivery_estimate": {
                    "minimum": {"unit": "business_day", "value": q.rate.delivery_min_days},
                    "maximum": {"unit": "business_day", "value": q.rate.delivery_max_days},
                },
                "metadata": {"code": q.code},
            }
        }
        for q in quotes
    ]


def session_params(order: Order, *, use_price_ids: bool = True) -> dict[str, Any]:
    """The Checkout Session (mode=payment) for an order; every amount from the database.

    Checkout collects the shipping address (only ``SHIP_TO_COUNTRIES``) and offers the
    shop's rates; the order's total follows the rate chosen there (``_record_shipping``).
    """
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": line_items(order, use_price_ids=use_price_ids),
        "client_reference_id": order.public_id,
        "metadata": {"order_id": order.public_id},
        "payment_intent_data": {"metadata": {"order_id": order.public_id}},
        "success_url": success_url(order),
        "cancel_url": external_url("cart.view"),
        "shipping_address_collection": {"allowed_countries": shipping.ship_to_countries()},
    }
    options = shipping_options(order, member=_member())
    if options:
        params["shipping_options"] = options
    customer = order.customer
    if customer is not None and customer.stripe_customer_id:
        # A returning customer: Checkout pre-fills their email and links the payment, lists
        # the cards they saved with consent (allow_redisplay "always", Stripe's default
        # filter) and offers to save a new one for next time.
        params["customer"] = customer.stripe_customer_id
        params["saved_payment_method_options"] = {
            "payment_method_save": "enabled",
            "allow_redisplay_filters": ["always"],
        }
    elif order.email:
        params["customer_email"] = order.email
    return params


def _create_session(order: Order, attempt: str) -> Any:
    """Create the order's Checkout Session; the idempotency key comes from the order, so a
    doubled or retried request gets the same session back."""
    key = payments.idempotency_key("checkout-session", order.public_id, attempt)
    cs = payments.create_checkout_session(session_params(order), key)
    if not _totals_match(cs, order):
        # A synced Stripe Price no longer has our amount: never charge what Stripe says,
        # charge what our database says.
        log.error(
            "checkout session %s for order %s: Stripe total %s %s != order total %s %s; "
            "retrying with price_data",
            cs.id,
            order.public_id,
            cs.amount_total,
            cs.currency,
            order.amount_total,
            order.currency,
        )
        payments.expire_checkout_session(cs.id)
        cs = payments.create_checkout_session(
            session_params(order, use_price_ids=False), key + ":price-data"
        )
        if not _totals_match(cs, order):
            payments.expire_checkout_session(cs.id)
            raise PaymentError(payments.GENERIC, kind="invalid")
    order.stripe_checkout_session_id = cs.id
    db.session.commit()
    log.info("order %s: checkout session %s", order.public_id, cs.id)
    return cs


def _totals_match(cs: Any, order: Order) -> bool:
    return totals_match(cs, order.amount_total, order.currency)


def _complete_session(cs: Any, order: Order) -> None:
    """The order's session is complete: fulfil the order if it is paid, and raise
    ``AlreadyPaid`` (paid, or a delayed payment under way). Returns only when the delayed
    payment failed (complete, unpaid, order failed): that attempt is over, and the order
    must be canceled, never reported as paid."""
    fulfil_from_session(cs.id, order=order)
    db.session.refresh(order)
    if cs.payment_status != "unpaid" or order.status != OrderStatus.FAILED:
        raise AlreadyPaid(order)


def checkout_url_for(order: Order) -> str | None:
    """The URL of the order's one live Checkout Session, creating it when there is none.

    An open session is reused; a complete one means the order is paid, or its delayed
    payment is under way (``AlreadyPaid``) - unless that delayed payment failed: then the
    attempt is over, the order is canceled and None returned. An expired session cancels
    the order too (as its ``checkout.session.expired`` webhook does). On None the caller
    starts a new order. So an order never has two payable sessions, and a late expiry
    event can never cancel an order whose session is live.
    """
    if order.stripe_checkout_session_id:
        cs = payments.retrieve_checkout_session(order.stripe_checkout_session_id)
        if cs.status == "open":
            if order.status == OrderStatus.FAILED and set_status(order, OrderStatus.PENDING):
                db.session.commit()
            return cs.url
        if cs.status == "complete":
            _complete_session(cs, order)
            if set_status(order, OrderStatus.CANCELED):
                db.session.commit()
                log.info(
                    "order %s canceled: its delayed payment failed; starting a new order",
                    order.public_id,
                )
            return None
        session_expired(cs)
        return None
    if order.status == OrderStatus.FAILED and set_status(order, OrderStatus.PENDING):
        db.session.commit()
    _signed_in_customers_stripe_id(order)
    return _create_session(order, "first").url


def _signed_in_customers_stripe_id(order: Order) -> None:
    """A signed-in customer's order pays as their Stripe Customer (saved cards), made once
    when they have none yet. Calls Stripe outside any transaction; commits."""
    customer = order.customer
    if customer is None or customer.stripe_customer_id:
        return
    db.session.commit()  # no transaction open across the Stripe call
    billing.get_or_create_customer(customer.email)
    db.session.refresh(order)


# --------------------------------------------------------------------------- orders


def _signed_in_email() -> str | None:
    from .account import signed_in_email

    return billing.normalise_email(signed_in_email())


def _abandon(order: Order, reason: str = "the cart changed before payment") -> None:
    """The cart changed under an unpaid order (or the customer pays another way): make its
    session unpayable, cancel the order."""
    cs_id = order.stripe_checkout_session_id
    if cs_id:
        try:
            payments.expire_checkout_session(cs_id)
        except PaymentError:
            # Already expired, or paid a moment ago: Stripe's answer decides.
            cs = payments.retrieve_checkout_session(cs_id)
            if cs.status == "complete":
                _complete_session(cs, order)  # returns only when its payment failed
    if set_status(order, OrderStatus.CANCELED):
        db.session.commit()
        log.info("order %s canceled: %s", order.public_id, reason)


def retire_for_payment_element() -> Order | None:
    """Paying on the shop's own page after opening Stripe Checkout: expire this browser's
    open session and cancel its order (one live payment per cart). Returns that order
    instead when it is paid, or its payment is under way."""
    order = _browser_order()
    if order is None:
        return None
    if order.status == OrderStatus.PROCESSING or order.is_paid:
        return order
    if order.status in (OrderStatus.PENDING, OrderStatus.FAILED):
        db.session.commit()  # no transaction open across the Stripe calls
        try:
            _abandon(order, reason="the customer chose to pay on the shop's page")
        except AlreadyPaid as paid:
            return paid.order
    session.pop(SESSION_KEY, None)
    return None


def _browser_order() -> Order | None:
    public_id = session.get(SESSION_KEY)
    if not public_id:
        return None
    return db.session.scalar(select(Order).where(Order.public_id == public_id))


def order_for_cart(cart: Cart) -> Order:
    """The browser's pending hosted-checkout order when it still matches the cart,
    else a new one (the stale one is canceled and its session expired).

    A payment already submitted on the shop's own page raises ``AlreadyPaid`` for that
    order; an unused one there is canceled first (one live payment per cart)."""
    from .checkout import retire_for_hosted_checkout

    submitted = retire_for_hosted_checkout()
    if submitted is not None:
        raise AlreadyPaid(submitted)
    public_id = session.get(SESSION_KEY)
    order = (
        db.session.scalar(select(Order).where(Order.public_id == public_id)) if public_id else None
    )
    if order is not None:
        matches = order_matches_cart(order, cart)
        if order.status in PAYABLE_STATUSES and order.status != OrderStatus.PROCESSING:
            if matches:
                # A failed order stays failed here: ``checkout_url_for`` asks Stripe
                # whether its session can still be paid or the attempt is over.
                return order
            _abandon(order)
        elif matches and order.status in (OrderStatus.PROCESSING, OrderStatus.PAID):
            raise AlreadyPaid(order)
    # Signed in: the order carries the email even before there is a Customer record (made
    # by a first membership), so Checkout pre-fills it (``customer_email``).
    email = _signed_in_email()
    customer = billing.find_customer(email) if email else None
    order = create_order_from_cart(cart, email=email, member=_member())
    if customer is not None:
        order.customer_id = customer.id
    db.session.commit()
    session[SESSION_KEY] = order.public_id
    remember_placed(order)
    log.info("order %s created for hosted checkout", order.public_id)
    return order


@bp.post("/")
def start():
    """The cart's "Pay with Stripe Checkout" button: 303 to Stripe's hosted page."""
    if not payments.is_configured():
        flash(payments.NOT_CONFIGURED, "error")
        return redirect(url_for("cart.view"), code=303)
    cart = Cart.load()
    try:
        order = order_for_cart(cart)
        url = checkout_url_for(order)
        if url is None:  # its session had expired, and with it the order
            order = order_for_cart(cart)
            url = checkout_url_for(order)
        if url is None:
            raise PaymentError(payments.GENERIC, kind="invalid")
    except CartError as err:
        flash(str(err), "error")
        return redirect(url_for("cart.view"), code=303)
    except AlreadyPaid as paid:
        _forget_paid(paid.order)
        if paid.order.is_paid:
            flash("This order has been paid already.", "info")
        elif paid.order.status == OrderStatus.PROCESSING:
            flash("Your payment for this order is being processed.", "info")
        else:
            flash("You have already started paying for this order on our checkout page.", "info")
        return redirect(url_for("orders.show", public_id=paid.order.public_id), code=303)
    except PaymentError as err:
        flash(err.user_message, "error")
        return redirect(url_for("cart.view"), code=303)
    return redirect(url, code=303)


def _forget_paid(order: Order) -> None:
    """Once the browser's hosted-checkout order is paid, empty the cart for a new purchase."""
    if session.get(SESSION_KEY) == order.public_id and (
        order.is_paid or order.status == OrderStatus.PROCESSING
    ):
        cart = Cart.load()
        cart.clear()
        cart.save()
        session.pop(SESSION_KEY, None)


# --------------------------------------------------------------------------- fulfilment


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
    _forget_paid(order)


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
