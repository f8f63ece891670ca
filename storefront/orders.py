"""An order's status page, found by its public (unguessable) id."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from sqlalchemy import select

from .extensions import db
from .models import Order

bp = Blueprint("orders", __name__, url_prefix="/orders")


def get_order_or_404(public_id: str) -> Order:
    order = db.session.scalar(select(Order).where(Order.public_id == public_id))
    if order is None:
        abort(404, "We could not find that order.")
    return order


@bp.get("/<public_id>")
def show(public_id: str):
    order = get_order_or_404(public_id)
    return render_template("orders/show.html", order=order)
