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


def test_the_emulator_started_for_the_shop_shows_the_shops_name(tmp_path, monkeypatch):
    import socket
    import urllib.request
    from pathlib import Path

    # The tests run in a temporary directory; the child imports the emulator from the repo.
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = start_emulator(port, str(tmp_path), "Fernwood Coffee Co.")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/c/pay/cs_test_x") as response:
            page = response.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert '<span class="merchant__name">Fernwood Coffee Co.</span>' in page
    assert "Emulator test shop" not in page
