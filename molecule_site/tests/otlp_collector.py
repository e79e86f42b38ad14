"""A stand-in OTLP/HTTP collector for tests: a loopback server that decodes the protobuf
``ExportTraceServiceRequest`` the OpenTelemetry exporters POST to ``<endpoint>/v1/traces`` and keeps
the spans it got, as Langfuse or any collector would receive them."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


class OTLPCollector(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, path: str = "/v1/traces") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.traces_path = path  # where exports are taken (the platform's receiver is at /otlp/v1/traces)
        self.lock = threading.Lock()
        self.spans: list[dict] = []
        self.requests: list[dict] = []  # path and headers of each export
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """What ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set to (exporters add ``/v1/traces``)."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> "OTLPCollector":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def of_trace(self, trace_id: str) -> list[dict]:
        with self.lock:
            return [span for span in self.spans if span["trace_id"] == trace_id]

    def record(self, path: str, headers: dict, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append({
                        "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(), "name": span.name,
                        "service": resource.get("service.name", ""), "workspace_id": resource.get("workspace.id", ""),
                        "attributes": {a.key: _value(a.value) for a in span.attributes},
                    })
        with self.lock:
            self.requests.append({"path": path, "headers": headers})
            self.spans.extend(spans)


def _value(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("string_value", "int_value", "double_value", "bool_value") else None


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != self.server.traces_path or self.headers.get("Content-Type") != "application/x-protobuf":
            self.send_response(404)
            self.end_headers()
            return
        try:
            self.server.record(self.path, dict(self.headers), body)
        except Exception:  # a payload that is not OTLP: what a collector answers
            self.send_response(400)
            self.end_headers()
            return
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *_args):
        pass
