"""Every route, every method, hostile input: never a 5xx.

Walks ``app.url_map`` and sends each rule bad path parameters, NUL and overlong strings
in the query, forms and JSON, malformed and deeply nested JSON, huge and empty bodies,
as a guest, with a cart and a checkout in the session, and signed in as staff; then the
POST routes with missing and foreign CSRF tokens. ``tests/test_postgres.py`` runs the same
walk on PostgreSQL, which refuses NUL characters that SQLite stores.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from storefront.extensions import db
from storefront.models import Price
from tests.conftest import make_app

STAFF = "staff@example.com"

PATH_VALUES = [
    "x",
    "\x00",
    "a\x00b",
    "x" * 3000,
    "..%2F..%2Fetc%2Fpasswd",
    "%",
    "é\u202e",
    "0",
    "-1",
    "99999999999999999999999",
    "read",
    " ",
]

HOSTILE_STRINGS = ["\x00", "x\x00y", "x" * 5000, "é" * 300, "-1", "1e309", "", " "]
FIELDS = [
    "email",
    "price_id",
    "quantity",
    "currency",
    "next",
    "price",
    "nonce",
    "token",
    "amount",
    "reason",
    "restock",
    "key",
    "shipping_rate",
    "total",
    "name",
    "line1",
    "city",
    "postal_code",
    "country",
    "state",
    "phone",
    "q",
    "status",
    "csrf_token",
]
QUERY = "?" + "&".join(
    f"{name}={quote(value)}"
    for name in ("q", "page", "status", "session_id", "since", "until", "payment_intent")
    for value in ("\x00", "x" * 3000)
)


def bodies() -> Iterator[tuple[str, dict]]:
    """(description, test-client keyword arguments) for one request each."""
    yield "no body", {}
    yield "empty form", {"data": {}}
    yield "empty JSON body", {"data": b"", "content_type": "application/json"}
    for value in HOSTILE_STRINGS:
        yield f"form {value[:10]!r}", {"data": {name: value for name in FIELDS}}
        yield f"JSON {value[:10]!r}", {"json": {name: value for name in FIELDS}}
    yield "form lists", {"data": MultiDict([(name, v) for name in FIELDS for v in ("1", "2")])}
    yield "JSON wrong types", {"json": {name: [{"x": None}] for name in FIELDS}}
    yield "JSON numbers", {"json": {name: 10**30 for name in FIELDS}}
    yield "JSON array", {"json": [1, 2]}
    yield "JSON string", {"json": "x"}
    yield "malformed JSON", {"data": b'{"email": ', "content_type": "application/json"}
    yield "nested JSON", {"data": "[" * 10_000, "content_type": "application/json"}
    yield "nested objects", {"data": '{"a":' * 5_000, "content_type": "application/json"}
    yield "invalid UTF-8", {"data": b"\xff\xfe\x00", "content_type": "application/json"}
    yield "huge body", {"data": b"x" * (1024 * 1024 + 1), "content_type": "text/plain"}
    yield (
        "multipart",
        {"data": {name: "x" for name in FIELDS}, "content_type": "multipart/form-data"},
    )
    yield (
        "odd content type",
        {"data": b"a=b", "content_type": "application/x-www-form-urlencoded; charset=ebcdic"},
    )


_ARGUMENT = re.compile(r"<(?:[^:>]+:)?([^>]+)>")


def bad_paths(rule) -> Iterator[str]:
    """The rule with every hostile path parameter, and with a hostile query string."""
    for value in PATH_VALUES if rule.arguments else []:
        yield _ARGUMENT.sub(lambda _m, v=value: quote(v, safe="%"), rule.rule)
    yield _ARGUMENT.sub("x", rule.rule) + QUERY


def plain_path(rule) -> str:
    return _ARGUMENT.sub("x", rule.rule)


def clients(app) -> Iterator[tuple[str, object]]:
    yield "guest", app.test_client()
    shopper = app.test_client()
    with app.app_context():
        price_id = db.session.scalar(select(Price.id).limit(1))
    shopper.post("/cart/add", data={"price_id": price_id, "quantity": "1"})
    with shopper.session_transaction() as sess:
        sess["checkout_order"] = "x" * 65
        sess["hosted_checkout_order"] = "y" * 3000
    yield "shopper", shopper
    staff = app.test_client()
    with staff.session_transaction() as sess:
        sess["account_email"] = STAFF
    yield "staff", staff


def walk(app) -> tuple[int, list[str]]:
    """Send everything; returns (requests sent, descriptions of the 5xx answers)."""
    sent, failures = 0, []

    def send(who: str, client, method: str, path: str, description: str, kwargs: dict):
        nonlocal sent
        sent += 1
        what = f"{who} {method} {path[:80]!r} {description}"
        try:
            response = client.open(path, method=method, **kwargs)
        except Exception as err:  # noqa: BLE001 - the failure to report
            failures.append(f"{what}: {type(err).__name__}: {err!s:.200}")
            with app.app_context():
                db.session.rollback()
            return
        if response.status_code >= 500:
            failures.append(f"{what}: {response.status_code}")

    for who, client in clients(app):
        for rule in app.url_map.iter_rules():
            for method in sorted(rule.methods):
                for path in bad_paths(rule):
                    send(who, client, method, path, "no body", {})
                if method in ("GET", "HEAD", "OPTIONS"):
                    continue  # bodies only where a body means something
                for description, kwargs in bodies():
                    send(who, client, method, plain_path(rule), description, kwargs)
    return sent, failures


@pytest.fixture
def hostile_app(app):
    app.config["STAFF_EMAILS"] = STAFF
    return app


def test_every_route_survives_hostile_input(hostile_app):
    sent, failures = walk(hostile_app)
    assert sent > 1000
    assert failures == [], f"{len(failures)} of {sent} requests got a 5xx:\n" + "\n".join(
        failures[:40]
    )


def test_missing_and_foreign_csrf_tokens_are_a_400_everywhere(tmp_path):
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True, STAFF_EMAILS=STAFF)
    other = app.test_client()
    page = other.get("/account/").get_data(as_text=True)
    foreign = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client = app.test_client()
    client.get("/")
    posts = [r for r in app.url_map.iter_rules() if "POST" in r.methods]
    assert len(posts) > 10
    for rule in posts:
        path = plain_path(rule)
        for token in (None, foreign, "garbage", "\x00" * 10):
            data = {"email": "ada@example.com"} | ({"csrf_token": token} if token else {})
            response = client.post(path, data=data)
            assert response.status_code in (400, 404), (rule.endpoint, token, response.status_code)
            json_response = client.post(path, json=data)
            assert json_response.status_code in (400, 404), rule.endpoint
