"""With Stripe slow, the rest of the shop carries on: no transaction is open across a call.

Every Stripe request the shop makes is held at the SDK's HTTP client until the test
releases it. Meanwhile requests that call Stripe (hosted checkout, Subscribe, the order
page's status check, a webhook that asks Stripe) sit waiting in their own threads, like
gunicorn's worker threads, and other requests that write (a sign-in link, a paid webhook,
the very order one of them is working on) must go through at once. On SQLite, a held
write lock would make them wait out the busy timeout and fail with "database is locked";
on PostgreSQL the test also asks the server that no connection sits idle in a
transaction.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import stripe
from flask import Flask
from sqlalchemy import select, text, update

from storefront import create_app, payments
from storefront.catalog import sync_catalog
from storefront.extensions import db
from storefront.models import Order, OrderStatus, Price
from tests.accounts import sign_in
from tests.conftest import TEST_CONFIG, make_app
from tests.live import emulator_config
from tests.stripe_helpers import add_to_cart, checkout_page_data, pay_intent_secret, press_pay
from tests.webhook_helpers import make_event, make_order, payment_intent, post_event

WAIT = 60  # seconds any thread may take before the test gives up on it


class StripeGate:
    """Holds every Stripe request (or those ``hold(method, url)`` picks) until
    ``release``; counts the requests waiting."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, hold: Callable[[str, str], bool] | None = None
    ) -> None:
        self.opened = threading.Event()
        self.closed = False
        self.waiting = 0
        self._cond = threading.Condition()
        real = stripe.RequestsClient.request

        def slow(client: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if self.closed and (hold is None or hold(method, url)):
                with self._cond:
                    self.waiting += 1
                    self._cond.notify_all()
                self.opened.wait(WAIT)
            return real(client, method, url, *args, **kwargs)

        monkeypatch.setattr(stripe.RequestsClient, "request", slow)

    def close(self) -> None:
        self.closed = True

    def wait_for(self, count: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.waiting >= count, timeout=WAIT), (
                f"{self.waiting} of {count} requests reached Stripe"
            )

    def release(self) -> None:
        self.opened.set()


class Worker(threading.Thread):
    """One request in its own thread (its own app context, session and connection)."""

    def __init__(self, app: Flask, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.app, self.fn = app, fn
        self.result: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        with self.app.app_context():
            try:
                self.result = self.fn()
            except BaseException as err:  # re-raised by the test
                self.error = err
            finally:
                db.session.remove()

    def outcome(self) -> Any:
        self.join(WAIT)
        assert not self.is_alive(), "request still running"
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture(params=["sqlite", "postgresql"])
def shop_app(request, tmp_path, emulator) -> Iterator[Flask]:
    """The shop against the emulator, on SQLite or on a seeded PostgreSQL database."""
    overrides = emulator_config(emulator)
    if request.param == "postgresql":
        overrides["DATABASE_URL"] = request.getfixturevalue("seeded_postgres_url")
        app = create_app(dict(TEST_CONFIG, **overrides))
    else:
        app = make_app(tmp_path, **overrides)
    with app.app_context():
        sync_catalog(echo=lambda *_: None)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def order_with_intent(app: Flask) -> tuple[str, str]:
    """A pending order with its PaymentIntent at Stripe: (public id, intent id)."""
    public_id = make_order(app)
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.public_id == public_id))
        intent = payments.create_payment_intent(order)
        order.stripe_payment_intent_id = intent.id
        db.session.commit()
        return public_id, intent.id


def no_transaction_held(app: Flask) -> None:
    """Nothing holds the database while the shop waits for Stripe."""
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            # Take the write lock ourselves, without waiting: refused if anyone holds it.
            conn = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
            finally:
                conn.close()
        else:
            with engine.connect() as conn:
                idle = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
                    )
                ).scalar()
            assert idle == 0, f"{idle} connections idle in a transaction during Stripe calls"


def test_slow_stripe_holds_up_nothing_else(shop_app, monkeypatch):
    app = shop_app
    public_id, pi_id = order_with_intent(app)
    paid_elsewhere = make_order(app, pi_id="pi_paid_meanwhile")
    with app.app_context():
        coffee = db.session.scalar(select(Price.id).where(Price.lookup_key == "colombia-huila-usd"))
    buyer, member, page = app.test_client(), app.test_client(), app.test_client()
    add_to_cart(buyer, app, "colombia-huila-usd")
    sign_in(member, "grace@example.com")

    gate = StripeGate(monkeypatch)
    gate.close()
    slow = [
        Worker(app, lambda: buyer.post("/checkout/stripe/").status_code),  # session create
        Worker(  # signed in: the Stripe Customer is made
            app,
            lambda: (
                member.post(
                    "/membership/subscribe",
                    data={"price": "coffee-club-monthly-usd", "nonce": "s" * 20},
                ).status_code
            ),
        ),
        Worker(app, lambda: page.get(f"/orders/{public_id}/status").status_code),  # retrieve
        Worker(  # a webhook that asks Stripe for the intent as it is now
            app,
            lambda: (
                post_event(
                    app.test_client(),
                    make_event(
                        "payment_intent.processing",
                        payment_intent(public_id, pi_id=pi_id, status="processing", amount=3600),
                    ),
                ).status_code
            ),
        ),
    ]
    gate.wait_for(len(slow))  # every one of them is inside a Stripe call now

    started = time.monotonic()
    no_transaction_held(app)

    def touch_the_same_order() -> None:
        db.session.execute(
            update(Order).where(Order.public_id == public_id).values(last_payment_error=None)
        )
        db.session.commit()

    fast = [
        Worker(
            app,
            lambda: (
                app.test_client()
                .post("/account/sign-in", data={"email": "ada@example.com"})
                .status_code
            ),
        ),
        Worker(
            app,
            lambda: (
                post_event(
                    app.test_client(),
                    make_event(
                        "payment_intent.succeeded",
                        payment_intent(
                            paid_elsewhere,
                            pi_id="pi_paid_meanwhile",
                            status="succeeded",
                            amount=3600,
                        ),
                    ),
                ).status_code
            ),
        ),
        Worker(
            app,
            lambda: (
                app.test_client()
                .post("/cart/add", data={"price_id": coffee, "quantity": "1"})
                .status_code
            ),
        ),
        Worker(app, touch_the_same_order),
    ]
    outcomes = [w.outcome() for w in fast]
    assert outcomes == [200, 200, 303, None]
    assert not gate.opened.is_set()  # all of it while Stripe still had not answered
    # Well inside the busy timeout a held lock would have made them wait out.
    assert time.monotonic() - started < 10
    with app.app_context():
        paid = db.session.scalar(select(Order).where(Order.public_id == paid_elsewhere))
        assert paid.status == OrderStatus.PAID

    gate.release()
    assert [w.outcome() for w in slow] == [303, 303, 200, 200]


def test_a_stripe_call_with_uncommitted_writes_is_logged(app, caplog):
    from storefront.transactions import before_stripe_call

    make_order(app)
    with app.app_context():
        order = db.session.scalar(select(Order))
        order.last_payment_error = "x"
        db.session.flush()  # written, not committed: the write lock is held
        with caplog.at_level("ERROR", logger="storefront.transactions"):
            before_stripe_call("payment intent update")
        assert "uncommitted database writes" in caplog.text
        db.session.rollback()
        db.session.scalar(select(Order))  # reads only
        before_stripe_call("payment intent retrieve")
        assert not db.session().in_transaction()  # ended before the call


def test_slow_stripe_during_a_checkout_refill_holds_up_nothing_else(stripe_app, monkeypatch):
    app = stripe_app
    buyer = app.test_client()
    add_to_cart(buyer, app, "colombia-huila-usd")
    pay_intent_secret(buyer)  # Pay: the order and its intent
    add_to_cart(buyer, app, "stoneware-mug-usd")  # the cart changes: Pay updates the intent
    page = checkout_page_data(buyer)  # the page shows the new total
    # Held: the update of the intent to the new amount, made after the order's refill.
    gate = StripeGate(
        monkeypatch, hold=lambda method, url: method == "post" and "/payment_intents/pi_" in url
    )
    gate.close()
    refill = Worker(app, lambda: press_pay(buyer, page=page).status_code)
    gate.wait_for(1)
    try:
        no_transaction_held(app)
        sign_in_link = Worker(
            app,
            lambda: (
                app.test_client()
                .post("/account/sign-in", data={"email": "ada@example.com"})
                .status_code
            ),
        )
        assert sign_in_link.outcome() == 200
        assert not gate.opened.is_set()
    finally:
        gate.release()
        refill.outcome()
