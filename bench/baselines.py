"""The bare baselines the shop is measured against, served by gunicorn like the shop.

``gunicorn 'bench.baselines:hello()'``: Flask answering "hello", the floor of any page.

``gunicorn 'bench.baselines:ingest()'``: the least a correct webhook endpoint does: verify
the Stripe signature with the SDK, parse the JSON, INSERT the event id (once) and commit.
``BENCH_BARE_DB`` is a SQLite file (WAL, synchronous=NORMAL, as the shop's) or a
PostgreSQL URL (as the shop's ``DATABASE_URL`` in that run); ``BENCH_WEBHOOK_SECRET``
the signing secret.
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

import stripe
from flask import Flask, request

TABLE = "CREATE TABLE IF NOT EXISTS bare_event (id VARCHAR(255) PRIMARY KEY)"
INSERT = "INSERT INTO bare_event (id) VALUES ({}) ON CONFLICT DO NOTHING"


def hello() -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def index():
        return "hello"

    return app


def connect(target: str) -> Any:
    """A DB-API connection to the baseline's database; creates its one table."""
    if target.startswith(("postgres://", "postgresql://")):
        import psycopg

        conn = psycopg.connect(target)
        conn.execute(TABLE)
        conn.commit()
        return conn
    conn = sqlite3.connect(target, timeout=15)
    # As the shop's SQLite connections are set up (storefront/__init__.py).
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(TABLE)
    conn.commit()
    return conn


def ingest() -> Flask:
    app = Flask(__name__)
    secret = os.environ["BENCH_WEBHOOK_SECRET"]
    target = os.environ["BENCH_BARE_DB"]
    placeholder = "%s" if target.startswith(("postgres://", "postgresql://")) else "?"
    insert = INSERT.format(placeholder)
    connections: dict[int, Any] = {}

    def conn() -> Any:
        # One connection per worker process, opened after gunicorn forked it.
        pid = os.getpid()
        if pid not in connections:
            connections[pid] = connect(target)
        return connections[pid]

    @app.get("/")
    def health():
        return "ok"

    @app.post("/webhooks/stripe")
    def webhook():
        payload = request.get_data(as_text=True)
        header = request.headers.get("Stripe-Signature", "")
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, 300)
            event = json.loads(payload)
        except (stripe.SignatureVerificationError, ValueError):
            return {"error": "invalid"}, 400
        db = conn()
        db.execute(insert, (event["id"],))
        db.commit()
        return {"received": True}

    return app
