"""Controls used before their page's script has run (a slow network, a busy phone, CI).

Each test holds a script back with ``page.route``, uses the control meanwhile, then lets the
script load: what the shopper did must still take effect, never be dropped.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.live import LiveShop, wait_in_page

pytestmark = pytest.mark.browser


def hold_script(page: Page, origin: str, path: str) -> list:
    """Hold requests for ``origin`` + ``path`` (a regex); returns the held routes."""
    held: list = []
    page.route(re.compile(re.escape(origin) + path), lambda route: held.append(route))
    return held


def test_a_currency_picked_before_shop_js_runs_is_switched_to(page: Page, live_shop: LiveShop):
    """shop.js (deferred) submits the header's currency select on change; a choice made
    while it was loading once stayed in the select and was never sent."""
    held = hold_script(page, live_shop.url, r"/static/js/shop\.js")
    page.goto(live_shop.url + "/products/colombia-huila", wait_until="commit")
    wait_in_page(page, lambda: held)  # the page is drawn; its script waits
    page.get_by_label("Currency").select_option("eur")
    held[0].continue_()
    page.unroute_all()  # the next pages load it at once
    expect(page.get_by_text("Currency switched.")).to_be_visible()
    expect(page.get_by_label("Currency")).to_have_value("eur")
    # Later pages mark the new currency as the current one: nothing is sent again.
    page.reload()
    expect(page.get_by_label("Currency")).to_have_value("eur")
    expect(page.get_by_text("Currency switched.")).to_have_count(0)


def test_the_slow_loading_note_goes_once_the_payment_form_is_ready(page: Page, live_shop: LiveShop):
    """After 20 s without the card and address forms the checkout says they are taking long;
    that note once stayed (and Pay too) after they arrived."""
    from tests.browser.test_payment_element import add_to_cart, fill_card, pay

    add_to_cart(page, live_shop, "Colombia Huila")
    # The page's clock is Playwright's: the test moves it past the 20 s instead of waiting.
    page.clock.install()
    held = hold_script(page, live_shop.emulator.url, r"/static/js/frame\.js")
    page.goto(live_shop.url + "/checkout/", wait_until="commit")
    error = page.locator("#payment-error")
    # The frames ask for their script once checkout.js has mounted them, after it set its
    # 20 s timer.
    wait_in_page(page, lambda: held)
    page.clock.run_for(20_000)
    expect(error).to_contain_text("taking long to load")
    expect(page.locator("#pay-button")).to_be_disabled()
    for route in held:
        route.continue_()
    page.unroute_all()
    expect(page.locator("#pay-button")).to_be_enabled()
    expect(error).to_be_hidden()
    fill_card(page, "4242 4242 4242 4242")
    pay(page)
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
