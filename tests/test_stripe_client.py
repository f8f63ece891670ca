"""The shop's Stripe client: a short HTTP timeout instead of the SDK's 80 seconds."""

from __future__ import annotations

import socket
import threading
import time

from storefront import payments
from tests.conftest import make_app


def test_client_has_a_short_http_timeout(tmp_path):
    app = make_app(tmp_path, STRIPE_SECRET_KEY="sk_test_x")
    with app.app_context():
        http = payments.client()._requestor._client
    assert http._timeout == payments.HTTP_TIMEOUT_SECONDS
    assert 0 < payments.HTTP_TIMEOUT_SECONDS <= 15


def test_one_client_per_app_built_again_when_its_settings_change(tmp_path):
    app = make_app(tmp_path, STRIPE_SECRET_KEY="sk_test_x", STRIPE_API_BASE="http://127.0.0.1:9")
    with app.app_context():
        first = payments.client()
        assert payments.client() is first
        app.config["STRIPE_MAX_NETWORK_RETRIES"] = 3
        retried = payments.client()
        assert retried is not first and retried._requestor._options.max_network_retries == 3
        app.config["STRIPE_API_BASE"] = "http://127.0.0.1:10"
        moved = payments.client()
        assert moved is not retried and moved._requestor.base_addresses["api"].endswith(":10")
        app.config["STRIPE_SECRET_KEY"] = "sk_test_y"
        rotated = payments.client()
        assert rotated is not moved and rotated._requestor.api_key == "sk_test_y"
        assert payments.client() is rotated


def test_stripe_that_never_answers_gives_up_after_the_timeout(tmp_path, monkeypatch):
    # A server that accepts the connection and then says nothing.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setattr(payments, "HTTP_TIMEOUT_SECONDS", 0.5)
    app = make_app(
        tmp_path,
        STRIPE_SECRET_KEY="sk_test_x",
        STRIPE_API_BASE=f"http://127.0.0.1:{listener.getsockname()[1]}",
    )
    try:
        with app.app_context():
            started = time.monotonic()
            try:
                payments.retrieve_payment_intent("pi_123")
            except payments.PaymentError as err:
                assert err.kind == "unavailable"
            else:
                raise AssertionError("no answer must be an error")
            assert time.monotonic() - started < 5
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()
