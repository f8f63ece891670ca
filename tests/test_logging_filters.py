"""Secrets that arrive in URLs never reach the access logs (werkzeug's or gunicorn's)."""

from __future__ import annotations

import logging
import re

import pytest
import requests
from sqlalchemy import select

from storefront.extensions import db
from storefront.logging_filters import redact
from storefront.models import OutboxMessage
from tests.live import Server
from tests.webhook_helpers import make_order

SECRET = "pi_x_secret_abc"


@pytest.fixture
def access_log(caplog, monkeypatch):
    """caplog for the access loggers, re-enabled in case an Alembic run (fileConfig) in
    this process disabled existing loggers."""
    for name in ("werkzeug", "gunicorn.access"):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
    caplog.set_level(logging.INFO)
    return caplog


def everything_logged(caplog) -> str:
    return "\n".join(f"{r.getMessage()} {r.msg} {r.args!r}" for r in caplog.records)


def test_client_secret_in_the_return_url_is_not_in_the_access_log(app, access_log):
    public_id = make_order(app)
    server = Server(app)
    try:
        response = requests.get(
            f"{server.url}/orders/{public_id}?payment_intent=pi_x"
            f"&payment_intent_client_secret={SECRET}&redirect_status=succeeded",
            headers={"Referer": f"{server.url}/checkout/?client_secret={SECRET}"},
            timeout=10,
        )
    finally:
        server.stop()
        with app.app_context():
            db.session.remove()
    assert response.status_code == 200
    assert len(response.history) == 1  # redirected to the address without the secret
    lines = [r.getMessage() for r in access_log.records if r.name == "werkzeug"]
    assert any(f"/orders/{public_id}?payment_intent=pi_x" in line for line in lines)
    assert any("payment_intent_client_secret=[REDACTED]" in line for line in lines)
    assert SECRET not in everything_logged(access_log)
    assert SECRET not in access_log.text


def test_gunicorn_access_log_atoms_are_redacted(app, access_log):
    # gunicorn logs its access line with a dict of atoms: request line, path, query,
    # and headers such as the Referer.
    atoms = {
        "r": f"GET /orders/abc?payment_intent_client_secret={SECRET} HTTP/1.1",
        "q": f"payment_intent=pi_x&payment_intent_client_secret={SECRET}",
        "f": f"https://shop.example/orders/abc?client_secret={SECRET}&x=1",
        "s": "303",
    }
    logging.getLogger("gunicorn.access").info('"%(r)s" %(s)s %(q)s "%(f)s"', atoms)
    [record] = [r for r in access_log.records if r.name == "gunicorn.access"]
    line = record.getMessage()
    assert SECRET not in line
    assert "payment_intent=pi_x&payment_intent_client_secret=[REDACTED]" in line
    assert "client_secret=[REDACTED]&x=1" in line
    assert '" 303 ' in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "/o/1?payment_intent_client_secret=pi_1_secret_x",
            "/o/1?payment_intent_client_secret=[REDACTED]",
        ),
        (
            "a?setup_intent_client_secret=seti_1_secret_y&b=2",
            "a?setup_intent_client_secret=[REDACTED]&b=2",
        ),
        ("GET /x?client_secret=s HTTP/1.1", "GET /x?client_secret=[REDACTED] HTTP/1.1"),
        ("next=%2Fo%3Fclient_secret%3Dpi_1_secret_z", "next=%2Fo%3Fclient_secret%3D[REDACTED]"),
        ("/orders/1?payment_intent=pi_1", "/orders/1?payment_intent=pi_1"),
        ("GET /account/sign-in/aB_c-9 HTTP/1.1", "GET /account/sign-in/[REDACTED] HTTP/1.1"),
        ("next=%2Faccount%2Fsign-in%2FaBc9&x=1", "next=%2Faccount%2Fsign-in%2F[REDACTED]&x=1"),
        ("POST /account/sign-in HTTP/1.1", "POST /account/sign-in HTTP/1.1"),
    ],
)
def test_redact_replaces_only_secret_values(text, expected):
    assert redact(text) == expected


def test_sqlalchemy_is_told_to_hide_statement_parameters(app):
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["hide_parameters"] is True
    with app.app_context():
        assert db.engine.hide_parameters is True


def test_sign_in_token_is_not_in_the_access_log(app, access_log):
    server = Server(app)
    try:
        with requests.Session() as browser:
            browser.post(f"{server.url}/account/sign-in", data={"email": "ada@example.com"})
            with app.app_context():
                body = db.session.scalar(select(OutboxMessage.body))
            token = re.search(r"/account/sign-in/(\S+)", body).group(1)
            link = f"{server.url}/account/sign-in/{token}"
            assert browser.get(link).status_code == 200
            # The button's POST, with the page's address as its Referer.
            response = browser.post(link, headers={"Referer": link}, allow_redirects=False)
    finally:
        server.stop()
        with app.app_context():
            db.session.remove()
    assert response.status_code == 303
    lines = [r.getMessage() for r in access_log.records if r.name == "werkzeug"]
    assert any("GET /account/sign-in/[REDACTED]" in line for line in lines)
    assert any("POST /account/sign-in/[REDACTED]" in line for line in lines)
    logged = "\n".join(
        f"{r.getMessage()} {r.msg} {r.args!r}"
        for r in access_log.records
        if r.name in ("werkzeug", "gunicorn.access")
    )
    assert token not in logged


def test_gunicorn_access_log_redacts_sign_in_tokens(app, access_log):
    token = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWo"
    atoms = {
        "r": f"POST /account/sign-in/{token} HTTP/1.1",
        "U": f"/account/sign-in/{token}",
        "f": f"https://shop.example/account/sign-in/{token}",
        "s": "303",
    }
    logging.getLogger("gunicorn.access").info('"%(r)s" %(s)s %(U)s "%(f)s"', atoms)
    [record] = [r for r in access_log.records if r.name == "gunicorn.access"]
    line = record.getMessage()
    assert token not in line
    assert line.count("/account/sign-in/[REDACTED]") == 3
