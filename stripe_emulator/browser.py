"""Browser-facing pages: Stripe.js stand-in, element iframes, 3-D Secure, hosted Checkout.

Everything here talks to the /v1 API the way Stripe.js talks to api.stripe.com: from the
browser, over HTTP, with the publishable key (or, for the hosted Checkout page, the
key-less ``/v1/payment_pages`` endpoints).  The Python side only serves pages and files.
"""

from __future__ import annotations

import os
import re

from flask import Blueprint, abort, current_app, render_template, request, send_from_directory

bp = Blueprint("browser", __name__)

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")

# An origin as browsers report it in ``location.origin`` / ``MessageEvent.origin``.
_ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")


def _no_store(response):
    # The stand-in changes while the emulator is developed; never let a browser keep a stale copy.
    response.headers["Cache-Control"] = "no-store"
    return response


def _parent_origin() -> str:
    """The merchant page's origin an element frame may talk to (from its URL)."""
    origin = request.args.get("origin", "")
    if not _ORIGIN_RE.match(origin):
        abort(400, "origin must be the embedding page's origin (scheme://host[:port])")
    return origin


def business_name() -> str:
    """The account's business name (``EMULATOR_BUSINESS_NAME``; ``flask serve`` passes the
    shop's ``SHOP_NAME``), shown on the hosted page and in mandates, as Stripe shows yours."""
    return current_app.config.get("EMULATOR_BUSINESS_NAME") or "Test business"


def _default_publishable_key() -> str:
    # Pages opened without the merchant's key (the hosted Checkout's 3-D Secure step) use
    # the configured key; with none configured any pk_test_ key is accepted.
    return current_app.config.get("EMULATOR_PUBLISHABLE_KEY") or "pk_test_emulator"


@bp.get("/v3")
@bp.get("/v3/")
def stripe_js():
    """The Stripe.js stand-in (``<script src="http://127.0.0.1:12111/v3/">``)."""
    response = send_from_directory(STATIC_DIR, "js/stripe.js", mimetype="application/javascript")
    response.headers["Access-Control-Allow-Origin"] = "*"
    return _no_store(response)


# Element kinds served as iframes, with the template and the frame title Stripe.js gives them.
FRAME_KINDS = {
    "payment": "elements.html",
    "card": "elements.html",
    "cardNumber": "elements.html",
    "cardExpiry": "elements.html",
    "cardCvc": "elements.html",
    "linkAuthentication": "email_frame.html",
    "address": "address_frame.html",
}

_FRAME_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{0,64}$")


@bp.get("/elements/<kind>")
def element_frame(kind: str):
    """The iframe of one element: card fields, the email field or the address form."""
    template = FRAME_KINDS.get(kind)
    if template is None:
        abort(404)
    origin = _parent_origin()
    frame_id = request.args.get("frame", "")
    group = request.args.get("group", "")
    if not _FRAME_ID_RE.match(frame_id) or not _FRAME_ID_RE.match(group):
        abort(400, "frame and group are short identifiers")
    response = current_app.make_response(
        render_template(
            template,
            kind=kind,
            parent_origin=origin,
            frame_id=frame_id,
            group=group,
            countries=COUNTRIES,
            business_name=business_name(),
        )
    )
    # Only the merchant page that created the element may frame it.
    response.headers["Content-Security-Policy"] = f"frame-ancestors {origin}"
    return _no_store(response)


@bp.get("/3ds/<pi_id>")
def three_d_secure(pi_id: str):
    """Stripe's 3-D Secure test page: "Complete authentication" / "Fail authentication"."""
    origin = request.args.get("origin", "")
    if origin and not _ORIGIN_RE.match(origin):
        abort(400, "invalid origin")
    response = current_app.make_response(
        render_template(
            "three_ds.html",
            pi_id=pi_id,
            default_key=_default_publishable_key(),
        )
    )
    return _no_store(response)


@bp.get("/c/pay/<cs_id>")
def hosted_checkout(cs_id: str):
    """The hosted Checkout page a Checkout Session's ``url`` points at."""
    response = current_app.make_response(
        render_template(
            "checkout.html",
            cs_id=cs_id,
            countries=COUNTRIES,
            business_name=business_name(),
            default_key=_default_publishable_key(),
        )
    )
    return _no_store(response)


# Countries offered by the Payment and Address Elements' country selects (ISO code, name):
# the common ones first, then the rest by name.
COUNTRIES = [
    ("US", "United States"),
    ("CA", "Canada"),
    ("GB", "United Kingdom"),
    ("IE", "Ireland"),
    ("DE", "Germany"),
    ("FR", "France"),
    ("NL", "Netherlands"),
    ("BE", "Belgium"),
    ("AT", "Austria"),
    ("CH", "Switzerland"),
    ("ES", "Spain"),
    ("IT", "Italy"),
    ("PT", "Portugal"),
    ("SE", "Sweden"),
    ("NO", "Norway"),
    ("DK", "Denmark"),
    ("FI", "Finland"),
    ("PL", "Poland"),
    ("AU", "Australia"),
    ("NZ", "New Zealand"),
    ("JP", "Japan"),
    ("SG", "Singapore"),
    ("IN", "India"),
    ("BR", "Brazil"),
    ("MX", "Mexico"),
    ("AR", "Argentina"),
    ("BG", "Bulgaria"),
    ("CL", "Chile"),
    ("CO", "Colombia"),
    ("HR", "Croatia"),
    ("CY", "Cyprus"),
    ("CZ", "Czechia"),
    ("EE", "Estonia"),
    ("GR", "Greece"),
    ("HK", "Hong Kong"),
    ("HU", "Hungary"),
    ("IS", "Iceland"),
    ("ID", "Indonesia"),
    ("IL", "Israel"),
    ("LV", "Latvia"),
    ("LT", "Lithuania"),
    ("LU", "Luxembourg"),
    ("MY", "Malaysia"),
    ("MT", "Malta"),
    ("PE", "Peru"),
    ("PH", "Philippines"),
    ("RO", "Romania"),
    ("SK", "Slovakia"),
    ("SI", "Slovenia"),
    ("ZA", "South Africa"),
    ("KR", "South Korea"),
    ("TW", "Taiwan"),
    ("TH", "Thailand"),
    ("TR", "Türkiye"),
    ("AE", "United Arab Emirates"),
]
