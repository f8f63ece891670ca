"""The shop as production runs it: migrated and seeded database, catalog synced to the
emulator, a registered webhook endpoint, ``gunicorn -w N wsgi:app`` in production mode."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

from bench import servers

SECRET_KEY = "bench-only-secret-key-not-for-production-0123456789"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PRICE_RE = re.compile(r'name="price_id" value="([0-9]+)"')


@dataclass
class Shop:
    url: str
    emulator_url: str
    database_url: str
    webhook_secret: str


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://", "postgresql+psycopg://"))


def empty_database(url: str) -> None:
    """A fresh schema: PostgreSQL's public schema emptied (``BENCH_DATABASE_URL`` must name
    a database the benchmark may wipe). SQLite files are always new."""
    if not is_postgres(url):
        return
    engine = create_engine(re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", url))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def prepare(database_url: str, emulator_url: str, shop_url: str) -> str:
    """Migrate, seed, sync the catalog to the emulator and register the webhook endpoint,
    as a deploy does; returns the endpoint's signing secret."""
    from flask_migrate import upgrade

    from storefront import create_app, payments
    from storefront.catalog import (
        load_catalog_file,
        load_shipping_rates,
        seed_catalog,
        sync_catalog,
    )
    from storefront.extensions import db
    from storefront.shipping import seed_shipping_rates

    empty_database(database_url)
    settings = shop_settings(database_url, emulator_url, shop_url)
    app = create_app({**settings, "LOG_LEVEL": "ERROR", "MAIL_ENABLED": False})
    with app.app_context():
        upgrade()
        seed_catalog(load_catalog_file())
        seed_shipping_rates(load_shipping_rates())  # as `flask catalog seed`: Pay needs a rate
        sync_catalog(echo=lambda *_: None)
        secret = payments.register_webhook_endpoint(shop_url + "/webhooks/stripe")
        db.session.remove()
        db.engine.dispose()
    return secret


def shop_settings(database_url: str, emulator_url: str, shop_url: str) -> dict[str, str]:
    return {
        "SECRET_KEY": SECRET_KEY,
        **servers.EMULATOR_KEYS,
        "STRIPE_API_BASE": emulator_url,
        "STRIPE_JS_URL": emulator_url + "/v3/",
        "STRIPE_WEBHOOK_SECRET": "whsec_placeholder",
        "SHOP_BASE_URL": shop_url,
        "DATABASE_URL": database_url,
    }


@contextlib.contextmanager
def running(
    database_url: str, log_dir: Path, *, workers: int, name: str = "shop"
) -> Iterator[Shop]:
    """The emulator and the shop under gunicorn (production settings), stopped on exit."""
    with contextlib.ExitStack() as stack:
        emulator, emulator_url = servers.emulator(log_dir)
        stack.callback(emulator.stop)
        port = servers.free_port()
        shop_url = f"http://127.0.0.1:{port}"
        secret = prepare(database_url, emulator_url, shop_url)
        settings = shop_settings(database_url, emulator_url, shop_url)
        # The web process is measured: mail stays in the outbox (no dispatcher runs). Every
        # simulated shopper comes from 127.0.0.1: the per-IP rate limits would turn the load
        # into 429s, so the benchmark measures the shop without them.
        env = servers.base_env(
            **{
                **settings,
                "STRIPE_WEBHOOK_SECRET": secret,
                "MAIL_ENABLED": "false",
                "RATELIMIT_ENABLED": "false",
            }
        )
        proc, url = servers.gunicorn(name, "wsgi:app", env, log_dir, workers=workers, port=port)
        stack.callback(proc.stop)
        yield Shop(
            url=url, emulator_url=emulator_url, database_url=database_url, webhook_secret=secret
        )
