"""A small real A2A agent on loopback for proxy tests: one threaded HTTP server, behaviour by path.

``/echo``      200 JSON-RPC result echoing the request (``result.echo``) with a tool trace
``/empty``     200 JSON-RPC result: an agent message whose only text part is empty
``/slow/<s>``  sleeps ``s`` seconds, then answers like ``/echo``
``/hang``      reads the request and never answers (until the server stops)
``/reset``     reads the request and resets the connection (TCP RST)
``/eof``       reads the request and closes the connection without a response
``/boom``      500 ``{"error":"boom"}``
``/notfound``  404 with an empty body
``/sse``       ``text/event-stream``: three ``data:`` events, the last one final
``/big``       200 with an 11 MiB JSON string body
``/short``     200 announcing 1000 bytes, sending 10, then closing (body read failure)

Every request is recorded (path, headers, decoded JSON body) in ``server.requests``.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

TOOL_TRACE = [{"tool": "search", "ok": True}]


# gpt-4o at the default prices: 100 + 100 = 200 cents a call.
USAGE = {"input_tokens": 400_000, "output_tokens": 100_000, "model": "gpt-4o"}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "A2AServer"

    def log_message(self, *args):  # quiet
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self, status: int, payload) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _echo(self, request) -> None:
        self._json(200, {
            "jsonrpc": "2.0",
            "id": request.get("id") if isinstance(request, dict) else None,
            "result": {"echo": request, "metadata": {"tool_trace": TOOL_TRACE}},
        })

    def do_POST(self):  # noqa: N802 - http.server's naming
        raw = self._body()
        try:
            request = json.loads(raw)
        except ValueError:
            request = raw.decode(errors="replace")
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "json": request})
        path = self.path
        if path == "/echo":
            self._echo(request)
        elif path == "/usage":  # a reply that reports its model calls' tokens, as our runtime does
            self._json(200, {"jsonrpc": "2.0", "id": request.get("id") if isinstance(request, dict) else None,
                             "result": {"kind": "message", "role": "agent", "parts": [{"kind": "text", "text": "ok"}],
                                        "metadata": {"usage": USAGE}}})
        elif path == "/empty":
            self._json(200, {"jsonrpc": "2.0", "id": request.get("id") if isinstance(request, dict) else None,
                             "result": {"kind": "message", "role": "agent", "parts": [{"kind": "text", "text": ""}]}})
        elif path.startswith("/slow/"):
            time.sleep(float(path.rsplit("/", 1)[1]))
            self._echo(request)
        elif path == "/hang":
            self.server.stopping.wait(30)
            self.close_connection = True
        elif path == "/reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif path == "/eof":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif path == "/boom":
            self._json(500, {"error": "boom"})
        elif path == "/notfound":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            rid = request.get("id") if isinstance(request, dict) else None
            for index, final in ((1, False), (2, False), (3, True)):
                event = {"jsonrpc": "2.0", "id": rid, "result": {"kind": "status-update", "seq": index, "final": final}}
                self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
                time.sleep(0.05)
            self.close_connection = True
        elif path == "/big":
            data = json.dumps("x" * (11 * 1024 * 1024)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif path == "/short":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"jsonrpc"')
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:
            self._json(404, {"error": "no such behaviour"})

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass  # /reset and /eof closed the socket under us


class A2AServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def handle_error(self, request, client_address):
        pass  # a reset connection is the point of some behaviours

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, behaviour: str) -> str:
        return f"{self.base_url}/{behaviour.lstrip('/')}"

    def start(self) -> "A2AServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def a2a_server():
    """A running loopback agent for the module; its request log is cleared per test by users."""
    server = A2AServer().start()
    yield server
    server.stop()
