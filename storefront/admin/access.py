"""Who is staff, and the audit log of what staff did."""

from __future__ import annotations

import logging

from flask import current_app, g

from .. import account, billing
from ..extensions import db
from ..models import Order
from .models import AuditEntry

log = logging.getLogger(__name__)


def staff_emails() -> frozenset[str]:
    """``STAFF_EMAILS`` as normalised addresses (entries that are not emails are skipped)."""
    raw = current_app.config.get("STAFF_EMAILS") or ""
    if isinstance(raw, list | tuple | set | frozenset):
        raw = ",".join(raw)
    found = (billing.normalise_email(part) for part in str(raw).split(","))
    return frozenset(email for email in found if email)


def signed_in_staff() -> str | None:
    """The signed-in email if it belongs to staff, else None."""
    email = billing.normalise_email(account.signed_in_email())
    return email if email and email in staff_emails() else None


def audit(
    action: str,
    *,
    outcome: str = "ok",
    order: Order | None = None,
    target: str | None = None,
    detail: str = "",
) -> None:
    """Record one staff action (commits: the entry stays even if the action failed)."""
    entry = AuditEntry(
        staff_email=g.get("staff_email") or "unknown",
        action=action,
        order_id=order.id if order is not None else None,
        target=target,
        outcome=outcome,
        detail=detail[:2000],
    )
    db.session.add(entry)
    db.session.commit()
    log.info(
        "staff action %s outcome=%s order=%s target=%s",
        action,
        outcome,
        order.public_id if order is not None else None,
        target,
    )
