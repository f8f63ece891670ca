"""Ready for the open internet: request sizes, headers, cookies, hosts, proxies, odd input."""

from __future__ import annotations

import gc
import json
import time

import pytest

from storefront import create_app
from tests.conftest import make_app
from tests.webhook_helpers import TEST_SECRET, event_count, make_event, post_event, sign


def from_ip(ip: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": ip}}


def other_app(tmp_path, name: str, **config):
    """Another shop in the same test, with a database of its own."""
    (tmp_path / name).mkdir()
    return make_app(tmp_path / name, **config)


PRODUCTION = {
    "SECRET_KEY": "x" * 32,
    "STRIPE_SECRET_KEY": "sk_test_123",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_123",
    "STRIPE_WEBHOOK_SECRET": "whsec_123",
    "SHOP_BASE_URL": "https://shop.example.com",
    "DATABASE_URL": "sqlite://",
    "MAIL_SERVER": "smtp.example.com",
    "MAIL_FROM": "shop@example.com",
}


class UnreadableBody:
    """A request body that fails the test if anything reads it."""

    reads = 0

    def read(self, *args):
        UnreadableBody.reads += 1
        raise AssertionError("the body was read")

    readline = readlines = read


def send_unread(client, path: str, length: int, **headers):
    UnreadableBody.reads = 0
    return client.post(
        path,
        content_type="application/json",
        headers=headers,
        environ_overrides={"wsgi.input": UnreadableBody(), "CONTENT_LENGTH": str(length)},
    )


# --------------------------------------------------------------------------- request sizes


def test_a_form_larger_than_the_limit_is_413(client):
    response = client.post(
        "/account/sign-in", data={"email": "ada@example.com", "pad": "x" * (5 * 1024 * 1024)}
    )
    assert response.status_code == 413


def test_a_long_form_field_is_413(client):
    response = client.post("/account/sign-in", data={"email": "a" * 20_000 + "@example.com"})
    assert response.status_code == 413
    # multipart/form-data: one text field over MAX_FORM_MEMORY_SIZE, or too many fields.
    response = client.post(
        "/account/sign-in",
        data={"email": "a" * 9_000 + "@example.com"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    response = client.post(
        "/account/sign-in",
        data={f"f{n}": "" for n in range(60)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413


def test_an_oversized_body_is_413_before_it_is_read(client):
    response = send_unread(client, "/cart/add", 300 * 1024 * 1024)
    assert response.status_code == 413
    assert UnreadableBody.reads == 0


def test_an_oversized_webhook_is_413_before_it_is_read_or_hashed(client, monkeypatch):
    import hmac

    def no_hashing(*args, **kwargs):
        raise AssertionError("the signature was computed")

    header = sign("{}")
    monkeypatch.setattr(hmac, "new", no_hashing)
    response = send_unread(
        client, "/webhooks/stripe", 300 * 1024 * 1024, **{"Stripe-Signature": header}
    )
    assert response.status_code == 413
    assert UnreadableBody.reads == 0


def test_the_webhook_has_its_own_larger_limit(app, client):
    # Larger than the app-wide limit, within the webhook's: read and processed.
    event = make_event("shop.test_unhandled", {"id": "obj_1", "pad": "x" * 100_000})
    payload = json.dumps(event)
    assert (
        app.config["MAX_CONTENT_LENGTH"] < len(payload) < app.config["WEBHOOK_MAX_CONTENT_LENGTH"]
    )
    response = client.post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": sign(payload)},
        content_type="application/json",
    )
    assert response.status_code == 200
    payload = json.dumps(dict(event, pad="x" * (app.config["WEBHOOK_MAX_CONTENT_LENGTH"] + 1)))
    response = client.post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": sign(payload)},
        content_type="application/json",
    )
    assert response.status_code == 413


# Just outside the 300 s tolerance. The future side has 10 s of slack, not 1: the header is
# made before the request runs, and a busy machine took over a second between the two.
@pytest.mark.parametrize("offset", [-3600, -301, 310, 3600])
def test_webhook_timestamps_outside_the_tolerance_are_refused_before_reading(
    client, monkeypatch, offset
):
    import hmac

    def no_hashing(*args, **kwargs):
        raise AssertionError("the signature was computed")

    monkeypatch.setattr(hmac, "new", no_hashing)
    header = f"t={int(time.time()) + offset},v1={'0' * 64}"
    response = send_unread(client, "/webhooks/stripe", 1000, **{"Stripe-Signature": header})
    assert response.status_code == 400
    assert "tolerance" in response.get_json()["error"]
    assert UnreadableBody.reads == 0


def test_a_correctly_signed_event_from_the_future_is_refused(app, client):
    event = make_event("shop.test_unhandled", {"id": "obj_1"})
    payload = json.dumps(event)
    header = sign(payload, TEST_SECRET, timestamp=int(time.time()) + 3600)
    response = client.post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": header},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "tolerance" in response.get_json()["error"]


def test_a_signed_event_within_the_tolerance_either_way_is_accepted(client):
    for offset in (-200, 200):
        payload = json.dumps(make_event("shop.test_unhandled", {"id": "obj_1"}))
        header = sign(payload, TEST_SECRET, timestamp=int(time.time()) + offset)
        response = client.post(
            "/webhooks/stripe",
            data=payload,
            headers={"Stripe-Signature": header},
            content_type="application/json",
        )
        assert response.status_code == 200


# --------------------------------------------------------------------------- odd input


@pytest.mark.parametrize("path", ["/cart/add", "/cart/update", "/cart/remove", "/cart/currency"])
def test_deeply_nested_json_is_a_400(client, path):
    # Deeper than Python's recursion limit, within the size limit.
    response = client.post(path, data="[" * 10_000, content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.get_json()
    response = client.post(path, data="[" * 100_000, content_type="application/json")
    assert response.status_code == 413


def _recurse(depth: int) -> int:
    return 0 if depth == 0 else 1 + _recurse(depth - 1)


def test_nested_json_is_refused_before_it_uses_up_the_stack(client):
    # A garbage collection can start at any allocation, and run finalizers and callbacks
    # right there. Were the parser a thousand levels deep in a "[[[[..." body at that
    # moment, they would find no stack left ("Exception ignored in ...": a RecursionError
    # in a finalizer, which once failed the hostile-input walk). Here a collection starts
    # at every allocation, and each needs a little stack.
    starved: list[str] = []

    def needs_stack(phase: str, info: dict) -> None:
        try:
            _recurse(50)
        except RecursionError:
            starved.append(phase)

    thresholds = gc.get_threshold()
    gc.callbacks.append(needs_stack)
    gc.set_threshold(1, 1_000, 1_000)
    try:
        response = client.post("/cart/add", data="[" * 10_000, content_type="application/json")
        nested_objects = client.post(
            "/cart/add", data='{"a":' * 3_000, content_type="application/json"
        )
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(needs_stack)
    assert response.status_code == 400
    assert nested_objects.status_code == 400
    assert starved == []


def test_json_depth_is_read_without_parsing():
    from storefront.security import nested_deeper_than

    assert not nested_deeper_than('{"a": [1, {"b": [2]}]}', 4)
    assert nested_deeper_than('{"a": [1, {"b": [2]}]}', 3)
    # Brackets inside strings are text, escaped quotes included.
    assert not nested_deeper_than('["[[[[", "\\"[{[{", {"k": "]]]"}]', 2)
    assert nested_deeper_than("[" * 40 + "]" * 40, 32)
    assert not nested_deeper_than("[" * 32 + "]" * 32, 32)
    assert not nested_deeper_than("[]" * 1_000, 1)  # many, side by side
    # A string left open runs to the end, as the parser reads it (which then refuses it).
    assert not nested_deeper_than('"' + '\\"' * 8_000 + "[" * 40, 32)
    assert nested_deeper_than("[" * 33 + '"' + '\\"' * 8_000, 32)


def test_deeply_nested_json_to_the_checkout_pay_is_a_400(client):
    with client.session_transaction() as sess:
        sess["checkout_order"] = "abc"
    response = client.post("/checkout/abc/pay", data="[" * 10_000, content_type="application/json")
    assert response.status_code == 400


def test_json_with_a_nul_character_is_a_400(client):
    body = json.dumps({"price_id": "1\x00", "quantity": 1})
    response = client.post("/cart/add", data=body, content_type="application/json")
    assert response.status_code == 400


def test_a_nul_byte_in_the_path_or_query_is_not_a_5xx(client):
    assert client.get("/products/%00").status_code == 404
    assert client.get("/orders/abc%00").status_code == 404
    assert client.get("/membership/welcome?session_id=cs_%00").status_code == 400


def test_the_webhook_reads_only_its_signed_body_not_its_query(client):
    # The NUL-in-query guard is for views that read the query; the webhook reads none of
    # it, so the guard is skipped there (per-request work a delivery does not need).
    payload = json.dumps(make_event("customer.updated", {"id": "cus_1"}))
    response = post_event(client, payload, path="/webhooks/stripe?x=%00")
    assert response.status_code == 200
    assert response.get_json()["outcome"] == "ignored"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    # Without a valid signature it is still refused.
    response = client.post(
        "/webhooks/stripe?x=%00",
        data=payload,
        headers={"Stripe-Signature": sign(payload + " ")},
        content_type="application/json",
    )
    assert response.status_code == 400


def test_a_view_that_asks_for_https_is_still_redirected(app):
    # The shop's Talisman skips the https check when nothing asks for it; a view that
    # does (Talisman's per-view option) still gets the redirect.
    @app.get("/_test/https-only")
    def https_only():
        return "ok"

    https_only.talisman_view_options = {"force_https": True}
    response = app.test_client().get("/_test/https-only")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://")
    assert app.test_client().get("/").status_code == 200


# --------------------------------------------------------------------------- headers


def test_every_page_has_the_security_headers(client):
    for path in ("/", "/account/", "/cart/", "/membership/", "/no-such-page"):
        response = client.get(path)
        csp = response.headers["Content-Security-Policy"]
        for directive in (
            "default-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ):
            assert directive in csp, (path, directive)
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert "Strict-Transport-Security" not in response.headers  # plain http


def test_each_endpoint_keeps_its_own_security_headers(tmp_path):
    # The shop's Talisman works out a view's headers once per endpoint: a page with
    # Stripe.js, a page that redirects to Stripe Checkout and the webhook, in turn and
    # again, each get theirs (the webhook's JSON answer too: nosniff, the baseline CSP).
    app = make_app(
        tmp_path, STRIPE_API_BASE="http://127.0.0.1:9", STRIPE_JS_URL="http://127.0.0.1:9/v3/"
    )
    client = app.test_client()
    for _ in range(2):
        checkout = client.get("/checkout/").headers["Content-Security-Policy"]
        assert "script-src 'self' http://127.0.0.1:9" in checkout
        cart = client.get("/cart/").headers["Content-Security-Policy"]
        assert "script-src" not in cart and "form-action 'self' http://127.0.0.1:9" in cart
        payload = json.dumps(make_event("customer.updated", {"id": "cus_h", "object": "customer"}))
        hook = client.post(
            "/webhooks/stripe",
            data=payload,
            headers={"Stripe-Signature": sign(payload)},
            content_type="application/json",
        ).headers
        assert hook["Content-Type"] == "application/json"
        assert hook["X-Content-Type-Options"] == "nosniff"
        assert hook["X-Frame-Options"] == "DENY"
        assert hook["Referrer-Policy"] == "strict-origin-when-cross-origin"
        csp = hook["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "127.0.0.1:9" not in csp


def test_flask_asks_once_per_function_whether_it_is_async(client, monkeypatch):
    # Flask checks every hook and view with inspect on each request; the shop keeps the
    # answer per function.
    import flask.app

    asked = []
    real = flask.app.iscoroutinefunction
    monkeypatch.setattr(flask.app, "iscoroutinefunction", lambda f: asked.append(f) or real(f))
    assert client.get("/").status_code == 200
    assert asked  # the hooks and the view, the first time
    first = len(asked)
    assert client.get("/").status_code == 200
    assert len(asked) == first


def test_a_view_may_choose_a_stricter_referrer_policy(app):
    @app.get("/_test/secret-link")
    def secret_link():
        return "", 200, {"Referrer-Policy": "no-referrer"}

    response = app.test_client().get("/_test/secret-link")
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_pages_without_stripe_allow_nothing_from_stripe(client):
    csp = client.get("/contact").headers["Content-Security-Policy"]
    assert "stripe" not in csp
    assert "script-src" not in csp  # default-src 'self' applies


def test_pages_that_redirect_to_stripe_checkout_allow_exactly_that(tmp_path):
    app = make_app(tmp_path, STRIPE_API_BASE="http://127.0.0.1:9")
    for path in ("/cart/", "/membership/"):
        csp = app.test_client().get(path).headers["Content-Security-Policy"]
        assert "form-action 'self' http://127.0.0.1:9;" in csp + ";", path
        assert "script-src" not in csp
    real = other_app(tmp_path, "real")
    csp = real.test_client().get("/cart/").headers["Content-Security-Policy"]
    assert "form-action 'self' https://checkout.stripe.com" in csp


def test_my_account_may_redirect_to_the_customer_portal_and_nowhere_else(tmp_path):
    app = make_app(tmp_path, STRIPE_API_BASE="http://127.0.0.1:9")
    csp = app.test_client().get("/account/").headers["Content-Security-Policy"]
    assert "form-action 'self' http://127.0.0.1:9;" in csp + ";"
    assert "script-src" not in csp
    real = other_app(tmp_path, "real")
    csp = real.test_client().get("/account/").headers["Content-Security-Policy"]
    assert "form-action 'self' https://billing.stripe.com;" in csp + ";"
    assert "checkout.stripe.com" not in csp


def test_hsts_when_the_shop_is_https(tmp_path):
    app = make_app(tmp_path, SHOP_BASE_URL="https://localhost")
    response = app.test_client().get("/", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    app = other_app(tmp_path, "plain", SHOP_BASE_URL="http://localhost")
    response = app.test_client().get("/", base_url="https://localhost")
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize("path", ["/account/", "/orders/nope", "/membership/"])
def test_pages_with_personal_data_are_not_stored(client, path):
    assert client.get(path).headers["Cache-Control"] == "no-store"


def test_the_checkout_page_is_not_stored(tmp_path):
    app = make_app(tmp_path)
    response = app.test_client().get("/checkout/")
    assert response.headers["Cache-Control"] == "no-store"


def test_the_catalog_may_be_cached(client):
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")


# --------------------------------------------------------------------------- cookies


def session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, "no session cookie"
    return cookies[0]


def test_a_request_without_a_session_cookie_signs_and_verifies_nothing(app, client, monkeypatch):
    # A webhook (or any first visit) has no cookie to verify: no signing serializer is
    # built for it (Flask builds one on every request). One with a cookie is still read.
    built: list[bool] = []
    original = app.session_interface.get_signing_serializer

    def counting(app_):
        built.append(True)
        return original(app_)

    monkeypatch.setattr(app.session_interface, "get_signing_serializer", counting)
    evt = make_event("customer.updated", {"id": "cus_s", "object": "customer"})
    body = json.dumps(evt)
    response = client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"},
    )
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    assert built == []
    # With its cookie, a session is verified and read as before.
    client.post("/cart/add", data={"price_id": "1", "quantity": "2"})
    assert client.get_cookie("session") is not None
    assert built
    assert 'aria-label="Cart, 2 items"' in client.get("/cart/").get_data(as_text=True)


def test_a_request_without_any_cookie_parses_no_cookie_header(app, monkeypatch):
    # Every webhook delivery: no Cookie header, so nothing to parse (werkzeug parses the
    # empty header into a dict, twice per request before: the session and the sign-out
    # check). A request with cookies still has them read, the session among them.
    import werkzeug.sansio.request

    parsed: list[str] = []
    real = werkzeug.sansio.request.parse_cookie
    monkeypatch.setattr(
        werkzeug.sansio.request, "parse_cookie", lambda h, **kw: parsed.append(h) or real(h, **kw)
    )
    client = app.test_client()
    body = json.dumps(make_event("customer.updated", {"id": "cus_c", "object": "customer"}))
    response = client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"},
    )
    assert response.json["outcome"] == "ignored" and "Set-Cookie" not in response.headers
    assert parsed == []
    client.post("/cart/add", data={"price_id": "1", "quantity": "2"})
    assert 'aria-label="Cart, 2 items"' in client.get("/cart/").get_data(as_text=True)
    assert parsed and all("session=" in h for h in parsed)


def test_session_cookie_is_httponly_and_samesite_lax(client):
    cookie = session_cookie(client.get("/"))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # no https SHOP_BASE_URL: development over http


def test_session_cookie_is_secure_when_the_shop_is_https(tmp_path):
    app = make_app(tmp_path, SHOP_BASE_URL="https://localhost")
    cookie = session_cookie(app.test_client().get("/", base_url="https://localhost"))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


# --------------------------------------------------------------------------- hosts and proxies


@pytest.fixture
def public_app(tmp_path):
    return make_app(tmp_path, SHOP_BASE_URL="https://shop.example.com")


def test_an_unknown_host_is_a_400_and_never_reflected(public_app):
    client = public_app.test_client()
    response = client.post(
        "/cart/add",
        data={"price_id": "1", "quantity": "1"},
        base_url="https://evil.example",
    )
    assert response.status_code == 400
    assert "evil.example" not in response.headers.get("Location", "")
    response = client.get("/", base_url="https://evil.example")
    assert response.status_code == 400
    assert "evil.example" not in response.get_data(as_text=True)


def test_the_shops_own_host_is_served(public_app):
    client = public_app.test_client()
    assert client.get("/", base_url="https://shop.example.com").status_code == 200
    response = client.post(
        "/cart/currency", data={"currency": "eur"}, base_url="https://shop.example.com"
    )
    assert response.status_code == 303
    assert response.headers["Location"] in ("/cart/", "https://shop.example.com/cart/")


def test_the_webhook_accepts_the_stripe_cli_on_localhost(public_app):
    client = public_app.test_client()
    payload = json.dumps(make_event("shop.test_unhandled", {"id": "obj_1"}))
    for base in ("http://localhost:5000", "http://127.0.0.1:5000"):
        response = client.post(
            "/webhooks/stripe",
            data=payload,
            headers={"Stripe-Signature": sign(payload)},
            content_type="application/json",
            base_url=base,
        )
        assert response.status_code == 200, base
    # ... but only the webhook: the pages stay on the shop's host.
    assert client.get("/", base_url="http://localhost:5000").status_code == 400


def test_the_webhook_refuses_an_unknown_host_before_reading_the_event(public_app):
    # It is answered in front of Flask (storefront/webhook_endpoint.py), so it checks the
    # Host itself, like every page.
    response = post_event(
        public_app.test_client(),
        make_event("customer.updated", {"id": "cus_1"}),
        base_url="https://evil.example",
    )
    assert response.status_code == 400
    assert response.get_json() == {"error": "Unknown host."}
    assert event_count(public_app) == 0


def test_the_webhook_answers_with_the_headers_of_the_shops_pages(public_app):
    client = public_app.test_client()
    policy = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options")
    policy += ("Referrer-Policy", "Permissions-Policy", "Strict-Transport-Security")
    page = client.get("/", base_url="https://shop.example.com").headers
    hook = post_event(
        client,
        make_event("customer.updated", {"id": "cus_1"}),
        base_url="https://shop.example.com",
    )
    assert hook.status_code == 200
    assert hook.headers["Content-Type"] == "application/json"
    assert {name: hook.headers.get(name) for name in policy} == {
        name: page.get(name) for name in policy
    }
    assert hook.headers["Strict-Transport-Security"]  # https: HSTS as on the pages
    assert "Set-Cookie" not in hook.headers
    # Over plain http (the Stripe CLI on localhost): no HSTS, the rest the same.
    local = post_event(
        client, make_event("customer.updated", {"id": "cus_1"}), base_url="http://localhost"
    )
    assert "Strict-Transport-Security" not in local.headers
    assert local.headers["Content-Security-Policy"] == page["Content-Security-Policy"]


def test_the_webhook_answers_other_methods_with_a_405(client):
    for method in ("GET", "PUT", "DELETE", "HEAD"):
        response = client.open("/webhooks/stripe", method=method)
        assert response.status_code == 405, method
        assert response.headers["Allow"] == "POST"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_chunked_webhook_body_over_the_limit_is_a_413(app):
    # No Content-Length (chunked): read up to the limit, never past it.
    payload = json.dumps(make_event("customer.updated", {"id": "c", "pad": "x" * 5000}))

    def send():
        return app.test_client().post(
            "/webhooks/stripe",
            data=payload,
            headers={"Stripe-Signature": sign(payload), "Transfer-Encoding": "chunked"},
            content_type="application/json",
            environ_overrides={"wsgi.input_terminated": True},
        )

    app.config["WEBHOOK_MAX_CONTENT_LENGTH"] = len(payload) - 1
    assert send().status_code == 413
    assert event_count(app) == 0
    app.config["WEBHOOK_MAX_CONTENT_LENGTH"] = len(payload)  # exactly the limit: taken
    assert send().status_code == 200
    assert event_count(app) == 1


def test_an_unexpected_webhook_error_is_logged_and_answered_500(tmp_path, monkeypatch, caplog):
    from storefront import webhook_endpoint

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(webhook_endpoint, "process_event", broken)
    event = make_event("customer.updated", {"id": "cus_1"})
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    # Under test (and debug), as with Flask: the error propagates.
    with pytest.raises(RuntimeError):
        post_event(make_app(tmp_path / "a", PROPAGATE_EXCEPTIONS=None).test_client(), event)
    app = make_app(tmp_path / "b", PROPAGATE_EXCEPTIONS=False)
    with caplog.at_level("ERROR"):
        response = post_event(app.test_client(), event)
    assert response.status_code == 500  # Stripe retries it
    assert response.get_json() == {"error": "Internal Server Error"}
    assert "Exception on /webhooks/stripe [POST]" in caplog.text
    assert "database went away" in caplog.text


def test_the_webhook_behind_a_proxy_sees_the_forwarded_host_and_scheme(tmp_path):
    app = make_app(tmp_path, PROXY_COUNT=1, SHOP_BASE_URL="https://shop.example.com")
    forwarded = {"X-Forwarded-Host": "shop.example.com", "X-Forwarded-Proto": "https"}
    response = post_event(
        app.test_client(),
        make_event("customer.updated", {"id": "cus_1"}),
        base_url="http://10.0.0.5:8000",
        **forwarded,
    )
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"]
    assert event_count(app) == 1


def remote_addr_seen(app, **headers) -> tuple[str, str]:
    seen = {}

    @app.get("/_test/whoami")
    def whoami():
        from flask import request

        seen.update(addr=request.remote_addr, scheme=request.scheme)
        return ""

    app.test_client().get(
        "/_test/whoami", headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.2"}
    )
    return seen["addr"], seen["scheme"]


def test_proxy_count_decides_whose_forwarded_headers_count(tmp_path):
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    app = make_app(tmp_path, PROXY_COUNT=1)
    assert remote_addr_seen(app, **headers) == ("203.0.113.7", "https")
    # Without a proxy in front, a client's own X-Forwarded-For is ignored.
    app = other_app(tmp_path, "direct")
    assert remote_addr_seen(app, **headers) == ("10.0.0.2", "http")


# --------------------------------------------------------------------------- production settings


def refusal(**changes) -> str:
    with pytest.raises(SystemExit) as excinfo:
        create_app(dict(PRODUCTION, **changes))
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_production_starts_with_good_settings():
    create_app(PRODUCTION)
    create_app(dict(PRODUCTION, STRIPE_SECRET_KEY="rk_live_1", STRIPE_PUBLISHABLE_KEY="pk_live_1"))
    create_app(dict(PRODUCTION, SHOP_BASE_URL="http://localhost:8000"))
    create_app(dict(PRODUCTION, SHOP_BASE_URL="http://127.0.0.1:8000"))


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"STRIPE_PUBLISHABLE_KEY": "sk_test_123"}, "STRIPE_PUBLISHABLE_KEY"),
        ({"STRIPE_SECRET_KEY": "pk_test_123"}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_SECRET_KEY": "whsec_123"}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_WEBHOOK_SECRET": "sk_test_123"}, "STRIPE_WEBHOOK_SECRET"),
        ({"STRIPE_SECRET_KEY": "sk_live_123"}, "mixed"),
        ({"STRIPE_PUBLISHABLE_KEY": "pk_live_123"}, "mixed"),
        ({"SECRET_KEY": "a"}, "SECRET_KEY"),
        ({"SECRET_KEY": "x" * 31}, "32"),
        ({"SHOP_BASE_URL": "http://shop.example.com"}, "https"),
        ({"SHOP_BASE_URL": "shop.example.com"}, "SHOP_BASE_URL"),
    ],
)
def test_production_refuses_dangerous_settings(changes, named):
    message = refusal(**changes)
    assert named in message
    for secret in ("sk_test_123", "sk_live_123", "whsec_123", "x" * 31):
        assert secret not in message


def test_debug_mode_refuses_live_keys():
    with pytest.raises(SystemExit) as excinfo:
        create_app(
            dict(
                PRODUCTION,
                DEBUG=True,
                STRIPE_SECRET_KEY="sk_live_1",
                STRIPE_PUBLISHABLE_KEY="pk_live_1",
            )
        )
    assert "live" in str(excinfo.value)
    create_app(dict(PRODUCTION, DEBUG=True, SECRET_KEY="short"))  # test keys: fine


# --------------------------------------------------------------------------- a real server


def test_a_huge_webhook_is_413_at_once_and_the_worker_stays_free(tmp_path):
    """The 300 MB case against gunicorn with one sync worker in production mode: the 413
    comes from the Content-Length header while the body is still on its way (here it never
    comes), and the same worker then answers the next request."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(
        os.environ,
        SECRET_KEY="s" * 40,
        STRIPE_SECRET_KEY="sk_test_123",
        STRIPE_PUBLISHABLE_KEY="pk_test_123",
        STRIPE_WEBHOOK_SECRET=TEST_SECRET,
        SHOP_BASE_URL=f"http://127.0.0.1:{port}",
        DATABASE_URL=f"sqlite:///{tmp_path / 'shop.sqlite3'}",
        MAIL_ENABLED="false",  # the web process alone: no dispatcher in this test
    )
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "--pythonpath", str(root)),
            *("-w", "1", "--timeout", "20", "-b", f"127.0.0.1:{port}", "wsgi:app"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def request(head: bytes, timeout: float = 10) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(head)
            return conn.recv(4096)

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                request(b"GET /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        huge = (
            "POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\n"
            f"Stripe-Signature: t={int(time.time())},v1={'0' * 64}\r\n"
            f"Content-Length: {300 * 1024 * 1024}\r\n\r\n{{"
        ).encode()
        started = time.monotonic()
        answer = request(huge, timeout=5)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
        assert time.monotonic() - started < 5
        # One worker, and it is free again: the next request is answered.
        answer = request(b"GET /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", timeout=5)
        assert answer.startswith(b"HTTP/1.1 405"), answer[:80]
    finally:
        server.terminate()
        server.wait(timeout=10)


# --------------------------------------------------------------------------- debug mode


def test_debug_mode_refuses_to_serve_beyond_this_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")  # what `flask` reads (make run sets it)
    app = make_app(tmp_path, DEBUG=True)
    result = app.test_cli_runner().invoke(args=["serve", "--host", "0.0.0.0"])
    assert result.exit_code != 0
    assert "Refusing to serve in debug mode on 0.0.0.0" in result.output
