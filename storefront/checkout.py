"""Checkout with the Payment Element (filled in by the checkout issue)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for

from . import payments

bp = Blueprint("checkout", __name__, url_prefix="/checkout")


@bp.route("/", methods=["GET", "POST"])
def start():
    if not payments.is_configured():
        flash(payments.NOT_CONFIGURED, "error")
    else:
        flash("Checkout is not available yet.", "error")
    return redirect(url_for("cart.view"), code=303)
