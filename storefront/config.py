"""Configuration: safe defaults, then ``.env`` and the environment, then test config."""

from __future__ import annotations

import os
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
    "SHOP_BASE_URL": None,  # None: taken from the request; set behind a proxy
    "LOG_LEVEL": "INFO",
    # Seconds the order page waits for the webhook before it fulfils a paid order itself.
    "WEBHOOK_GRACE_SECONDS": 10,
}

INT_SETTINGS = {"STRIPE_MAX_NETWORK_RETRIES", "WEBHOOK_GRACE_SECONDS"}


def load_settings(instance_path: str, env_file: str | os.PathLike[str] | None = None) -> dict:
    """Defaults overlaid with ``.env`` (if present) and then the process environment."""
    settings = dict(DEFAULTS)
    env_file = Path(env_file) if env_file else Path.cwd() / ".env"
    file_values = dotenv_values(env_file) if env_file.is_file() else {}
    for name in DEFAULTS:
        value = os.environ.get(name, file_values.get(name))
        if value not in (None, ""):
            settings[name] = int(value) if name in INT_SETTINGS else value
    if not settings["DATABASE_URL"]:
        settings["DATABASE_URL"] = "sqlite:///" + os.path.join(instance_path, "storefront.sqlite3")
    return settings


def production_problem(config: dict) -> str | None:
    """The one-line reason production must not start, or None when it may."""
    if config.get("SECRET_KEY") in (None, "", DEV_SECRET_KEY):
        return "SECRET_KEY is not set (the development default is refused in production)"
    for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
        if not config.get(name):
            return f"{name} is not set"
    if str(config["STRIPE_SECRET_KEY"]).startswith("pk_"):
        return "STRIPE_SECRET_KEY holds a publishable key"
    return None
