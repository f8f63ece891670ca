"""Keep secrets that arrive in URLs out of the access logs.

After a redirect (3-D Secure, bank pages) Stripe.js sends the customer back to the order
page with ``?payment_intent_client_secret=...``. The page moves on to an address without
it, but the access log line of that first request (werkzeug's in development, gunicorn's
in production) already holds the full URL, and the Referer of the next request may too.
``RedactSecrets`` replaces the value of every ``*secret=`` query parameter in a record's
message and arguments before any handler formats it.

Sign-in links carry their one-time token in the path (``/account/sign-in/<token>``):
the token is redacted the same way, in the request line and in the Referer of the
confirmation POST that follows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

from flask import Flask

# Access loggers that print request lines (and Referer headers) as they came in.
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")

REDACTED = "[REDACTED]"

# "client_secret=", "payment_intent_client_secret=", "setup_intent_client_secret=", ...,
# also percent-encoded ("%3D") as inside a nested URL; the value runs to the next
# separator of a query string, a request line or a quoted log field.
_SECRET_VALUE = re.compile(r"([\w.\-\[\]]*secret(?:=|%3D))[^&\s\"'#;]+", re.IGNORECASE)


# The token of a sign-in link (``/account/sign-in/<token>``, also percent-encoded inside
# another URL), up to the next separator.
_SIGN_IN_TOKEN = re.compile(
    r"((?:/|%2F)account(?:/|%2F)sign-in(?:/|%2F))[^/?&\s\"'#;%]+", re.IGNORECASE
)


def redact(text: str) -> str:
    """``text`` with the value of every ``*secret=`` parameter and every sign-in link's
    token replaced."""
    lowered = text.lower()
    if "secret" in lowered:
        text = _SECRET_VALUE.sub(r"\1" + REDACTED, text)
    if "sign-in" in lowered:
        text = _SIGN_IN_TOKEN.sub(r"\1" + REDACTED, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("latin-1")).encode("latin-1")
    return value


class RedactSecrets(logging.Filter):
    """Redacts ``*secret=`` values in a record's message and its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_redact_value(a) for a in args)
        elif isinstance(args, MutableMapping):
            # gunicorn passes its atoms (a dict subclass with its own lookups): edit in place.
            for key, value in list(args.items()):
                redacted = _redact_value(value)
                if redacted is not value:
                    args[key] = redacted
        return True


def install(app: Flask) -> None:
    """Called by ``create_app`` before the database is set up: one ``RedactSecrets`` on
    each access logger (installing again is harmless), and SQLAlchemy told to keep
    statement parameters (emails, payloads) out of its error messages and logs."""
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        "hide_parameters": True,
        **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
    }
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
