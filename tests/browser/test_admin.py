"""The back office in a real browser: a staff member refunds part of a paid order.

The shop and the emulator run on free ports (``live_shop``, CSRF on); the emulator
delivers signed webhooks to the shop, as Stripe would.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from storefront import payments
from storefront.extensions import db
from storefront.models import OrderStatus, OutboxMessage
from tests.admin_helpers import pay_at_emulator
from tests.live import LiveShop, wait_until
from tests.webhook_helpers import get_order, make_order

pytestmark = pytest.mark.browser

STAFF = "staff@example.com"


def paid_order(shop: LiveShop) -> str:
    public_id = make_order(shop.app, quantity=2)  # 2 x $18.00
    pay_at_emulator(shop.app, public_id)  # the live shop's endpoint gets the events
    wait_until(lambda: shop.order_status(public_id) == OrderStatus.PAID, timeout=15)
    return public_id


def sign_in_as_staff(page: Page, shop: LiveShop) -> None:
    page.goto(shop.url + "/account/")
    page.get_by_label("Email").fill(STAFF)
    page.get_by_role("button", name="Email me a sign-in link").click()

    def sign_in_link() -> str | None:
        with shop.app.app_context():
            body = db.session.scalar(
                select(OutboxMessage.body).where(
                    OutboxMessage.kind == "sign_in", OutboxMessage.to_email == STAFF
                )
            )
        match = re.search(r"https?://\S+/account/sign-in/\S+", body or "")
        return match.group(0) if match else None

    # The link is written while the button's POST is answered: wait for it, and for the
    # signed-in page, instead of assuming the click waited for either.
    page.goto(wait_until(sign_in_link))
    page.get_by_test_id("confirm-sign-in").click()
    expect(page.get_by_text("You're signed in.")).to_be_visible()


def test_staff_refund_part_of_an_order_once_even_when_submitted_twice(
    page: Page, live_shop: LiveShop
):
    live_shop.app.config["STAFF_EMAILS"] = STAFF
    # The two presses can reach Stripe at the same moment: with the SDK's retries the
    # second gets the first one's answer; without them its page says the refund is
    # already being made (test_admin_refunds.py), not the status this test waits for.
    live_shop.with_default_stripe_retries()
    public_id = paid_order(live_shop)
    sign_in_as_staff(page, live_shop)

    page.goto(live_shop.url + "/admin/orders")
    page.get_by_label("Search").fill(public_id[:8])
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name=public_id[:8]).click()
    expect(page.get_by_test_id("admin-order-status")).to_have_text("paid")

    page.get_by_label("Amount to refund").fill("7.50")
    page.get_by_label("Reason").select_option("requested_by_customer")
    form = page.get_by_test_id("refund-form")
    fields = {
        name: form.locator(f'input[name="{name}"]').input_value()
        for name in ("csrf_token", "form_key", "amount")
    }
    # The double submit: the button pressed twice, and the same form posted once more.
    page.get_by_role("button", name="Refund", exact=True).dblclick()
    expect(page.get_by_role("status").first).to_contain_text("7.50")
    again = page.context.request.post(
        f"{live_shop.url}/admin/orders/{public_id}/refund",
        form={**fields, "reason": "requested_by_customer"},
        max_redirects=0,
    )
    assert again.status == 303

    order = get_order(live_shop.app, public_id)
    with live_shop.app.app_context():
        refunds = payments.client().v1.refunds.list(
            params={"payment_intent": order.stripe_payment_intent_id}
        )
    assert [r.amount for r in refunds.data] == [750]

    wait_until(
        lambda: live_shop.order_status(public_id) == OrderStatus.PARTIALLY_REFUNDED, timeout=15
    )
    page.reload()
    expect(page.get_by_test_id("admin-order-status")).to_have_text("partially refunded")
    expect(page.get_by_test_id("remaining")).to_have_text("$28.50")
    expect(page.get_by_test_id("refunds")).to_contain_text("$7.50")
    expect(page.get_by_test_id("emails")).to_contain_text("Your refund for order")
    with live_shop.app.app_context():
        emails = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == "refund")
        ).all()
        assert [(m.to_email, "$7.50" in m.body) for m in emails] == [("ada@example.com", True)]
    page.goto(live_shop.url + "/admin/audit")
    expect(page.get_by_test_id("audit")).to_contain_text("refund")
