"""Absolute links to this shop: for Stripe to send customers back to, and for e-mails.

A neutral module (it imports only Flask), so every part of the shop can build its links
the same way without import cycles.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, has_request_context, url_for


def external_url(endpoint: str, **values: Any) -> str:
    """An absolute URL of this shop: for Stripe to redirect to, and for links in e-mails.

    Built from ``SHOP_BASE_URL`` whenever it is set (production requires it), so a forged
    ``Host`` header can never put another site into a sign-in link. Only without it
    (development, tests) does the request's own address count; outside a request, and
    without it, the bare path is all we know.
    """
    base = current_app.config.get("SHOP_BASE_URL")
    if base:
        return str(base).rstrip("/") + current_app.url_map.bind("").build(endpoint, values)
    if has_request_context():
        return url_for(endpoint, _external=True, **values)
    return current_app.url_map.bind("").build(endpoint, values)
