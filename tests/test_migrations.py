import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from storefront import create_app
from storefront.catalog import load_catalog_file, seed_catalog
from storefront.extensions import db
from storefront.models import Order, OrderItem, Price, Product
from tests.conftest import TEST_CONFIG


def test_upgrade_builds_an_empty_database_then_seed_works(tmp_path):
    app = create_app(dict(TEST_CONFIG, DATABASE_URL=f"sqlite:///{tmp_path / 'm.sqlite3'}"))
    with app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {"product", "price", "order", "order_item", "webhook_event"} <= tables
        counts = seed_catalog(load_catalog_file())
        assert counts["products created"] >= 9
        db.engine.dispose()


def test_migrations_match_the_models(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    app = create_app(dict(TEST_CONFIG, DATABASE_URL=f"sqlite:///{tmp_path / 'm.sqlite3'}"))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        db.engine.dispose()
    assert diff == []


def test_db_upgrade_command(tmp_path):
    app = create_app(dict(TEST_CONFIG, DATABASE_URL=f"sqlite:///{tmp_path / 'c.sqlite3'}"))
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    result = app.test_cli_runner().invoke(args=["catalog", "seed"])
    assert "10 products created" in result.output
    with app.app_context():
        db.engine.dispose()


def migrated_app(tmp_path, revision="head"):
    app = create_app(dict(TEST_CONFIG, DATABASE_URL=f"sqlite:///{tmp_path / 'm.sqlite3'}"))
    with app.app_context():
        upgrade(revision=revision)
    return app


def check_constraints(engine) -> dict[str, set[tuple[str, str]]]:
    inspector = inspect(engine)
    return {
        table: {(c["name"], c["sqltext"]) for c in inspector.get_check_constraints(table)}
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }


def test_migrations_add_the_models_check_constraints(tmp_path):
    # compare_metadata (above) does not compare CHECK constraints, so compare them here.
    app = migrated_app(tmp_path)
    models = create_app(dict(TEST_CONFIG, DATABASE_URL=f"sqlite:///{tmp_path / 'models.db'}"))
    with app.app_context():
        migrated = check_constraints(db.engine)
        db.engine.dispose()
    with models.app_context():
        db.create_all()
        expected = check_constraints(db.engine)
        db.engine.dispose()
    assert migrated == expected
    assert ("ck_price_unit_amount_not_negative", "unit_amount >= 0") in migrated["price"]
    assert {name for name, _ in migrated["order"]} == {
        "ck_order_amount_total_not_negative",
        "ck_order_status_known",
    }


def test_check_constraint_migration_keeps_existing_orders_and_their_links(tmp_path):
    app = migrated_app(tmp_path, revision="69a9d0aacf24")
    with app.app_context():
        # Plain SQL: the models may already have columns this old schema lacks.
        db.session.execute(
            text(
                "INSERT INTO product (id, slug, name, description, category, active) "
                "VALUES (1, 'mug', 'Mug', '', 'ceramics', 1)"
            )
        )
        db.session.execute(
            text(
                "INSERT INTO price (id, product_id, currency, unit_amount, lookup_key, active) "
                "VALUES (7, 1, 'usd', 3200, 'mug-usd', 1)"
            )
        )
        db.session.execute(
            text(
                'INSERT INTO "order" (id, public_id, currency, amount_total, status, '
                "created_at, updated_at, amount_refunded) "
                "VALUES (3, 'pub', 'usd', 6400, 'paid', '2026-01-01', '2026-01-01', 0)"
            )
        )
        db.session.execute(
            text(
                "INSERT INTO order_item (order_id, product_id, price_id, product_name, "
                "price_lookup_key, unit_amount, quantity) "
                "VALUES (3, 1, 7, 'Mug', 'mug-usd', 3200, 2)"
            )
        )
        db.session.commit()
        before = db.session.execute(text("SELECT * FROM order_item")).all()
        db.session.remove()

        upgrade()  # rebuilds price, order and order_item (SQLite batch mode)

        assert db.session.execute(text("SELECT * FROM order_item")).all() == before
        assert db.session.execute(text("PRAGMA foreign_key_check")).all() == []
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        db.session.remove()
        downgrade(revision="69a9d0aacf24")
        assert db.session.execute(text("SELECT * FROM order_item")).all() == before
        assert check_constraints(db.engine)["price"] == set()
        db.session.remove()
        db.engine.dispose()


def product_id(session) -> int:
    return session.scalar(select(Product.id).where(Product.slug == "stoneware-mug"))


@pytest.mark.parametrize(
    "bad_row",
    [
        lambda s: Price(product_id=9999, currency="usd", unit_amount=100, lookup_key="x"),
        lambda s: Price(product_id=product_id(s), currency="usd", unit_amount=-5, lookup_key="x"),
        lambda s: Order(currency="usd", amount_total=100, status="bogus"),
        lambda s: Order(currency="usd", amount_total=-1),
        lambda s: Order(
            currency="usd",
            amount_total=0,
            items=[OrderItem(product_name="x", price_lookup_key="x", unit_amount=1, quantity=0)],
        ),
        lambda s: Order(
            currency="usd",
            amount_total=0,
            items=[OrderItem(product_name="x", price_lookup_key="x", unit_amount=1, quantity=100)],
        ),
        lambda s: Order(
            currency="usd",
            amount_total=0,
            items=[OrderItem(product_name="x", price_lookup_key="x", unit_amount=-1, quantity=1)],
        ),
    ],
    ids=[
        "price-of-missing-product",
        "negative-price",
        "unknown-status",
        "negative-total",
        "zero-quantity",
        "quantity-100",
        "negative-line-amount",
    ],
)
@pytest.mark.parametrize("schema", ["migrations", "models"])
def test_database_refuses_bad_rows(tmp_path, schema, bad_row):
    if schema == "migrations":
        app = migrated_app(tmp_path)
    else:
        app = create_app(dict(TEST_CONFIG, DATABASE_URL=f"sqlite:///{tmp_path / 'models.db'}"))
        with app.app_context():
            db.create_all()
    with app.app_context():
        seed_catalog(load_catalog_file())
        counts = (db.session.query(Price).count(), db.session.query(Order).count())
        db.session.add(bad_row(db.session))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
        assert (db.session.query(Price).count(), db.session.query(Order).count()) == counts
        db.session.remove()
        db.engine.dispose()


def test_a_migration_leaves_the_apps_loggers_enabled(tmp_path):
    # env.py's fileConfig would otherwise disable every logger that exists already.
    import logging

    app = migrated_app(tmp_path)
    names = ("storefront.webhooks", "storefront.payments", "storefront.checkout")
    assert [name for name in names if logging.getLogger(name).disabled] == []
    with app.app_context():
        db.engine.dispose()
