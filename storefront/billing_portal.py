"""Stripe's Customer Portal for members: its configuration (made by ``flask catalog
sync-stripe``) and the sessions "Manage billing" on My account opens.

The portal lets a member update their card (which also pays a renewal that failed), see
their invoices, cancel at the period end and switch between the membership's prices
(monthly <-> yearly, prorated as Stripe does by default). Nothing here changes our records:
what the member does in the portal reaches us as webhooks (``billing``), like everything
else about subscriptions.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from sqlalchemy import select

from . import payments
from .extensions import db
from .links import external_url
from .models import PORTAL_CONFIGURATION, Product, StripeSetting

log = logging.getLogger(__name__)

MEMBERSHIP_SLUG = "coffee-club"


def stored_configuration_id() -> str | None:
    return db.session.scalar(
        select(StripeSetting.stripe_id).where(StripeSetting.name == PORTAL_CONFIGURATION)
    )


def _store_configuration_id(stripe_id: str) -> None:
    row = db.session.scalar(select(StripeSetting).where(StripeSetting.name == PORTAL_CONFIGURATION))
    if row is None:
        db.session.add(StripeSetting(name=PORTAL_CONFIGURATION, stripe_id=stripe_id))
    else:
        row.stripe_id = stripe_id
    db.session.commit()


def configuration_params() -> dict[str, Any]:
    """What the portal offers, from our catalog: the membership's synced, active prices to
    switch between (needs the catalog synced first)."""
    product = db.session.scalar(select(Product).where(Product.slug == MEMBERSHIP_SLUG))
    prices = [
        p.stripe_price_id
        for p in (product.prices if product is not None else [])
        if p.active and p.is_recurring and p.stripe_price_id
    ]
    features: dict[str, Any] = {
        "payment_method_update": {"enabled": True},
        "invoice_history": {"enabled": True},
        # Stripe's portal default, and what "Cancel at period end" on My account does.
        "subscription_cancel": {"enabled": True, "mode": "at_period_end"},
    }
    if product is not None and product.stripe_product_id and len(prices) > 1:
        features["subscription_update"] = {
            "enabled": True,
            "default_allowed_updates": ["price"],
            "products": [{"product": product.stripe_product_id, "prices": prices}],
            # The Subscriptions API's default (the portal's own default is none).
            "proration_behavior": "create_prorations",
        }
    else:
        features["subscription_update"] = {"enabled": False}
    params: dict[str, Any] = {
        "business_profile": {
            "headline": f"{current_app.config['SHOP_NAME']}: your Coffee Club membership"
        },
        "features": features,
        "metadata": dict(payments.PORTAL_METADATA),
    }
    return_url = external_url("account.show")
    if return_url.startswith(("http://", "https://")):
        params["default_return_url"] = return_url
    return params


def _matches(config: Any, params: dict[str, Any]) -> bool:
    """Whether Stripe's configuration already says what ``params`` ask for."""
    features = config.features
    wanted = params["features"]
    update = wanted["subscription_update"]
    have_update = features.subscription_update
    return (
        config.active
        and config.business_profile.headline == params["business_profile"]["headline"]
        and config.default_return_url == params.get("default_return_url")
        and features.payment_method_update.enabled
        and features.invoice_history.enabled
        and features.subscription_cancel.enabled
        and features.subscription_cancel.mode == "at_period_end"
        and have_update.enabled == update["enabled"]
        and (
            not update["enabled"]
            or (
                [(p.product, list(p.prices)) for p in have_update.products or []]
                == [(p["product"], p["prices"]) for p in update["products"]]
                and have_update.proration_behavior == update["proration_behavior"]
                and list(have_update.default_allowed_updates) == ["price"]
            )
        )
    )


def sync_configuration() -> tuple[str, str]:
    """Create or update our portal configuration; returns (id, "created" | "updated" |
    "unchanged"). Safe to repeat. Commits (never across a Stripe call)."""
    params = configuration_params()
    stored = stored_configuration_id()
    db.session.commit()  # no transaction open across the Stripe calls
    config = payments.retrieve_portal_configuration(stored) if stored else None
    if config is None or not config.active:
        config = payments.find_portal_configuration()
    if config is None:
        config = payments.create_portal_configuration(params)
        action = "created"
    elif _matches(config, params):
        action = "unchanged"
    else:
        config = payments.update_portal_configuration(config.id, params)
        action = "updated"
    if config.id != stored:
        _store_configuration_id(config.id)
    log.info("portal configuration %s %s", config.id, action)
    return config.id, action


def open_session(stripe_customer_id: str, key: str) -> str:
    """A portal session for the customer (returning to My account); returns its url.

    Raises ``PaymentError`` when Stripe cannot make one (nor is the portal set up:
    ``flask catalog sync-stripe`` makes its configuration)."""
    configuration_id = stored_configuration_id()
    db.session.commit()  # no transaction open across the Stripe call
    if not configuration_id:
        log.error("no portal configuration: run `flask catalog sync-stripe`")
        raise payments.PaymentError(
            "Billing management is not available just now. Please try again later.",
            kind="not_configured",
        )
    session = payments.create_portal_session(
        stripe_customer_id, external_url("account.show"), configuration_id, key
    )
    return session.url
