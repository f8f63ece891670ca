"""Fixtures for the Stripe emulator's tests: a live emulator over HTTP and an SDK client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import stripe
from flask import Flask, render_template_string
from markupsafe import escape

from stripe_emulator import create_app
from stripe_emulator.webhooks import stop_delivery
from tests.live import Server

PK = "pk_test_emulator"


@pytest.fixture
def emulator_app(tmp_path) -> Iterator[Flask]:
    """A fresh emulator app with its own SQLite file (its background threads stop after)."""
    app = create_app({"EMULATOR_DB": str(tmp_path / "em.sqlite3"), "TESTING": True})
    yield app
    stop_delivery(app)


@pytest.fixture
def emulator_url(emulator_app: Flask) -> Iterator[str]:
    """The emulator served over HTTP on a free port; yields its base address."""
    server = Server(emulator_app)
    try:
        yield server.url
    finally:
        server.stop()


def make_client(url: str, key: str = "sk_test_emulator") -> stripe.StripeClient:
    """An official SDK client pointed at the emulator (no retries: tests see raw answers)."""
    return stripe.StripeClient(
        key,
        base_addresses={"api": url, "files": url, "connect": url, "meter_events": url},
        max_network_retries=0,
    )


@pytest.fixture
def stripe_client(emulator_url: str) -> stripe.StripeClient:
    """SDK client with a secret test key."""
    return make_client(emulator_url)


@pytest.fixture
def publishable_client(emulator_url: str) -> stripe.StripeClient:
    """SDK client with a publishable test key (what Stripe.js uses)."""
    return make_client(emulator_url, "pk_test_emulator")


PAGES = Path(__file__).parent / "pages"


@pytest.fixture
def merchant(emulator_url: str) -> Iterator[str]:
    """A merchant's site on its own origin, loading Stripe.js from the emulator.

    ``/<name>`` serves ``pages/<name>.html``; ``POST /create-intent`` makes the intent the
    way a server does in Stripe's deferred-intent flow (``mode``, ``amount``, options from the
    query string); ``/return`` is the ``return_url``.
    """
    from flask import request

    app = Flask("merchant")
    client = make_client(emulator_url)

    @app.get("/<name>")
    def page(name: str):
        path = PAGES / f"{name}.html"
        if not path.is_file():
            return "Not found", 404
        # ?js_host= loads Stripe.js (and so the frames and API) through another host name.
        host = request.args.get("js_host") or emulator_url
        return render_template_string(path.read_text(), emulator=host, pk=PK)

    @app.post("/create-intent")
    def create_intent():
        args = request.args
        mode = args.get("mode", "payment")
        if mode == "setup":
            customer = client.v1.customers.create({"email": "saver@example.com"})
            intent = client.v1.setup_intents.create(
                {"customer": customer.id, "automatic_payment_methods": {"enabled": True}}
            )
            return {"client_secret": intent.client_secret}
        params: dict = {
            "amount": int(args.get("amount", 1099)),
            "currency": "usd",
            "automatic_payment_methods": {"enabled": True},
        }
        if args.get("captureMethod"):
            params["capture_method"] = args["captureMethod"]
        if mode == "subscription":
            # Stands in for a subscription's first invoice: a payment that saves the card.
            params["setup_future_usage"] = "off_session"
        elif args.get("setupFutureUsage"):
            params["setup_future_usage"] = args["setupFutureUsage"]
        if "setup_future_usage" in params:
            params["customer"] = client.v1.customers.create({"email": "s@example.com"}).id
        intent = client.v1.payment_intents.create(params)
        return {"client_secret": intent.client_secret}

    @app.get("/return")
    def returned():
        status = escape(request.args.get("redirect_status", ""))
        return f"<h1>Returned</h1><p id='status'>{status}</p>"

    server = Server(app)
    yield server.url
    server.stop()
