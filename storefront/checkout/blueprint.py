"""The checkout blueprint, on its own floor so the view modules can share it without
importing the package (which imports them)."""

from flask import Blueprint

bp = Blueprint("checkout", "storefront.checkout", url_prefix="/checkout")
