"""The Checkout Session an order is paid with: its parameters, every amount from our
database (line items, the shop's shipping rates, the return URLs, the customer)."""

from __future__ import annotations

from typing import Any

from .. import shipping
from ..links import external_url
from ..models import Order, Price
from ..payments import field

# Checkout's placeholder, filled in by Stripe when it redirects to success_url.
SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"


def success_url(order: Order) -> str:
    # Built by hand: url_for would percent-encode the braces Stripe looks for.
    return external_url("orders.show", public_id=order.public_id) + (
        "?session_id=" + SESSION_ID_PLACEHOLDER
    )


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


def signed_in_member() -> bool:
    from ..account import signed_in_member

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
    options = shipping_options(order, member=signed_in_member())
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
