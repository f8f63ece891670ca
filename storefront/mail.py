"""The shop's e-mails: written to the outbox from templates, built into MIME messages.

Every message is an ``OutboxMessage`` row written in the same transaction as the change
it reports (a paid order, a sign-in request, a failed renewal), so a message is never
lost and never sent for something that did not happen. ``storefront/outbox.py`` sends
them. Each kind has a Jinja pair under ``templates/email/``: ``<kind>.txt`` (the plain
text part) and ``<kind>.html`` (inline styles, no external images: mail clients block
them and strip ``<style>``). Both are rendered when the message is written, so the mail
says what was true then, and staff see the same text in the outbox.

This module imports only the models and Flask, so anything may write mail through it.
"""

from __future__ import annotations

import re
from datetime import UTC
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses, make_msgid
from typing import Any

from flask import current_app
from markupsafe import Markup, escape

from .links import external_url
from .models import Order, OutboxMessage
from .money import format_money

# The recipient of staff notices; the dispatcher sends them to STAFF_EMAILS.
STAFF_RECIPIENT = "staff"

# Kinds with their own templates; any other kind gets the generic notice layout.
TEMPLATED_KINDS = frozenset(
    {
        "order_confirmation",
        "sign_in",
        "membership_welcome",
        "membership_payment_problem",
        "membership_ended",
        "refund_confirmation",
        "staff_notice",
    }
)


def _render(name: str, context: dict[str, Any]) -> str:
    """A template rendered without the page context processors (they need a request,
    and mail is also written by webhooks, CLI commands and the dispatcher)."""
    return current_app.jinja_env.get_template(name).render(**context)


def _base_context() -> dict[str, Any]:
    return {
        "shop_name": current_app.config["SHOP_NAME"],
        "shop_url": external_url("catalog.index"),
    }


def compose(
    kind: str,
    to_email: str,
    subject: str,
    *,
    template: str | None = None,
    dedup_key: str | None = None,
    order_id: int | None = None,
    **context: Any,
) -> OutboxMessage:
    """An outbox row for ``kind`` rendered from ``templates/email/<template>.txt/.html``
    (``template`` defaults to the kind). The caller adds it to the session and commits
    with the change the message reports."""
    name = template or kind
    context = {**_base_context(), "subject": subject, **context}
    return OutboxMessage(
        kind=kind,
        to_email=to_email,
        subject=subject,
        body=_tidy(_render(f"email/{name}.txt", context)),
        html_body=_render(f"email/{name}.html", context),
        dedup_key=dedup_key,
        order_id=order_id,
    )


def staff_notice(kind: str, subject: str, text: str, *, dedup_key: str) -> OutboxMessage:
    """A notice for the shop's staff (sent to STAFF_EMAILS; the back office lists them)."""
    return compose(
        kind,
        STAFF_RECIPIENT,
        subject,
        template="staff_notice",
        dedup_key=dedup_key,
        text=text,
        paragraphs=_paragraphs(text),
    )


def _tidy(text: str) -> str:
    """Plain text without the blank-line runs that template tags leave behind."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def _paragraphs(text: str) -> list[Markup]:
    return [_linkify(p) for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def notice_html(subject: str, text: str, *, staff: bool = False) -> str:
    """The HTML part for a message written as plain text only: its paragraphs in the
    shop's mail layout, with links made clickable."""
    return _render(
        "email/notice.html",
        {**_base_context(), "subject": subject, "paragraphs": _paragraphs(text), "staff": staff},
    )


_URL = re.compile(r"https?://[^\s<>\"']+")


def _linkify(paragraph: str) -> Markup:
    out, last = [], 0
    for match in _URL.finditer(paragraph):
        out.append(escape(paragraph[last : match.start()]))
        url = match.group(0).rstrip(".,;:)")
        out.append(Markup('<a href="{0}" style="color:#2e5037;">{0}</a>').format(url))
        last = match.start() + len(url)
    out.append(escape(paragraph[last:]))
    return Markup("<br>").join(Markup("").join(out).split("\n"))


# --------------------------------------------------------------------------- orders


def order_context(order: Order) -> dict[str, Any]:
    """What the order e-mails show: items, shipping and address (when the order has
    them: a membership or an older order has none), the card, totals."""
    currency = order.currency
    items = [
        {
            "name": item.product_name,
            "quantity": item.quantity,
            "unit": format_money(item.unit_amount, currency),
            "total": format_money(item.line_total, currency),
        }
        for item in order.items
    ]
    brand, last4 = order.card_brand, order.card_last4
    return {
        "order": order,
        "order_number": order.number,  # as the order page shows it
        "order_url": external_url("orders.show", public_id=order.public_id),
        "items": items,
        "subtotal": format_money(order.subtotal, currency),
        "shipping": {
            "rate": order.shipping_rate_name,
            "amount": format_money(order.shipping_amount, currency),
            "free": not order.shipping_amount,
            "estimate": order.delivery_estimate,
        }
        if order.shipping_rate_name
        else None,
        "address_lines": order.address_lines,
        "card": f"{brand.title()} ending {last4}" if brand and last4 else None,
        "total": format_money(order.amount_total, currency),
        "refunded": format_money(order.amount_refunded, currency)
        if order.amount_refunded
        else None,
    }


def order_confirmation(order: Order) -> OutboxMessage:
    """The receipt for a paid order (written once, by ``fulfil_order``)."""
    context = order_context(order)
    return compose(
        "order_confirmation",
        order.email or "",
        f"Your order {context['order_number']} is confirmed",
        dedup_key=f"order-confirmation:{order.public_id}",
        order_id=order.id,
        **context,
    )


def refund_confirmation(order: Order, amount: int, *, dedup_key: str) -> OutboxMessage:
    """The customer's e-mail for a refund of ``amount`` (minor units) on a paid order."""
    context = order_context(order)
    context["refunded"] = None  # the order's refunded total moves with the webhook, later
    return compose(
        "refund",
        order.email or "",
        f"Your refund for order {context['order_number']}",
        template="refund_confirmation",
        dedup_key=dedup_key,
        order_id=order.id,
        amount=format_money(amount, order.currency),
        full=amount >= order.amount_total,
        **context,
    )


# --------------------------------------------------------------------------- MIME


def staff_addresses() -> list[str]:
    raw = current_app.config.get("STAFF_EMAILS") or ""
    return [a.strip() for a in str(raw).split(",") if a.strip()]


def sender() -> str:
    """The From header: MAIL_FROM, or the shop's name at a local address (development)."""
    configured = current_app.config.get("MAIL_FROM")
    if configured:
        return str(configured)
    return formataddr((current_app.config["SHOP_NAME"], "shop@localhost"))


def sender_address() -> str:
    """The bare address of the From header (the SMTP envelope sender)."""
    found = [address for _, address in getaddresses([sender()]) if address]
    return found[0] if found else "shop@localhost"


def sender_domain() -> str:
    return sender_address().rpartition("@")[2] or "localhost"


def new_message_id(row_id: int) -> str:
    """A Message-ID naming the outbox row (and random, so a new database never reuses one)."""
    return make_msgid(idstring=f"outbox.{row_id}", domain=sender_domain())


def build(message: OutboxMessage, recipients: list[str]) -> EmailMessage:
    """The MIME message for an outbox row: multipart/alternative, text then HTML."""
    mime = EmailMessage()
    mime["From"] = sender()
    mime["To"] = ", ".join(recipients)
    reply_to = current_app.config.get("MAIL_REPLY_TO")
    if reply_to:
        mime["Reply-To"] = str(reply_to)
    mime["Subject"] = message.subject
    written = message.created_at
    mime["Date"] = format_datetime(written if written.tzinfo else written.replace(tzinfo=UTC))
    mime["Message-ID"] = message.message_id or new_message_id(message.id)
    mime["X-Outbox-Kind"] = message.kind
    if message.kind.startswith("staff") or message.to_email == STAFF_RECIPIENT:
        mime["Auto-Submitted"] = "auto-generated"
    mime.set_content(message.body)
    html = message.html_body or notice_html(
        message.subject, message.body, staff=message.to_email == STAFF_RECIPIENT
    )
    mime.add_alternative(html, subtype="html")
    return mime


def valid_address(address: str) -> bool:
    """An address the SMTP envelope can carry (one mailbox, no header tricks)."""
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, IndexError):
        return False
    return bool(parsed.username and parsed.domain) and "\n" not in address
