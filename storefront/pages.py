"""The store's information pages: Shipping & returns, Contact, Privacy, Terms.

Card networks and Stripe expect a merchant's site to say how it ships, how to reach it and
what it does with personal data; the footer links to each page. The shipping page reads the
rates from the database, so it always says what the checkout charges.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from . import shipping
from .cart import Cart

bp = Blueprint("pages", __name__)


@bp.get("/shipping-and-returns")
def shipping_and_returns():
    by_currency = {c: shipping.rates_for(c) for c in Cart.currencies()}
    return render_template(
        "pages/shipping.html",
        rates={c: rates for c, rates in by_currency.items() if rates},
        countries=shipping.ship_to_countries(),
    )


@bp.get("/contact")
def contact():
    return render_template("pages/contact.html")


@bp.get("/privacy")
def privacy():
    return render_template("pages/privacy.html")


@bp.get("/terms")
def terms():
    return render_template("pages/terms.html")
