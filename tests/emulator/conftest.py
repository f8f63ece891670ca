"""Fixtures for the Stripe emulator's tests: a live emulator over HTTP and an SDK client."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import stripe
from flask import Flask
from werkzeug.serving import make_server

from stripe_emulator import create_app
from stripe_emulator.webhooks import stop_delivery


@pytest.fixture
def emulator_app(tmp_path) -> Iterator[Flask]:
    """A fresh emulator app with its own SQLite file (its background threads stop after)."""
    app = create_app({"EMULATOR_DB": str(tmp_path / "em.sqlite3"), "TESTING": True})
    yield app
    stop_delivery(app)


@pytest.fixture
def emulator_url(emulator_app: Flask) -> Iterator[str]:
    """The emulator served over HTTP on a free port; yields its base address."""
    server = make_server("127.0.0.1", 0, emulator_app, threaded=True)
    # A short poll interval keeps shutdown (once per test) fast.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


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
