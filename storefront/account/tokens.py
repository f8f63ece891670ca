"""Sign-in links: one-time tokens (only their SHA-256 stored) and the message that carries them."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from .. import mail, payments
from ..extensions import db
from ..links import external_url
from ..models import SignInToken, utcnow

log = logging.getLogger(__name__)

TOKEN_LIFETIME = timedelta(minutes=15)  # how long a sign-in link stays valid
TOKEN_BYTES = 32  # 256 random bits per link
# How long used and expired links are kept (for support questions) before being deleted.
TOKEN_RETENTION = timedelta(days=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_sign_in_token(email: str) -> str:
    """Store a new one-time token for ``email`` (the caller commits); returns the token."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    db.session.add(
        SignInToken(
            token_hash=token_hash(token),
            email=email,
            created_at=now,
            expires_at=now + TOKEN_LIFETIME,
        )
    )
    # Housekeeping: links expired long ago are of no use to anyone.
    db.session.execute(delete(SignInToken).where(SignInToken.expires_at < now - TOKEN_RETENTION))
    return token


def usable_token(token: str) -> SignInToken | None:
    """The stored, unused, unexpired token, without using it (the confirmation page)."""
    if not token or len(token) > 100:
        return None
    return db.session.scalar(
        select(SignInToken).where(
            SignInToken.token_hash == token_hash(token),
            SignInToken.used_at.is_(None),
            SignInToken.expires_at > utcnow(),
        )
    )


def consume_token(token: str) -> str | None:
    """Use the token: the email it signs in, or None when it is unknown, expired or used.

    One guarded UPDATE decides, so two presses (two tabs, two browsers) cannot both win.
    Commits.
    """
    row = usable_token(token)
    if row is None:
        return None
    email, token_id = row.email, row.id
    result = db.session.execute(
        update(SignInToken)
        .where(
            SignInToken.id == token_id,
            SignInToken.used_at.is_(None),
            SignInToken.expires_at > utcnow(),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if result.rowcount != 1:
        return None
    return email


def send_sign_in_link(email: str) -> str | None:
    """Write a new sign-in link for ``email`` to the outbox; returns the link, or None
    when one was sent to this email this minute already.

    At most one message per email and minute (the dedup key), so the form cannot be
    used to flood the outbox; the token is stored in the same transaction, so a
    message that is not written leaves no token either.
    """
    token = new_sign_in_token(email)
    link = external_url("account.sign_in", token=token)
    minute = utcnow().strftime("%Y%m%d%H%M")
    db.session.add(
        mail.compose(
            "sign_in",
            email,
            f"Sign in to {current_app.config['SHOP_NAME']}",
            dedup_key=f"sign-in:{payments.email_digest(email)}:{minute}",
            link=link,
            valid_for=f"once, within {int(TOKEN_LIFETIME.total_seconds() // 60)} minutes",
        )
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        log.info("sign-in link for an account: already sent this minute")
        return None
    # Never the link itself: it signs in. (Development: it is in /dev/mail.)
    log.info("outbox: sign-in link written")
    return link
