"""The platform's own spans: one TracerProvider per process, ``service.name=molecule-platform``.

The A2A proxy (``a2a.proxy``) and async delegation (``a2a.delegate``) start spans here, continue
an inbound W3C ``traceparent`` and hand their own on to the agent. Finished spans go to a
``BatchSpanProcessor`` — the request path only appends to its queue — whose thread exports them:

- :class:`DatabaseSpanExporter` writes them into ``trace_spans``, attributed to the workspace in
  their ``workspace.id`` attribute (the A2A target), with the receiver's bounds;
- with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, an OTLP/HTTP exporter also sends them to
  ``<endpoint>/v1/traces`` (a collector, Jaeger, Langfuse…).

``OTEL_SDK_DISABLED=true`` makes every span a no-op (the proxy then passes an inbound
``traceparent`` on unchanged). Tests and shutdown call :func:`force_flush`.
"""

from __future__ import annotations

import atexit
import logging
import threading

from django.conf import settings
from django.db import connection
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from traces import otlp
from traces.services import spans_store
from workspaces.selectors import as_uuid

log = logging.getLogger(__name__)

SERVICE_NAME = "molecule-platform"
TRACER_NAME = "molecule.platform"
WORKSPACE_ATTRIBUTE = "workspace.id"
TRACEPARENT = "traceparent"

_lock = threading.Lock()
_tracer: trace.Tracer | None = None
_provider: TracerProvider | None = None
_propagator = TraceContextTextMapPropagator()
_exiting = threading.Event()  # set at interpreter exit, before the provider's own final flush

__all__ = ["SpanKind", "Status", "StatusCode", "force_flush", "start_span", "traceparent_of", "tracer"]


def _row(span: ReadableSpan) -> otlp.SpanRow:
    context = span.context
    attributes = dict(span.attributes or {})
    row = otlp.make_row(
        trace_id=f"{context.trace_id:032x}", span_id=f"{context.span_id:016x}",
        parent_span_id=f"{span.parent.span_id:016x}" if span.parent is not None else "",
        service_name=str(span.resource.attributes.get("service.name", SERVICE_NAME)), name=span.name,
        kind=otlp.KINDS.index(span.kind.name.lower()), start=span.start_time or 0, end=span.end_time or 0,
        status=otlp.STATUSES.index(span.status.status_code.name.lower()),
        status_message=span.status.description or "",
        attributes=otlp.bounded_attributes(attributes.items()),
        events=[{"name": otlp.clean(event.name, otlp.MAX_NAME_CHARS),
                 "time": otlp.iso_or_none(event.timestamp),
                 "attributes": otlp.bounded_attributes((event.attributes or {}).items(), otlp.MAX_EVENT_ATTRIBUTES)}
                for event in list(span.events)[:otlp.MAX_EVENTS]],
    )
    row.workspace_id = as_uuid(attributes.get(WORKSPACE_ATTRIBUTE))
    return row


class DatabaseSpanExporter(SpanExporter):
    """Writes finished platform spans into ``trace_spans`` (runs in the batch thread)."""

    def export(self, spans) -> SpanExportResult:
        rows = []
        for span in spans:
            try:
                rows.append(_row(span))
            except ValueError:
                log.debug("platform span %s not stored: malformed", span.name)
        try:
            spans_store(rows=rows)
        except Exception:  # noqa: BLE001 - a failed export must never take the batch thread down
            if not _exiting.is_set():  # at exit the database (and the log streams) may be gone already
                log.warning("could not store %d platform spans", len(rows), exc_info=True)
            return SpanExportResult.FAILURE
        finally:
            connection.close()  # back to the pool: this thread idles between batches
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _build() -> tuple[trace.Tracer, TracerProvider]:
    resource = Resource.create({"service.name": SERVICE_NAME}).merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # registers its shutdown (a final flush) at exit
    atexit.register(_exiting.set)  # runs first: exit handlers run last-registered first
    provider.add_span_processor(BatchSpanProcessor(DatabaseSpanExporter()))
    if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
        endpoint = f"{settings.OTEL_EXPORTER_OTLP_ENDPOINT.rstrip('/')}/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider.get_tracer(TRACER_NAME), provider


_NO_OP = trace.NoOpTracer()


def tracer() -> trace.Tracer:
    """The process's platform tracer (built on first use); a no-op one while ``OTEL_SDK_DISABLED``."""
    global _tracer, _provider
    if settings.OTEL_SDK_DISABLED:
        return _NO_OP
    if _tracer is None:
        with _lock:
            if _tracer is None:
                _tracer, _provider = _build()
    return _tracer


def start_span(name: str, *, kind: SpanKind, traceparent: str | None = None, attributes: dict | None = None):
    """A started span, the child of ``traceparent`` when it is a valid W3C header (else a root).
    The caller ends it (``span.end()``)."""
    context = _propagator.extract({TRACEPARENT: traceparent}) if traceparent else None
    return tracer().start_span(name, context=context, kind=kind, attributes=attributes)


def traceparent_of(span) -> str | None:
    """The W3C ``traceparent`` naming ``span`` as the parent, or None for a no-op span."""
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def force_flush(timeout_millis: int = 10000) -> bool:
    """Export every finished span now (tests; shutdown)."""
    return _provider.force_flush(timeout_millis) if _provider is not None else True
