"""Catalog pages (home grid, category filter, product page) and the ``flask catalog`` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from flask import Blueprint, abort, current_app, render_template, request
from flask.cli import AppGroup
from sqlalchemy import select

from .extensions import db
from .models import Price, Product

bp = Blueprint("catalog", __name__)

CATALOG_FILE = Path(__file__).parent / "data" / "catalog.json"
CATEGORY_NAMES = {"coffee": "Coffee", "brewing": "Brewing gear", "ceramics": "Ceramics"}


def current_currency() -> str:
    from .cart import Cart

    return Cart.load().currency


@bp.get("/")
def index():
    """The product grid, optionally filtered by ``?category=``."""
    category = request.args.get("category")
    if category is not None and category not in CATEGORY_NAMES:
        abort(404, f"There is no category called “{category}”.")
    query = select(Product).where(Product.active, Product.category.in_(CATEGORY_NAMES))
    if category:
        query = query.where(Product.category == category)
    # Categories in the shop's order (coffee first), products in catalog order within each.
    order = list(CATEGORY_NAMES)
    products = sorted(
        db.session.scalars(query.order_by(Product.id)).all(),
        key=lambda p: order.index(p.category),
    )
    currency = current_currency()
    return render_template(
        "catalog/index.html",
        products=[(p, p.price_in(currency)) for p in products],
        categories=CATEGORY_NAMES,
        category=category,
    )


@bp.get("/products/<slug>")
def product(slug: str):
    item = db.session.scalar(select(Product).where(Product.slug == slug, Product.active))
    if item is None:
        abort(404, "We could not find that product.")
    return render_template(
        "catalog/product.html",
        product=item,
        price=item.price_in(current_currency()),
        category_name=CATEGORY_NAMES.get(item.category, item.category.title()),
    )


# --------------------------------------------------------------------------- commands

catalog_cli = AppGroup("catalog", help="Load the catalog and mirror it to Stripe.")


def load_catalog_file(path: Path = CATALOG_FILE) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)["products"]


def seed_catalog(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Insert or update products (by slug) and prices (by lookup key). Idempotent."""
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
        elif any(getattr(product, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(product, k, v)
            counts["products updated"] += 1
        # Stock is only set on creation: re-seeding must not undo sales.
        db.session.flush()
        for p in entry["prices"]:
            interval = (p.get("recurring") or {}).get("interval")
            price = db.session.scalar(select(Price).where(Price.lookup_key == p["lookup_key"]))
            values = {
                "product_id": product.id,
                "currency": p["currency"].lower(),
                "unit_amount": int(p["unit_amount"]),
                "recurring_interval": interval,
                "active": p.get("active", True),
            }
            if price is None:
                db.session.add(Price(lookup_key=p["lookup_key"], **values))
                counts["prices created"] += 1
            elif any(getattr(price, k) != v for k, v in values.items()):
                if price.unit_amount != values["unit_amount"]:
                    price.stripe_price_id = None  # Stripe prices are immutable: sync anew
                for k, v in values.items():
                    setattr(price, k, v)
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
    counts = seed_catalog(load_catalog_file(path or CATALOG_FILE))
    click.echo("Catalog seeded: " + ", ".join(f"{n} {what}" for what, n in counts.items()))


def sync_catalog(echo=click.echo) -> int:
    """Mirror every product and price to the configured Stripe account; returns the count."""
    from . import payments

    base = current_app.config.get("STRIPE_API_BASE") or "Stripe"
    echo(f"Syncing catalog to {base} ...")
    products = db.session.scalars(select(Product).order_by(Product.id)).all()
    totals = {"created": 0, "updated": 0, "unchanged": 0}
    for product in products:
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
