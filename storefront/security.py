"""What the shop does for every request before the open internet reaches a view.

- Request sizes: ``MAX_CONTENT_LENGTH`` and Flask's form limits app-wide; the webhook
  endpoint has its own limit (``WEBHOOK_MAX_CONTENT_LENGTH``, ``webhook_endpoint``).
  Werkzeug answers 413 from the ``Content-Length`` header, before a byte is read.
- Security headers (Flask-Talisman): a Content-Security-Policy baseline on every
  response, extended per page with exactly what Stripe needs (``stripe_page``),
  ``nosniff``, ``Referrer-Policy``, ``X-Frame-Options: DENY``, and HSTS when
  ``SHOP_BASE_URL`` is https. ``Cache-Control: no-store`` on pages with personal data.
- Cookies: HttpOnly, SameSite=Lax, and Secure when ``SHOP_BASE_URL`` is https.
- Trusted hosts from ``SHOP_BASE_URL`` (an unknown Host is a 400); the webhook (served
  in front of Flask by ``webhook_endpoint``, with these headers) also accepts localhost,
  where the Stripe CLI forwards events to.
- ``PROXY_COUNT`` proxies in front: Werkzeug's ProxyFix takes the client address and
  scheme from their ``X-Forwarded-*`` headers (and from nobody else's).
- Odd input never becomes a 5xx: JSON nested too deeply or holding NUL characters is
  malformed JSON (400), a NUL byte in the path is a 404 and in the query a 400.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Flask,
    Request,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    session,
)
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_talisman import Talisman
from werkzeug.datastructures import Headers
from werkzeug.middleware.proxy_fix import ProxyFix

# Every page: nothing from elsewhere, no plugins, no <base> tricks, forms post only
# here, and no framing (clickjacking the Cancel-membership form, for one).
BASELINE_CSP: dict[str, str] = {
    "default-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

# Pages with personal data or a client secret: never stored by a browser or proxy cache.
NO_STORE_BLUEPRINTS = {"checkout", "orders", "account", "membership", "hosted_checkout"}

# Real Stripe.js also loads from its subdomains and shows 3-D Secure challenges in a frame
# from hooks.stripe.com (Stripe's CSP guide); the emulator serves all of it from one origin.
STRIPE_JS_EXTRA = {
    "https://js.stripe.com": {
        "script": ["https://*.js.stripe.com"],
        "frame": ["https://*.js.stripe.com", "https://hooks.stripe.com"],
    }
}
STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"
STRIPE_PORTAL_ORIGIN = "https://billing.stripe.com"

WEBHOOK_PATH = "/webhooks/stripe"


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def stripe_js_sources() -> dict[str, str]:
    """What the Payment Element needs from Stripe on top of the baseline, nothing else."""
    config = current_app.config
    js = origin(config["STRIPE_JS_URL"])
    api = origin(config.get("STRIPE_API_BASE") or "https://api.stripe.com")
    extra = STRIPE_JS_EXTRA.get(js, {})
    return {
        "script-src": " ".join(["'self'", js, *extra.get("script", [])]),
        "frame-src": " ".join([js, *extra.get("frame", [])]),
        "connect-src": " ".join(["'self'", *dict.fromkeys([js, api])]),
        "img-src": f"'self' data: {js}",
        # Stripe.js adds a <style> element for its overlays.
        "style-src": "'self' 'unsafe-inline'",
    }


def _stripe_page_origin(real: str) -> str:
    """Where Stripe's hosted pages are: ``real``, or the emulator serving them all."""
    base = current_app.config.get("STRIPE_API_BASE")
    return origin(base) if base else real


def stripe_checkout_sources() -> dict[str, str]:
    """A form here that answers with a redirect to Stripe Checkout: browsers check the
    redirect's target against ``form-action`` too."""
    return {"form-action": f"'self' {_stripe_page_origin(STRIPE_CHECKOUT_ORIGIN)}"}


def stripe_portal_sources() -> dict[str, str]:
    """A form here that answers with a redirect to the Customer Portal (Manage billing)."""
    return {"form-action": f"'self' {_stripe_page_origin(STRIPE_PORTAL_ORIGIN)}"}


class PagePolicy(Mapping[str, str]):
    """The baseline CSP with a page's Stripe sources, built from the app's settings at
    request time (Talisman's per-view options are fixed when the module is imported, but
    the emulator's address is a setting)."""

    def __init__(self, *extensions: Callable[[], dict[str, str]]) -> None:
        self.extensions = extensions

    def _policy(self) -> dict[str, str]:
        policy = dict(BASELINE_CSP)
        for extension in self.extensions:
            for key, value in extension().items():
                if key == "form-action":  # each redirect target adds to the others
                    value = " ".join(dict.fromkeys(policy[key].split() + value.split()))
                policy[key] = value
        return policy

    def __getitem__(self, key: str) -> str:
        return self._policy()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._policy())

    def __len__(self) -> int:
        return len(self._policy())


View = TypeVar("View", bound=Callable[..., Any])


def stripe_page(
    *, js: bool = False, checkout: bool = False, portal: bool = False
) -> Callable[[View], View]:
    """Extend the page's CSP with Stripe.js (``js``) and/or a redirect to Stripe Checkout
    (``checkout``) or the Customer Portal (``portal``) from one of its forms. Use under the
    route decorator."""
    extensions = [
        ext
        for wanted, ext in (
            (js, stripe_js_sources),
            (checkout, stripe_checkout_sources),
            (portal, stripe_portal_sources),
        )
        if wanted
    ]

    def decorate(view: View) -> View:
        # What Talisman's own ``@talisman(content_security_policy=...)`` decorator sets.
        view.talisman_view_options = {"content_security_policy": PagePolicy(*extensions)}  # type: ignore[attr-defined]
        return view

    return decorate


# The JSON the shop takes is flat (a cart change, a Pay): nothing it reads is nested this deep.
MAX_JSON_DEPTH = 32
# A JSON string (skipped whole, brackets in it are text) or a bracket. A string left
# open runs to the end of the text: every match attempt succeeds, so the scan is linear
# (with a required closing quote, '"\\"\\"\\"...' made each quote scan to the end).
_JSON_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)


def nested_deeper_than(text: str, limit: int) -> bool:
    """Does this JSON text open more than ``limit`` arrays or objects inside each other?
    Read without parsing, so deep input never takes the parser (and the stack) deep."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _JSON_BRACKETS.finditer(text):
        char = match.group()[0]
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


class SafeJSONProvider(DefaultJSONProvider):
    """Deeply nested JSON is malformed JSON: for a request body a 400 (``get_json``).

    It is refused before parsing. Parsing ``[[[[...`` up to Python's recursion limit and
    catching the RecursionError also gave a 400, but a garbage collection that started
    down there ran its finalizers with no stack left (they failed, "Exception ignored")."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if isinstance(s, (bytes, bytearray)):
            s = s.decode(json.detect_encoding(s), "surrogatepass")  # as json.loads does
        if nested_deeper_than(s, MAX_JSON_DEPTH):
            raise ValueError(f"JSON is nested more than {MAX_JSON_DEPTH} levels deep")
        try:
            return super().loads(s, **kwargs)
        except RecursionError:  # only if the stack was nearly used up before the parse
            raise ValueError("JSON is nested too deeply") from None


def _holds_nul(data: bytes) -> bool:
    return b"\x00" in data or b"\\u0000" in data


def wants_json() -> bool:
    """Does the caller speak JSON (our pages' scripts, API clients)? Errors answer in kind."""
    return request.is_json or request.accept_mimetypes.best == "application/json"


# The session's random id: the "per session" of the rate limits and card-testing defence.
CLIENT_KEY = "client"


def client_ip() -> str:
    """The client's address (``PROXY_COUNT`` makes it the real one behind a proxy)."""
    return request.remote_addr or "unknown"


def client_id() -> str:
    """This browser session's random id, made on first use."""
    value = session.get(CLIENT_KEY)
    if not isinstance(value, str) or not 16 <= len(value) <= 64:
        value = secrets.token_urlsafe(16)
        session[CLIENT_KEY] = value
    return value


def too_many(message: str, retry_after: int):
    """429 with ``Retry-After``: JSON for JSON callers, otherwise a page."""
    retry_after = max(1, int(retry_after))
    if wants_json():
        response = jsonify(error=message, retry_after=retry_after)
    else:
        response = current_app.make_response(
            render_template("errors/429.html", reason=message, wait=describe_wait(retry_after))
        )
    response.status_code = 429
    response.headers["Retry-After"] = str(retry_after)
    return response


def describe_wait(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    hours = math.ceil(minutes / 60)
    return f"{hours} hours"


def base_url_is_https(app: Flask) -> bool:
    return str(app.config.get("SHOP_BASE_URL") or "").startswith("https://")


def trusted_hosts(app: Flask) -> list[str] | None:
    """The Host headers the shop answers: its ``SHOP_BASE_URL`` host; None = any (no
    ``SHOP_BASE_URL``, i.e. development, where production refuses to start)."""
    base = app.config.get("SHOP_BASE_URL")
    if not base:
        return None
    parts = urlsplit(str(base))
    return [parts.netloc.lower(), *([parts.hostname] if parts.hostname else [])]


def _request_class(hosts: list[str] | None) -> type[Request]:
    class ShopRequest(Request):
        # Read by Flask when it binds the URL map. (The webhook, which also answers
        # localhost, is served in front of Flask: ``webhook_endpoint``.)
        @property
        def trusted_hosts(self) -> list[str] | None:  # type: ignore[override]
            return hosts

        @trusted_hosts.setter
        def trusted_hosts(self, value: list[str] | None) -> None:
            pass  # Flask's TRUSTED_HOSTS setting is not used; the property decides

        def get_json(self, force: bool = False, silent: bool = False, cache: bool = True):
            # A NUL character in a JSON string is malformed input here: PostgreSQL cannot
            # store or even compare one, and no form of ours sends it.
            if (force or self.is_json) and _holds_nul(self.get_data(cache=True)):
                if silent:
                    return None
                return self.on_json_loading_failed(
                    ValueError("JSON strings must not contain NUL characters")
                )
            return super().get_json(force=force, silent=silent, cache=cache)

    return ShopRequest


def sends_cookies(request: Request) -> bool:
    """Did the request come with a Cookie header at all? (Without one, e.g. every webhook
    delivery, there is nothing to parse.)"""
    return bool(request.environ.get("HTTP_COOKIE"))


class ShopSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session. A request without the cookie (a first visit, every
    webhook) gets its new empty session at once: Flask builds the signing serializer
    first, for nothing to verify; without any cookie, the header is not even parsed.
    Saving a new session still signs it as Flask does."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and (
            not sends_cookies(request) or not request.cookies.get(self.get_cookie_name(app))
        ):
            return self.session_class()
        return super().open_session(app, request)


class ShopTalisman(Talisman):
    """Talisman with its per-request work done once: it looks up the view's options four
    times per request (eight ``setdefault`` each) and formats the CSP from its dict on
    every response; the options and the headers they give are kept per endpoint and each
    policy's header text per app (a policy is a module constant or a view's
    ``PagePolicy``, whose sources come from settings fixed at start-up). A tenth of a
    webhook's CPU time before."""

    def __init__(self, app: Flask, **options: Any) -> None:
        self._policy_text: dict[int, tuple[Any, str]] = {}
        self._view_headers: dict[str | None, list[tuple[str, str]]] = {}
        self._view_options: dict[str | None, dict[str, Any]] = {}
        super().__init__(app, **options)

    def _get_local_options(self):
        # Talisman fills a view's options in with its defaults on first use (setdefault on
        # the view's own dict): from then on they are fixed, so they are kept per endpoint.
        endpoint = request.endpoint
        options = self._view_options.get(endpoint)
        if options is None:
            options = self._view_options[endpoint] = super()._get_local_options()
        return options

    def _parse_policy(self, policy):
        if self.content_security_policy_nonce_in:
            return super()._parse_policy(policy)  # a nonce per request: nothing to keep
        cached = self._policy_text.get(id(policy))
        if cached is None or cached[0] is not policy:
            cached = self._policy_text[id(policy)] = (policy, super()._parse_policy(policy))
        return cached[1]

    def _force_https(self):
        # The shop sets force_https=False and no view turns it on (the TLS proxy redirects,
        # README, Deploying), nor session_cookie_secure: Talisman would still read the
        # request's scheme and X-Forwarded-Proto on every request before finding that out.
        if not self.session_cookie_secure and not self._get_local_options()["force_https"]:
            return None
        return super()._force_https()

    def _set_response_headers(self, response):
        # Which headers a view gets (frame options, CSP, nosniff, feature policies) depends
        # only on its options, fixed once the app runs: worked out once per endpoint, then
        # copied onto each response. HSTS (the request's scheme) and the Referrer-Policy
        # default (the view may have set its own) are decided per response, as Talisman does.
        options = self._get_local_options()
        if options["content_security_policy_nonce_in"]:
            return super()._set_response_headers(response)  # a nonce per request
        endpoint = request.endpoint
        fixed = self._view_headers.get(endpoint)
        if fixed is None:
            scratch = Headers()
            self._set_feature_policy_headers(scratch, options)
            self._set_permissions_policy_headers(scratch, options)
            self._set_document_policy_headers(scratch, options)
            self._set_frame_options_headers(scratch, options)
            self._set_content_security_policy_headers(scratch, options)
            fixed = self._view_headers[endpoint] = list(scratch.items())
        headers = response.headers
        for name, value in fixed:
            headers[name] = value
        self._set_hsts_headers(headers)
        self._set_referrer_policy_headers(headers)
        return response

    def _set_hsts_headers(self, headers) -> None:
        # Talisman reads the request's scheme and X-Forwarded-Proto before it looks at
        # whether HSTS is on at all (only with an https SHOP_BASE_URL).
        if self.strict_transport_security:
            super()._set_hsts_headers(headers)

    def _set_referrer_policy_headers(self, headers) -> None:
        # The baseline, unless the view chose a stricter one (the sign-in link's page
        # answers no-referrer: its URL holds the token).
        if "Referrer-Policy" not in headers:
            headers["Referrer-Policy"] = self.referrer_policy


def init_app(app: Flask) -> None:
    https = base_url_is_https(app)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=https,
    )
    app.json = SafeJSONProvider(app)
    app.session_interface = ShopSessionInterface()
    app.request_class = _request_class(trusted_hosts(app))
    proxies = app.config["PROXY_COUNT"]
    if proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies
        )
    ShopTalisman(
        app,
        # The TLS proxy in front redirects http to https (README, Deploying); here a
        # redirect would also catch the Stripe CLI's plain-http deliveries to localhost.
        force_https=False,
        frame_options="DENY",
        strict_transport_security=https,
        # The shop's own host only: its parent domain may serve plain-http sites.
        strict_transport_security_include_subdomains=False,
        content_security_policy=BASELINE_CSP,
        referrer_policy="strict-origin-when-cross-origin",
        # Set above from SHOP_BASE_URL (Talisman would set Secure on any non-debug app).
        session_cookie_secure=False,
        session_cookie_http_only=True,
        session_cookie_samesite="Lax",
        x_content_type_options=True,
    )
    app.before_request(_refuse_nul_bytes)
    app.after_request(_no_store)


def _refuse_nul_bytes() -> None:
    """NUL is in no URL or query of ours; PostgreSQL cannot even compare with it. (Form
    fields are each checked by their form, which says which field is wrong.)"""
    if any(isinstance(v, str) and "\x00" in v for v in (request.view_args or {}).values()):
        abort(404, "We could not find that page.")
    if any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
        abort(400, "The address holds a character that is not allowed.")


def _no_store(response):
    if request.blueprint in NO_STORE_BLUEPRINTS:
        response.headers["Cache-Control"] = "no-store"
    return response
