"""A local, stateful stand-in for the parts of Stripe this shop uses.

It speaks Stripe's HTTP API (form-encoded requests, JSON objects shaped like
the pinned ``stripe`` SDK declares them), serves a Stripe.js stand-in under
``/v3/`` and a hosted Checkout page, and delivers signed webhooks.  It imports
nothing from ``storefront``.
"""

from __future__ import annotations

import os

from flask import Flask


def create_app(config: dict | None = None) -> Flask:
    """Build the emulator's WSGI app."""
    app = Flask(__name__, instance_path=os.path.abspath("instance"))
    app.config.from_mapping(
        EMULATOR_DB=os.path.join(app.instance_path, "stripe-emulator.sqlite3"),
        EMULATOR_SECRET_KEY=None,  # None: any sk_test_... key is accepted
        EMULATOR_PUBLISHABLE_KEY=None,  # None: any pk_test_... key is accepted
        EMULATOR_WEBHOOK_FAULT=None,  # default fault mode for every endpoint
    )
    if config:
        app.config.from_mapping(config)

    from . import api, browser

    app.register_blueprint(api.bp)
    app.register_blueprint(browser.bp)

    @app.get("/healthz")
    def healthz():
        return {"ok": True}

    return app
