"""axe-core on every page and state of the shop, at 1280 and 390 px wide (issue 17)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser import axe
from tests.browser.test_admin import STAFF, paid_order, sign_in_as_staff
from tests.browser.test_hosted_checkout import fill_hosted_page
from tests.browser.test_payment_element import (
    CARD_FRAME,
    CHALLENGE_FRAME,
    add_to_cart,
    fill_card,
    open_checkout,
    order_public_id,
    orders,
    pay,
)
from tests.browser.test_waiting import late_webhooks
from tests.live import LiveShop

pytestmark = pytest.mark.browser

WIDTHS = [1280, 390]


class Survey:
    """Visits pages and collects every axe violation, so one run lists them all."""

    def __init__(self, page: Page, shop: LiveShop) -> None:
        self.page, self.shop, self.found = page, shop, {}

    def visit(self, path: str, name: str | None = None) -> None:
        self.page.goto(self.shop.url + path)
        self.check(name or path)

    def check(self, name: str) -> None:
        result = axe.violations(self.page)
        if result:
            self.found[name] = result

    def assert_clean(self) -> None:
        assert not self.found, "axe violations:\n" + axe.describe(self.found)


@pytest.mark.parametrize("width", WIDTHS)
def test_shop_pages_have_no_axe_violations(page: Page, live_shop: LiveShop, width: int):
    page.set_viewport_size({"width": width, "height": 900})
    axe.install(page)
    s = Survey(page, live_shop)
    s.visit("/", "catalog")
    s.visit("/?category=coffee", "category")
    s.visit("/products/colombia-huila", "product")
    s.visit("/cart/", "empty cart")
    s.visit("/membership/", "membership")
    s.visit("/account/", "sign-in")
    s.visit("/contact", "contact")
    s.visit("/shipping-and-returns", "shipping and returns")
    s.visit("/no-such-page", "404")
    s.visit("/?category=nope", "404 category")
    s.visit("/?category=%00", "400")
    page.goto(live_shop.url + "/products/colombia-huila")
    page.get_by_role("button", name="Add to cart").click()
    s.visit("/cart/", "cart")
    page.get_by_role("button", name="Pay with Stripe Checkout").click()
    page.wait_for_url(re.compile(re.escape(live_shop.emulator.url) + r"/c/pay/cs_"))
    s.check("hosted page stand-in")
    s.assert_clean()


@pytest.mark.parametrize("width", WIDTHS)
def test_account_and_back_office_have_no_axe_violations(
    page: Page, live_shop: LiveShop, width: int
):
    live_shop.app.config["STAFF_EMAILS"] = STAFF
    public_id = paid_order(live_shop)
    page.set_viewport_size({"width": width, "height": 900})
    axe.install(page)
    s = Survey(page, live_shop)
    # A guest joins the Coffee Club through the hosted page: the welcome page.
    page.goto(live_shop.url + "/membership/")
    plan = page.get_by_test_id("plan-month")
    plan.get_by_label("Email").fill(STAFF)
    plan.get_by_role("button", name="Subscribe").click()
    page.wait_for_url(re.compile(re.escape(live_shop.emulator.url) + r"/c/pay/cs_"))
    fill_hosted_page(page, button="Subscribe")
    page.wait_for_url(re.compile(re.escape(live_shop.url) + r"/membership/welcome"))
    s.check("welcome")
    sign_in_as_staff(page, live_shop)
    s.check("my account")
    cancel = page.get_by_role("button", name="Cancel at period end")
    if cancel.count():
        cancel.click()
        s.check("my account, change on its way")
    s.visit(f"/orders/{public_id}", "order paid")
    for path in (
        "/admin/",
        "/admin/orders",
        f"/admin/orders/{public_id}",
        "/admin/events",
        "/admin/notices",
        "/admin/audit",
    ):
        s.visit(path)
    s.assert_clean()


@pytest.mark.parametrize("width", WIDTHS)
def test_payment_states_have_no_axe_violations(page: Page, live_shop: LiveShop, width: int):
    page.set_viewport_size({"width": width, "height": 900})
    axe.install(page)
    s = Survey(page, live_shop)
    add_to_cart(page, live_shop, "Colombia Huila")
    open_checkout(page, live_shop)
    s.check("checkout")
    fill_card(page, "4000 0000 0000 9995")
    pay(page)
    expect(page.locator("#payment-error")).to_contain_text("insufficient funds")
    s.check("checkout after a decline")
    [order] = orders(live_shop)
    s.visit(f"/orders/{order.public_id}", "order after a decline")

    open_checkout(page, live_shop)
    fill_card(page, "4000 0025 0000 3155")
    pay(page)
    challenge = page.frame_locator(CHALLENGE_FRAME)
    expect(challenge.get_by_role("button", name="Fail authentication")).to_be_visible()
    s.check("3-D Secure challenge")
    challenge.get_by_role("button", name="Fail authentication").click()
    expect(page.locator("#payment-error")).to_contain_text("authenticate")
    s.check("checkout after a failed 3-D Secure")

    late_webhooks(live_shop, 4000)
    page.frame_locator(CARD_FRAME).locator('input[name="number"]').fill("4242 4242 4242 4242")
    pay(page)
    expect(page.get_by_test_id("order-status")).to_contain_text("Processing", timeout=10_000)
    s.check("order processing")
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
    s.check("order paid")
    s.visit(f"/orders/{order_public_id(page)}", "order paid, reloaded")
    s.assert_clean()
