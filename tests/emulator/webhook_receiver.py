"""A tiny HTTP server that records webhook deliveries, for the emulator's webhook tests."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST; answers the queued ``statuses`` first, then ``default_status``."""

    server: ThreadingHTTPServer
    deliveries: list[Delivery] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    default_status: int = 200
    # When given, each answer waits until the test sets it (at most 30 s).
    hold: threading.Event | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def received(self, path: str | None = None) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if path is None or d.path == path]

    def event_ids(self, path: str | None = None) -> list[str]:
        return [d.event["id"] for d in self.received(path)]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 10) -> list[Delivery]:
        """Poll until at least ``count`` deliveries arrived (to ``path``), or fail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received(path)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"expected {count} deliveries, got {len(self.received(path))}")


def start_receiver() -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                receiver.deliveries.append(
                    Delivery(self.path, dict(self.headers.items()), body, time.time())
                )
                status = receiver.statuses.pop(0) if receiver.statuses else receiver.default_status
            if receiver.hold is not None:
                receiver.hold.wait(timeout=30)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return receiver
