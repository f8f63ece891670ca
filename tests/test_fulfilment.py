"""``set_status`` and ``fulfil_order``: the state machine and exactly-once fulfilment."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from storefront.extensions import db
from storefront.fulfilment import fulfil_order, set_status
from storefront.models import Order, OrderStatus, OutboxMessage
from tests.threads import run_in_app_threads
from tests.webhook_helpers import get_order, make_order, outbox_count, stock


def load(public_id: str) -> Order:
    return db.session.scalar(select(Order).where(Order.public_id == public_id))


def test_fulfil_order_marks_paid_decrements_stock_and_writes_one_email(app):
    public_id = make_order(app, quantity=3)
    before = stock(app)
    with app.app_context():
        order = load(public_id)
        assert fulfil_order(order) is True
        assert order.status == OrderStatus.PAID
        assert order.fulfilled_at is not None
        message = db.session.scalar(select(OutboxMessage))
        assert message.kind == "order_confirmation"
        assert message.to_email == "ada@example.com"
        assert message.dedup_key == f"order-confirmation:{public_id}"
        assert "3 x Ethiopia Yirgacheffe" in message.body
        assert f"/orders/{public_id}" in message.body
        assert fulfil_order(order) is False
    assert stock(app) == before - 3
    assert outbox_count(app, public_id) == 1


def test_fulfil_order_from_eight_threads_at_once_fulfils_once(app):
    public_id = make_order(app, quantity=2)
    before = stock(app)
    barrier = threading.Barrier(8)

    def worker():
        order = load(public_id)
        barrier.wait()
        return fulfil_order(order)

    results = run_in_app_threads(app, *[worker] * 8)
    assert sorted(results) == [False] * 7 + [True]
    assert outbox_count(app, public_id) == 1
    assert stock(app) == before - 2
    assert get_order(app, public_id).status == OrderStatus.PAID


def test_fulfil_order_refuses_a_canceled_order(app):
    public_id = make_order(app)
    before = stock(app)
    with app.app_context():
        order = load(public_id)
        assert set_status(order, OrderStatus.CANCELED)
        db.session.commit()
        assert fulfil_order(order) is False
        assert order.status == OrderStatus.CANCELED
        assert order.fulfilled_at is None
    assert stock(app) == before
    assert outbox_count(app, public_id) == 0


def test_fulfil_order_pays_a_failed_order(app):
    public_id = make_order(app)
    with app.app_context():
        order = load(public_id)
        set_status(order, OrderStatus.FAILED, error="Your card was declined.")
        db.session.commit()
        assert fulfil_order(order) is True
        assert order.status == OrderStatus.PAID
        assert order.last_payment_error is None


def test_stock_never_goes_below_zero(app):
    public_id = make_order(app, quantity=2)
    with app.app_context():
        from storefront.models import Product

        db.session.execute(
            db.update(Product).where(Product.slug == "ethiopia-yirgacheffe").values(stock=1)
        )
        db.session.commit()
        assert fulfil_order(load(public_id)) is True
    assert stock(app) == 0


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([OrderStatus.PROCESSING, OrderStatus.FAILED, OrderStatus.PENDING], None),
        ([OrderStatus.CANCELED], OrderStatus.PROCESSING),
        ([OrderStatus.CANCELED], OrderStatus.PENDING),
    ],
)
def test_set_status_follows_the_state_machine(app, path, refused):
    public_id = make_order(app)
    with app.app_context():
        order = load(public_id)
        for status in path:
            assert set_status(order, status) is True
        if refused is not None:
            assert set_status(order, refused) is False
            assert order.status == path[-1]


def test_set_status_only_from_narrows_the_allowed_sources(app):
    public_id = make_order(app)
    with app.app_context():
        order = load(public_id)
        assert set_status(order, OrderStatus.FAILED, error="declined") is True
        # the state machine allows failed -> processing; only_from={pending} does not
        assert set_status(order, OrderStatus.PROCESSING, only_from={OrderStatus.PENDING}) is False
        assert order.status == OrderStatus.FAILED
        assert order.last_payment_error == "declined"
        assert set_status(order, OrderStatus.PENDING) is True
        assert set_status(order, OrderStatus.PROCESSING, only_from={OrderStatus.PENDING}) is True
        assert order.status == OrderStatus.PROCESSING
        # only_from cannot widen the state machine: canceled never moves
        assert set_status(order, OrderStatus.CANCELED) is True
        assert set_status(order, OrderStatus.PENDING, only_from={OrderStatus.CANCELED}) is False


def test_set_status_never_goes_backwards_from_paid(app):
    public_id = make_order(app)
    with app.app_context():
        order = load(public_id)
        fulfil_order(order)
        for status in (OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.FAILED):
            assert set_status(order, status, error="late") is False
        assert order.status == OrderStatus.PAID
        assert order.last_payment_error is None
        assert set_status(order, OrderStatus.PARTIALLY_REFUNDED) is True
        assert set_status(order, OrderStatus.PARTIALLY_REFUNDED) is True  # a second partial refund
        assert set_status(order, OrderStatus.REFUNDED) is True
        assert set_status(order, OrderStatus.PARTIALLY_REFUNDED) is False


def test_failed_records_the_error_and_a_new_attempt_clears_it(app):
    public_id = make_order(app)
    with app.app_context():
        order = load(public_id)
        set_status(order, OrderStatus.FAILED, error="Your card has insufficient funds.")
        assert order.last_payment_error == "Your card has insufficient funds."
        set_status(order, OrderStatus.PENDING)
        assert order.last_payment_error is None
        assert db.session.scalar(select(func.count(OutboxMessage.id))) == 0


def test_confirmation_link_uses_the_configured_base_url_outside_requests(app):
    app.config["SHOP_BASE_URL"] = "https://shop.example.com/"
    public_id = make_order(app)
    with app.app_context():  # no request, as in `flask stripe reconcile`
        assert fulfil_order(load(public_id)) is True
        body = db.session.scalar(select(OutboxMessage.body))
    assert f"Order status: https://shop.example.com/orders/{public_id}" in body


def test_set_status_from_a_stale_copy_after_another_worker_fulfilled_stays_paid(app):
    public_id = make_order(app)
    with app.app_context():
        order = load(public_id)  # handler A has loaded the order: pending
        assert order.status == OrderStatus.PENDING
        with app.app_context():  # meanwhile another worker (own session) fulfils it
            assert fulfil_order(load(public_id)) is True
        assert order.status == OrderStatus.PENDING  # A's copy is stale
        assert set_status(order, OrderStatus.FAILED, error="Your card was declined.") is False
        db.session.commit()
        assert order.status == OrderStatus.PAID  # refreshed: what holds now
    after = get_order(app, public_id)
    assert after.status == OrderStatus.PAID
    assert after.fulfilled_at is not None
    assert after.last_payment_error is None
    assert outbox_count(app, public_id) == 1


def test_set_status_from_a_stale_copy_in_another_thread_cannot_cancel_a_paid_order(app):
    public_id = make_order(app)
    loaded = threading.Event()
    fulfilled = threading.Event()

    def handler_a():
        order = load(public_id)
        loaded.set()
        assert fulfilled.wait(10)
        changed = set_status(order, OrderStatus.CANCELED)
        db.session.commit()
        return changed

    def worker_b():
        try:
            assert loaded.wait(10)
            return fulfil_order(load(public_id))
        finally:
            fulfilled.set()  # never leave handler_a waiting

    a, b = run_in_app_threads(app, handler_a, worker_b)
    results = {"a": a, "b": b}
    assert results == {"a": False, "b": True}
    after = get_order(app, public_id)
    assert after.status == OrderStatus.PAID
    assert after.fulfilled_at is not None


def test_set_status_changes_the_row_and_refreshes_the_object(app):
    public_id = make_order(app)
    with app.app_context():
        order = load(public_id)
        assert set_status(order, OrderStatus.FAILED, error="Declined.") is True
        db.session.commit()
    after = get_order(app, public_id)
    assert after.status == OrderStatus.FAILED
    assert after.last_payment_error == "Declined."
