"""An order paid with 4242 in the browser shows Paid after the webhook and is confirmed by
exactly one e-mail, really sent over SMTP (an aiosmtpd server started by the test) by the
outbox dispatcher."""

from __future__ import annotations

import re
import threading

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from storefront import outbox
from storefront.extensions import db
from storefront.models import Order
from tests.browser.test_payment_element import (
    add_to_cart,
    fill_card,
    open_checkout,
    order_public_id,
    pay,
)
from tests.live import LiveShop, wait_until
from tests.smtp import SMTPServer

pytestmark = pytest.mark.browser


class Dispatcher:
    """`flask outbox send --loop` in a thread: it sends whatever becomes due."""

    def __init__(self, shop: LiveShop) -> None:
        self.shop = shop
        self.stopped = threading.Event()
        self.rounds = 0  # finished rounds, so a test can wait for more of them
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stopped.is_set():
            with self.shop.app.app_context():
                outbox.send_due(stop=self.stopped.is_set)
            self.rounds += 1
            self.stopped.wait(0.2)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)


def test_pay_with_4242_shows_paid_after_the_webhook_and_sends_exactly_one_confirmation(
    page: Page, live_shop: LiveShop, smtp_server: SMTPServer
):
    live_shop.app.config.update(smtp_server.config(), MAIL_FROM="orders@fernwood.test")
    dispatcher = Dispatcher(live_shop)
    try:
        add_to_cart(page, live_shop, "Ethiopia Yirgacheffe", "Stoneware mug")
        open_checkout(page, live_shop)
        expect(page.get_by_test_id("order-summary")).to_contain_text("Ethiopia Yirgacheffe")
        fill_card(page, "4242 4242 4242 4242", email="grace@example.com")
        pay(page)
        expect(page.get_by_test_id("order-status")).to_have_text("Paid", timeout=20_000)
        expect(page.get_by_text("A receipt is on its way to")).to_be_visible()
        total = page.get_by_test_id("order-total").inner_text()
        public_id = order_public_id(page)
        wait_until(lambda: smtp_server.received, timeout=20)
        # The order page again (it may try to fulfil too) and a few more dispatcher rounds
        # (counted, not timed: a busy machine makes rounds slow):
        page.reload()
        expect(page.get_by_test_id("order-status")).to_have_text("Paid")
        after = dispatcher.rounds
        wait_until(lambda: dispatcher.rounds >= after + 3, timeout=30)
    finally:
        dispatcher.stop()
    # The waiting state swaps only the page's main content in, so the header's count is
    # read on the next page.
    page.goto(live_shop.url + "/cart/")
    expect(page.get_by_test_id("cart-count")).to_have_text("0")

    [message] = smtp_server.received
    assert smtp_server.envelopes == [("orders@fernwood.test", ["grace@example.com"])]
    assert re.fullmatch(r"Your order FW-1\d{4} is confirmed", message["Subject"])
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for part in (plain, html):
        assert "Ethiopia Yirgacheffe" in part and "Stoneware mug" in part
        assert total in part
        assert f"{live_shop.url}/orders/{public_id}" in part
    assert f"Total: {total}" in plain
    assert live_shop.order_status(public_id) == "paid"
    # The shipping address, as the order stores it from the checkout's Address Element
    # (fill_card types one once the checkout page collects it; tests/test_outbox.py checks
    # an order with an address over SMTP regardless).
    with live_shop.app.app_context():
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        address = order.address_lines
    if address:
        assert "\n".join(address) in plain.replace("\r\n", "\n")
        assert "<br>".join(address) in html
