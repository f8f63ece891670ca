"""Shipping: the rates (data from the catalog file), what each costs an order, where we ship.

Rates live in the ``shipping_rate`` table, seeded from ``catalog.json``'s
``shipping_rates`` by ``flask catalog seed``. A rate costs nothing for a Coffee Club
member when it is ``free_for_members``, and nothing for an order whose items come to at
least ``free_over``. Every amount here is computed on the server from the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import click
from flask import current_app
from sqlalchemy import select

from .config import parse_countries
from .extensions import db
from .models import Order, ShippingRate, assign_changed

# Why a rate costs nothing (shown next to it).
FREE_FOR_MEMBERS = "Free for members"


@dataclass(frozen=True)
class Quote:
    """What one rate costs one order."""

    rate: ShippingRate
    amount: int
    free_reason: str | None  # "Free for members", "Free over $50.00" or None

    @property
    def code(self) -> str:
        return self.rate.code


def rates_for(currency: str) -> list[ShippingRate]:
    """The active rates in a currency, in the catalog's order (Standard first)."""
    return list(
        db.session.scalars(
            select(ShippingRate)
            .where(ShippingRate.currency == currency, ShippingRate.active)
            .order_by(ShippingRate.sort_order, ShippingRate.id)
        )
    )


def quote(rate: ShippingRate, subtotal: int, *, member: bool) -> Quote:
    from .money import format_money

    if member and rate.free_for_members:
        return Quote(rate, 0, FREE_FOR_MEMBERS)
    if rate.free_over is not None and subtotal >= rate.free_over:
        return Quote(rate, 0, f"Free over {format_money(rate.free_over, rate.currency)}")
    return Quote(rate, rate.amount, None)


def quotes(currency: str, subtotal: int, *, member: bool) -> list[Quote]:
    return [quote(rate, subtotal, member=member) for rate in rates_for(currency)]


def find_quote(currency: str, code: Any, subtotal: int, *, member: bool) -> Quote | None:
    """The quote for the rate ``code`` (as a form sent it), or None when there is none."""
    if not isinstance(code, str):
        return None
    for q in quotes(currency, subtotal, member=member):
        if q.code == code:
            return q
    return None


def default_quote(currency: str, subtotal: int, *, member: bool) -> Quote | None:
    """The rate an order starts with (the first: Standard), or None when the shop has none."""
    found = quotes(currency, subtotal, member=member)
    return found[0] if found else None


def apply_quote(order: Order, q: Quote | None) -> None:
    """Put the rate on the order and make ``amount_total`` items + shipping. Caller commits."""
    if q is None:
        order.shipping_rate_code = order.shipping_rate_name = None
        order.shipping_amount = 0
        order.delivery_min_days = order.delivery_max_days = None
    else:
        order.shipping_rate_code = q.rate.code
        order.shipping_rate_name = q.rate.display_name
        order.shipping_amount = q.amount
        order.delivery_min_days = q.rate.delivery_min_days
        order.delivery_max_days = q.rate.delivery_max_days
    order.amount_total = order.subtotal + order.shipping_amount


def free_threshold(currency: str) -> int | None:
    """The lowest items total that ships free (Standard), if the shop has one in ``currency``."""
    amounts = [r.free_over for r in rates_for(currency) if r.free_over is not None]
    return min(amounts) if amounts else None


# --------------------------------------------------------------------------- countries


def ship_to_countries() -> list[str]:
    """The countries the shop ships to (``SHIP_TO_COUNTRIES``), as ISO codes."""
    return parse_countries(current_app.config["SHIP_TO_COUNTRIES"]) or []


# --------------------------------------------------------------------------- seeding

_CODE = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_CURRENCY = re.compile(r"[a-z]{3}")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_rate(number: int, entry: Any) -> None:
    where = f"Shipping rate #{number}"
    if not isinstance(entry, dict):
        raise click.ClickException(f"{where} is not an object.")
    if not isinstance(entry.get("code"), str) or not _CODE.fullmatch(entry["code"]):
        raise click.ClickException(f"{where}: code must be lowercase letters, e.g. standard.")
    where = f"{where} ({entry['code']!r})"
    if not isinstance(entry.get("name"), str) or not entry["name"].strip():
        raise click.ClickException(f"{where}: name must be a non-empty string.")
    if not isinstance(entry.get("currency"), str) or not _CURRENCY.fullmatch(entry["currency"]):
        raise click.ClickException(f"{where}: currency must be a three-letter lowercase code.")
    if not _count(entry.get("amount")):
        raise click.ClickException(f"{where}: amount must be a whole number of minor units >= 0.")
    days = entry.get("delivery_days")
    if not (
        isinstance(days, list)
        and len(days) == 2
        and all(_count(d) and d >= 1 for d in days)
        and days[0] <= days[1]
    ):
        raise click.ClickException(f"{where}: delivery_days must be [min, max] business days.")
    if entry.get("free_over") is not None and not _count(entry["free_over"]):
        raise click.ClickException(f"{where}: free_over must be a whole number or null.")
    for flag in ("free_for_members", "active"):
        if not isinstance(entry.get(flag, False), bool):
            raise click.ClickException(f"{where}: {flag} must be true or false.")


def seed_shipping_rates(entries: list[Any]) -> dict[str, int]:
    """Insert or update rates (by code and currency). Idempotent; a bad entry changes nothing."""
    for number, entry in enumerate(entries, start=1):
        _check_rate(number, entry)
    counts = {"shipping rates created": 0, "shipping rates updated": 0}
    for position, entry in enumerate(entries):
        key = f"{entry['code']}-{entry['currency']}"
        values = {
            "code": entry["code"],
            "display_name": entry["name"].strip(),
            "currency": entry["currency"],
            "amount": entry["amount"],
            "delivery_min_days": entry["delivery_days"][0],
            "delivery_max_days": entry["delivery_days"][1],
            "free_for_members": entry.get("free_for_members", False),
            "free_over": entry.get("free_over"),
            "active": entry.get("active", True),
            "sort_order": position,
        }
        rate = db.session.scalar(select(ShippingRate).where(ShippingRate.lookup_key == key))
        if rate is None:
            db.session.add(ShippingRate(lookup_key=key, **values))
            counts["shipping rates created"] += 1
        elif assign_changed(rate, values):
            counts["shipping rates updated"] += 1
    db.session.commit()
    return counts
