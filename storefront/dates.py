"""One way to show dates and times: in the shop's time zone (``SHOP_TIMEZONE``).

Stored times are UTC (naive values from SQLite are taken as UTC); pages show them as
``1 Dec 2026`` and ``1 Dec 2026, 14:30 CET`` via the ``date`` and ``datetime`` filters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, current_app


def zone_problem(name: object) -> str | None:
    """Why ``name`` cannot be the shop's time zone, or None."""
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return f"must be a time zone name like 'Europe/Dublin' or 'UTC', not {name!r}"
    return None


def local(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(current_app.config["SHOP_TIMEZONE"]))


def format_date(value: datetime | None) -> str:
    return "" if value is None else f"{local(value):%-d %b %Y}"


def format_datetime(value: datetime | None) -> str:
    return "" if value is None else f"{local(value):%-d %b %Y, %H:%M %Z}"


def init_app(app: Flask) -> None:
    app.jinja_env.filters["date"] = format_date
    app.jinja_env.filters["datetime"] = format_datetime
