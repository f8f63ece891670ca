"""axe-core on every page and state of the shop, at 1280 and 390 px wide (issue 17)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from storefront.extensions import db
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
from tests.live import LiveShop, Server, deliver_webhooks, hold_webhooks, wait_until

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
    page.get_by_role("button", name="Pay on Stripe's secure page").click()
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
    join_as_guest(page, live_shop, STAFF)
    s.check("welcome")
    sign_in_as_staff(page, live_shop)
    s.check("my account")
    # Once the webhooks have made the membership active: cancel, and the waiting state.
    wait_until(lambda: membership_active(live_shop, STAFF), timeout=30)
    page.reload()
    page.get_by_role("button", name="Cancel at period end").click()
    expect(page.get_by_text("will end at the end of the current period")).to_be_visible()
    s.check("my account, change on its way")
    s.visit("/account/payment-methods", "payment methods")
    page.get_by_role("link", name=re.compile(r"^Remove Visa")).click()
    expect(page.get_by_role("button", name="Remove card")).to_be_visible()
    s.check("remove a card")
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

    live_shop.app.config["WEBHOOK_GRACE_SECONDS"] = 3600
    hold_webhooks(live_shop)  # until the processing state has been checked
    page.frame_locator(CARD_FRAME).locator('input[name="number"]').fill("4242 4242 4242 4242")
    pay(page)
    expect(page.get_by_test_id("order-status")).to_contain_text("Processing", timeout=10_000)
    s.check("order processing")
    deliver_webhooks(live_shop)
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
    s.check("order paid")
    s.visit(f"/orders/{order_public_id(page)}", "order paid, reloaded")
    s.assert_clean()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_too_many_requests_page_has_no_axe_violations(page: Page, tmp_path, width: int):
    from tests.test_ratelimits import limited_app

    app = limited_app(tmp_path, RATE_LIMIT_CART_PER_SESSION="1 per minute")
    server = Server(app)
    try:
        page.set_viewport_size({"width": width, "height": 900})
        axe.install(page)
        for _ in range(2):
            page.goto(server.url + "/products/colombia-huila")
            page.get_by_role("button", name="Add to cart").click()
        expect(page.get_by_role("heading", name="Please wait a moment")).to_be_visible()
        axe.check(page, "429")
    finally:
        server.stop()
        with app.app_context():
            db.engine.dispose()


# --------------------------------------------------------------------------- 320 px

# The page is wider than the screen: name the outermost elements that stick out (those in
# a sideways-scrolling box of their own do not count).
WIDER_THAN_SCREEN = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) { return []; }
  const scrolls = (e) => getComputedStyle(e).overflowX !== "visible";
  const inScroller = (e) => {
    for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
      if (scrolls(p)) { return true; }
    }
    return false;
  };
  return [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > width + 0.5 && !inScroller(e))
    .slice(0, 4)
    .map((e) => e.outerHTML.slice(0, 80));
}"""


def membership_active(shop: LiveShop, email: str) -> bool:
    from sqlalchemy import select

    from storefront.models import Customer

    with shop.app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.email == email))
        return bool(customer and any(s.status == "active" for s in customer.subscriptions))


def join_as_guest(page: Page, shop: LiveShop, email: str) -> None:
    page.goto(shop.url + "/membership/")
    plan = page.get_by_test_id("plan-month")
    plan.get_by_label("Email").fill(email)
    plan.get_by_role("button", name="Subscribe").click()
    page.wait_for_url(re.compile(re.escape(shop.emulator.url) + r"/c/pay/cs_"))
    fill_hosted_page(page, button="Subscribe")
    page.wait_for_url(re.compile(re.escape(shop.url) + r"/membership/welcome"))


@pytest.mark.parametrize("signed_in", [False, True], ids=["signed-out", "signed-in-member"])
def test_no_page_is_wider_than_a_320px_screen(page: Page, live_shop: LiveShop, signed_in: bool):
    live_shop.app.config["STAFF_EMAILS"] = STAFF
    page.set_viewport_size({"width": 320, "height": 640})
    wide = {}

    def look(name: str) -> None:
        page.wait_for_load_state("load")
        found = page.evaluate(WIDER_THAN_SCREEN)
        if found:
            wide[name] = found

    def visit(path: str) -> None:
        page.goto(live_shop.url + path)
        look(path)

    if signed_in:
        join_as_guest(page, live_shop, STAFF)
        look("welcome")
        sign_in_as_staff(page, live_shop)
        look("my account")
        expect(page.get_by_test_id("member-badge")).to_have_count(1)
    for path in (
        "/",
        "/?category=coffee",
        "/products/colombia-huila",
        "/cart/",
        "/membership/",
        "/account/",
        "/account/payment-methods",
        "/contact",
        "/shipping-and-returns",
        "/privacy",
        "/terms",
        "/no-such-page",
    ):
        visit(path)
    # Phones: two products per row; a compact header whose menu opens the rest.
    page.goto(live_shop.url + "/")
    cards = page.locator(".product-card")
    first, second = cards.nth(0).bounding_box(), cards.nth(1).bounding_box()
    assert first["y"] == second["y"] and second["x"] > first["x"]
    menu = page.get_by_role("button", name="Menu")
    expect(page.get_by_role("link", name="Membership", exact=True)).to_be_hidden()
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_role("link", name="Membership", exact=True)).to_be_visible()
    look("menu open")
    page.keyboard.press("Escape")
    expect(menu).to_be_focused()
    expect(page.get_by_role("link", name="Membership", exact=True)).to_be_hidden()
    add_to_cart(page, live_shop, "Colombia Huila", "Pour-over dripper")
    visit("/cart/")
    # The cart's prices say what they are where the column headers are not shown.
    expect(page.get_by_test_id("unit-price").first).to_have_text("Each $16.50")
    expect(page.get_by_test_id("line-total").first).to_have_text("Line total $16.50")
    open_checkout(page, live_shop)
    look("checkout")
    fill_card(page, "4242 4242 4242 4242")
    pay(page)
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
    look("order paid")
    if signed_in:
        for path in ("/account/", "/admin/", "/admin/orders", "/admin/events", "/admin/audit"):
            visit(path)
    assert not wide, "wider than 320 px:\n" + "\n".join(f"{k}: {v}" for k, v in wide.items())
