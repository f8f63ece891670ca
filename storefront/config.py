"""Configuration: safe defaults, then ``.env`` and the environment, then test config."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

DEV_SECRET_KEY = "dev-only-not-secret"  # noqa: S105 - the marker production refuses

# Every setting the shop reads, with its safe default. `.env.example` documents each one.
DEFAULTS: dict[str, Any] = {
    "SECRET_KEY": DEV_SECRET_KEY,
    "DATABASE_URL": None,  # None: SQLite file in the instance folder
    "STRIPE_SECRET_KEY": None,
    "STRIPE_PUBLISHABLE_KEY": None,
    "STRIPE_WEBHOOK_SECRET": None,
    "STRIPE_API_BASE": None,  # None: real Stripe (api.stripe.com)
    "STRIPE_JS_URL": "https://js.stripe.com/v3/",
    "STRIPE_MAX_NETWORK_RETRIES": 2,
    "SHOP_NAME": "Fernwood Coffee Co.",
    "SHOP_CURRENCIES": "usd,eur",
    # ISO codes of the countries the shop ships to (the address forms offer only these).
    "SHIP_TO_COUNTRIES": "US,CA,GB,IE,DE,FR,NL,BE,AT,ES,IT",
    "SHOP_BASE_URL": None,  # None: taken from the request; set behind a proxy
    "LOG_LEVEL": "INFO",
    # Seconds the order page waits for the webhook before it fulfils a paid order itself.
    "WEBHOOK_GRACE_SECONDS": 10,
    # Comma-separated emails of the shop's staff: they sign in with the shop's sign-in link
    # and may use the back office under /admin. Empty: nobody can.
    "STAFF_EMAILS": "",
}

INT_SETTINGS = {"STRIPE_MAX_NETWORK_RETRIES", "WEBHOOK_GRACE_SECONDS"}
# ASCII digits only (int() would also take "٣" or "1_0"); nine digits is plenty.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


def _parse(name: str, value: str) -> Any:
    """A setting from ``.env`` or the environment; bad values are left for the check."""
    value = value.strip()
    if name in INT_SETTINGS and _WHOLE_NUMBER.fullmatch(value):
        return int(value)
    if name == "LOG_LEVEL" and value.upper() in logging.getLevelNamesMapping():
        return value.upper()
    return value


_COUNTRY = re.compile(r"[A-Z]{2}")


def parse_countries(value: Any) -> list[str] | None:
    """``"US, ca,GB"`` -> ``["US", "CA", "GB"]``; None when it is not such a list."""
    if not isinstance(value, str):
        return None
    codes = [c.strip().upper() for c in value.split(",") if c.strip()]
    if not codes or not all(_COUNTRY.fullmatch(c) for c in codes):
        return None
    return list(dict.fromkeys(codes))


def settings_problem(config: dict) -> str | None:
    """The one-line reason these settings cannot be used, or None when they are fine."""
    for name in sorted(INT_SETTINGS):
        value = config.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{name} must be a whole number (0 or more), not {value!r}"
    if parse_countries(config.get("SHIP_TO_COUNTRIES")) is None:
        return (
            "SHIP_TO_COUNTRIES must be two-letter country codes separated by commas, "
            f"e.g. US,CA,GB, not {config.get('SHIP_TO_COUNTRIES')!r}"
        )
    level = config.get("LOG_LEVEL")
    levels = logging.getLevelNamesMapping()
    if not isinstance(level, str) or level not in levels:
        names = ", ".join(n for n in levels if n not in ("NOTSET", "WARN", "FATAL"))
        return f"LOG_LEVEL must be one of {names}, not {level!r}"
    return None


def load_settings(instance_path: str, env_file: str | os.PathLike[str] | None = None) -> dict:
    """Defaults overlaid with ``.env`` (if present) and then the process environment.

    Parsing only: ``create_app`` checks the result (with any test config on top) with
    ``settings_problem``, so a value the shop cannot use stops it with a one-line
    ``SystemExit``, as production problems do, rather than a traceback later on.
    """
    settings = dict(DEFAULTS)
    env_file = Path(env_file) if env_file else Path.cwd() / ".env"
    file_values = dotenv_values(env_file) if env_file.is_file() else {}
    for name in DEFAULTS:
        value = os.environ.get(name, file_values.get(name))
        if value not in (None, ""):
            settings[name] = _parse(name, value)
    if not settings["DATABASE_URL"]:
        settings["DATABASE_URL"] = "sqlite:///" + os.path.join(instance_path, "storefront.sqlite3")
    return settings


def database_uri(url: str) -> str:
    """SQLAlchemy's URI for ``DATABASE_URL``: PostgreSQL URLs use psycopg 3 (installed).

    Hosting platforms hand out ``postgres://`` or ``postgresql://`` URLs, which SQLAlchemy
    would otherwise map to psycopg2, a driver the shop does not install.
    """
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def production_problem(config: dict) -> str | None:
    """The one-line reason production must not start, or None when it may."""
    if config.get("SECRET_KEY") in (None, "", DEV_SECRET_KEY):
        return "SECRET_KEY is not set (the development default is refused in production)"
    for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
        if not config.get(name):
            return f"{name} is not set"
    if str(config["STRIPE_SECRET_KEY"]).startswith("pk_"):
        return "STRIPE_SECRET_KEY holds a publishable key"
    if not config.get("SHOP_BASE_URL"):
        return "SHOP_BASE_URL is not set (links in e-mails must not come from the Host header)"
    return None
