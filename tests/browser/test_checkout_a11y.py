"""The checkout page for keyboard, screen-reader and phone users (issue 17): a Pay button
that stays focusable while busy, the summary collapsed on phones, and hosted Stripe Checkout
offered when JavaScript is off. Focus after a decline and after a failed 3-D Secure check is
checked where those flows are (test_payment_element.py), so each is walked once."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_payment_element import (
    add_to_cart,
    fill_card,
    open_checkout,
)
from tests.live import LiveShop, wait_in_page

pytestmark = pytest.mark.browser


def test_the_pay_button_stays_focusable_while_busy(page: Page, live_shop: LiveShop):
    add_to_cart(page, live_shop, "Colombia Huila")
    open_checkout(page, live_shop)
    fill_card(page, "4000 0000 0000 9995")
    held = []
    page.route(
        re.compile(r"/checkout/.*"),
        lambda route: held.append(route) if route.request.method == "POST" else route.continue_(),
    )
    button = page.locator("#pay-button")
    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-busy", "true")
    expect(button).to_have_attribute("aria-disabled", "true")
    expect(button).to_be_focused()  # not dropped to <body> by a disabled button
    assert not button.evaluate("b => b.disabled")
    wait_in_page(page, lambda: held)  # the first press's request, before the second press
    page.keyboard.press("Enter")  # pressed again while busy: nothing more is sent
    page.wait_for_timeout(300)
    assert len(held) == 1
    held[0].continue_()
    expect(page.locator("#payment-error")).to_be_focused()
    expect(button).to_have_attribute("aria-disabled", "false")


def test_the_summary_is_one_line_on_phones(page: Page, live_shop: LiveShop):
    add_to_cart(page, live_shop, "Colombia Huila")
    page.set_viewport_size({"width": 390, "height": 800})
    open_checkout(page, live_shop)
    toggle = page.locator(".collapsible-summary > summary")
    total = page.get_by_test_id("checkout-total").text_content()
    expect(toggle).to_have_text(f"Show order summary · {total}", use_inner_text=True)
    expect(page.get_by_test_id("order-summary")).to_be_hidden()
    pay_box = page.locator("#pay-button").bounding_box()
    toggle.click()
    expect(page.get_by_test_id("order-summary")).to_be_visible()
    expect(toggle).to_contain_text("Hide order summary")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.reload()
    expect(toggle).to_be_hidden()
    expect(page.get_by_test_id("order-summary")).to_be_visible()
    assert pay_box["width"] > 300  # the full-width primary button


def test_without_javascript_checkout_offers_stripe_checkout(browser, live_shop: LiveShop):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(live_shop.url + "/products/colombia-huila")
        page.get_by_role("button", name="Add to cart").click()
        page.goto(live_shop.url + "/checkout/")
        expect(page.get_by_text("needs JavaScript")).to_be_visible()
        expect(page.get_by_text("Loading secure payment form")).to_be_hidden()
        expect(page.locator("#pay-button")).to_be_hidden()
        page.get_by_role("button", name="Pay on Stripe's secure page").click()
        assert page.locator('meta[http-equiv="refresh" i]').count() == 0
        page.wait_for_url(re.compile(re.escape(live_shop.emulator.url) + r"/c/pay/cs_"))
    finally:
        context.close()
