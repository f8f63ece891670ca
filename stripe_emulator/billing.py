"""Checkout Sessions, hosted payment-page API, customers' subscriptions and invoices. (placeholder)"""

from flask import Blueprint

bp = Blueprint("billing", __name__, url_prefix="/v1")
