"""The back office's pages and actions (registered on ``admin.bp``)."""

from __future__ import annotations

import csv
import io
import logging
from datetime import UTC, datetime, time, timedelta
from typing import Any

from flask import Response, abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError

from .. import outbox, payments, stripe_cli, webhooks
from ..billing import STAFF_RECIPIENT
from ..extensions import db
from ..models import Order, OrderStatus, OutboxMessage, WebhookEvent, order_id_for_number
from ..money import format_money
from . import bp, reports
from .access import audit
from .forms import STATUS_LABELS, ActionForm, OrderFilterForm, RefundForm
from .models import AuditEntry, Dispute, FraudWarning, NoticeRead
from .refunds import RefundNotAllowed, refund_order, refunded_so_far, refunds_of, remaining
from .refunds import restocked as order_restocked

log = logging.getLogger(__name__)

PER_PAGE = 50
CSV_LIMIT = 10_000


# --------------------------------------------------------------------------- dashboard


@bp.get("/")
def dashboard():
    today = datetime.now(UTC).date()
    days = reports.last_days(today, 30)
    series = reports.daily_series(days[0], days[-1])
    return render_template(
        "admin/dashboard.html",
        alerts=reports.alerts(),
        series=series,
        charts={cur: reports.chart_svg(cur, days, rows) for cur, rows in series.items()},
        status_counts=reports.status_counts(),
        declined=reports.declined_count(days[0]),
        unread=reports.unread_notice_count(),
        failed_events=len(failed_events()),
        failed_mail=outbox.failed_count(),
        days=days,
    )


# --------------------------------------------------------------------------- orders


def _filtered_orders(form: OrderFilterForm) -> Select:
    query = select(Order)
    status = form.status.data
    if status == "disputed":
        query = query.where(Order.id.in_(select(Dispute.order_id)))
    elif status in {s.value for s in OrderStatus}:
        query = query.where(Order.status == status)
    q = (form.q.data or "").strip()
    if q:
        like = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        order_id = order_id_for_number(q)
        query = query.where(
            or_(
                func.lower(Order.email) == q.lower(),
                func.lower(Order.email).like(f"%{like}%", escape="\\"),
                Order.public_id.startswith(q, autoescape=True) if len(q) >= 4 else False,
                Order.stripe_payment_intent_id == q,
                Order.stripe_checkout_session_id == q,
                Order.id == order_id if order_id is not None else False,
            )
        )
    if form.date_from.data:
        query = query.where(Order.created_at >= datetime.combine(form.date_from.data, time.min))
    if form.date_to.data:
        end = datetime.combine(form.date_to.data, time.min) + timedelta(days=1)
        query = query.where(Order.created_at < end)
    return query.order_by(Order.created_at.desc(), Order.id.desc())


@bp.get("/orders")
def orders():
    form = OrderFilterForm(request.args)
    if request.args and not form.validate():
        return render_template(
            "admin/orders.html", form=form, orders=[], page=1, pages=1, total=0
        ), 400
    query = _filtered_orders(form)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max((total + PER_PAGE - 1) // PER_PAGE, 1)
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and 1 <= int(page) <= pages else 1
    rows = db.session.scalars(query.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    disputed = _disputed_ids([o.id for o in rows])
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template(
        "admin/orders.html",
        form=form,
        orders=rows,
        disputed=disputed,
        page=page,
        pages=pages,
        total=total,
        args=args,
        status_labels=STATUS_LABELS,
    )


def _disputed_ids(order_ids: list[int]) -> set[int]:
    if not order_ids:
        return set()
    return set(db.session.scalars(select(Dispute.order_id).where(Dispute.order_id.in_(order_ids))))


@bp.get("/orders.csv")
def orders_csv():
    """The filtered list as CSV (amounts in minor units and formatted)."""
    form = OrderFilterForm(request.args)
    if request.args and not form.validate():
        abort(400, "Check the filters.")
    rows = db.session.scalars(_filtered_orders(form).limit(CSV_LIMIT)).all()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "order",
            "created_at",
            "status",
            "email",
            "currency",
            "amount_total",
            "amount_refunded",
            "total",
            "payment_intent",
            "checkout_session",
        ]
    )
    for order in rows:
        writer.writerow(
            [
                order.public_id,
                order.created_at.isoformat(timespec="seconds"),
                order.status,
                _csv_safe(order.email or ""),
                order.currency,
                order.amount_total,
                order.amount_refunded,
                format_money(order.amount_total, order.currency),
                order.stripe_payment_intent_id or "",
                order.stripe_checkout_session_id or "",
            ]
        )
    audit("export_orders", detail=f"{len(rows)} orders; filters {dict(request.args)}")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="orders-{stamp}.csv"'},
    )


def _csv_safe(value: str) -> str:
    """Keep a spreadsheet from running a cell as a formula (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _order_or_404(public_id: str) -> Order:
    order = db.session.scalar(select(Order).where(Order.public_id == public_id))
    if order is None:
        abort(404)
    return order


def timeline(order: Order) -> list[WebhookEvent]:
    """The stored webhook events about this order, oldest first.

    An event is about the order when its object is one of the order's Stripe objects, or
    its payload names the order's PaymentIntent or the order id (charges and refunds carry
    them). The public id is 128 random bits, so the text match cannot hit another order.
    """
    ids = {order.stripe_payment_intent_id, order.stripe_checkout_session_id}
    ids |= {r.stripe_refund_id for r in refunds_of(order)}
    ids |= set(
        db.session.scalars(select(Dispute.stripe_dispute_id).where(Dispute.order_id == order.id))
    )
    ids.discard(None)
    conditions = [
        WebhookEvent.object_id.in_(ids),
        WebhookEvent.payload.contains(order.public_id, autoescape=True),
    ]
    if order.stripe_payment_intent_id:
        conditions.append(
            WebhookEvent.payload.contains(order.stripe_payment_intent_id, autoescape=True)
        )
    return list(
        db.session.scalars(
            select(WebhookEvent)
            .where(or_(*conditions))
            .order_by(WebhookEvent.stripe_created, WebhookEvent.id)
        )
    )


def _order_page(order: Order, form: RefundForm, status: int = 200):
    emails = db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.order_id == order.id, OutboxMessage.to_email != STAFF_RECIPIENT)
        .order_by(OutboxMessage.id)
    ).all()
    disputes = db.session.scalars(
        select(Dispute).where(Dispute.order_id == order.id).order_by(Dispute.id)
    ).all()
    warnings = db.session.scalars(
        select(FraudWarning).where(FraudWarning.order_id == order.id).order_by(FraudWarning.id)
    ).all()
    audit_entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.order_id == order.id).order_by(AuditEntry.id.desc())
    ).all()
    customer_id = order.customer.stripe_customer_id if order.customer else None
    return render_template(
        "admin/order.html",
        order=order,
        form=form,
        refunds=refunds_of(order),
        refunded=refunded_so_far(order),
        remaining=remaining(order),
        restocked=order_restocked(order),
        disputes=disputes,
        warnings=warnings,
        events=timeline(order),
        emails=emails,
        audit_entries=audit_entries,
        links={
            "payment": payments.dashboard_url("payments", order.stripe_payment_intent_id),
            "customer": payments.dashboard_url("customers", customer_id),
        },
        dispute_link=lambda d: payments.dashboard_url("disputes", d.stripe_dispute_id),
        customer_id=customer_id,
    ), status


@bp.get("/orders/<public_id>")
def order(public_id: str):
    order = _order_or_404(public_id)
    form = RefundForm(currency=order.currency)
    left = remaining(order)
    if left:
        form.amount.data = _major(left, order.currency)
    return _order_page(order, form)


def _major(amount: int, currency: str) -> str:
    from ..money import decimals

    places = decimals(currency)
    whole, fraction = divmod(amount, 10**places)
    return f"{whole}.{fraction:0{places}d}" if places else str(whole)


@bp.post("/orders/<public_id>/refund")
def refund(public_id: str):
    order = _order_or_404(public_id)
    form = RefundForm(currency=order.currency)
    if not form.validate():
        audit("refund", outcome="refused", order=order, detail=_errors(form))
        form.renew_key_if_stale()
        return _order_page(order, form, 400)
    amount = form.minor_amount or 0
    money = format_money(amount, order.currency)
    try:
        row, created = refund_order(
            order,
            amount,
            reason=form.reason.data,
            restock=form.restock.data,
            form_key=form.form_key.data,
            staff_email=g.staff_email,
        )
    except RefundNotAllowed as err:
        form.amount.errors = [*form.amount.errors, str(err)]
        audit("refund", outcome="refused", order=order, detail=f"{money}: {err}")
        return _order_page(order, form, 400)
    except payments.PaymentError as err:
        if isinstance(err, payments.RefundInProgress):
            message, status = err.user_message, 409
        elif isinstance(err, payments.RefundRefused):
            message, status = err.user_message, 400
        elif err.kind == "unavailable":
            # No answer (a timeout, Stripe's 5xx): the refund may have been made. The page
            # keeps this form's key, so sending it again cannot refund twice.
            message, status = (
                "Stripe did not answer, so we cannot tell whether the refund was made. "
                "Send this form again: it refunds at most once.",
                502,
            )
        else:  # Stripe said no: nothing was done
            message, status = "Stripe refused the refund; nothing was refunded.", 400
        form.amount.errors = [*form.amount.errors, message]
        audit("refund", outcome="error", order=order, detail=f"{money}: {err.kind} {err.code}")
        return _order_page(order, form, status)
    detail = f"{money} ({form.reason.data})" + (", restock" if form.restock.data else "")
    if created:
        audit("refund", order=order, target=row.stripe_refund_id, detail=detail)
        flash(f"Refunded {money}. The order updates when Stripe confirms it.", "success")
    else:
        audit("refund", order=order, target=row.stripe_refund_id, detail=detail + " (repeat)")
        flash(f"That refund was already made ({money}); nothing was refunded twice.", "info")
    return redirect(url_for("admin.order", public_id=order.public_id), code=303)


def _errors(form: Any) -> str:
    return "; ".join(f"{name}: {', '.join(errs)}" for name, errs in form.errors.items())


# --------------------------------------------------------------------------- events


def failed_events() -> list[WebhookEvent]:
    """Events whose processing failed, or started and never finished (stuck)."""
    stuck_before = datetime.now(UTC) - webhooks.STALE_AFTER
    return list(
        db.session.scalars(
            select(WebhookEvent)
            .where(
                or_(
                    WebhookEvent.outcome == webhooks.FAILED,
                    WebhookEvent.outcome.is_(None)
                    & (
                        func.coalesce(WebhookEvent.attempted_at, WebhookEvent.received_at)
                        < stuck_before.replace(tzinfo=None)
                    ),
                )
            )
            .order_by(WebhookEvent.id.desc())
            .limit(200)
        )
    )


@bp.get("/events")
def events():
    return render_template("admin/events.html", events=failed_events(), form=ActionForm())


@bp.get("/events/<event_id>")
def event(event_id: str):
    row = db.session.scalar(select(WebhookEvent).where(WebhookEvent.stripe_event_id == event_id))
    if row is None:
        abort(404)
    return render_template("admin/event.html", event=row, form=ActionForm())


@bp.post("/events/<event_id>/process")
def process_event(event_id: str):
    row = db.session.scalar(select(WebhookEvent).where(WebhookEvent.stripe_event_id == event_id))
    if row is None:
        abort(404)
    if not ActionForm().validate():
        abort(400)
    try:
        outcome = stripe_cli.process_again(row, source="admin")
    except ValueError as err:
        audit("process_event", outcome="error", target=event_id, detail=str(err))
        flash(f"Could not process it again: {err}.", "error")
        return redirect(url_for("admin.event", event_id=event_id), code=303)
    error = webhooks.last_error(event_id) if outcome == webhooks.FAILED else None
    audit(
        "process_event",
        outcome="error" if error else "ok",
        target=event_id,
        detail=f"{row.type}: {outcome}" + (f" ({error})" if error else ""),
    )
    if outcome == webhooks.FAILED:
        flash(f"Processing failed again: {error}", "error")
    elif outcome == webhooks.DUPLICATE:
        flash("This event is already processed (or being processed right now).", "info")
    else:
        flash(f"Event processed: {outcome}.", "success")
    return redirect(url_for("admin.event", event_id=event_id), code=303)


@bp.post("/reconcile")
def reconcile():
    if not ActionForm().validate():
        abort(400)
    start = datetime.now(UTC) - stripe_cli.DEFAULT_WINDOW
    try:
        counts = stripe_cli.reconcile(start)
    except payments.PaymentError as err:
        audit("reconcile", outcome="error", detail=err.kind)
        flash(f"Could not list events from Stripe: {err.user_message}", "error")
        return redirect(url_for("admin.events"), code=303)
    text = stripe_cli.summary(start, counts)
    audit("reconcile", outcome="error" if counts["failed"] else "ok", detail=text)
    flash("Reconciled " + text + ".", "error" if counts["failed"] else "success")
    return redirect(url_for("admin.events"), code=303)


# --------------------------------------------------------------------------- notices


@bp.get("/notices")
def notices():
    rows = db.session.execute(
        select(OutboxMessage, NoticeRead)
        .outerjoin(NoticeRead, NoticeRead.outbox_message_id == OutboxMessage.id)
        .where(OutboxMessage.to_email == STAFF_RECIPIENT)
        .order_by(OutboxMessage.id.desc())
        .limit(200)
    ).all()
    return render_template("admin/notices.html", notices=rows, form=ActionForm())


@bp.post("/notices/<int:notice_id>/<any(read, unread):state>")
def mark_notice(notice_id: int, state: str):
    notice = db.session.get(OutboxMessage, notice_id)
    if notice is None or notice.to_email != STAFF_RECIPIENT:
        abort(404)
    if not ActionForm().validate():
        abort(400)
    existing = db.session.scalar(
        select(NoticeRead).where(NoticeRead.outbox_message_id == notice_id)
    )
    if state == "read" and existing is None:
        db.session.add(NoticeRead(outbox_message_id=notice_id, staff_email=g.staff_email))
    elif state == "unread" and existing is not None:
        db.session.delete(existing)
    try:
        db.session.commit()
    except IntegrityError:  # a second click at the same moment already did it
        db.session.rollback()
    audit(
        f"notice_{state}",
        order=db.session.get(Order, notice.order_id) if notice.order_id else None,
        target=str(notice_id),
    )
    return redirect(url_for("admin.notices"), code=303)


# --------------------------------------------------------------------------- audit log


@bp.get("/audit")
def audit_log():
    entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(500)).all()
    return render_template("admin/audit.html", entries=entries)
