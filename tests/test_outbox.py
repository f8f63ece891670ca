"""The outbox dispatcher against a real SMTP server (aiosmtpd, started by the test)."""

from __future__ import annotations

import logging
import os
import re
import ssl
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select, text, update

from storefront import mail, outbox
from storefront.extensions import db
from storefront.fulfilment import fulfil_order
from storefront.models import Order, OrderItem, OutboxMessage, OutboxStatus, Price, utcnow
from tests.smtp import SMTPServer
from tests.threads import run_in_app_threads

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def mail_app(app, smtp_server):
    app.config.update(smtp_server.config(), MAIL_RETRY_SECONDS=0, MAIL_FROM="shop@fernwood.test")
    return app


def queue(app, count: int = 1, to: str = "ada@example.com", kind: str = "sign_in") -> list[int]:
    with app.app_context():
        rows = [
            mail.compose(
                kind,
                to,
                f"Sign in {i}",
                template="sign_in",
                dedup_key=f"test:{kind}:{to}:{i}",
                link=f"http://localhost/account/sign-in/token-{i}",
                valid_for="once, within 15 minutes",
            )
            for i in range(count)
        ]
        db.session.add_all(rows)
        db.session.commit()
        return [r.id for r in rows]


def row(app, message_id: int) -> OutboxMessage:
    with app.app_context():
        found = db.session.get(OutboxMessage, message_id)
        db.session.expunge(found)
        return found


def send(app) -> dict:
    with app.app_context():
        return dict(outbox.send_due())


def test_a_due_message_is_sent_as_multipart_with_its_own_message_id(mail_app, smtp_server):
    [mid] = queue(mail_app)
    result = mail_app.test_cli_runner().invoke(args=["outbox", "send"])
    assert result.exit_code == 0, result.output
    assert "1 sent" in result.output

    [received] = smtp_server.received
    sent = row(mail_app, mid)
    assert sent.status == OutboxStatus.SENT
    assert sent.sent_at is not None and sent.attempts == 1 and sent.last_error is None
    assert received["Message-ID"] == sent.message_id
    assert sent.message_id.endswith("@fernwood.test>")
    assert received["To"] == "ada@example.com"
    assert received["From"] == "shop@fernwood.test"
    assert received["Subject"] == "Sign in 0"
    assert smtp_server.envelopes == [("shop@fernwood.test", ["ada@example.com"])]
    assert received.get_content_type() == "multipart/alternative"
    plain = received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    assert "http://localhost/account/sign-in/token-0" in plain
    assert 'href="http://localhost/account/sign-in/token-0"' in html
    assert "Fernwood Coffee Co." in html and "<img" not in html and "<link" not in html

    # Sent once: the next run finds nothing due.
    result = mail_app.test_cli_runner().invoke(args=["outbox", "send"])
    assert "nothing due" in result.output
    assert len(smtp_server.received) == 1


def test_reply_to_and_from_name_come_from_the_settings(mail_app, smtp_server):
    mail_app.config.update(
        MAIL_FROM="Fernwood Coffee Co. <orders@fernwood.test>",
        MAIL_REPLY_TO="help@fernwood.test",
    )
    queue(mail_app)
    send(mail_app)
    [received] = smtp_server.received
    [sender] = received["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Fernwood Coffee Co.",
        "orders@fernwood.test",
    )
    assert received["Reply-To"] == "help@fernwood.test"
    assert smtp_server.envelopes[0][0] == "orders@fernwood.test"


def test_a_temporary_failure_is_retried_then_delivered_with_the_same_message_id(
    mail_app, smtp_server
):
    smtp_server.fail_next = 1
    [mid] = queue(mail_app)
    assert send(mail_app) == {"queued": 1}
    waiting = row(mail_app, mid)
    assert waiting.status == OutboxStatus.QUEUED
    assert waiting.attempts == 1
    assert waiting.last_error.startswith("451 4.3.0")
    assert smtp_server.received == []

    assert send(mail_app) == {"sent": 1}
    sent = row(mail_app, mid)
    assert sent.status == OutboxStatus.SENT and sent.attempts == 2
    assert [m["Message-ID"] for m in smtp_server.attempts] == [sent.message_id] * 2
    assert len(smtp_server.received) == 1


def test_the_next_attempt_waits_with_exponential_backoff(mail_app, smtp_server):
    mail_app.config["MAIL_RETRY_SECONDS"] = 60
    smtp_server.fail_next = 5
    [mid] = queue(mail_app)
    before = utcnow().replace(tzinfo=None)
    send(mail_app)
    first = row(mail_app, mid).next_attempt_at
    assert timedelta(seconds=59) < first - before < timedelta(seconds=65)
    assert send(mail_app) == {}  # not due yet: nothing is tried
    assert len(smtp_server.attempts) == 1
    with mail_app.app_context():
        assert outbox.backoff(1) == timedelta(minutes=1)
        assert outbox.backoff(2) == timedelta(minutes=2)
        assert outbox.backoff(5) == timedelta(minutes=16)
        assert outbox.backoff(30) == outbox.MAX_BACKOFF


def test_an_unreachable_server_is_a_temporary_failure(mail_app, refusing_port):
    mail_app.config["MAIL_PORT"] = refusing_port
    [mid] = queue(mail_app)
    assert send(mail_app) == {"queued": 1}
    assert "ConnectionRefusedError" in row(mail_app, mid).last_error


def test_a_message_that_always_fails_temporarily_ends_failed_after_the_limit(mail_app, smtp_server):
    mail_app.config["MAIL_MAX_ATTEMPTS"] = 3
    smtp_server.always = "452 4.2.2 Mailbox full"
    [mid] = queue(mail_app)
    outcomes = [send(mail_app) for _ in range(4)]
    assert outcomes == [{"queued": 1}, {"queued": 1}, {"failed": 1}, {}]
    failed = row(mail_app, mid)
    assert failed.status == OutboxStatus.FAILED
    assert failed.attempts == 3
    assert failed.last_error == "452 4.2.2 Mailbox full"


def test_a_permanent_refusal_fails_at_once_and_staff_see_it(mail_app, smtp_server):
    smtp_server.refuse_rcpt["nobody@example.com"] = "550 5.1.1 No such user"
    [bad] = queue(mail_app, to="nobody@example.com", kind="order_confirmation")
    [good] = queue(mail_app, to="ada@example.com")
    assert send(mail_app) == {"failed": 1, "sent": 1}  # one refusal does not stop the run
    failed = row(mail_app, bad)
    assert failed.status == OutboxStatus.FAILED and failed.attempts == 1
    assert "550 5.1.1 No such user" in failed.last_error
    assert row(mail_app, good).status == OutboxStatus.SENT

    with mail_app.app_context():
        assert [m.id for m in outbox.failed_messages()] == [bad]
    result = mail_app.test_cli_runner().invoke(args=["outbox", "list", "--failed"])
    assert result.exit_code == 1  # monitoring can alert on it
    assert "failed" in result.output and "nobody@example.com" in result.output
    assert "550 5.1.1 No such user" in result.output
    assert "ada@example.com" not in result.output

    # Fixed (say the customer's mailbox exists again): staff queue it again.
    del smtp_server.refuse_rcpt["nobody@example.com"]
    result = mail_app.test_cli_runner().invoke(args=["outbox", "retry", str(bad)])
    assert "1 message(s) queued again" in result.output
    assert send(mail_app) == {"sent": 1}
    assert row(mail_app, bad).status == OutboxStatus.SENT


def test_a_message_without_a_valid_address_fails_without_trying(mail_app, smtp_server):
    [mid] = queue(mail_app, to="not an address")
    assert send(mail_app) == {"failed": 1}
    assert row(mail_app, mid).last_error == "PermanentError: not a valid e-mail address"
    assert smtp_server.attempts == []


def test_staff_notices_go_to_staff_emails(mail_app, smtp_server):
    with mail_app.app_context():
        db.session.add(
            mail.staff_notice(
                "staff_test", "Order needs attention", "See https://x.test/a.", dedup_key="s1"
            )
        )
        db.session.commit()
    mail_app.config["STAFF_EMAILS"] = "ops@fernwood.test, owner@fernwood.test"
    assert send(mail_app) == {"sent": 1}
    [received] = smtp_server.received
    assert smtp_server.envelopes[0][1] == ["ops@fernwood.test", "owner@fernwood.test"]
    assert received["Auto-Submitted"] == "auto-generated"
    assert 'href="https://x.test/a"' in received.get_body(("html",)).get_content()


def test_staff_notices_without_staff_emails_are_skipped_not_failed(mail_app, smtp_server):
    with mail_app.app_context():
        db.session.add(mail.staff_notice("staff_test", "S", "T", dedup_key="s1"))
        db.session.commit()
    assert send(mail_app) == {"skipped": 1}
    with mail_app.app_context():
        skipped = db.session.scalar(select(OutboxMessage))
        assert skipped.status == OutboxStatus.SKIPPED
        assert "STAFF_EMAILS" in skipped.last_error
    assert smtp_server.attempts == []


def test_a_text_only_message_gets_an_html_part_in_the_shop_layout(mail_app, smtp_server):
    with mail_app.app_context():
        db.session.add(
            OutboxMessage(
                kind="other", to_email="ada@example.com", subject="Hi", body="Line <1>\n\nTwo"
            )
        )
        db.session.commit()
    send(mail_app)
    html = smtp_server.received[0].get_body(("html",)).get_content()
    assert "Line &lt;1&gt;" in html and "Fernwood Coffee Co." in html


def shop_log(caplog) -> str:
    """Every log line but the test SMTP server's own (aiosmtpd logs whole sessions)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name != "mail.log")


def test_the_smtp_password_is_never_logged_or_stored(app, caplog):
    caplog.set_level(logging.DEBUG)
    server = SMTPServer(password="right-password")
    try:
        app.config.update(
            server.config(),
            MAIL_USERNAME="shop",
            MAIL_PASSWORD="wrong-s3cret-password",
            MAIL_RETRY_SECONDS=0,
        )
        [mid] = queue(app)
        assert send(app) == {"queued": 1}
        failed = row(app, mid)
        assert failed.last_error.startswith("535")
        assert "wrong-s3cret-password" not in shop_log(caplog)
        assert "wrong-s3cret-password" not in failed.last_error

        app.config["MAIL_PASSWORD"] = "right-password"
        assert send(app) == {"sent": 1}
        assert "outbox 1 (sign_in): sent" in shop_log(caplog)
        assert "right-password" not in shop_log(caplog)
        assert "token-0" not in shop_log(caplog)  # bodies (sign-in links) stay out too
    finally:
        server.stop()


class RecordedSMTP:
    """Stands in for ``smtplib.SMTP``/``SMTP_SSL``: records how the shop connects."""

    def __init__(self, host, port, timeout=None, context=None, *, implicit_tls=False) -> None:
        self.address, self.context, self.starttls_context = (host, port), context, None
        self.implicit_tls = implicit_tls

    def starttls(self, context=None) -> None:
        self.starttls_context = context

    def close(self) -> None:
        pass


@pytest.mark.parametrize("security", ["none", "starttls", "tls"])
def test_mail_security_picks_plain_starttls_or_tls_and_tls_verifies_the_server(
    app, monkeypatch, security
):
    made: list[RecordedSMTP] = []

    def connecting(implicit_tls: bool):
        def connect(*args, **kwargs) -> RecordedSMTP:
            made.append(RecordedSMTP(*args, implicit_tls=implicit_tls, **kwargs))
            return made[-1]

        return connect

    monkeypatch.setattr(outbox.smtplib, "SMTP", connecting(implicit_tls=False))
    monkeypatch.setattr(outbox.smtplib, "SMTP_SSL", connecting(implicit_tls=True))
    app.config.update(MAIL_SERVER="mail.example", MAIL_PORT=587, MAIL_SECURITY=security)
    with app.app_context():
        outbox.SMTPTransport()._connect()
    [conn] = made
    assert conn.address == ("mail.example", 587)
    assert conn.implicit_tls == (security == "tls")
    context = conn.context if security == "tls" else conn.starttls_context
    if security == "none":
        assert context is None
    else:
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_a_message_left_sending_by_a_dead_dispatcher_is_sent_again_as_the_same_message(
    mail_app, smtp_server
):
    [mid] = queue(mail_app)
    with mail_app.app_context():
        [claimed] = outbox.claim(utcnow())  # then the dispatcher dies
        message_id = claimed.message_id
    assert send(mail_app) == {}  # a fresh claim is left alone
    with mail_app.app_context():
        db.session.execute(
            update(OutboxMessage).values(claimed_at=utcnow() - outbox.STALE_CLAIM * 2)
        )
        db.session.commit()
    assert send(mail_app) == {"sent": 1}
    assert smtp_server.received[0]["Message-ID"] == message_id
    assert row(mail_app, mid).attempts == 2


def test_two_dispatchers_at_once_send_each_message_once(mail_app, smtp_server):
    smtp_server.delay = 0.01  # slow enough for the two to overlap
    ids = queue(mail_app, count=30)
    results = run_in_app_threads(mail_app, outbox.send_due, outbox.send_due)
    assert sum(r["sent"] for r in results) == 30
    ids_sent = sorted(m["Message-ID"] for m in smtp_server.received)
    assert len(ids_sent) == 30 == len(set(ids_sent))
    with mail_app.app_context():
        statuses = set(db.session.scalars(select(OutboxMessage.status)))
        assert statuses == {OutboxStatus.SENT}
        assert sorted(db.session.scalars(select(OutboxMessage.id))) == ids


def test_a_dispatcher_that_loses_its_claim_to_another_looks_again(mail_app, smtp_server):
    """Another dispatcher claims the rows this one just selected, before its UPDATE (SQLite
    has no SKIP LOCKED): it must look again, not stop as if nothing were due. (CI saw a
    `flask outbox send` exit having sent nothing while 30 messages were still due.)"""
    queue(mail_app, count=30)
    armed, stolen = [True], []

    def steal(conn, cursor, statement, parameters, context, executemany):
        if armed and statement.lstrip().upper().startswith("UPDATE OUTBOX_MESSAGE"):
            armed.clear()  # once: the other dispatcher's own UPDATE passes through here too
            stolen.extend(run_in_app_threads(mail_app, lambda: outbox.claim(utcnow()))[0])

    with mail_app.app_context():
        event.listen(db.engine, "before_cursor_execute", steal)
        try:
            counts = outbox.send_due()
        finally:
            event.remove(db.engine, "before_cursor_execute", steal)
    assert stolen  # the race happened
    assert counts["sent"] > 0
    assert counts["sent"] + len(stolen) == 30 == len(smtp_server.received) + len(stolen)


def test_two_dispatcher_processes_at_once_send_each_message_once(mail_app, smtp_server, tmp_path):
    """Two `flask outbox send` processes, as two machines would run them: the server holds
    each message until both are connected, so both have claimed rows at the same time."""
    smtp_server.hold_until_clients = 2
    ids = queue(mail_app, count=50)  # more than one batch each
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FLASK_DEBUG": "1",
        "DATABASE_URL": mail_app.config["DATABASE_URL"],
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_server.port),
        "MAIL_SECURITY": "none",
        "MAIL_FROM": "shop@fernwood.test",
        # Longer than a held message may wait for the other process on a loaded machine.
        "MAIL_TIMEOUT": "120",
    }
    command = [sys.executable, "-m", "flask", "--app", "storefront", "outbox", "send"]
    logs = [tmp_path / f"dispatcher-{n}.log" for n in range(2)]
    procs = []
    for log in logs:
        with log.open("wb") as out:
            procs.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))
    # One that exits (a crash, or nothing left to claim) would leave the other's messages
    # held for good: end the hold then, and report both outputs rather than hang.
    deadline = time.monotonic() + 240
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            smtp_server.release()
        time.sleep(0.1)
    smtp_server.release()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    outputs = [log.read_text() for log in logs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    sent = [re.search(r"outbox: (\d+) sent", out) for out in outputs]
    assert all(sent), outputs  # each dispatcher sent some
    sent = [int(m.group(1)) for m in sent]
    assert sum(sent) == 50, outputs  # none twice
    assert len(set(smtp_server.senders)) == 2
    message_ids = [m["Message-ID"] for m in smtp_server.received]
    assert len(message_ids) == 50 == len(set(message_ids))
    with mail_app.app_context():
        rows = db.session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))).all()
        assert {(r.status, r.attempts) for r in rows} == {(OutboxStatus.SENT, 1)}


def test_claim_skips_rows_another_dispatcher_has_locked(mail_app):
    """PostgreSQL: FOR UPDATE SKIP LOCKED, so a second dispatcher neither waits for nor
    takes what the first is claiming."""
    with mail_app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("row locks are PostgreSQL's (SQLite relies on the guarded UPDATE)")
    ids = queue(mail_app, count=4)
    with mail_app.app_context(), db.engine.connect() as other:
        other.execute(text("SET lock_timeout = '5s'"))
        locked = other.execute(
            select(OutboxMessage.id).where(OutboxMessage.id.in_(ids[:2])).with_for_update()
        ).all()
        assert len(locked) == 2
        db.session.execute(text("SET lock_timeout = '2s'"))  # fail, never hang
        claimed = [r.id for r in outbox.claim(utcnow())]
        other.rollback()
    assert claimed == ids[2:]


def test_the_dispatcher_says_what_is_missing(app):
    result = app.test_cli_runner().invoke(args=["outbox", "send"])
    assert result.exit_code == 1
    assert "MAIL_SERVER is not set" in result.output
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_ENABLED=False)
    result = app.test_cli_runner().invoke(args=["outbox", "send"])
    assert result.exit_code == 1
    assert "mail is turned off" in result.output


def test_order_confirmation_arrives_with_items_address_and_total_in_both_parts(
    mail_app, smtp_server
):
    with mail_app.app_context():
        price = db.session.scalar(select(Price).where(Price.currency == "usd").limit(1))
        order = Order(email="ada@example.com", currency="usd", amount_total=price.unit_amount * 2)
        order.items.append(
            OrderItem(
                product_id=price.product_id,
                price_id=price.id,
                product_name="Ethiopia <Yirgacheffe>",
                price_lookup_key=price.lookup_key,
                unit_amount=price.unit_amount,
                quantity=2,
            )
        )
        order.ship_name, order.ship_line1, order.ship_city = "Ada Lovelace", "1 Main St", "Albany"
        order.ship_state, order.ship_postal_code, order.ship_country = "NY", "12207", "US"
        order.shipping_rate_name, order.shipping_amount = "Express", 1500
        order.delivery_min_days, order.delivery_max_days = 1, 2
        order.amount_total += 1500
        db.session.add(order)
        db.session.commit()
        assert fulfil_order(order)
        public_id, total = order.public_id, order.amount_total
    assert send(mail_app) == {"sent": 1}
    [received] = smtp_server.received
    plain = received.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = received.get_body(("html",)).get_content()
    money = f"${total / 100:.2f}"
    assert "2 x Ethiopia <Yirgacheffe>" in plain and f"Total: {money}" in plain
    assert "Ethiopia &lt;Yirgacheffe&gt;" in html and money in html
    assert f"/orders/{public_id}" in plain and f"/orders/{public_id}" in html
    assert "Shipping (Express, 1–2 business days): $15.00" in plain
    assert "Ada Lovelace\n1 Main St\nAlbany NY 12207\nUS" in plain
    assert "Ada Lovelace<br>1 Main St<br>Albany NY 12207<br>US" in html
    assert re.fullmatch(r"Your order FW-1\d{4} is confirmed", received["Subject"])
