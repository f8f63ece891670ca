"""``POST /webhooks/stripe``, where Stripe delivers events: answered in front of Flask.

A delivery needs nothing of what a page needs: no session, CSRF token, rate limit,
routing, template or cookie. Flask's request context, hooks and response handling were
more than half of a delivery's CPU time (``bench/NOTES.md``), the one endpoint Stripe
may call hundreds of times a second. So the shop's WSGI app (``Shop.wsgi_app``) hands
this one path to ``WebhookEndpoint``, which keeps what does matter for it:

* the Host check (``SHOP_BASE_URL``'s host, and localhost for the Stripe CLI's
  ``stripe listen --forward-to``): an unknown Host is a 400, as on every page;
* the size limit (``WEBHOOK_MAX_CONTENT_LENGTH``): a 413 from ``Content-Length`` alone,
  before a byte is read or hashed;
* the signature (the SDK's ``WebhookSignature``) within ``WEBHOOK_TOLERANCE_SECONDS``;
* the security headers the shop's other responses carry (worked out once per scheme by
  the app's own after-request hooks);
* an unexpected error is logged like Flask logs one and answered 500 (raised instead
  when Flask would propagate it: testing and debug).

Each delivery runs in an app context (database session, config, logging), as
``flask stripe reconcile`` does (in development, without ``SHOP_BASE_URL``, a request
context: see ``answer``), and ``webhooks.process_event`` does the rest.
``PROXY_COUNT``'s ProxyFix wraps this too, so the scheme and host are the proxy's.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app
from stripe import SignatureVerificationError, WebhookSignature
from werkzeug.exceptions import RequestEntityTooLarge, SecurityError
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_host, get_input_stream

from .config import LOOPBACK_HOSTS
from .payments import field
from .security import WEBHOOK_PATH, trusted_hosts
from .webhooks import FAILED, last_error, process_event

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

# The webhook module's logger: one place to read (and filter) everything about deliveries.
log = logging.getLogger("storefront.webhooks")

_STATUS_LINES = {
    code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in (200, 400, 405, 413, 500, 503)
}

# Headers of the app's own answers that are about the body, not the app's policy.
_BODY_HEADERS = {"content-type", "content-length", "set-cookie", "vary"}


def _json(status: int, body: dict[str, Any]) -> tuple[int, bytes]:
    return status, (json.dumps(body, separators=(",", ":")) + "\n").encode()


@functools.cache
def _received(outcome: str) -> tuple[int, bytes]:
    """A delivery's 200 answer, written once per outcome (there are four), not per event."""
    return _json(200, {"outcome": outcome, "received": True})


def looks_like_event(event: dict[str, Any]) -> bool:
    """The fields we store, with types and lengths the columns accept (``event`` is the
    parsed JSON body)."""
    event_id, event_type = field(event, "id"), field(event, "type")
    created = field(event, "created")
    obj = field(event, "data", "object")
    obj_id = field(obj, "id")
    return (
        isinstance(event_id, str)
        and 0 < len(event_id) <= 255
        and isinstance(event_type, str)
        and 0 < len(event_type) <= 100
        and isinstance(created, int)
        and not isinstance(created, bool)
        and 0 <= created < 2**62
        and isinstance(obj, dict)
        and (obj_id is None or (isinstance(obj_id, str) and len(obj_id) <= 255))
        and isinstance(field(event, "api_version", default=""), str)
    )


def signed_timestamp(sig_header: str) -> int | None:
    """The ``t=`` of a Stripe-Signature header, if it has one and a ``v1=`` signature."""
    timestamp, signed = None, False
    for item in sig_header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and value:
            signed = True
    return timestamp if signed else None


def _bad_request(reason: str) -> tuple[int, bytes]:
    log.info("stripe webhook rejected: %s", reason)
    return _json(400, {"error": reason})


def _read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """The body, at most ``limit`` bytes. Events are far smaller: a larger Content-Length
    is a 413 before anything is read; a chunked body (no length) is read up to one byte
    past the limit, never further, and is a 413 if it got there."""
    chunked = bool(environ.get("wsgi.input_terminated"))
    body = get_input_stream(environ, max_content_length=limit + chunked).read()
    if len(body) > limit:
        raise RequestEntityTooLarge()
    return body


def receive(environ: WSGIEnvironment) -> tuple[int, bytes]:
    """Verify and process one delivery (in an app context): its status and JSON body.
    400 for what a sender got wrong, 500 for our failures (Stripe retries those)."""
    config = current_app.config
    secret = config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        log.error("stripe webhook received but STRIPE_WEBHOOK_SECRET is not set")
        return _json(503, {"error": "webhooks are not configured"})
    sig_header = environ.get("HTTP_STRIPE_SIGNATURE")
    if not sig_header:
        return _bad_request("missing Stripe-Signature header")
    tolerance = config["WEBHOOK_TOLERANCE_SECONDS"]
    # Cheap checks first: a stale, future or unsigned-looking delivery is refused before
    # its body is read or hashed (the SDK checks only lateness, and only after the HMAC).
    timestamp = signed_timestamp(sig_header)
    if timestamp is None:
        return _bad_request("invalid signature")
    if abs(time.time() - timestamp) > tolerance:
        return _bad_request("timestamp outside the tolerance")
    try:
        payload = _read_body(environ, config["WEBHOOK_MAX_CONTENT_LENGTH"]).decode()
        # The SDK's verification; the event is then read as plain JSON: handlers read
        # it with ``field`` (as they read stored events), so it is not also converted
        # into StripeObjects.
        WebhookSignature.verify_header(payload, sig_header, secret, tolerance)
        event = json.loads(payload)
    except RequestEntityTooLarge as err:
        return _json(413, {"error": err.description})
    except SignatureVerificationError as err:
        reason = "timestamp outside the tolerance" if "tolerance" in str(err) else None
        return _bad_request(reason or "invalid signature")
    except ValueError:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return _bad_request("body is not JSON")
    if not isinstance(event, dict) or not looks_like_event(event):
        return _bad_request("body is not a Stripe event")

    # The body as sent is what is stored: no second serialization of the parsed event.
    outcome = process_event(event, payload=payload)
    if outcome == FAILED:
        error = last_error(event["id"]) or ""
        if error.startswith("permanent:"):
            # Retrying cannot help; it is stored as failed for `flask stripe events --failed`.
            return _received(outcome)
        return _json(500, {"error": "processing failed; please retry"})
    return _received(outcome)


class WebhookEndpoint:
    """The WSGI app for ``WEBHOOK_PATH`` (every method: anything but POST is a 405)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        hosts = trusted_hosts(app)
        self.hosts = None if hosts is None else [*hosts, *LOOPBACK_HOSTS, "[::1]"]
        self._policy_headers: dict[str, list[tuple[str, str]]] = {}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        status, body = self.answer(environ)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if status == 405:
            headers.append(("Allow", "POST"))
        headers.extend(self.policy_headers(environ.get("wsgi.url_scheme", "http")))
        start_response(_STATUS_LINES[status], headers)  # as Werkzeug writes them
        return [body]

    def answer(self, environ: WSGIEnvironment) -> tuple[int, bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _json(405, {"error": "Stripe delivers events here with POST."})
        if self.hosts is not None:
            try:
                get_host(environ, self.hosts)
            except SecurityError:
                return _json(400, {"error": "Unknown host."})
        # Without SHOP_BASE_URL (development, tests) the links in e-mails a delivery
        # writes come from the address it was sent to (``links.external_url``): there it
        # runs in a request context (no hooks run). Production always has SHOP_BASE_URL.
        if self.app.config.get("SHOP_BASE_URL"):
            context = self.app.app_context()
        else:
            context = self.app.request_context(environ)
        with context:
            try:
                return receive(environ)
            except Exception:
                propagate = self.app.config["PROPAGATE_EXCEPTIONS"]
                if propagate or (propagate is None and (self.app.testing or self.app.debug)):
                    raise
                self.app.logger.exception("Exception on %s [POST]", WEBHOOK_PATH)
                return _json(500, {"error": "Internal Server Error"})

    def policy_headers(self, scheme: str) -> list[tuple[str, str]]:
        """The headers the app's after-request hooks put on an answer of this path
        (security headers: CSP, nosniff, frame options, referrer policy, and HSTS on
        https when it is on), worked out once per scheme: they depend on nothing else."""
        headers = self._policy_headers.get(scheme)
        if headers is None:
            host = (self.hosts or ["localhost"])[0]
            with self.app.test_request_context(
                WEBHOOK_PATH, method="POST", base_url=f"{scheme}://{host}"
            ):
                response = self.app.process_response(self.app.response_class())
            headers = [
                (name, value)
                for name, value in response.headers.items()
                if name.lower() not in _BODY_HEADERS
            ]
            self._policy_headers[scheme] = headers
        return headers


def init_app(app: Flask) -> None:
    """Answer ``WEBHOOK_PATH`` with a ``WebhookEndpoint`` (see ``Shop.wsgi_app``)."""
    app.extensions["wsgi_paths"] = {
        **app.extensions.get("wsgi_paths", {}),
        WEBHOOK_PATH: WebhookEndpoint(app),
    }
