"""Catalog pages (home grid, category filter, product page) and the ``flask catalog`` commands."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask.cli import AppGroup
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from . import catalog_cache
from .extensions import db
from .models import Price, Product, assign_changed

bp = Blueprint("catalog", __name__)

CATALOG_FILE = Path(__file__).parent / "data" / "catalog.json"
# Labels and order for the shop's own categories; any other category still shows,
# labelled from its slug and listed after these.
CATEGORY_NAMES = {"coffee": "Coffee", "brewing": "Brewing gear", "ceramics": "Ceramics"}


def current_currency() -> str:
    from .cart import Cart

    return Cart.load().currency


def category_label(slug: str) -> str:
    """ "brewing" -> "Brewing gear"; an unlisted "loose-leaf" -> "Loose Leaf"."""
    return CATEGORY_NAMES.get(slug) or slug.replace("-", " ").replace("_", " ").title()


def recurring_only(product: Product) -> bool:
    """A membership-style product: it has prices and every one is recurring."""
    return bool(product.prices) and all(p.is_recurring for p in product.prices)


def grid_products() -> list[Product]:
    """Active products that are not sold by subscription, in catalog order."""
    products = db.session.scalars(
        select(Product)
        .where(Product.active)
        .options(selectinload(Product.prices))
        .order_by(Product.id)
    )
    return [p for p in products if not recurring_only(p)]


def categories_of(products: list[Product]) -> dict[str, str]:
    """Slug -> label for the categories these products are in, the shop's own first."""
    slugs = {p.category for p in products}
    order = [c for c in CATEGORY_NAMES if c in slugs] + sorted(slugs - set(CATEGORY_NAMES))
    return {slug: category_label(slug) for slug in order}


@dataclass(frozen=True)
class PriceShown:
    id: int
    unit_amount: int
    currency: str


@dataclass(frozen=True)
class ProductPage:
    """What the product page shows, copied from the database (cached per currency)."""

    slug: str
    name: str
    description: str
    picture: str
    category: str
    category_name: str
    stock: int | None
    in_stock: bool
    membership: bool
    price: PriceShown | None


def _categories() -> dict[str, str]:
    return categories_of(grid_products())


def _grid(currency: str, category: str | None) -> Markup:
    """The product grid's HTML for one currency and category (cached: no per-visitor data;
    the page wraps it in one add-to-cart form with the visitor's CSRF token)."""
    products = grid_products()
    if category:
        products = [p for p in products if p.category == category]
    # Categories in the shop's order (coffee first), products in catalog order within each.
    if not products:
        return Markup("")
    order = list(categories_of(products))
    products.sort(key=lambda p: order.index(p.category))
    return Markup(
        render_template(
            "catalog/_grid.html",
            products=[(p, p.price_in(currency)) for p in products],
            currency=currency,
        )
    )


@bp.get("/")
def index():
    """The product grid, optionally filtered by ``?category=`` (empty means all)."""
    category = request.args.get("category") or None
    categories = catalog_cache.cached(("categories",), _categories)
    if category is not None and category not in categories:
        abort(404, f"There is no category called “{category}”.")
    currency = current_currency()
    grid = catalog_cache.cached(("grid", currency, category), lambda: _grid(currency, category))
    return render_template(
        "catalog/index.html", grid=grid, categories=categories, category=category
    )


def _product_page(slug: str, currency: str) -> ProductPage | None:
    item = db.session.scalar(select(Product).where(Product.slug == slug, Product.active))
    if item is None:
        return None
    price = item.price_in(currency)
    return ProductPage(
        slug=item.slug,
        name=item.name,
        description=item.description,
        picture=item.picture,
        category=item.category,
        category_name=category_label(item.category),
        stock=item.stock,
        in_stock=item.in_stock,
        membership=recurring_only(item),
        price=PriceShown(price.id, price.unit_amount, price.currency) if price else None,
    )


@bp.get("/products/<slug>")
def product(slug: str):
    currency = current_currency()
    # Only existing products are kept (a None is not), so the cache stays bounded.
    item = catalog_cache.cached(("product", slug, currency), lambda: _product_page(slug, currency))
    if item is None:
        abort(404, "We could not find that product.")
    if item.membership:
        # Memberships are sold by subscription on their own page, never through the cart.
        return redirect(url_for("membership.index"), code=302)
    return render_template(
        "catalog/product.html", product=item, price=item.price, category_name=item.category_name
    )


# --------------------------------------------------------------------------- commands

catalog_cli = AppGroup("catalog", help="Load the catalog and mirror it to Stripe.")


RECURRING_INTERVALS = (None, "day", "week", "month", "year")
_CURRENCY_RE = re.compile(r"[a-z]{3}")


def _read_catalog_file(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as err:
        raise click.ClickException(f"Cannot read catalog file {path}: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("products"), list):
        raise click.ClickException(f'Catalog file {path} has no "products" list.')
    return data


def load_catalog_file(path: Path = CATALOG_FILE) -> list[dict[str, Any]]:
    return _read_catalog_file(path)["products"]


def load_shipping_rates(path: Path = CATALOG_FILE) -> list[Any]:
    """The file's ``shipping_rates`` list (none: the shop charges no shipping)."""
    rates = _read_catalog_file(path).get("shipping_rates", [])
    if not isinstance(rates, list):
        raise click.ClickException(f'Catalog file {path}: "shipping_rates" must be a list.')
    return rates


def _is_count(value: Any) -> bool:
    """A non-negative int; JSON 18.5 or true is not one (int() would quietly accept them)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_entry(number: int, entry: Any) -> None:
    """Raise a ``ClickException`` naming the entry if it is not a valid catalog product."""
    if not isinstance(entry, dict):
        raise click.ClickException(f"Catalog product #{number} is not an object.")
    slug = entry.get("slug")
    where = f"Catalog product #{number} ({slug!r})"
    for name in ("slug", "name", "category"):
        if not isinstance(entry.get(name), str) or not entry[name].strip():
            raise click.ClickException(f"{where}: {name} must be a non-empty string.")
    if not isinstance(entry.get("active", True), bool):
        raise click.ClickException(f"{where}: active must be true or false.")
    if entry.get("stock") is not None and not _is_count(entry["stock"]):
        raise click.ClickException(f"{where}: stock must be a whole number >= 0 or null.")
    if not isinstance(entry.get("prices"), list):
        raise click.ClickException(f"{where}: prices must be a list.")
    for p in entry["prices"]:
        if not isinstance(p, dict):
            raise click.ClickException(f"{where}: every price must be an object.")
        key = p.get("lookup_key")
        at = f"{where}, price {key!r}"
        if not isinstance(key, str) or not key.strip():
            raise click.ClickException(f"{at}: lookup_key must be a non-empty string.")
        if not _is_count(p.get("unit_amount")):
            raise click.ClickException(
                f"{at}: unit_amount must be a whole number of minor units >= 0, "
                f"not {p.get('unit_amount')!r}."
            )
        currency = p.get("currency")
        if not isinstance(currency, str) or not _CURRENCY_RE.fullmatch(currency):
            raise click.ClickException(
                f"{at}: currency must be a three-letter lowercase code, not {currency!r}."
            )
        recurring = p.get("recurring")
        if recurring is not None and not isinstance(recurring, dict):
            raise click.ClickException(f"{at}: recurring must be an object or null.")
        interval = (recurring or {}).get("interval")
        if interval not in RECURRING_INTERVALS:
            raise click.ClickException(
                f"{at}: recurring interval must be day, week, month or year, not {interval!r}."
            )
        if not isinstance(p.get("active", True), bool):
            raise click.ClickException(f"{at}: active must be true or false.")


def seed_catalog(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Insert or update products (by slug) and prices (by lookup key). Idempotent.

    Every entry is checked first, so a bad file changes nothing.
    """
    for number, entry in enumerate(entries, start=1):
        _check_entry(number, entry)
    counts = {
        "products created": 0,
        "products updated": 0,
        "prices created": 0,
        "prices updated": 0,
    }
    for entry in entries:
        product = db.session.scalar(select(Product).where(Product.slug == entry["slug"]))
        fields = {
            "name": entry["name"],
            "description": entry.get("description", ""),
            "image": entry.get("image"),
            "category": entry["category"],
            "active": entry.get("active", True),
        }
        if product is None:
            product = Product(slug=entry["slug"], stock=entry.get("stock"), **fields)
            db.session.add(product)
            counts["products created"] += 1
        elif assign_changed(product, fields):
            counts["products updated"] += 1
        # Stock is only set on creation: re-seeding must not undo sales.
        db.session.flush()
        for p in entry["prices"]:
            interval = (p.get("recurring") or {}).get("interval")
            price = db.session.scalar(select(Price).where(Price.lookup_key == p["lookup_key"]))
            values = {
                "product_id": product.id,
                "currency": p["currency"],
                "unit_amount": p["unit_amount"],
                "recurring_interval": interval,
                "active": p.get("active", True),
            }
            if price is None:
                db.session.add(Price(lookup_key=p["lookup_key"], **values))
                counts["prices created"] += 1
            else:
                if price.unit_amount != values["unit_amount"]:
                    price.stripe_price_id = None  # Stripe prices are immutable: sync anew
                if assign_changed(price, values):
                    counts["prices updated"] += 1
    db.session.commit()
    return counts


@catalog_cli.command("seed")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Catalog JSON file (default: storefront/data/catalog.json).",
)
def seed_command(path: Path | None) -> None:
    """Load the catalog file into the database (safe to run again)."""
    from .shipping import seed_shipping_rates

    counts = seed_catalog(load_catalog_file(path or CATALOG_FILE))
    counts.update(seed_shipping_rates(load_shipping_rates(path or CATALOG_FILE)))
    click.echo("Catalog seeded: " + ", ".join(f"{n} {what}" for what, n in counts.items()))


def sync_catalog(echo=click.echo) -> int:
    """Mirror every product and price to the configured Stripe account; returns the count."""
    from . import payments

    base = current_app.config.get("STRIPE_API_BASE") or "Stripe"
    echo(f"Syncing catalog to {base} ...")
    products = db.session.scalars(select(Product).order_by(Product.id)).all()
    totals = {"created": 0, "updated": 0, "unchanged": 0}
    for product in products:
        # The Stripe ids it notes stay in memory until the commit after its calls: no
        # autoflush (a lazy load) may write them earlier and hold the write lock while
        # Stripe answers.
        with db.session.no_autoflush:
            stripe_id, results = payments.sync_product(product)
        db.session.commit()
        for _key, action in results:
            totals[action] += 1
        summary = ", ".join(f"{key} {action}" for key, action in results)
        echo(f"  {product.slug} -> {stripe_id}: {summary}")
    changes = totals["created"] + totals["updated"]
    # Say plainly whether anything changed: a second run should read "no changes".
    outcome = (
        f"{totals['created']} prices created, {totals['updated']} updated, "
        f"{totals['unchanged']} unchanged"
        if changes
        else f"no changes, all {totals['unchanged']} prices already up to date"
    )
    echo(f"Synced {len(products)} products: {outcome}.")
    # Members manage their billing in Stripe's Customer Portal, set up from the catalog.
    from .billing_portal import sync_configuration

    config_id, action = sync_configuration()
    echo(f"Customer Portal configuration {config_id}: {action}.")
    return len(products)


@catalog_cli.command("sync-stripe")
def sync_stripe_command() -> None:
    """Create or update the catalog's Products and Prices in the configured Stripe account."""
    from . import payments

    if not payments.is_configured():
        raise click.ClickException("STRIPE_SECRET_KEY is not set; nothing to sync.")
    try:
        sync_catalog()
    except payments.PaymentError as err:
        raise click.ClickException(err.user_message) from err
