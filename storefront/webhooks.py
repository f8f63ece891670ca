"""Stripe webhooks (filled in by the webhooks issue)."""

from __future__ import annotations

from flask import Blueprint

from .extensions import csrf

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.post("/stripe")
@csrf.exempt
def stripe_webhook():
    return {"error": "Webhooks are not handled yet."}, 400
