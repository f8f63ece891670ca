"""Order numbers people can read out, and one date format in the shop's time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from storefront import create_app
from storefront.extensions import db
from storefront.models import Order, OrderItem, Price
from tests.accounts import sign_in


def make_order(app, email="ada@example.com", when=datetime(2026, 12, 1, 23, 30, tzinfo=UTC)):
    with app.app_context():
        price = db.session.scalar(select(Price).where(Price.lookup_key == "colombia-huila-usd"))
        order = Order(
            email=email,
            currency="usd",
            amount_total=price.unit_amount,
            status="paid",
            created_at=when,
            items=[
                OrderItem(
                    product_id=price.product_id,
                    price_id=price.id,
                    product_name="Colombia Huila",
                    price_lookup_key=price.lookup_key,
                    unit_amount=price.unit_amount,
                    quantity=1,
                )
            ],
        )
        db.session.add(order)
        db.session.commit()
        return order.public_id, order.id


def test_order_pages_show_a_readable_number_and_keep_the_unguessable_address(app, client):
    public_id, row_id = make_order(app)
    number = f"FW-{10000 + row_id}"
    page = client.get(f"/orders/{public_id}").get_data(as_text=True)
    assert f"<title>Order {number} ·" in page
    assert f'data-testid="order-number">{number}<' in page
    assert public_id[:8] not in page.replace(f"/orders/{public_id}", "")
    assert client.get(f"/orders/{number}").status_code == 404  # not an address
    sign_in(client, "ada@example.com")
    account = client.get("/account/").get_data(as_text=True)
    assert f'href="/orders/{public_id}">Order {number}</a>' in account


def test_dates_show_in_the_shops_time_zone_in_one_format(tmp_path):
    from tests.conftest import make_app

    app = make_app(tmp_path, SHOP_TIMEZONE="Europe/Berlin")
    public_id, _ = make_order(app)
    page = app.test_client().get(f"/orders/{public_id}").get_data(as_text=True)
    # 23:30 UTC on 1 December is 00:30 on 2 December in Berlin.
    assert "Placed 2 Dec 2026, 00:30 CET" in page
    (tmp_path / "utc").mkdir()
    utc = make_app(tmp_path / "utc")
    public_id, _ = make_order(utc)
    assert "Placed 1 Dec 2026, 23:30 UTC" in utc.test_client().get(f"/orders/{public_id}").get_data(
        as_text=True
    )


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc/passwd"])
def test_an_unknown_time_zone_refuses_to_start(zone):
    with pytest.raises(SystemExit, match="SHOP_TIMEZONE must be a time zone name"):
        create_app({"TESTING": True, "SHOP_TIMEZONE": zone})
