"""The test servers (``tests/live.py``): a dropped connection still closes the response."""

from __future__ import annotations

import socket
import struct
import threading
import time

from werkzeug.wrappers import Response

from tests.live import Server

CONTENT = b"body { color: #222; }\n"


class Body:
    """A stylesheet's body that records being closed, as a file's wrapper closes the file.
    It is all written at once; the server then waits on ``done`` before finishing."""

    def __init__(self) -> None:
        self.done, self.closed = threading.Event(), threading.Event()

    def __iter__(self):
        yield CONTENT
        self.done.wait(10)

    def close(self) -> None:
        self.closed.set()


def test_a_body_is_closed_when_the_client_resets_the_connection():
    body = Body()

    def app(environ, start_response):
        response = Response(body, direct_passthrough=True, content_type="text/css")
        response.content_length = len(CONTENT)
        return response(environ, start_response)

    server = Server(app)
    try:
        client = socket.create_connection(("127.0.0.1", server.server.server_port))
        client.sendall(b"GET /shop.css HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while not received.endswith(CONTENT):
            received += client.recv(4096)
        # A page closed mid-load: the connection is reset, not closed. Werkzeug's server then
        # fails reading what is left of the request, after the body but before closing it.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        time.sleep(0.1)  # the reset arrives before the server looks
        body.done.set()
        assert body.closed.wait(10)
    finally:
        server.stop()
