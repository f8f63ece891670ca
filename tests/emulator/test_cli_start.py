"""``flask serve`` starting the emulator beside the shop (storefront/cli.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import click
import pytest

from storefront.cli import start_emulator


class _Healthy(BaseHTTPRequestHandler):
    """Some other server that happens to answer ``/healthz``."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def taken_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()


def test_start_fails_when_another_server_holds_the_port(taken_port, tmp_path):
    with pytest.raises(click.ClickException) as excinfo:
        proc = start_emulator(taken_port, str(tmp_path))
        proc.terminate()  # only reached without the check: do not leak the child
        proc.wait(timeout=10)
    message = excinfo.value.format_message()
    assert f"port {taken_port} is already in use" in message
    assert "\n" not in message
