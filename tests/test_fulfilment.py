"""``set_status`` and ``fulfil_order``: the state machine and exactly-once fulfilment."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, update

from storefront.extensions import db
from storefront.fulfilment import fulfil_order, set_status
from storefront.mail import STAFF_RECIPIENT
from storefront.models import Order, OrderStatus, OutboxMessage, Product
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


def set_stock(app, slug: str, value: int) -> None:
    with app.app_context():
        db.session.execute(update(Product).where(Product.slug == slug).values(stock=value))
        db.session.commit()


def staff_notices(app) -> list[OutboxMessage]:
    with app.app_context():
        notices = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.to_email == STAFF_RECIPIENT)
        ).all()
        for notice in notices:
            db.session.expunge(notice)
        return list(notices)


def test_an_item_stock_cannot_cover_is_not_taken_and_the_order_needs_attention(app, caplog):
    public_id = make_order(app, quantity=2)
    set_stock(app, "ethiopia-yirgacheffe", 1)
    with caplog.at_level("WARNING", logger="storefront.fulfilment"), app.app_context():
        assert fulfil_order(load(public_id)) is True  # paid: the money is there
    assert stock(app) == 1  # nothing taken: WHERE stock >= quantity
    order = get_order(app, public_id)
    assert order.status == OrderStatus.PAID and order.needs_attention is True
    assert "stock does not cover" in caplog.text and public_id in caplog.text
    (notice,) = staff_notices(app)
    assert notice.kind == "staff_notice" and notice.order_id == order.id
    assert "2 x Ethiopia Yirgacheffe (in stock: 1)" in notice.body
    assert outbox_count(app, public_id) == 2  # the customer's confirmation, and the notice


def test_two_buyers_for_the_last_grinders(app):
    # Both put the last 8 in their carts while 8 were left, and both paid.
    first = make_order(app, lookup_key="hand-burr-grinder-usd", quantity=8)
    second = make_order(app, lookup_key="hand-burr-grinder-usd", quantity=8)
    set_stock(app, "hand-burr-grinder", 8)
    barrier = threading.Barrier(2)

    def pay(public_id):
        def worker():
            order = load(public_id)
            barrier.wait()
            return fulfil_order(order)

        return worker

    assert run_in_app_threads(app, pay(first), pay(second)) == [True, True]
    assert stock(app, "hand-burr-grinder") == 0
    flagged = [p for p in (first, second) if get_order(app, p).needs_attention]
    assert len(flagged) == 1  # exactly one got the grinders; the other waits for a person
    (notice,) = staff_notices(app)
    assert flagged[0] in notice.body and "8 x Hand burr grinder (in stock: 0)" in notice.body


def test_untracked_stock_is_never_short(app):
    public_id = make_order(app, quantity=50)
    with app.app_context():
        db.session.execute(
            update(Product).where(Product.slug == "ethiopia-yirgacheffe").values(stock=None)
        )
        db.session.commit()
        assert fulfil_order(load(public_id)) is True
    assert get_order(app, public_id).needs_attention is False
    assert staff_notices(app) == []


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
