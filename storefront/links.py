"""Absolute links to this shop: for Stripe to send customers back to, and for e-mails.

A neutral module (it imports only Flask), so every part of the shop can build its links
the same way without import cycles.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, has_request_context, url_for
from flask.globals import _cv_request

from . import assets

# How many distinct links ``template_url_for`` remembers per app before starting afresh.
TEMPLATE_URLS_KEPT = 2048


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


def template_url_for(endpoint: str, **values: Any) -> str:
    """``url_for`` in templates, remembering each relative URL once built.

    Every page builds the same dozen or more links (header, footer, static files) on
    every request, and building one through the URL map costs more than rendering the
    rest of the page around it. A relative URL depends only on the endpoint, its values
    and the app's mount point, so it is kept under those (at most ``TEMPLATE_URLS_KEPT``).
    Absolute URLs (``_external``), other ``_`` options, blueprint-relative endpoints and
    apps with ``url_defaults`` callbacks go to ``url_for`` every time. Static files get
    their content hash as ``v`` (``assets``), so they may be cached for good.
    """
    ctx = _cv_request.get(None)  # the request context itself: cheaper than two proxies
    if ctx is None:  # rendered outside a request: no mount point to keep a link under
        return url_for(endpoint, **_versioned(endpoint, values))
    app = ctx.app
    # Kept under the values as the template gave them: a static file's URL is found here
    # without hashing its path again. In debug mode a static file may change on disk, so
    # its URL is rebuilt (``assets.version`` notices the change).
    key = (ctx.request.script_root, endpoint, *sorted(values.items()))
    kept: dict = app.extensions.setdefault("template_urls", {})
    try:
        url = kept.get(key)
    except TypeError:  # an unhashable value
        return url_for(endpoint, **_versioned(endpoint, values))
    if url is not None and not (app.debug and endpoint == "static"):
        return url
    url = url_for(endpoint, **_versioned(endpoint, values))
    if not (
        endpoint.startswith(".")
        or app.url_default_functions
        or any(name.startswith("_") for name in values)
    ):
        if len(kept) >= TEMPLATE_URLS_KEPT:
            kept.clear()
        kept[key] = url
    return url


def _versioned(endpoint: str, values: dict[str, Any]) -> dict[str, Any]:
    """A static file's values with its content hash as ``v`` (when it exists)."""
    if endpoint == "static" and "v" not in values and isinstance(values.get("filename"), str):
        digest = assets.version(values["filename"])
        if digest:
            return {**values, "v": digest}
    return values
