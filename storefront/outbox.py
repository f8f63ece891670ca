"""The outbox dispatcher: claim due messages, send them over SMTP, record what happened.

``flask outbox send`` sends what is due and exits; ``--loop`` keeps going (the second
process of a deployment, beside the web server). Any number of dispatchers may run:

* **Claim**: due rows are picked with ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL:
  a second dispatcher skips the rows the first is claiming instead of waiting for them)
  and taken with one guarded ``UPDATE … WHERE <still due>`` that stamps a random claim
  token (SQLite, which has no row locks, relies on it alone: it runs one writer at a
  time, so a second UPDATE sees the first one's claim and matches nothing). The claim is
  committed before any SMTP traffic: no transaction stays open across the network.
* **Send**: one SMTP connection per batch. Each row keeps one ``Message-ID`` from its first
  claim, so a message re-sent after a crash between "sent" and "recorded" is recognisably
  the same message (a row left ``sending`` is claimed again after ``STALE_CLAIM``).
* **Record**: ``sent`` with ``sent_at``; a temporary failure (connection, timeout, 4xx)
  goes back to ``queued`` with exponential backoff (``MAIL_RETRY_SECONDS`` doubled per
  attempt) until ``MAIL_MAX_ATTEMPTS``, then ``failed``; a permanent refusal (5xx) is
  ``failed`` at once. Failed messages are listed by ``flask outbox list --failed``
  (and the back office), and ``flask outbox retry`` queues them again.

Only ids, kinds and SMTP status lines are logged: never addresses' passwords, message
bodies (sign-in links are credentials) or the SMTP password.
"""

from __future__ import annotations

import functools
import logging
import secrets
import signal
import smtplib
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import and_, func, or_, select, update

from . import mail
from .extensions import db
from .models import OutboxMessage, OutboxStatus, utcnow

log = logging.getLogger(__name__)

BATCH = 20
# A row still ``sending`` this long after its claim belongs to a dispatcher that died.
STALE_CLAIM = timedelta(minutes=15)
MAX_BACKOFF = timedelta(hours=6)
ERROR_LENGTH = 500


class PermanentError(Exception):
    """The message cannot be sent as it is (e.g. no valid address): retrying cannot help."""


# Errors after which smtplib has reset the SMTP transaction: the connection is reusable.
REFUSALS = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPDataError,
    PermanentError,
)


def _due(now: datetime):
    return or_(
        and_(OutboxMessage.status == OutboxStatus.QUEUED, OutboxMessage.next_attempt_at <= now),
        and_(
            OutboxMessage.status == OutboxStatus.SENDING,
            OutboxMessage.claimed_at < now - STALE_CLAIM,
        ),
    )


def claim(due_by: datetime, limit: int = BATCH) -> list[OutboxMessage]:
    """Take up to ``limit`` messages due by ``due_by`` for this dispatcher; commits.
    An empty list means nothing is due."""
    token = secrets.token_hex(16)
    while True:
        ids = db.session.scalars(
            select(OutboxMessage.id)
            .where(_due(due_by))
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite renders no FOR UPDATE
        ).all()
        if not ids:
            db.session.rollback()
            return []
        claimed = db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), _due(due_by))  # still due: the guard
            .values(
                status=OutboxStatus.SENDING,
                claimed_at=utcnow(),
                claim_token=token,
                attempts=OutboxMessage.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        if claimed:
            break
        # Another dispatcher claimed all of these between the SELECT and the UPDATE (on
        # SQLite, which has no SKIP LOCKED): look again rather than stop as if none were
        # due. Each round either claims rows or finds others did, so it ends.
    rows = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.claim_token == token).order_by(OutboxMessage.id)
    ).all()
    for row in rows:
        if row.message_id is None:
            row.message_id = mail.new_message_id(row.id)
    db.session.commit()
    return list(rows)


def _record(row: OutboxMessage, **values: object) -> bool:
    """Write an outcome, only while the claim is still ours (a stale claim may have been
    taken over); commits."""
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row.id, OutboxMessage.claim_token == row.claim_token)
        .values(claim_token=None, **values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def backoff(attempts: int) -> timedelta:
    """The wait before the next attempt: MAIL_RETRY_SECONDS, doubled per attempt made."""
    base = current_app.config["MAIL_RETRY_SECONDS"]
    return min(timedelta(seconds=base * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def _scrub(text: str) -> str:
    """An error line fit for logs and the database: one line, short, no password."""
    password = current_app.config.get("MAIL_PASSWORD")
    if password:
        text = text.replace(str(password), "***")
    return " ".join(text.split())[:ERROR_LENGTH]


def _describe(err: BaseException) -> str:
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        codes = [f"{code} {_decode(msg)}" for code, msg in err.recipients.values()]
        return "recipient refused: " + "; ".join(codes)
    if isinstance(err, smtplib.SMTPResponseException):
        return f"{err.smtp_code} {_decode(err.smtp_error)}"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _permanent(err: BaseException) -> bool:
    if isinstance(err, PermanentError):
        return True
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in err.recipients.values())
    if isinstance(err, smtplib.SMTPAuthenticationError):
        return False  # the shop's settings, not the message: fixable, so retried
    if isinstance(err, smtplib.SMTPResponseException):
        return err.smtp_code >= 500
    return False


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: making one reads the system's CA certificates
    (~10 ms), and a plain connection to a local relay needs none."""
    return ssl.create_default_context()


class SMTPTransport:
    """One SMTP connection, opened on first use and closed by ``close``."""

    def __init__(self) -> None:
        self.conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        config = current_app.config
        host, port, timeout = config["MAIL_SERVER"], config["MAIL_PORT"], config["MAIL_TIMEOUT"]
        security = config["MAIL_SECURITY"]
        if security == "tls":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=_tls_context()
            )
        else:
            conn = smtplib.SMTP(host, port, timeout=timeout)
        try:
            if security == "starttls":
                conn.starttls(context=_tls_context())
            if config.get("MAIL_USERNAME"):
                conn.login(str(config["MAIL_USERNAME"]), str(config.get("MAIL_PASSWORD") or ""))
        except BaseException:
            conn.close()
            raise
        return conn

    def send(self, message, recipients: list[str]) -> dict:
        if self.conn is None:
            self.conn = self._connect()
        envelope_from = mail.sender_address()
        return self.conn.send_message(message, from_addr=envelope_from, to_addrs=recipients)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (smtplib.SMTPException, OSError):
                self.conn.close()
            self.conn = None


def deliver(row: OutboxMessage, transport: SMTPTransport) -> str:
    """Send one claimed row and record the outcome; returns its new status."""
    if row.to_email == mail.STAFF_RECIPIENT:
        recipients = mail.staff_addresses()
        if not recipients:
            _record(
                row,
                status=OutboxStatus.SKIPPED,
                last_error="not mailed: no staff address (set STAFF_EMAILS)",
            )
            return OutboxStatus.SKIPPED
    else:
        recipients = [row.to_email]
    bad = [r for r in recipients if not mail.valid_address(r)]
    try:
        if bad:
            raise PermanentError("not a valid e-mail address")
        refused = transport.send(mail.build(row, recipients), recipients)
    except Exception as err:  # noqa: BLE001 - every failure is recorded, none stops the run
        # smtplib resets the transaction after a refusal; after anything else (a broken or
        # unopened connection, a failed login) the next message starts a new connection.
        if not isinstance(err, REFUSALS):
            transport.close()
        error = _scrub(_describe(err))
        max_attempts = current_app.config["MAIL_MAX_ATTEMPTS"]
        if _permanent(err) or row.attempts >= max_attempts:
            _record(row, status=OutboxStatus.FAILED, last_error=error)
            log.warning(
                "outbox %s (%s): failed after %d attempt(s): %s",
                row.id,
                row.kind,
                row.attempts,
                error,
            )
            return OutboxStatus.FAILED
        wait = backoff(row.attempts)
        _record(
            row,
            status=OutboxStatus.QUEUED,
            next_attempt_at=utcnow() + wait,
            last_error=error,
        )
        log.info(
            "outbox %s (%s): attempt %d failed (%s); next in %ds",
            row.id,
            row.kind,
            row.attempts,
            error,
            wait.total_seconds(),
        )
        return OutboxStatus.QUEUED
    note = None
    if refused:  # some of several recipients (staff) were refused: the rest got it
        note = _scrub("some recipients refused: " + "; ".join(f"{c}" for c, _ in refused.values()))
    _record(row, status=OutboxStatus.SENT, sent_at=utcnow(), last_error=note)
    log.info("outbox %s (%s): sent as %s", row.id, row.kind, row.message_id)
    return OutboxStatus.SENT


def mail_problem() -> str | None:
    """Why this process cannot send mail, or None."""
    if not current_app.config.get("MAIL_ENABLED"):
        return "mail is turned off (MAIL_ENABLED=false): messages stay in the outbox"
    if not current_app.config.get("MAIL_SERVER"):
        return (
            "MAIL_SERVER is not set (in development, `flask serve` starts a local mail "
            "sink and a dispatcher for it)"
        )
    return None


def send_due(stop: Callable[[], bool] | None = None) -> Counter:
    """Send every message due now, each at most once in this run; returns counts by
    outcome. ``stop()`` returning True ends the run between messages."""
    due_by = utcnow()
    counts: Counter = Counter()
    transport = SMTPTransport()
    try:
        while not (stop and stop()):
            rows = claim(due_by)
            if not rows:
                break
            for row in rows:
                counts[deliver(row, transport)] += 1
    finally:
        transport.close()
        db.session.remove()
    return counts


# --------------------------------------------------------------------------- staff views


def failed_messages(limit: int = 100) -> list[OutboxMessage]:
    """Messages that will not be sent without help, newest first (for staff)."""
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.FAILED)
            .order_by(OutboxMessage.id.desc())
            .limit(limit)
        )
    )


def failed_count() -> int:
    """How many messages failed for good (the back office's dashboard shows it)."""
    return db.session.scalar(
        select(func.count(OutboxMessage.id)).where(OutboxMessage.status == OutboxStatus.FAILED)
    )


def requeue(ids: list[int] | None = None) -> int:
    """Queue failed messages again (all of them, or these ids), with fresh attempts."""
    conditions = [OutboxMessage.status == OutboxStatus.FAILED]
    if ids:
        conditions.append(OutboxMessage.id.in_(ids))
    result = db.session.execute(
        update(OutboxMessage)
        .where(*conditions)
        .values(status=OutboxStatus.QUEUED, attempts=0, next_attempt_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount


# --------------------------------------------------------------------------- commands


@click.group("outbox")
def outbox_cli() -> None:
    """Send the shop's e-mails and look at the outbox."""


@outbox_cli.command("send")
@click.option("--loop", is_flag=True, help="Keep running: send new messages as they come.")
@click.option(
    "--interval", default=2.0, show_default=True, help="Seconds between looks (with --loop)."
)
@with_appcontext
def send_command(loop: bool, interval: float) -> None:
    """Send the messages that are due over SMTP, then exit (or keep going with --loop).

    Safe to run several at once: each message is claimed by one dispatcher. Temporary
    SMTP failures are retried with exponential backoff; after MAIL_MAX_ATTEMPTS, or on a
    permanent refusal, a message is marked failed (see `flask outbox list --failed`).
    """
    problem = mail_problem()
    if problem:
        raise click.ClickException(problem)
    if not loop:
        counts = send_due()
        click.echo(_summary(counts))
        return
    with _stop_on_signals() as stopping:
        click.echo(
            f"Sending mail through {current_app.config['MAIL_SERVER']}:"
            f"{current_app.config['MAIL_PORT']} every {interval:g}s (Ctrl-C stops)"
        )
        while not stopping():
            try:
                counts = send_due(stop=stopping)
            except Exception:  # noqa: BLE001 - a database hiccup must not end the worker
                log.exception("outbox: sending failed; trying again in %gs", interval)
                db.session.remove()
                counts = Counter()
            if sum(counts.values()):
                click.echo(_summary(counts))
            deadline = time.monotonic() + interval
            while not stopping() and time.monotonic() < deadline:
                time.sleep(min(0.2, interval))


def _summary(counts: Counter) -> str:
    parts = [f"{counts[s]} {s}" for s in ("sent", "queued", "failed", "skipped") if counts[s]]
    return "outbox: " + (", ".join(parts) if parts else "nothing due")


@contextmanager
def _stop_on_signals() -> Iterator[Callable[[], bool]]:
    """SIGINT/SIGTERM finish the message in hand, then stop the loop."""
    stopped = False

    def handler(*_: object) -> None:
        nonlocal stopped
        stopped = True

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: stopped
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@outbox_cli.command("list")
@click.option("--failed", is_flag=True, help="Only messages that failed for good.")
@click.option(
    "--status",
    type=click.Choice([s.value for s in OutboxStatus]),
    help="Only messages with this status.",
)
@click.option("--limit", default=50, show_default=True)
@with_appcontext
def list_command(failed: bool, status: str | None, limit: int) -> None:
    """List outbox messages, newest first: status, attempts, kind, recipient, last error."""
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if failed:
        status = OutboxStatus.FAILED
    if status:
        query = query.where(OutboxMessage.status == status)
    rows = db.session.scalars(query).all()
    if not rows:
        click.echo("No messages.")
    for row in rows:
        when = row.sent_at or row.next_attempt_at
        click.echo(
            f"{row.id:>6}  {row.status:<8} {row.attempts:>2}x  {when:%Y-%m-%d %H:%M}  "
            f"{row.kind:<28} {row.to_email}  {row.subject}"
        )
        if row.last_error:
            click.echo(f"        last error: {row.last_error}")
    if failed and rows:
        raise SystemExit(1)  # for monitoring: failed mail needs a person


@outbox_cli.command("retry")
@click.argument("ids", nargs=-1, type=int)
@with_appcontext
def retry_command(ids: tuple[int, ...]) -> None:
    """Queue failed messages again (the given ids, or every failed one)."""
    count = requeue(list(ids))
    click.echo(f"{count} message(s) queued again.")
