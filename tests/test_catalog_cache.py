"""The catalog pages' per-process cache: built once per catalog version, and dropped by
any change to a product or price made through the session, in any worker process."""

import re

from sqlalchemy import event, select, update

from storefront import catalog_cache
from storefront.catalog import load_catalog_file, seed_catalog
from storefront.extensions import db
from storefront.fulfilment import fulfil_order
from storefront.models import CatalogVersion, Order, OrderStatus, Price, Product
from tests.conftest import make_app


class Statements:
    """The SQL an app sends while the block runs."""

    def __init__(self, app):
        self.app = app
        self.sql: list[str] = []

    def __enter__(self):
        with self.app.app_context():
            self.engine = db.engine
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self.sql

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, _conn, _cursor, statement, *_args):
        self.sql.append(statement)


def touches_catalog(sql: list[str]) -> list[str]:
    return [s for s in sql if re.search(r"\b(product|price)\b", s)]


def version(app) -> int:
    with app.app_context():
        return db.session.scalar(select(CatalogVersion.version))


def test_the_catalog_and_product_pages_are_built_once_per_catalog_version(app, client):
    first = client.get("/").get_data(as_text=True)
    client.get("/products/colombia-huila")
    with Statements(app) as sql:
        again = client.get("/").get_data(as_text=True)
        product = client.get("/products/colombia-huila")
    assert product.status_code == 200 and "Colombia Huila" in product.get_data(as_text=True)
    assert again == first.replace(csrf(first), csrf(again))
    assert touches_catalog(sql) == []
    assert sql == []  # the version is read on the cache's own connection


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_each_currency_and_category_has_its_own_entry(client):
    assert "$18.00" in client.get("/").get_data(as_text=True)
    client.post("/cart/currency", data={"currency": "eur"})
    assert "€17.00" in client.get("/").get_data(as_text=True)
    page = client.get("/?category=ceramics").get_data(as_text=True)
    assert "Stoneware" in page and "Ethiopia" not in page
    assert "Ethiopia" in client.get("/").get_data(as_text=True)


class Clock:
    """``catalog_cache.clock``, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_stock_taken_by_another_worker_shows_within_the_check_interval(
    tmp_path, app, client, monkeypatch
):
    """Two apps on one database stand in for two gunicorn workers."""
    clock = Clock()
    monkeypatch.setattr(catalog_cache, "clock", clock)
    assert app.config["CATALOG_VERSION_CHECK_MS"] == 1000  # the default
    # The same database (seeding it again changes nothing); tests/test_postgres.py runs
    # this on PostgreSQL too.
    other = make_app(tmp_path, DATABASE_URL=app.config["DATABASE_URL"])
    assert "8 in stock" in client.get("/products/hand-burr-grinder").get_data(as_text=True)
    assert "Sold out" not in client.get("/").get_data(as_text=True)
    before = version(app)
    take_all_grinders(other)
    assert version(app) > before
    # This worker has not looked at the version again yet: its pages are as they were...
    clock.now += 0.9
    assert "8 in stock" in client.get("/products/hand-burr-grinder").get_data(as_text=True)
    # ...until the interval is up: then the next page shows the other worker's change.
    clock.now += 0.2
    assert "Sold out" in client.get("/products/hand-burr-grinder").get_data(as_text=True)
    grid = client.get("/").get_data(as_text=True)
    assert grid.count("Sold out") == 1
    assert 'aria-label="Add to cart: Hand burr grinder"' not in grid
    assert 'aria-label="Add to cart: Stoneware mug"' in grid


def test_with_no_interval_another_workers_change_shows_on_the_next_page(tmp_path, app, client):
    app.config["CATALOG_VERSION_CHECK_MS"] = 0
    other = make_app(tmp_path, DATABASE_URL=app.config["DATABASE_URL"])
    assert "8 in stock" in client.get("/products/hand-burr-grinder").get_data(as_text=True)
    assert "Sold out" not in client.get("/").get_data(as_text=True)
    take_all_grinders(other)
    assert "Sold out" in client.get("/products/hand-burr-grinder").get_data(as_text=True)
    grid = client.get("/").get_data(as_text=True)
    assert grid.count("Sold out") == 1


def take_all_grinders(other) -> None:
    """Another worker sells and fulfils the last eight grinders."""
    with other.app_context():
        grinder = db.session.scalar(select(Product).where(Product.slug == "hand-burr-grinder"))
        price = db.session.scalar(select(Price).where(Price.lookup_key == "hand-burr-grinder-usd"))
        order = Order(email="a@example.com", currency="usd", amount_total=8 * price.unit_amount)
        order.items.append(
            _item(order, grinder, price, quantity=8),
        )
        db.session.add(order)
        db.session.commit()
        assert fulfil_order(order)  # update(Product) ... stock - 8
        db.session.remove()
        db.engine.dispose()


def _item(order, product, price, quantity):
    from storefront.models import OrderItem

    return OrderItem(
        product_id=product.id,
        price_id=price.id,
        product_name=product.name,
        price_lookup_key=price.lookup_key,
        unit_amount=price.unit_amount,
        quantity=quantity,
    )


def test_a_renamed_or_repriced_product_shows_at_once(app, client):
    client.get("/")
    client.get("/products/colombia-huila")
    entries = load_catalog_file()
    for entry in entries:
        if entry["slug"] == "colombia-huila":
            entry["name"] = "Colombia Huila Reserve"
            entry["prices"][0]["unit_amount"] = 1999
    with app.app_context():
        seed_catalog(entries)
    assert "Colombia Huila Reserve" in client.get("/").get_data(as_text=True)
    page = client.get("/products/colombia-huila").get_data(as_text=True)
    assert "Colombia Huila Reserve" in page and "$19.99" in page


def test_a_bulk_update_of_prices_bumps_the_version_and_a_rollback_does_not(app, client):
    client.get("/")
    with app.app_context():
        start = version(app)
        db.session.execute(update(Price).values(active=False))
        db.session.rollback()
        assert version(app) == start
        db.session.execute(update(Price).values(active=False))
        db.session.commit()
        assert version(app) == start + 1
    assert "Not sold in USD" in client.get("/").get_data(as_text=True)


def test_unrelated_writes_leave_the_version_alone(app):
    with app.app_context():
        start = version(app)
        db.session.add(Order(email="a@example.com", currency="usd", amount_total=100))
        db.session.commit()
        order = db.session.scalar(select(Order))
        order.status = OrderStatus.CANCELED
        db.session.commit()
        assert version(app) == start


def test_the_grid_is_one_form_whose_buttons_send_their_price(app, client):
    page = client.get("/").get_data(as_text=True)
    assert page.count('name="csrf_token"') == 2  # the grid's form and the currency switch
    with app.app_context():
        mug = db.session.scalar(select(Price).where(Price.lookup_key == "stoneware-mug-usd"))
        mug_id = mug.id
    assert f'name="price_id" value="{mug_id}"' in page
    response = client.post(
        "/cart/add", data={"price_id": str(mug_id), "quantity": "1", "next": "/"}
    )
    assert response.status_code in (302, 303)
    assert 'data-testid="cart-count">1<' in client.get("/").get_data(as_text=True)


def test_a_change_shows_at_once_here_though_a_savepoint_in_its_transaction_rolled_back(
    app, client, monkeypatch
):
    monkeypatch.setattr(catalog_cache, "clock", Clock())  # no interval ends on its own
    assert "Not sold in USD" not in client.get("/").get_data(as_text=True)
    with app.app_context():
        db.session.execute(update(Price).values(active=False))
        savepoint = db.session.begin_nested()
        db.session.add(Order(email="a@example.com", currency="usd", amount_total=100))
        savepoint.rollback()
        db.session.commit()
    assert "Not sold in USD" in client.get("/").get_data(as_text=True)
