"""The same guarantees on PostgreSQL: migrations, exactly-once fulfilment, webhook dedup,
each outbox message sent once by concurrent dispatchers, and
no 5xx for hostile input (PostgreSQL refuses NUL characters SQLite stores).

SQLite runs one writer at a time, which hides races; PostgreSQL runs them for real. This
module starts a throwaway server (tests/postgres.py) and runs the fulfilment, webhook and
cart test modules again against it: their tests are collected here a second time with
this module's ``app`` fixture, which gives each test a database of its own (a copy of one
created and seeded once per test process).
"""

from __future__ import annotations

import pytest
from flask_migrate import upgrade
from sqlalchemy import inspect

from storefront import create_app
from storefront.catalog import load_catalog_file, seed_catalog
from storefront.extensions import db
from tests import (
    test_cart,
    test_catalog_cache,
    test_fulfilment,
    test_kept_insert,
    test_order_refill,
    test_outbox,
    test_webhook_transactions,
    test_webhooks,
)
from tests.conftest import TEST_CONFIG
from tests.test_card_testing import (
    test_declines_from_webhooks_trip_the_pause_with_a_log_line_and_a_staff_notice,  # noqa: F401
)
from tests.test_hostile_inputs import hostile_app, test_every_route_survives_hostile_input  # noqa: F401
from tests.test_security import test_a_nul_byte_in_the_path_or_query_is_not_a_5xx  # noqa: F401

# Run these modules' tests here too (their module-level fixtures come along).
for _module in (
    test_fulfilment,
    test_webhooks,
    test_cart,
    test_order_refill,
    test_outbox,
    test_catalog_cache,
    test_webhook_transactions,
    test_kept_insert,
):
    for _name in dir(_module):
        if _name.startswith("test_") or _name in (
            "webhook_log",
            "usd",
            "filled",
            "mail_app",
            "kept_engine",
        ):
            globals()[_name] = getattr(_module, _name)


@pytest.fixture
def pg_url(empty_postgres_url: str) -> str:
    """An empty database of the test's own."""
    return empty_postgres_url


@pytest.fixture
def app(seeded_postgres_url: str):
    """A shop on a created and seeded PostgreSQL database of its own, copied from one made
    once per test process (overrides conftest's SQLite app)."""
    app = create_app(dict(TEST_CONFIG, DATABASE_URL=seeded_postgres_url))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def kept_url(pg_url: str) -> str:
    """tests/test_kept_insert.py's database: this schema."""
    return pg_url


def test_the_app_really_runs_on_postgresql(app):
    with app.app_context():
        assert db.engine.dialect.name == "postgresql"
        assert db.engine.dialect.driver == "psycopg"


def test_migrations_build_the_schema_the_models_describe(tmp_path, pg_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    migrated = create_app(dict(TEST_CONFIG, DATABASE_URL=pg_url))
    with migrated.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        checks = {c["name"] for c in inspect(db.engine).get_check_constraints("order")}
        counts = seed_catalog(load_catalog_file())
        db.engine.dispose()
    assert diff == []
    assert any("status" in (name or "") for name in checks)
    assert counts["products created"] >= 9
