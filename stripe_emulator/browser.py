"""Browser-facing pages: Stripe.js stand-in, element iframes, 3-D Secure, hosted Checkout."""

from flask import Blueprint

bp = Blueprint("browser", __name__)
