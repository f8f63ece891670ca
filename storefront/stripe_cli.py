"""``flask stripe reconcile`` and ``flask stripe events``: catching up after downtime."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from . import payments, webhooks
from .extensions import db
from .models import WebhookEvent

# Stripe retries a delivery for up to three days, so a shop down for less than that
# gets everything back with the default window.
DEFAULT_WINDOW = timedelta(days=3)
DONE = (webhooks.PROCESSED, webhooks.IGNORED)


@click.group("stripe")
def stripe_cli() -> None:
    """Stripe webhook events: reconcile missed ones, inspect stored ones."""


def _parse_since(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC) - DEFAULT_WINDOW
    try:
        since = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO time, e.g. 2026-11-02T08:00:00Z", param_hint="--since"
        ) from None
    return since if since.tzinfo else since.replace(tzinfo=UTC)


def fetch_events(since: datetime) -> list:
    """Every event Stripe has from ``since`` on, oldest first."""
    events: list = []
    starting_after = None
    while True:
        page = payments.list_events(int(since.timestamp()), starting_after)
        events.extend(page.data)
        if not page.has_more or not page.data:
            break
        starting_after = page.data[-1].id
    # Stripe lists newest first; within one second the list order still holds.
    ordered = list(reversed(events))
    ordered.sort(key=lambda e: e.created)
    return ordered


def reconcile(start: datetime, on_failure=None) -> dict[str, int]:
    """Process every event Stripe has from ``start`` on that was not processed here yet.

    Oldest first, each through ``webhooks.process_event`` (the webhook's own code); safe
    to run any number of times and while webhooks arrive. Returns the counts;
    ``on_failure(event_id, type, error)`` hears of each event that failed. Raises
    ``payments.PaymentError`` when Stripe cannot list its events.
    """
    events = fetch_events(start)
    wanted = set(payments.WEBHOOK_EVENTS)
    counts = {"seen": 0, "already": 0, "processed": 0, "ignored": 0, "failed": 0}
    for event in events:
        if event.type not in wanted:
            continue  # not sent to our endpoint either
        counts["seen"] += 1
        stored = db.session.scalar(
            select(WebhookEvent.outcome).where(WebhookEvent.stripe_event_id == event.id)
        )
        if stored in DONE:
            counts["already"] += 1
            continue
        outcome = webhooks.process_event(event, source="reconcile")
        if outcome == webhooks.DUPLICATE:
            counts["already"] += 1  # a webhook delivery got there first
        else:
            counts[outcome] += 1
            if outcome == webhooks.FAILED and on_failure is not None:
                on_failure(event.id, event.type, webhooks.last_error(event.id))
    return counts


def summary(start: datetime, counts: dict[str, int]) -> str:
    return (
        f"since {start.isoformat(timespec='seconds')}: seen {counts['seen']}, "
        f"already processed {counts['already']}, "
        f"processed now {counts['processed'] + counts['ignored']} "
        f"({counts['ignored']} ignored), failed {counts['failed']}"
    )


def process_again(row: WebhookEvent, source: str = "reconcile") -> str:
    """Process a stored event again (one that failed or is stuck), through the webhook's
    ``process_event`` like ``reconcile``: the stored payload is the event as Stripe sent
    it (signature checked on arrival). Returns the outcome ("duplicate": it is done, or
    another attempt is running)."""
    try:
        event = json.loads(row.payload)
    except ValueError:
        event = None
    if not isinstance(event, dict) or event.get("id") != row.stripe_event_id:
        raise ValueError(f"stored event {row.stripe_event_id} cannot be read")
    return webhooks.process_event(event, source=source)


@stripe_cli.command("reconcile")
@click.option("--since", help="ISO time to start from (default: three days ago).")
@with_appcontext
def reconcile_command(since: str | None) -> None:
    """Process every event Stripe has that this shop has not processed (after downtime).

    Runs each through the same code as the webhook, oldest first; safe to run any
    number of times and while webhooks arrive.
    """
    start = _parse_since(since)

    def report(event_id: str, event_type: str, error: str | None) -> None:
        click.echo(f"failed: {event_id} {event_type}: {error}")

    try:
        counts = reconcile(start, on_failure=report)
    except payments.PaymentError as err:
        raise click.ClickException(f"could not list events from Stripe: {err}") from err
    click.echo(summary(start, counts))
    if counts["failed"]:
        raise SystemExit(1)


@stripe_cli.command("process")
@click.argument("event_id")
@with_appcontext
def process_command(event_id: str) -> None:
    """Process one stored event again (e.g. a failed one from ``flask stripe events --failed``)."""
    row = db.session.scalar(select(WebhookEvent).where(WebhookEvent.stripe_event_id == event_id))
    if row is None:
        raise click.ClickException(f"no stored event {event_id}")
    outcome = process_again(row)
    click.echo(f"{event_id}: {outcome}")
    if outcome == webhooks.FAILED:
        click.echo(f"error: {webhooks.last_error(event_id)}")
        raise SystemExit(1)


@stripe_cli.command("events")
@click.option("--failed", is_flag=True, help="Only events whose processing failed (or is stuck).")
@click.option("--limit", default=50, show_default=True, help="How many, newest first.")
@with_appcontext
def events_command(failed: bool, limit: int) -> None:
    """List stored webhook events and their outcomes, newest first."""
    query = select(WebhookEvent).order_by(WebhookEvent.id.desc()).limit(limit)
    if failed:
        query = query.where(
            (WebhookEvent.outcome == webhooks.FAILED) | WebhookEvent.outcome.is_(None)
        )
    rows = db.session.scalars(query).all()
    if not rows:
        click.echo("No failed events." if failed else "No events stored yet.")
        return
    for row in rows:
        created = datetime.fromtimestamp(row.stripe_created, UTC).isoformat(timespec="seconds")
        line = (
            f"{created}  {row.stripe_event_id}  {row.type:<40} {row.object_id or '-':<30} "
            f"{row.outcome or 'in progress'} (attempts {row.attempts})"
        )
        if row.error:
            line += f"  error: {row.error}"
        click.echo(line)
