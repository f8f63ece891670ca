from flask_migrate import upgrade
from sqlalchemy import inspect

from storefront import create_app
from storefront.catalog import load_catalog_file, seed_catalog
from storefront.extensions import db
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
