"""The cart: kept in the signed session cookie as ids and quantities only.

Every page recomputes lines and totals from the database, so a cookie can never
carry a price. Bad input gets a clear message and leaves the cart unchanged.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .extensions import db
from .models import MAX_QUANTITY, Price, Product
from .security import stripe_page

bp = Blueprint("cart", __name__, url_prefix="/cart")

# A random token the session gets with its first cart item; the order made for that cart
# keeps it in the unique ``Order.checkout_token``, so simultaneous checkouts (a double
# click, two tabs) of one cart find one order instead of making two (see ``checkout``).
TOKEN_KEY = "checkout_token"

# ASCII digits only: str.isdigit() also accepts "²" and "٣", which int() then rejects.
# Nine digits keep ids well inside SQLite's 64-bit integers.
_ID_RE = re.compile(r"[0-9]{1,9}")
_QUANTITY_RE = re.compile(r"[0-9]{1,2}")


def new_checkout_token() -> str:
    return secrets.token_urlsafe(24)


class CartError(ValueError):
    """A cart rule was broken; the message is shown to the customer."""


@dataclass
class Line:
    product: Product
    price: Price
    quantity: int

    @property
    def total(self) -> int:
        return self.price.unit_amount * self.quantity


@lru_cache(maxsize=8)
def _currency_list(setting: str) -> tuple[str, ...]:
    """``SHOP_CURRENCIES`` as codes, parsed once per setting (every page asks, twice)."""
    return tuple(c.strip().lower() for c in setting.split(","))


@dataclass
class Cart:
    currency: str
    items: dict[str, int] = field(default_factory=dict)  # price id (str) -> quantity
    # Set when a change asked for more than the shop has and was capped (not stored).
    notice: str | None = field(default=None, compare=False)

    @staticmethod
    def currencies() -> list[str]:
        return list(_currency_list(current_app.config["SHOP_CURRENCIES"]))

    @classmethod
    def load(cls) -> Cart:
        raw = session.get("cart") or {}
        currency = raw.get("currency")
        if currency not in cls.currencies():
            currency = cls.currencies()[0]
        items: dict[str, int] = {}
        for key, qty in (raw.get("items") or {}).items():
            if (
                isinstance(key, str)
                and _ID_RE.fullmatch(key)
                and isinstance(qty, int)
                and not isinstance(qty, bool)
                and qty > 0
            ):
                items[key] = min(qty, MAX_QUANTITY)
        return cls(currency=currency, items=items)

    def save(self) -> None:
        """Store the cart in the session. The save that first puts an item in it also
        gives the session its checkout token, so the token exists before any page shows
        a Checkout button and every request of this browser's checkout carries the same
        one (the cookie is written with the cart)."""
        session["cart"] = {"currency": self.currency, "items": dict(self.items)}
        if self.items and not session.get(TOKEN_KEY):
            session[TOKEN_KEY] = new_checkout_token()

    def lines(self) -> list[Line]:
        """Lines recomputed from the database; items no longer for sale drop out."""
        if not self.items:
            return []
        ids = [int(k) for k in self.items]
        # The lines' products in one more SELECT, not one lazy load per line.
        query = select(Price).where(Price.id.in_(ids)).options(selectinload(Price.product))
        prices = db.session.scalars(query).all()
        by_id = {p.id: p for p in prices}
        result = []
        for key, qty in self.items.items():
            price = by_id.get(int(key))
            if price is None or not _sellable(price) or price.currency != self.currency:
                continue
            result.append(Line(product=price.product, price=price, quantity=qty))
        return result

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines())

    def total(self) -> int:
        return sum(line.total for line in self.lines())

    def clear(self) -> None:
        self.items = {}

    # ---- rules -----------------------------------------------------------

    def add(self, price_id: Any, quantity: Any) -> Price:
        price = _price_for_cart(price_id)
        qty = parse_quantity(quantity)
        if price.currency != self.currency:
            raise CartError(
                f"{price.product.name} is priced in {price.currency.upper()} but your cart is "
                f"in {self.currency.upper()}. Switch currency first."
            )
        have = self.items.get(str(price.id), 0)
        self.items[str(price.id)] = self._capped(price, have + qty, have=have)
        return price

    def _capped(self, price: Price, wanted: int, *, have: int = 0) -> int:
        """``wanted``, or as many as there are (stock, and the per-item maximum) with a
        ``notice`` saying so; a CartError when not one more than ``have`` can be added."""
        stock = price.product.stock
        limit = MAX_QUANTITY if stock is None else min(stock, MAX_QUANTITY)
        if wanted <= limit:
            return wanted
        what = "in stock" if limit == stock else "per order"
        if limit <= 0:
            raise CartError(f"Sorry, {price.product.name} is sold out.")
        if have >= limit:
            raise CartError(
                f"Your cart already holds {have} of {price.product.name}: "
                f"that is all we can sell ({limit} {what})."
            )
        self.notice = f"Only {limit} of {price.product.name} {what}: your cart now holds {limit}."
        return limit

    def update(self, price_id: Any, quantity: Any) -> Price:
        key = _cart_key(price_id)
        if key not in self.items:
            raise CartError("That item is not in your cart.")
        price = _price_for_cart(price_id)
        qty = parse_quantity(quantity)
        self.items[key] = self._capped(price, qty)
        return price

    def remove(self, price_id: Any) -> None:
        key = _cart_key(price_id)
        if key not in self.items:
            raise CartError("That item is not in your cart.")
        del self.items[key]

    def switch_currency(self, currency: Any) -> None:
        """Switch currency; every item moves to the same product's price in it."""
        if not isinstance(currency, str) or currency.lower() not in self.currencies():
            raise CartError("We do not sell in that currency.")
        currency = currency.lower()
        moved: dict[str, int] = {}
        for line in self.lines():
            price = line.product.price_in(currency)
            if price is None:
                raise CartError(
                    f"{line.product.name} is not sold in {currency.upper()}; "
                    "remove it to switch currency."
                )
            moved[str(price.id)] = line.quantity
        self.currency = currency
        self.items = moved


def _sellable(price: Price) -> bool:
    return price.active and price.product.active and not price.is_recurring


def _cart_key(price_id: Any) -> str:
    """A price id from a form field or JSON, as the cart's key (e.g. "7")."""
    if isinstance(price_id, int) and not isinstance(price_id, bool):
        price_id = str(price_id)  # JSON numbers: the same digit rule applies
    if not isinstance(price_id, str) or not _ID_RE.fullmatch(price_id):
        raise CartError("Please choose a product.")
    return str(int(price_id))


def _price_for_cart(price_id: Any) -> Price:
    key = _cart_key(price_id)
    price = db.session.get(Price, int(key))
    if price is None or not price.active or not price.product.active:
        raise CartError("Sorry, that product is not available.")
    if price.is_recurring:
        raise CartError("Memberships are not cart items: subscribe on the Membership page instead.")
    return price


def parse_quantity(value: Any) -> int:
    """An integer from 1 to 99, or a ``CartError`` saying so."""
    message = f"Quantity must be a whole number from 1 to {MAX_QUANTITY}."
    if isinstance(value, int) and not isinstance(value, bool):
        qty = value  # a JSON number (True/False are ints in Python, but not quantities)
    elif isinstance(value, str) and _QUANTITY_RE.fullmatch(value.strip()):
        qty = int(value.strip())
    else:
        raise CartError(message)
    if not 1 <= qty <= MAX_QUANTITY:
        raise CartError(message)
    return qty


def template_context() -> dict[str, Any]:
    """Header data on every page: the cart count and currency."""
    if request.endpoint == "static":
        return {}
    cart = Cart.load()
    return {
        "cart_count": cart.count,
        "cart_currency": cart.currency,
        "currencies": Cart.currencies(),
        "max_quantity": MAX_QUANTITY,
    }


# --------------------------------------------------------------------------- views


def _is_form_request() -> bool:
    return request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")


def _data() -> dict[str, Any]:
    if _is_form_request():
        return request.form.to_dict()
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            # Values stay as sent: the parsers accept strings and real ints, nothing else.
            return body
    abort(400, "Send the cart change as a form or a JSON object.")


def is_local_path(target: str) -> bool:
    """True for a path on this site, e.g. "/cart/?x=1"; never another host."""
    # Browsers drop tabs and newlines and read "\\" as "/", so "/\t/evil.example" and
    # "/\\evil.example" mean "//evil.example"; control characters would also break
    # the Location header. Our pages send ASCII paths; anything else falls back.
    if any(not 0x21 <= ord(c) <= 0x7E for c in target) or "\\" in target:
        return False
    if not target.startswith("/") or target.startswith("//"):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def _safe_next(default: str, field: str = "next") -> str:
    """Where a form asked to go (``next``; ``back``: where it came from, after a refusal or
    a capped quantity), when that is a path on this site; else ``default``."""
    target = request.form.get(field) or request.form.get("next", "")
    return target if is_local_path(target) else default


def _apply(change, success: str):
    cart = Cart.load()
    try:
        change(cart, _data())
    except CartError as err:
        if not _is_form_request():
            return {"error": str(err)}, 400
        flash(str(err), "error")
        return redirect(_safe_next(url_for("cart.view"), "back"), code=303)
    cart.save()
    if not _is_form_request():
        answer = {"count": cart.count, "total": cart.total(), "currency": cart.currency}
        return answer | ({"notice": cart.notice} if cart.notice else {})
    if cart.notice:
        # Asked for more than there is: the line is capped; back where they asked, saying so.
        flash(cart.notice, "warning")
        return redirect(_safe_next(url_for("cart.view"), "back"), code=303)
    flash(success, "success")
    return redirect(_safe_next(url_for("cart.view")), code=303)


@bp.get("/")
@stripe_page(checkout=True)  # its "Pay with Stripe Checkout" form redirects there
def view():
    from . import shipping
    from .account import signed_in_member

    cart = Cart.load()
    lines = cart.lines()
    subtotal = sum(line.total for line in lines)
    member = signed_in_member()
    # Standard until the customer picks a rate at checkout.
    quote = shipping.default_quote(cart.currency, subtotal, member=member)
    threshold = shipping.free_threshold(cart.currency)
    return render_template(
        "cart/view.html",
        cart=cart,
        lines=lines,
        subtotal=subtotal,
        quote=quote,
        total=subtotal + (quote.amount if quote else 0),
        to_free_shipping=(
            threshold - subtotal
            if threshold is not None and quote is not None and quote.amount and not member
            else None
        ),
    )


@bp.post("/add")
def add():
    return _apply(
        lambda cart, data: cart.add(data.get("price_id"), data.get("quantity", "1")),
        "Added to your cart.",
    )


@bp.post("/update")
def update():
    return _apply(
        lambda cart, data: cart.update(data.get("price_id"), data.get("quantity")),
        "Cart updated.",
    )


@bp.post("/remove")
def remove():
    return _apply(lambda cart, data: cart.remove(data.get("price_id")), "Removed from your cart.")


@bp.post("/currency")
def currency():
    return _apply(
        lambda cart, data: cart.switch_currency(data.get("currency")), "Currency switched."
    )
