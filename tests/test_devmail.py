"""Mail in development: the local sink, the dispatcher ``flask serve`` starts, /dev/mail."""

from __future__ import annotations

import re
import smtplib
from pathlib import Path

import pytest
from sqlalchemy import select

from storefront import mail, outbox
from storefront.cli import start_mail
from storefront.devmail import Sink, mail_dir
from storefront.extensions import db
from storefront.models import OutboxMessage, OutboxStatus
from tests.conftest import make_app
from tests.live import wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def dev_app(tmp_path):
    """The shop in debug mode (as `make run` serves it), with its own instance folder."""
    app = make_app(tmp_path, DEBUG=True)
    app.instance_path = str(tmp_path / "instance")
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def sink(dev_app):
    sink = Sink(mail_dir(dev_app.instance_path))
    yield sink
    sink.stop()


def queue_sign_in(app, to: str = "ada@example.com") -> None:
    with app.app_context():
        db.session.add(
            mail.compose(
                "sign_in",
                to,
                "Sign in to Fernwood Coffee Co.",
                link="http://localhost/account/sign-in/tok-123",
                valid_for="once, within 15 minutes",
            )
        )
        db.session.commit()


def send_to(app, sink: Sink) -> dict:
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=sink.port, MAIL_SECURITY="none")
    with app.app_context():
        return dict(outbox.send_due())


def test_the_mailbox_lists_and_shows_what_the_sink_received(dev_app, sink):
    queue_sign_in(dev_app)
    assert send_to(dev_app, sink) == {"sent": 1}
    client = dev_app.test_client()

    listing = client.get("/dev/mail/").get_data(as_text=True)
    assert "ada@example.com" in listing and "Sign in to Fernwood Coffee Co." in listing
    name = re.search(r'href="/dev/mail/([0-9]+\.eml)"', listing).group(1)

    page = client.get(f"/dev/mail/{name}").get_data(as_text=True)
    assert "Message-ID" in page and "outbox.1@localhost" in page
    assert "http://localhost/account/sign-in/tok-123" in page  # the text part
    assert f'src="/dev/mail/{name}/html"' in page and "sandbox=" in page

    html = client.get(f"/dev/mail/{name}/html")
    assert html.status_code == 200
    body = html.get_data(as_text=True)
    assert '<base target="_top">' in body  # a link opens in the tab, not the frame
    assert 'href="http://localhost/account/sign-in/tok-123"' in body
    csp = html.headers["Content-Security-Policy"]
    assert "style-src 'unsafe-inline'" in csp and "default-src 'none'" in csp
    assert "frame-ancestors 'self'" in csp
    assert html.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_the_mailbox_says_when_it_is_empty(dev_app):
    page = dev_app.test_client().get("/dev/mail/").get_data(as_text=True)
    assert 'data-testid="dev-mail-empty"' in page


@pytest.mark.parametrize("name", ["../shop.sqlite3", "x.eml", "123", "1796134049772410630.txt"])
def test_the_mailbox_reads_only_its_own_files(dev_app, name):
    assert dev_app.test_client().get(f"/dev/mail/{name}").status_code == 404


def test_the_mailbox_answers_only_this_machine(dev_app):
    client = dev_app.test_client()
    assert client.get("/dev/mail/").status_code == 200
    far = client.get("/dev/mail/", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert far.status_code == 404


def test_there_is_no_mailbox_outside_debug_mode(client):
    assert client.get("/dev/mail/").status_code == 404


def test_the_sign_in_page_points_to_the_mailbox_not_the_link(dev_app):
    page = dev_app.test_client().post("/account/sign-in", data={"email": "ada@example.com"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'href="/dev/mail/"' in html
    assert "/account/sign-in/" not in html  # the link itself is only in the message
    with dev_app.app_context():
        body = db.session.scalar(select(OutboxMessage.body))
    assert re.search(r"/account/sign-in/\S+", body)


def test_a_sink_refuses_nothing_and_keeps_every_message(dev_app, sink):
    with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
        for i in range(3):
            smtp.sendmail("a@x.test", ["b@x.test"], f"Subject: {i}\r\n\r\nhello {i}\r\n")
    assert len(list(mail_dir(dev_app.instance_path).glob("*.eml"))) == 3


def dispatcher_env(monkeypatch, app, tmp_path) -> None:
    """The settings `flask serve`'s child dispatcher reads (it is a process of its own)."""
    monkeypatch.setenv("DATABASE_URL", app.config["DATABASE_URL"])
    monkeypatch.setenv("FLASK_DEBUG", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def test_serve_starts_a_sink_and_a_dispatcher_that_delivers_to_it(dev_app, tmp_path, monkeypatch):
    dispatcher_env(monkeypatch, dev_app, tmp_path)
    queue_sign_in(dev_app)
    with dev_app.app_context():
        sink, dispatcher = start_mail("http://127.0.0.1:5000")
    try:
        assert sink is not None and dispatcher is not None
        stored = wait_until(lambda: list(mail_dir(dev_app.instance_path).glob("*.eml")), 60)
        assert b"tok-123" in stored[0].read_bytes()

        def status() -> str:
            with dev_app.app_context():
                return db.session.scalar(select(OutboxMessage.status))

        # Recorded a moment after the sink said 250.
        assert wait_until(lambda: status() == OutboxStatus.SENT, 30)
    finally:
        dispatcher.terminate()
        assert dispatcher.wait(timeout=15) == 0  # SIGTERM: the loop ends cleanly
        sink.stop()


def test_explicit_mail_settings_win_over_the_sink(dev_app, tmp_path, monkeypatch, smtp_server):
    dispatcher_env(monkeypatch, dev_app, tmp_path)
    monkeypatch.setenv("MAIL_SERVER", "127.0.0.1")
    monkeypatch.setenv("MAIL_PORT", str(smtp_server.port))
    monkeypatch.setenv("MAIL_SECURITY", "none")
    dev_app.config.update(smtp_server.config())
    queue_sign_in(dev_app)
    with dev_app.app_context():
        sink, dispatcher = start_mail("http://127.0.0.1:5000")
    try:
        assert sink is None
        wait_until(lambda: smtp_server.received, 60)
        assert smtp_server.received[0]["To"] == "ada@example.com"
        assert not mail_dir(dev_app.instance_path).exists()
    finally:
        dispatcher.terminate()
        dispatcher.wait(timeout=15)


def test_no_dispatcher_when_mail_is_turned_off(dev_app):
    dev_app.config["MAIL_ENABLED"] = False
    with dev_app.app_context():
        assert start_mail("http://127.0.0.1:5000") == (None, None)
