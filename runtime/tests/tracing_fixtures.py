"""The ``collector`` and ``tracing`` fixtures of the trace tests (test_telemetry.py and the adapter
tests that check their runtime's spans, some in a separate environment).

``collector`` is a loopback stand-in OTLP/HTTP receiver that decodes each ``POST`` as the OTLP
protobuf ``ExportTraceServiceRequest`` the platform's receiver (or any collector) gets;
``tracing(env)`` turns this process's tracing on with the collector as the platform's receiver.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

from molecule_runtime import telemetry  # noqa: E402

WORKSPACE_TOKEN = "ws-telemetry-token"
SPAN_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT"}


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


@pytest.fixture
def collector():
    server = Collector()
    yield server
    server.close()


@pytest.fixture
def tracing(collector, monkeypatch, workspace_id):
    """start(env=..., token=...) → tracing on, the platform receiver being the collector."""
    for name in ("OTEL_CAPTURE_CONTENT", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                 "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_SDK_DISABLED",
                 "OTEL_DEBUG", "LANGFUSE_HOST", "LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    tokens = [WORKSPACE_TOKEN]

    def start(env: dict | None = None, *, platform: bool = True) -> bool:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        import os

        return telemetry.setup_telemetry(os.environ, workspace_id=workspace_id, runtime="openai",
                                         platform_url=collector.url if platform else None,
                                         token_provider=lambda: tokens[0])

    start.tokens = tokens
    yield start
    telemetry.shutdown_telemetry()
