"""Waiting states in a real browser: no reloads, a background check with backoff, the
change announced in a live region, and "Check again" once the page stops asking."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from storefront.models import OrderStatus
from tests.browser.test_payment_element import (
    add_to_cart,
    fill_card,
    open_checkout,
    order_public_id,
    pay,
)
from tests.live import LiveShop, deliver_webhooks, hold_webhooks, wait_until

pytestmark = pytest.mark.browser


def test_processing_page_stops_asking_then_checks_again_and_announces(
    page: Page, live_shop: LiveShop
):
    live_shop.app.config["STATUS_POLL_SECONDS"] = 3
    # Paid only by the webhook, which comes when the test says (not after a fixed delay
    # that a slow page load could outlast), and not by the order page's own overdue check.
    live_shop.app.config["WEBHOOK_GRACE_SECONDS"] = 3600
    hold_webhooks(live_shop)
    add_to_cart(page, live_shop, "House Espresso Blend")
    open_checkout(page, live_shop)
    fill_card(page, "4242 4242 4242 4242")
    pay(page)
    expect(page.get_by_test_id("order-status")).to_contain_text("Processing", timeout=10_000)
    # Its spinner turns, unless the visitor asked for less motion (as the tests' browser does).
    spinner = page.get_by_test_id("order-status").locator(".spinner")
    page.emulate_media(reduced_motion="no-preference")
    assert spinner.evaluate("e => getComputedStyle(e).animationName") == "spin"
    page.emulate_media(reduced_motion="reduce")
    assert spinner.evaluate("e => getComputedStyle(e).animationName") == "none"
    # The order page's own load event can come after its content shows: wait for it, so
    # only a later reload is counted.
    page.wait_for_load_state("load")
    loads = []
    page.on("load", lambda _: loads.append(page.url))
    assert page.locator('meta[http-equiv="refresh" i]').count() == 0
    # With JavaScript the plain link gives way to the background check.
    expect(page.get_by_role("link", name="Check again")).to_be_hidden()
    expect(page.locator("[data-wait-timeout]")).to_be_visible(timeout=10_000)
    announcer = page.get_by_test_id("wait-announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    expect(announcer).to_have_text("We'll email you when it's confirmed.")
    # The webhook arrives after the page stopped asking; "Check again" finds it paid.
    public_id = order_public_id(page)
    deliver_webhooks(live_shop)
    wait_until(lambda: live_shop.order_status(public_id) == OrderStatus.PAID, timeout=20)
    expect(page.get_by_test_id("order-status")).to_contain_text("Processing")
    again = page.get_by_role("button", name="Check again")
    again.focus()
    again.click()
    expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=10_000)
    expect(announcer).to_have_text("Payment confirmed. Thank you for your order!")
    # The button it held is gone: focus is on the new heading, not lost to <body>.
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    assert loads == []  # updated in place, never reloaded
