"""A loopback stand-in OTLP/HTTP trace collector for the span tests (test_telemetry.py and the
adapters' own, which run in their separate environments).

Each ``POST`` is decoded as the OTLP protobuf ``ExportTraceServiceRequest`` the platform's receiver
(or any collector) gets, into plain dicts: ``name``, ``trace_id``, ``span_id``, ``parent_id``,
``kind``, ``attributes``, ``status``, ``resource``, ``scope``. The ``collector`` and ``tracing``
fixtures in conftest.py serve it and point the runtime's tracing at it.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from molecule_runtime import telemetry

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
WORKSPACE_TOKEN = "ws-telemetry-token"
SPAN_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT"}
STATUS_ERROR = 2  # STATUS_CODE_ERROR


def _value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


class Collector:
    """An OTLP/HTTP trace receiver on a loopback port: ``.exports`` = [(path, headers, spans)]."""

    def __init__(self) -> None:
        self.exports: list[tuple[str, dict, list[dict]]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                spans = []
                for resource_spans in request.resource_spans:
                    resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            spans.append({
                                "name": span.name, "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                                "parent_id": span.parent_span_id.hex(), "kind": SPAN_KINDS.get(span.kind, span.kind),
                                "attributes": {a.key: _value(a.value) for a in span.attributes},
                                "status": span.status.code, "resource": resource, "scope": scope_spans.scope.name,
                            })
                collector.exports.append((self.path, {k.lower(): v for k, v in self.headers.items()}, spans))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self, path: str | None = None) -> list[dict]:
        return [s for p, _h, spans in self.exports if path is None or p == path for s in spans]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def flush() -> None:
    """Export what the runtime's span processors hold (before reading ``collector.spans()``)."""
    assert telemetry.force_flush(5000)


def by_name(spans: list[dict], name: str) -> list[dict]:
    return [s for s in spans if s["name"] == name]
