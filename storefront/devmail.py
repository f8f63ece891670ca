"""Mail in development: a local SMTP sink and the ``/dev/mail`` viewer (like Mailpit).

``flask serve`` (``make run``) starts the sink when no ``MAIL_SERVER`` is set, and a
dispatcher (``flask outbox send --loop``) pointed at it, so every message takes the
production path: outbox row → dispatcher → SMTP. The sink stores what it receives as
``.eml`` files in ``instance/dev-mail/``; ``/dev/mail`` lists them and shows each one
(headers, the HTML part in a sandboxed frame, the text part). The viewer exists only in
debug mode and answers only the machine itself: those messages hold sign-in links.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, abort, current_app, render_template, request

from .config import is_loopback_host

bp = Blueprint("devmail", __name__, url_prefix="/dev/mail")

NAME = re.compile(r"[0-9]{10,25}\.eml")
LIST_LIMIT = 200

# The HTML part alone, framed by the viewer: its inline styles and nothing else.
MESSAGE_CSP = {
    "default-src": "'none'",
    "style-src": "'unsafe-inline'",
    "img-src": "data:",
    "base-uri": "'none'",
    "form-action": "'none'",
    "frame-ancestors": "'self'",
}


def mail_dir(instance_path: str) -> Path:
    return Path(instance_path) / "dev-mail"


# --------------------------------------------------------------------------- the sink


class LoopServer:
    """An asyncio server on 127.0.0.1:``port`` (0: a free one) whose event loop runs in a
    daemon thread of its own (the caller's thread may be running a loop already)."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        outcome: dict[str, Any] = {}

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                server = self.loop.run_until_complete(
                    self.loop.create_server(factory, "127.0.0.1", port)
                )
            except OSError as err:
                outcome["error"] = err
                started.set()
                return
            outcome["port"] = server.sockets[0].getsockname()[1]
            started.set()
            self.loop.run_forever()
            server.close()
            self.loop.run_until_complete(server.wait_closed())

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        started.wait(10)
        if "error" in outcome:
            self.loop.close()
            raise outcome["error"]
        self.port: int = outcome["port"]

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


class Sink:
    """An SMTP server on 127.0.0.1 (a free port unless given) in a daemon thread that
    writes every message it receives to ``directory``."""

    def __init__(self, directory: Path, port: int = 0) -> None:
        from aiosmtpd.smtp import SMTP

        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.server = LoopServer(lambda: SMTP(self, hostname="dev-mail.localhost"), port)
        self.port = self.server.port

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler hook
        name = f"{time.time_ns()}.eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(envelope.original_content or envelope.content)
        os.replace(tmp, self.directory / name)  # the viewer never sees half a message
        return "250 2.0.0 Stored in the development mailbox"

    def stop(self) -> None:
        self.server.stop()


# --------------------------------------------------------------------------- the viewer


def init_app(app: Flask) -> None:
    """Register ``/dev/mail`` in debug mode only."""
    if app.debug:
        app.register_blueprint(bp)


@bp.before_request
def only_this_machine() -> None:
    if not is_loopback_host(request.remote_addr):
        abort(404)


def _read(name: str) -> EmailMessage:
    if not NAME.fullmatch(name):
        abort(404)
    path = mail_dir(current_app.instance_path) / name
    try:
        data = path.read_bytes()
    except OSError:
        abort(404)
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def _date(message: EmailMessage):
    try:
        return parsedate_to_datetime(message["Date"])
    except (TypeError, ValueError):
        return None


@bp.get("/")
def index():
    directory = mail_dir(current_app.instance_path)
    names = sorted((p.name for p in directory.glob("*.eml")), reverse=True)[:LIST_LIMIT]
    messages = []
    for name in names:
        message = _read(name)
        messages.append(
            {
                "name": name,
                "to": message["To"],
                "subject": message["Subject"],
                "kind": message["X-Outbox-Kind"],
                "date": _date(message),
            }
        )
    return render_template(
        "devmail/index.html",
        messages=messages,
        mail_server=current_app.config.get("MAIL_SERVER"),
    )


@bp.get("/<name>")
def show(name: str):
    message = _read(name)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    headers = [
        (h, message[h])
        for h in ("From", "To", "Reply-To", "Subject", "Date", "Message-ID")
        if message[h]
    ]
    return render_template(
        "devmail/show.html",
        name=name,
        subject=message["Subject"],
        headers=headers,
        text=text.get_content() if text is not None else None,
        has_html=html is not None,
    )


@bp.get("/<name>/html")
def html_part(name: str):
    html = _read(name).get_body(("html",))
    if html is None:
        abort(404)
    # Links open in the whole tab (the frame is sandboxed; e.g. a sign-in link).
    body = re.sub(r"(<head[^>]*>)", r'\1<base target="_top">', html.get_content(), count=1)
    return body, 200, {"Content-Type": "text/html; charset=utf-8"}


# Talisman's per-view options (see storefront/security.py): this response may be framed
# by the viewer, and may use the message's inline styles, nothing else.
html_part.talisman_view_options = {  # type: ignore[attr-defined]
    "content_security_policy": MESSAGE_CSP,
    "frame_options": "SAMEORIGIN",
}
