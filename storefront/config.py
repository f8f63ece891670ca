"""Configuration: safe defaults, then ``.env`` and the environment, then test config."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    # The shop's time zone (IANA name): every date and time on its pages is shown in it.
    "SHOP_TIMEZONE": "UTC",
    # ISO codes of the countries the shop ships to (the address forms offer only these).
    "SHIP_TO_COUNTRIES": "US,CA,GB,IE,DE,FR,NL,BE,AT,ES,IT",
    "SHOP_BASE_URL": None,  # None: taken from the request; set behind a proxy
    "LOG_LEVEL": "INFO",
    # Seconds the order page waits for the webhook before it fulfils a paid order itself.
    "WEBHOOK_GRACE_SECONDS": 10,
    # Seconds a waiting page (order processing, membership activating or changing) keeps
    # asking in the background before it says we'll email and offers "Check again".
    "STATUS_POLL_SECONDS": 120,
    # Comma-separated emails of the shop's staff: they sign in with the shop's sign-in link
    # and may use the back office under /admin (empty: nobody can); staff notices are
    # mailed to them.
    "STAFF_EMAILS": "",
    # Request sizes (bytes). The shop's forms hold a few short fields; Stripe's events are
    # well under 1 MiB. A larger body is answered 413 before it is read.
    "MAX_CONTENT_LENGTH": 16 * 1024,
    # multipart/form-data only (Werkzeug): the largest text field, and how many fields.
    "MAX_FORM_MEMORY_SIZE": 8 * 1024,
    "MAX_FORM_PARTS": 50,
    "WEBHOOK_MAX_CONTENT_LENGTH": 1024 * 1024,
    # How far (seconds, either way) a webhook's signed timestamp may be from our clock.
    "WEBHOOK_TOLERANCE_SECONDS": 300,
    # Reverse proxies in front of the app that set X-Forwarded-For/-Proto/-Host (ProxyFix).
    "PROXY_COUNT": 0,
    # Mail (storefront/mail.py, sent by the `flask outbox send` dispatcher). Without
    # MAIL_SERVER, `flask serve` in development starts a local SMTP sink shown at /dev/mail.
    "MAIL_ENABLED": True,  # False: messages stay in the outbox (production then starts)
    "MAIL_SERVER": None,
    "MAIL_PORT": 587,
    "MAIL_SECURITY": "starttls",  # starttls | tls (implicit TLS, port 465) | none
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_FROM": None,  # e.g. "Fernwood Coffee Co. <shop@fernwood.example>"
    "MAIL_REPLY_TO": None,
    "MAIL_TIMEOUT": 30,  # seconds for each SMTP connection
    "MAIL_MAX_ATTEMPTS": 8,  # then the message is marked failed
    "MAIL_RETRY_SECONDS": 60,  # first retry delay; doubles with each attempt
    # Flask-Limiter: where the counters live (memory:// is per process; redis://host:6379
    # shares them between app servers) and whether limits apply at all.
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_ENABLED": True,
    # Rate limits ("N per minute; M per hour", Flask-Limiter's notation).
    "RATE_LIMIT_PAYMENT_PER_IP": "20 per minute; 120 per hour",
    "RATE_LIMIT_PAYMENT_PER_SESSION": "10 per minute; 40 per hour",
    "RATE_LIMIT_SIGN_IN_PER_IP": "10 per minute; 60 per hour",
    "RATE_LIMIT_SIGN_IN_PER_SESSION": "5 per minute; 20 per hour",
    "RATE_LIMIT_SIGN_IN_PER_EMAIL": "3 per 10 minutes; 10 per day",
    "RATE_LIMIT_CART_PER_IP": "120 per minute",
    "RATE_LIMIT_CART_PER_SESSION": "60 per minute",
    "RATE_LIMIT_STAFF_PER_IP": "60 per minute; 600 per hour",
    "RATE_LIMIT_STAFF_PER_SESSION": "30 per minute; 300 per hour",
    "RATE_LIMIT_BILLING_PER_IP": "30 per minute; 200 per hour",
    "RATE_LIMIT_BILLING_PER_SESSION": "10 per minute; 60 per hour",
    # Card-testing defence: this many declines (as Stripe reports them) for one browser, IP
    # or order within the window stop new payments from it for the cooling-off period.
    "CARD_DECLINE_LIMIT": 5,
    "CARD_DECLINE_WINDOW_SECONDS": 3600,
    "CARD_DECLINE_COOLOFF_SECONDS": 3600,
    # How often (ms) a worker reads the catalog's version to learn of changes made by other
    # workers; its own changes show at once. 0: on every catalog page.
    "CATALOG_VERSION_CHECK_MS": 1000,
}

INT_SETTINGS = {
    "STRIPE_MAX_NETWORK_RETRIES",
    "WEBHOOK_GRACE_SECONDS",
    "STATUS_POLL_SECONDS",
    "MAX_CONTENT_LENGTH",
    "MAX_FORM_MEMORY_SIZE",
    "MAX_FORM_PARTS",
    "WEBHOOK_MAX_CONTENT_LENGTH",
    "WEBHOOK_TOLERANCE_SECONDS",
    "PROXY_COUNT",
    "MAIL_PORT",
    "MAIL_TIMEOUT",
    "MAIL_MAX_ATTEMPTS",
    "MAIL_RETRY_SECONDS",
    "CARD_DECLINE_LIMIT",
    "CARD_DECLINE_WINDOW_SECONDS",
    "CARD_DECLINE_COOLOFF_SECONDS",
    "CATALOG_VERSION_CHECK_MS",
}
# Settings that must be at least 1 (a zero size limit would refuse every request).
POSITIVE_SETTINGS = {
    "MAX_CONTENT_LENGTH",
    "MAX_FORM_MEMORY_SIZE",
    "MAX_FORM_PARTS",
    "WEBHOOK_MAX_CONTENT_LENGTH",
    "WEBHOOK_TOLERANCE_SECONDS",
    "MAIL_MAX_ATTEMPTS",
    "CARD_DECLINE_LIMIT",
}
BOOL_SETTINGS = {"MAIL_ENABLED", "RATELIMIT_ENABLED"}
RATE_LIMIT_SETTINGS = sorted(name for name in DEFAULTS if name.startswith("RATE_LIMIT_"))
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
MAIL_SECURITY_MODES = ("starttls", "tls", "none")
# ASCII digits only (int() would also take "٣" or "1_0"); nine digits is plenty.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


def _parse(name: str, value: str) -> Any:
    """A setting from ``.env`` or the environment; bad values are left for the check."""
    value = value.strip()
    if name in INT_SETTINGS and _WHOLE_NUMBER.fullmatch(value):
        return int(value)
    if name == "LOG_LEVEL" and value.upper() in logging.getLevelNamesMapping():
        return value.upper()
    if name in BOOL_SETTINGS and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    if name == "MAIL_SECURITY":
        return value.lower()
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
        if name in POSITIVE_SETTINGS and value < 1:
            return f"{name} must be at least 1, not {value!r}"
    for name in sorted(BOOL_SETTINGS):
        if not isinstance(config.get(name), bool):
            return f"{name} must be true or false, not {config.get(name)!r}"
    for name in RATE_LIMIT_SETTINGS:
        problem = _rate_limit_problem(config.get(name))
        if problem:
            return f"{name} {problem}"
    if parse_countries(config.get("SHIP_TO_COUNTRIES")) is None:
        return (
            "SHIP_TO_COUNTRIES must be two-letter country codes separated by commas, "
            f"e.g. US,CA,GB, not {config.get('SHIP_TO_COUNTRIES')!r}"
        )
    from .dates import zone_problem

    problem = zone_problem(config.get("SHOP_TIMEZONE"))
    if problem:
        return f"SHOP_TIMEZONE {problem}"
    level = config.get("LOG_LEVEL")
    levels = logging.getLevelNamesMapping()
    if not isinstance(level, str) or level not in levels:
        names = ", ".join(n for n in levels if n not in ("NOTSET", "WARN", "FATAL"))
        return f"LOG_LEVEL must be one of {names}, not {level!r}"
    if config.get("MAIL_SECURITY") not in MAIL_SECURITY_MODES:
        modes = ", ".join(MAIL_SECURITY_MODES)
        return f"MAIL_SECURITY must be one of {modes}, not {config.get('MAIL_SECURITY')!r}"
    return None


def _rate_limit_problem(value: Any) -> str | None:
    from limits import parse_many

    if not isinstance(value, str) or not value.strip():
        return f"must be a rate limit like '10 per minute; 100 per hour', not {value!r}"
    try:
        parse_many(value)
    except ValueError:
        return f"must be a rate limit like '10 per minute; 100 per hour', not {value!r}"
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


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
SECRET_KEY_MIN_LENGTH = 32
_KEY_MODES = {
    "STRIPE_SECRET_KEY": ("sk_test_", "sk_live_", "rk_test_", "rk_live_"),
    "STRIPE_PUBLISHABLE_KEY": ("pk_test_", "pk_live_"),
}
_KEY_EXAMPLES = {
    "STRIPE_SECRET_KEY": "sk_ or rk_ (sk_test_..., sk_live_...)",
    "STRIPE_PUBLISHABLE_KEY": "pk_ (pk_test_..., pk_live_...)",
}


def key_mode(value: Any) -> str | None:
    """The mode of a Stripe key by its prefix ("test" or "live"); None when it is neither."""
    text = str(value or "")
    for prefix in ("sk_", "rk_", "pk_"):
        for mode in ("test", "live"):
            if text.startswith(f"{prefix}{mode}_"):
                return mode
    return None


def is_loopback_host(host: str | None) -> bool:
    return (host or "").strip("[]").lower() in LOOPBACK_HOSTS or (host or "").startswith("127.")


def production_problem(config: dict) -> str | None:
    """The one-line reason production must not start, or None when it may.

    Never quotes a secret: the reason names the setting and what is wrong with it.
    """
    secret_key = config.get("SECRET_KEY")
    if secret_key in (None, "", DEV_SECRET_KEY):
        return "SECRET_KEY is not set (the development default is refused in production)"
    if len(str(secret_key)) < SECRET_KEY_MIN_LENGTH:
        return (
            f"SECRET_KEY is shorter than {SECRET_KEY_MIN_LENGTH} characters "
            '(make one with: python -c "import secrets; print(secrets.token_hex(32))")'
        )
    for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
        if not config.get(name):
            return f"{name} is not set"
    for name, prefixes in _KEY_MODES.items():
        if not str(config[name]).startswith(prefixes):
            return f"{name} must start with {_KEY_EXAMPLES[name]}"
    if not str(config["STRIPE_WEBHOOK_SECRET"]).startswith("whsec_"):
        return "STRIPE_WEBHOOK_SECRET must start with whsec_"
    secret_mode = key_mode(config["STRIPE_SECRET_KEY"])
    if secret_mode != key_mode(config["STRIPE_PUBLISHABLE_KEY"]):
        return (
            f"STRIPE_SECRET_KEY is a {secret_mode} key but STRIPE_PUBLISHABLE_KEY is not "
            "(test and live keys are mixed)"
        )
    base = config.get("SHOP_BASE_URL")
    if not base:
        return "SHOP_BASE_URL is not set (links in e-mails must not come from the Host header)"
    parts = urlsplit(str(base))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "SHOP_BASE_URL must be the shop's address, like https://shop.example.com"
    if parts.scheme != "https" and not is_loopback_host(parts.hostname):
        return "SHOP_BASE_URL must be https:// (plain http is allowed only for localhost)"
    if config.get("MAIL_ENABLED"):
        for name in ("MAIL_SERVER", "MAIL_FROM"):
            if not config.get(name):
                return f"{name} is not set (set the SMTP settings, or MAIL_ENABLED=false)"
        loopback = is_loopback_host(str(config["MAIL_SERVER"]))
        if config.get("MAIL_PASSWORD") and config["MAIL_SECURITY"] == "none" and not loopback:
            return "MAIL_SECURITY=none would send MAIL_PASSWORD unencrypted"
    return None


def debug_problem(config: dict) -> str | None:
    """The one-line reason debug mode must not start, or None: never with live keys (the
    debugger runs code and shows secrets to whoever reaches it)."""
    for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY"):
        if key_mode(config.get(name)) == "live":
            return f"{name} is a live key; debug mode only runs with test keys"
    return None
