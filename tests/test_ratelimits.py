"""Rate limits: per IP, per session and per email, with a friendly 429 and Retry-After."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from storefront import create_app, ratelimits
from storefront.extensions import db
from storefront.models import OutboxMessage
from tests.conftest import TEST_CONFIG, make_app


def limited_app(tmp_path, **limits):
    config = {
        "RATELIMIT_ENABLED": True,
        "RATE_LIMIT_PAYMENT_PER_IP": "1000 per minute",
        "RATE_LIMIT_PAYMENT_PER_SESSION": "1000 per minute",
        "RATE_LIMIT_SIGN_IN_PER_IP": "1000 per minute",
        "RATE_LIMIT_SIGN_IN_PER_SESSION": "1000 per minute",
        "RATE_LIMIT_SIGN_IN_PER_EMAIL": "1000 per minute",
        "RATE_LIMIT_CART_PER_IP": "1000 per minute",
        "RATE_LIMIT_CART_PER_SESSION": "1000 per minute",
        "RATE_LIMIT_STAFF_PER_IP": "1000 per minute",
        "RATE_LIMIT_STAFF_PER_SESSION": "1000 per minute",
        "RATE_LIMIT_BILLING_PER_IP": "1000 per minute",
        "RATE_LIMIT_BILLING_PER_SESSION": "1000 per minute",
    }
    config.update(limits)
    return make_app(tmp_path, **config)


def from_ip(ip: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": ip}}


def test_limits_are_off_in_the_other_tests(app):
    assert ratelimits.limited_endpoints(app) == set()


def test_every_budget_is_on_its_endpoints(tmp_path):
    app = limited_app(tmp_path)
    expected = {
        *ratelimits.PAYMENT_ENDPOINTS,
        *ratelimits.SIGN_IN_ENDPOINTS,
        *ratelimits.EMAIL_ENDPOINTS,
        *ratelimits.CART_ENDPOINTS,
        *ratelimits.STAFF_ENDPOINTS,
        *ratelimits.BILLING_ENDPOINTS,
    }
    # Pay (the shipping issue's checkout) may not exist yet; every other endpoint must.
    assert expected - {"checkout.pay"} <= set(app.view_functions)
    assert ratelimits.limited_endpoints(app) == expected & set(app.view_functions)


def test_cart_changes_per_session_get_a_friendly_429(tmp_path):
    app = limited_app(tmp_path, RATE_LIMIT_CART_PER_SESSION="3 per minute")
    client = app.test_client()
    for _ in range(3):
        assert client.post("/cart/currency", data={"currency": "eur"}).status_code == 303
    response = client.post("/cart/currency", data={"currency": "usd"})
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    page = response.get_data(as_text=True)
    assert "Please wait" in page and "try again" in page
    assert response.headers["Content-Security-Policy"]  # a normal page, headers and all
    # Another browser is not affected.
    assert app.test_client().post("/cart/currency", data={"currency": "eur"}).status_code == 303


def test_json_callers_get_json_with_retry_after(tmp_path):
    app = limited_app(tmp_path, RATE_LIMIT_CART_PER_SESSION="1 per minute")
    client = app.test_client()
    client.post("/cart/currency", json={"currency": "eur"})
    response = client.post("/cart/currency", json={"currency": "usd"})
    assert response.status_code == 429
    assert response.is_json
    body = response.get_json()
    assert "try again" in body["error"]
    assert body["retry_after"] == int(response.headers["Retry-After"]) >= 1


def test_fresh_sessions_from_one_ip_share_its_budget(tmp_path):
    """The finding: a client loading the checkout page with fresh sessions made 771
    orders and PaymentIntents a minute."""
    app = limited_app(tmp_path, RATE_LIMIT_PAYMENT_PER_IP="5 per minute")
    statuses = [
        app.test_client().get("/checkout/", **from_ip("198.51.100.9")).status_code for _ in range(7)
    ]
    assert statuses[:5] == [303] * 5  # not configured here: back to the cart
    assert statuses[5:] == [429, 429]
    assert app.test_client().get("/checkout/", **from_ip("198.51.100.10")).status_code == 303


def test_one_payment_budget_for_every_way_to_pay(tmp_path):
    app = limited_app(tmp_path, RATE_LIMIT_PAYMENT_PER_SESSION="3 per minute")
    client = app.test_client()
    assert client.get("/checkout/").status_code == 303
    assert client.post("/checkout/stripe/").status_code == 303
    assert client.post("/membership/subscribe", data={"price": "x"}).status_code == 303
    assert client.post("/checkout/stripe/").status_code == 429
    assert client.get("/checkout/").status_code == 429


def test_sign_in_links_per_email_share_one_budget_across_tags_case_and_ips(tmp_path):
    app = limited_app(tmp_path, RATE_LIMIT_SIGN_IN_PER_EMAIL="3 per minute")
    addresses = [
        "ada@example.com",
        "ada+1@example.com",
        "ADA+shop@Example.com",
        "ada+x@example.com",
    ]
    statuses = [
        app.test_client()
        .post("/account/sign-in", data={"email": address}, **from_ip(f"203.0.113.{n}"))
        .status_code
        for n, address in enumerate(addresses)
    ]
    assert statuses == [200, 200, 200, 429]
    # Another mailbox has its own budget; invalid input is a form error, not a 429.
    client = app.test_client()
    assert client.post("/account/sign-in", data={"email": "bob@example.com"}).status_code == 200
    for _ in range(5):
        assert client.post("/account/sign-in", data={"email": "nope"}).status_code == 400


def test_sign_in_links_per_ip(tmp_path):
    """The finding: 1,120 sign-in requests to distinct addresses in 20 s queued 1,120 emails."""
    app = limited_app(tmp_path, RATE_LIMIT_SIGN_IN_PER_IP="10 per minute")
    statuses = [
        app.test_client().post("/account/sign-in", data={"email": f"u{n}@example.com"}).status_code
        for n in range(15)
    ]
    assert statuses == [200] * 10 + [429] * 5
    with app.app_context():
        assert db.session.query(OutboxMessage).count() == 10


def test_email_budget_normalises():
    assert ratelimits.email_budget(" Ada+Shop@Example.COM ") == "ada@example.com"
    assert ratelimits.email_budget("+x@example.com") == "+x@example.com"
    assert ratelimits.email_budget("nope") is None
    assert ratelimits.email_budget(None) is None


def test_a_storage_uri_that_cannot_work_stops_the_start():
    config = dict(TEST_CONFIG, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="bogus://x")
    with pytest.raises(SystemExit) as excinfo:
        create_app(dict(config, DATABASE_URL="sqlite://"))
    assert "RATELIMIT_STORAGE_URI" in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_a_bad_rate_limit_setting_stops_the_start():
    with pytest.raises(SystemExit) as excinfo:
        create_app(dict(TEST_CONFIG, DATABASE_URL="sqlite://", RATE_LIMIT_CART_PER_IP="lots"))
    assert "RATE_LIMIT_CART_PER_IP" in str(excinfo.value)


@pytest.fixture
def redis_url(tmp_path):
    """A throwaway Redis server on a Unix socket (``make test`` installs redis-server)."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (make test installs Debian's package)")
    socket_path = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [
            server,
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "redis did not start"
            time.sleep(0.05)
        yield f"redis+unix://{socket_path}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_two_app_servers_share_their_counts_through_redis(tmp_path, redis_url):
    apps = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        apps.append(
            limited_app(
                tmp_path / name,
                RATELIMIT_STORAGE_URI=redis_url,
                RATE_LIMIT_CART_PER_IP="3 per minute",
            )
        )
    statuses = [
        app.test_client().post("/cart/currency", data={"currency": "eur"}).status_code
        for app in (*apps, *apps)
    ]
    assert statuses == [303, 303, 303, 429]


def test_staff_actions_are_limited_and_outsiders_spend_nothing(tmp_path):
    from tests.admin_helpers import STAFF, sign_in

    app = limited_app(tmp_path, STAFF_EMAILS=STAFF, RATE_LIMIT_STAFF_PER_SESSION="3 per minute")
    outsider = app.test_client()
    for _ in range(5):  # not staff: 404, and the staff budget is not touched
        assert outsider.post("/admin/reconcile").status_code == 404
    staff = app.test_client()
    sign_in(staff, app, STAFF)
    for _ in range(3):
        assert staff.post("/admin/reconcile").status_code == 303
    refused = staff.post("/admin/reconcile")
    assert refused.status_code == 429
    assert "Please wait" in refused.get_data(as_text=True)
    assert staff.get("/admin/orders.csv").status_code == 429  # one budget for staff actions
    assert staff.get("/admin/").status_code == 200  # pages stay open


def test_webhook_deliveries_skip_the_limiters_per_request_work(tmp_path, monkeypatch):
    # A signed server-to-server POST has no budget; Flask-Limiter's request filter stops
    # it from resolving limits for every delivery (a fifth of an ignored event's calls).
    from tests.webhook_helpers import make_event, post_event

    app = limited_app(tmp_path)
    manager = app.extensions["shop_limiter"].limit_manager
    looked_up: list[str] = []
    real = manager.has_hints
    monkeypatch.setattr(manager, "has_hints", lambda ep: looked_up.append(ep) or real(ep))
    client = app.test_client()
    assert client.get("/").status_code == 200
    assert looked_up == ["catalog.index"]  # the spy sees the limiter's work
    for _ in range(3):
        response = post_event(client, make_event("customer.updated", {"id": "cus_1"}))
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["outcome"] == "ignored"
    assert looked_up == ["catalog.index"]
    # ... and the payment budgets are untouched.
    assert ratelimits.limited_endpoints(app) >= set(ratelimits.PAYMENT_ENDPOINTS) & set(
        app.view_functions
    )
