import pytest
from sqlalchemy import func, select

from storefront.catalog import load_catalog_file, seed_catalog
from storefront.extensions import db
from storefront.models import Price, Product
from storefront.money import format_money


def test_home_lists_seeded_products_with_prices(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Ethiopia Yirgacheffe" in page
    assert "Gooseneck Kettle".lower() in page.lower()
    assert "$" in page
    # The membership is sold through its own page, not the grid.
    assert "Coffee Club membership" not in page


def test_category_filter_shows_only_that_category(client):
    page = client.get("/?category=ceramics").get_data(as_text=True)
    assert "Stoneware" in page
    assert "Ethiopia Yirgacheffe" not in page


def test_unknown_category_is_404(client):
    response = client.get("/?category=spaceships")
    assert response.status_code == 404
    assert "no category" in response.get_data(as_text=True)


def test_product_page(client):
    response = client.get("/products/ethiopia-yirgacheffe")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Ethiopia Yirgacheffe" in page
    assert "Add to cart" in page


def test_missing_product_is_404_in_shop_style(client):
    response = client.get("/products/no-such-thing")
    assert response.status_code == 404
    assert "We could not find that product" in response.get_data(as_text=True)


def test_inactive_product_is_404(app, client):
    with app.app_context():
        product = db.session.scalar(select(Product).where(Product.slug == "stoneware-mug"))
        product.active = False
        db.session.commit()
    assert client.get("/products/stoneware-mug").status_code == 404
    assert "Stoneware" not in client.get("/").get_data(as_text=True)


def test_prices_follow_the_cart_currency(client):
    client.post("/cart/currency", data={"currency": "eur"})
    page = client.get("/").get_data(as_text=True)
    assert "€" in page


def test_seeding_twice_changes_nothing(app):
    with app.app_context():
        before = (
            db.session.scalar(select(func.count(Product.id))),
            db.session.scalar(select(func.count(Price.id))),
        )
        counts = seed_catalog(load_catalog_file())
        after = (
            db.session.scalar(select(func.count(Product.id))),
            db.session.scalar(select(func.count(Price.id))),
        )
    assert before == after
    assert set(counts.values()) == {0}


def test_seeding_a_changed_catalog_updates_what_changed(app):
    """A renamed product and a new amount are updated and counted; a price whose amount
    changed loses its Stripe id (Stripe prices are immutable), the others keep theirs."""
    entries = load_catalog_file()
    entry = next(e for e in entries if e["slug"] == "colombia-huila")
    entry["name"] = "Colombia Huila (new crop)"
    changed = next(p for p in entry["prices"] if p["currency"] == "usd")
    changed["unit_amount"] += 100
    with app.app_context():
        for price in db.session.scalars(select(Price)):
            price.stripe_price_id = f"price_{price.id}"
        db.session.commit()
        counts = seed_catalog(entries)
        product = db.session.scalar(select(Product).where(Product.slug == "colombia-huila"))
        stripe_ids = {p.lookup_key: (p.stripe_price_id, p.id) for p in product.prices}
        assert product.name == "Colombia Huila (new crop)"
    assert counts == {
        "products created": 0,
        "products updated": 1,
        "prices created": 0,
        "prices updated": 1,
    }
    assert stripe_ids.pop(changed["lookup_key"])[0] is None
    assert stripe_ids and all(sid == f"price_{pk}" for sid, pk in stripe_ids.values())


def test_seed_command_prints_what_it_did(runner):
    result = runner.invoke(args=["catalog", "seed"])
    assert result.exit_code == 0
    assert "0 products created" in result.output


def test_catalog_file_has_the_required_shape():
    products = load_catalog_file()
    one_time = [p for p in products if p["category"] != "membership"]
    assert len(one_time) >= 8
    assert len({p["category"] for p in one_time}) in (2, 3)
    for product in one_time:
        currencies = {price["currency"] for price in product["prices"]}
        assert {"usd", "eur"} <= currencies, product["slug"]
    membership = [p for p in products if p["category"] == "membership"]
    intervals = {price["recurring"]["interval"] for price in membership[0]["prices"]}
    assert intervals == {"month", "year"}


def test_every_product_has_its_own_svg_picture(app):
    import os

    for product in load_catalog_file():
        path = os.path.join(app.static_folder, product["image"])
        assert product["image"].endswith(".svg")
        with open(path, encoding="utf-8") as fh:
            assert "<svg" in fh.read()


def test_money_is_formatted_per_currency_minor_units():
    assert format_money(1800, "usd") == "$18.00"
    assert format_money(1750, "eur") == "€17.50"
    assert format_money(1800, "jpy") == "¥1,800"
    assert format_money(123456, "usd") == "$1,234.56"
    assert format_money(1000, "kwd") == "1.000 KWD"


def test_money_formatting_is_exact_for_huge_amounts():
    # 2**53 + 1: a float division would round the last cent away.
    assert format_money(9007199254740993, "usd") == "$90,071,992,547,409.93"
    assert format_money(-9007199254740993, "eur") == "-€90,071,992,547,409.93"
    assert format_money(9007199254740993, "jpy") == "¥9,007,199,254,740,993"
    assert format_money(9007199254740993, "kwd") == "9,007,199,254,740.993 KWD"
    assert format_money(5, "usd") == "$0.05"
    assert format_money(0, "usd") == "$0.00"


def write_catalog(tmp_path, lookup_key, **changes):
    """The real catalog with one price changed and the first product renamed."""
    import json

    products = load_catalog_file()
    products[0]["name"] = "Renamed before the bad entry"
    for product in products:
        for price in product["prices"]:
            if price["lookup_key"] == lookup_key:
                price.update(changes)
    path = tmp_path / "bad-catalog.json"
    path.write_text(json.dumps({"products": products}), encoding="utf-8")
    return path


def catalog_rows(app):
    with app.app_context():
        products = db.session.execute(select(Product.slug, Product.name)).all()
        prices = db.session.execute(
            select(Price.lookup_key, Price.unit_amount, Price.currency, Price.recurring_interval)
        ).all()
    return sorted(products), sorted(prices)


@pytest.mark.parametrize(
    ("lookup_key", "changes", "problem"),
    [
        ("stoneware-mug-usd", {"unit_amount": 18.5}, "unit_amount must be a whole number"),
        ("stoneware-mug-usd", {"unit_amount": "1800"}, "unit_amount must be a whole number"),
        ("stoneware-mug-usd", {"unit_amount": True}, "unit_amount must be a whole number"),
        ("stoneware-mug-usd", {"unit_amount": -1}, "unit_amount must be a whole number"),
        ("stoneware-mug-usd", {"currency": "USD"}, "currency must be a three-letter lowercase"),
        ("stoneware-mug-usd", {"currency": "dollars"}, "currency must be a three-letter"),
        ("stoneware-mug-usd", {"currency": None}, "currency must be a three-letter"),
        ("coffee-club-monthly-usd", {"recurring": {"interval": "fortnight"}}, "interval must be"),
        ("coffee-club-monthly-usd", {"recurring": "month"}, "recurring must be an object"),
    ],
)
def test_seeding_a_bad_catalog_names_the_entry_and_changes_nothing(
    app, tmp_path, lookup_key, changes, problem
):
    import click

    before = catalog_rows(app)
    entries = load_catalog_file(write_catalog(tmp_path, lookup_key, **changes))
    with app.app_context(), pytest.raises(click.ClickException) as excinfo:
        seed_catalog(entries)
    message = excinfo.value.message
    assert problem in message
    assert lookup_key in message
    assert "\n" not in message
    assert catalog_rows(app) == before


def test_seed_command_reports_a_bad_catalog_without_a_traceback(app, runner, tmp_path):
    path = write_catalog(tmp_path, "stoneware-mug-usd", unit_amount=18.5)
    before = catalog_rows(app)
    result = runner.invoke(args=["catalog", "seed", "--file", str(path)])
    assert result.exit_code == 1
    assert "Error: Catalog product #" in result.output
    assert "'stoneware-mug-usd': unit_amount must be a whole number" in result.output
    assert "18.5" in result.output
    assert "Traceback" not in result.output
    assert catalog_rows(app) == before


def test_seed_command_reports_a_file_that_is_not_json(runner, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    result = runner.invoke(args=["catalog", "seed", "--file", str(path)])
    assert result.exit_code == 1
    assert "Cannot read catalog file" in result.output


def add_product(app, slug, category, amount=900):
    with app.app_context():
        product = Product(
            slug=slug,
            name=slug.replace("-", " ").title(),
            category=category,
            image="img/products/stoneware-mug.svg",
        )
        db.session.add(product)
        db.session.flush()
        db.session.add(
            Price(product_id=product.id, currency="usd", unit_amount=amount, lookup_key=slug)
        )
        db.session.commit()


def test_product_in_an_unlisted_category_is_on_the_grid(app, client):
    add_product(app, "sencha-green-tea", "loose-leaf-tea")
    page = client.get("/").get_data(as_text=True)
    assert "Sencha Green Tea" in page
    assert "Ethiopia Yirgacheffe" in page
    assert ">Loose Leaf Tea</a>" in page
    assert ">Brewing gear</a>" in page  # the shop's own labels stay
    assert page.index(">Ceramics</a>") < page.index(">Loose Leaf Tea</a>")


def test_unlisted_category_filter_shows_only_that_category(app, client):
    add_product(app, "sencha-green-tea", "loose-leaf-tea")
    response = client.get("/?category=loose-leaf-tea")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Sencha Green Tea" in page
    assert "Ethiopia Yirgacheffe" not in page
    assert "<h1>Loose Leaf Tea</h1>" in page


def test_empty_category_means_all(client):
    response = client.get("/?category=")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Ethiopia Yirgacheffe" in page
    assert "Stoneware" in page
    assert "Fresh coffee, good gear" in page


def test_categories_come_from_products_on_sale(app, client):
    with app.app_context():
        for product in db.session.scalars(select(Product).where(Product.category == "ceramics")):
            product.active = False
        db.session.commit()
    page = client.get("/").get_data(as_text=True)
    assert ">Ceramics</a>" not in page
    assert ">Coffee</a>" in page
    # The membership is sold on its own page: no category link for it either.
    assert "category=membership" not in page
    assert client.get("/?category=membership").status_code == 404


def test_membership_product_page_redirects_to_the_membership_page(client):
    response = client.get("/products/coffee-club")
    assert response.status_code == 302
    assert response.headers["Location"] == "/membership/"
    page = client.get("/products/coffee-club", follow_redirects=True).get_data(as_text=True)
    assert "Not sold in" not in page
    assert "Coffee Club" in page


def test_a_product_without_a_picture_shows_the_placeholder(app, client):
    with app.app_context():
        product = db.session.scalar(select(Product).where(Product.slug == "stoneware-mug"))
        product.image = None
        db.session.commit()
    for url in ("/", "/products/stoneware-mug"):
        response = client.get(url)
        assert response.status_code == 200
        assert "/static/img/products/placeholder.svg" in response.get_data(as_text=True)
