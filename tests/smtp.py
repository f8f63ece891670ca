"""A real SMTP server for the tests (aiosmtpd on a free loopback port, in a thread).

It keeps what it receives in memory and can be told to refuse: the next N messages with a
temporary error, every message with a given reply, or logins. Loaded as a pytest plugin
from ``tests/conftest.py`` (the ``smtp_server`` fixture).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.smtp import SMTP, AuthResult

from storefront.devmail import LoopServer


class Handler:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        refusal = self.server.refuse_rcpt.get(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.server.peers.add(session.peer)
        if self.server.hold_until_clients:
            # Hold every message until that many clients are sending at once, however long
            # the other client's process takes to start on a loaded machine; the test ends
            # the hold (``release()``) when a client exits or its own deadline passes.
            while (
                len(self.server.peers) < self.server.hold_until_clients
                and not self.server.released.is_set()
            ):
                await asyncio.sleep(0.1)
        if self.server.delay:
            await asyncio.sleep(self.server.delay)  # a slow server: dispatchers overlap
        with self.server.lock:
            self.server.attempts.append(message)
            if self.server.fail_next:
                self.server.fail_next -= 1
                return self.server.temporary_reply
            if self.server.always:
                return self.server.always
            self.server.received.append(message)
            self.server.senders.append(session.peer)
            self.server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 Message accepted for delivery"


class SMTPServer:
    """An SMTP server on 127.0.0.1:<free port>; ``received`` holds accepted messages."""

    temporary_reply = "451 4.3.0 Mail server temporarily unavailable, try again later"

    def __init__(self, *, password: str | None = None) -> None:
        self.received: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.attempts: list[EmailMessage] = []  # every DATA, accepted or refused
        self.fail_next = 0
        self.always: str | None = None
        self.refuse_rcpt: dict[str, str] = {}
        self.delay = 0.0
        self.hold_until_clients = 0
        self.released = threading.Event()  # ends any hold (see ``release``)
        self.peers: set = set()  # client addresses that sent a message
        self.senders: list = []  # the client address of each accepted message
        self.lock = threading.Lock()
        self.password = password

        def factory() -> SMTP:
            return SMTP(
                Handler(self),
                hostname="mail.test",
                authenticator=self._authenticate if password else None,
                auth_require_tls=False,
            )

        # Its loop runs in a thread of its own (the test's may run one: Playwright's).
        self.server = LoopServer(factory)
        self.port = self.server.port

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = auth_data.password == self.password.encode()
        return AuthResult(success=ok, handled=False)

    def config(self) -> dict:
        """The shop's mail settings for this server."""
        return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": self.port, "MAIL_SECURITY": "none"}

    def release(self) -> None:
        """Stop holding messages for clients that have not come."""
        self.released.set()

    def stop(self) -> None:
        self.release()
        self.server.stop()


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    server = SMTPServer()
    yield server
    server.stop()
