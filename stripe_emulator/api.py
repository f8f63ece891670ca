"""Stripe's /v1 HTTP API (placeholder: filled in by the emulator API work)."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/v1")
