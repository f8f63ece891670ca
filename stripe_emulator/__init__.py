"""A local, stateful stand-in for the parts of Stripe this shop uses.

It speaks Stripe's HTTP API (form-encoded requests, JSON objects shaped like
the pinned ``stripe`` SDK declares them), serves a Stripe.js stand-in under
``/v3/`` and a hosted Checkout page, and delivers signed webhooks.  It imports
nothing from ``storefront``.

Settings (``create_app`` config, or the environment variable in brackets):
``EMULATOR_DB`` (``STRIPE_EMULATOR_DB``), ``EMULATOR_SECRET_KEY`` /
``EMULATOR_PUBLISHABLE_KEY`` (``STRIPE_EMULATOR_SECRET_KEY`` / ``..._PUBLISHABLE_KEY``),
``EMULATOR_BUSINESS_NAME`` (``STRIPE_EMULATOR_BUSINESS_NAME``: the account's business name
shown on the hosted Checkout page; ``flask serve`` passes the shop's ``SHOP_NAME``),
``EMULATOR_WEBHOOK_FAULT`` and the other webhook settings (see ``webhooks``), and
``EMULATOR_PROCESSING_SECONDS`` (``STRIPE_EMULATOR_PROCESSING_SECONDS``, default 0): how
long a card payment confirmed through the PaymentIntents API stays ``processing`` before it
succeeds in the background (0: at once, like Stripe's test cards).

Test helpers outside ``/v1`` (secret key): ``POST /_emulator/reset`` forgets everything,
``POST /_emulator/clock`` (``advance=SECONDS``) moves the clock ahead, ``POST
/_emulator/fail_next`` injects 429/5xx answers; webhooks add ``/_emulator/deliveries`` and
``/_emulator/flush_webhooks``.
"""

from __future__ import annotations

import json
import os

from flask import Flask, g, jsonify, request

from . import core, versions


def create_app(config: dict | None = None) -> Flask:
    """Build the emulator's WSGI app."""
    app = Flask(__name__, instance_path=os.path.abspath("instance"))
    app.config.from_mapping(
        EMULATOR_DB=os.environ.get("STRIPE_EMULATOR_DB")
        or os.path.join(app.instance_path, "stripe-emulator.sqlite3"),
        # None: any sk_test_... / pk_test_... key is accepted.
        EMULATOR_SECRET_KEY=os.environ.get("STRIPE_EMULATOR_SECRET_KEY"),
        EMULATOR_PUBLISHABLE_KEY=os.environ.get("STRIPE_EMULATOR_PUBLISHABLE_KEY"),
        # Default webhook fault mode for every endpoint: duplicate|shuffle|late|drop_first.
        EMULATOR_WEBHOOK_FAULT=os.environ.get("STRIPE_EMULATOR_WEBHOOK_FAULT"),
        # Seconds a card payment confirmed through the PaymentIntents API stays `processing`
        # before it succeeds in the background; 0 (default): it succeeds at once.
        EMULATOR_PROCESSING_SECONDS=float(
            os.environ.get("STRIPE_EMULATOR_PROCESSING_SECONDS") or 0
        ),
        # The account's business name, shown on the hosted Checkout page and in mandates.
        EMULATOR_BUSINESS_NAME=os.environ.get("STRIPE_EMULATOR_BUSINESS_NAME"),
        # Seconds until a refund of test card 4000000000005126 fails (``disputes``).
        EMULATOR_REFUND_FAILURE_SECONDS=float(
            os.environ.get("STRIPE_EMULATOR_REFUND_FAILURE_SECONDS") or 5
        ),
        EMULATOR_RESET=False,
    )
    if config:
        app.config.from_mapping(config)
    os.makedirs(os.path.dirname(os.path.abspath(app.config["EMULATOR_DB"])), exist_ok=True)
    core.init_store(app.config["EMULATOR_DB"], reset=app.config["EMULATOR_RESET"])

    from . import (
        api,
        billing,
        browser,
        customer_sessions,
        disputes,
        portal,
        setup_intents,
        strict,
        webhooks,
    )

    modules = (api, billing, customer_sessions, disputes, portal, setup_intents, webhooks, browser)
    for module in modules:
        app.register_blueprint(module.bp)
    strict.check_app(app)  # every /v1 route declares the parameters it accepts
    webhooks.init_app(app)  # delivery tables, test helpers, resumes pending webhooks

    @app.before_request
    def _start():
        g.request_id = core.new_id("req", 14)
        if request.method == "OPTIONS":
            return app.response_class(status=204)
        if request.path.startswith("/v1/"):
            return core.idempotency_begin() or strict.check_request()
        return None

    @app.after_request
    def _finish(response):
        if request.path.startswith("/v1/"):
            version = g.get("api_version")
            if version and version != versions.PINNED and response.is_json:
                # Answered in the version the request named (and kept so for its key).
                response.set_data(json.dumps(versions.render(response.get_json(), version)))
            core.idempotency_finish(response)
            response.headers["Request-Id"] = g.get("request_id", "")
            # Stripe.js calls the API from the merchant's pages, as with api.stripe.com.
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Access-Control-Allow-Headers"] = (
                "Authorization, Content-Type, Idempotency-Key, Stripe-Version"
            )
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
        return response

    @app.teardown_request
    def _teardown(_exc):
        core.idempotency_abandon()

    @app.errorhandler(core.StripeError)
    def _stripe_error(err: core.StripeError):
        return jsonify({"error": err.body}), err.status

    @app.errorhandler(404)
    def _not_found(_err):
        if request.path.startswith("/v1/"):
            body = {
                "type": "invalid_request_error",
                "message": f"Unrecognized request URL ({request.method}: {request.path}).",
            }
            return jsonify({"error": body}), 404
        return "Not found", 404

    @app.errorhandler(405)
    def _bad_method(_err):
        body = {
            "type": "invalid_request_error",
            "message": f"Unrecognized request URL ({request.method}: {request.path}).",
        }
        return jsonify({"error": body}), 404

    @app.get("/healthz")
    def healthz():
        return {"ok": True}

    @app.post("/_emulator/reset")
    def reset():
        """``POST /_emulator/reset``: forget every object (``python -m stripe_emulator --reset``
        does the same at start-up)."""
        core.authenticate()
        core.reset_store()
        return {"reset": True}

    @app.post("/_emulator/clock")
    def move_clock():
        """``POST /_emulator/clock`` with ``advance=SECONDS``: move the emulator's clock ahead
        (e.g. past a Checkout Session's ``expires_at``); background work that falls due then
        happens at once.  Answers ``{"offset": ..., "now": ...}``; reset puts it back."""
        core.authenticate()
        advance = core.to_int(core.params().get("advance", 0), "advance")
        if advance < 0:
            raise core.invalid("advance", "The emulator's clock only moves forward.")
        with core.transaction() as conn:
            conn.execute(
                "INSERT INTO counters (name, value) VALUES ('clock_offset', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (advance,),
            )
        core.wake_background()
        return {"offset": core.clock_offset(), "now": core.now()}

    return app
