"""``flask catalog sync-stripe`` against the emulator: creates, converges, reuses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from storefront import payments
from storefront.extensions import db
from storefront.models import Price, Product
from tests.conftest import make_app
from tests.live import emulator_config

LOOKUP_KEY = "ethiopia-yirgacheffe-usd"


@pytest.fixture
def shop(tmp_path, emulator) -> Iterator[Flask]:
    """A seeded shop configured against a fresh emulator, not synced yet."""
    app = make_app(tmp_path, **emulator_config(emulator))
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def sync(app: Flask) -> str:
    result = app.test_cli_runner().invoke(args=["catalog", "sync-stripe"])
    assert result.exit_code == 0, result.output
    return result.output


def stored_ids(app: Flask) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """Stripe ids stored in the shop's database: by product slug and by price lookup key."""
    with app.app_context():
        products = {p.slug: p.stripe_product_id for p in db.session.scalars(select(Product))}
        prices = {p.lookup_key: p.stripe_price_id for p in db.session.scalars(select(Price))}
    return products, prices


def stripe_objects(app: Flask, kind: str) -> list:
    """Every Product or Price in the emulator account."""
    with app.app_context():
        api = getattr(payments.client().v1, kind)
        page = api.list(params={"limit": 100})
    assert not page.has_more
    return page.data


def stripe_price_by_lookup_key(app: Flask, lookup_key: str):
    with app.app_context():
        return payments.find_price_by_lookup_key(lookup_key)


def set_amount(app: Flask, lookup_key: str, amount: int) -> None:
    with app.app_context():
        price = db.session.scalar(select(Price).where(Price.lookup_key == lookup_key))
        price.unit_amount = amount
        db.session.commit()


def test_first_sync_creates_everything_and_stores_the_ids(shop):
    output = sync(shop)

    products, prices = stored_ids(shop)
    assert f"Synced {len(products)} products: {len(prices)} prices created, 0 updated" in output
    assert f"{LOOKUP_KEY} created" in output
    assert all(pid and pid.startswith("prod_") for pid in products.values())
    assert all(pid and pid.startswith("price_") for pid in prices.values())
    stripe_prices = {p.id: p for p in stripe_objects(shop, "prices")}
    assert {p.id for p in stripe_objects(shop, "products")} == set(products.values())
    assert set(stripe_prices) == set(prices.values())
    with shop.app_context():
        for price in db.session.scalars(select(Price)):
            remote = stripe_prices[price.stripe_price_id]
            assert remote.lookup_key == price.lookup_key
            assert remote.unit_amount == price.unit_amount
            assert remote.currency == price.currency
            assert remote.product == price.product.stripe_product_id


def test_second_sync_changes_nothing_and_says_so(shop):
    sync(shop)
    before = stored_ids(shop)
    count = len(stripe_objects(shop, "prices"))

    output = sync(shop)

    assert "no changes" in output
    assert " created" not in output and " updated" not in output
    assert stored_ids(shop) == before
    assert len(stripe_objects(shop, "prices")) == count


def test_changed_amount_makes_a_new_price_that_takes_the_lookup_key(shop):
    sync(shop)
    old_id = stored_ids(shop)[1][LOOKUP_KEY]

    set_amount(shop, LOOKUP_KEY, 1900)
    output = sync(shop)

    assert f"{LOOKUP_KEY} updated" in output
    assert "1 updated" in output
    new_id = stored_ids(shop)[1][LOOKUP_KEY]
    assert new_id != old_id
    current = stripe_price_by_lookup_key(shop, LOOKUP_KEY)
    assert current.id == new_id
    assert current.unit_amount == 1900
    with shop.app_context():
        old = payments.client().v1.prices.retrieve(old_id)
    assert old.lookup_key is None
    assert old.unit_amount == 1800


def test_price_changed_and_changed_back_converges(shop):
    sync(shop)
    first_id = stored_ids(shop)[1][LOOKUP_KEY]

    set_amount(shop, LOOKUP_KEY, 1900)
    sync(shop)
    set_amount(shop, LOOKUP_KEY, 1800)  # back to the first amount, well within 24 hours
    sync(shop)

    stored = stored_ids(shop)[1][LOOKUP_KEY]
    current = stripe_price_by_lookup_key(shop, LOOKUP_KEY)
    assert stored == current.id
    assert current.unit_amount == 1800
    assert stored != first_id  # a new Price, not a replay of the first creation
    assert "no changes" in sync(shop)
    assert stored_ids(shop)[1][LOOKUP_KEY] == stored


def test_fresh_database_reuses_the_accounts_products_and_prices(tmp_path, stripe_app, emulator):
    synced = stored_ids(stripe_app)
    product_count = len(stripe_objects(stripe_app, "products"))
    price_count = len(stripe_objects(stripe_app, "prices"))
    (tmp_path / "fresh").mkdir()
    fresh = make_app(tmp_path / "fresh", **emulator_config(emulator))
    try:
        assert set(stored_ids(fresh)[1].values()) == {None}

        output = sync(fresh)

        assert "no changes" in output
        assert stored_ids(fresh) == synced
        assert len(stripe_objects(fresh, "products")) == product_count
        assert len(stripe_objects(fresh, "prices")) == price_count
    finally:
        with fresh.app_context():
            db.engine.dispose()


def test_sync_without_a_secret_key_says_so(app):
    result = app.test_cli_runner().invoke(args=["catalog", "sync-stripe"])
    assert result.exit_code == 1
    assert "STRIPE_SECRET_KEY is not set" in result.output
