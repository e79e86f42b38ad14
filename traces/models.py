"""OpenTelemetry spans, as agents export them (``POST /otlp/v1/traces``) and as the platform
records its own (``a2a.proxy``, ``a2a.delegate``; ``traces.otel``)."""

import uuid

from django.db import models

from workspaces.models import Workspace


class SpanKind(models.TextChoices):
    INTERNAL = "internal"
    SERVER = "server"
    CLIENT = "client"
    PRODUCER = "producer"
    CONSUMER = "consumer"


class SpanStatus(models.TextChoices):
    UNSET = "unset"
    OK = "ok"
    ERROR = "error"


class TraceSpan(models.Model):
    """One finished span. ``workspace`` is whose span it is: the workspace whose token exported
    it (never what the payload claims), or for the platform's spans the A2A target; null when
    that workspace is unknown. Unique per (trace_id, span_id): a re-sent span is stored once.
    ``attributes`` and ``events`` are bounded by the receiver (``traces.otlp``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    trace_id = models.CharField(max_length=32)  # 32 lowercase hex
    span_id = models.CharField(max_length=16)  # 16 lowercase hex
    parent_span_id = models.CharField(max_length=16, blank=True, default="")  # '' for a root span
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, null=True, blank=True, related_name="spans")
    service_name = models.CharField(max_length=256, blank=True, default="")
    name = models.CharField(max_length=256)
    kind = models.CharField(max_length=16, choices=SpanKind.choices, default=SpanKind.INTERNAL)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    duration_ms = models.FloatField(default=0)
    status = models.CharField(max_length=8, choices=SpanStatus.choices, default=SpanStatus.UNSET)
    status_message = models.TextField(blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    events = models.JSONField(default=list, blank=True)

    class Meta:
        db_table = "trace_spans"
        constraints = [models.UniqueConstraint(fields=["trace_id", "span_id"], name="trace_spans_trace_span_unique")]
        indexes = [
            models.Index(fields=["workspace", "-start_time"], name="trace_spans_ws_start"),
            models.Index(fields=["trace_id"], name="trace_spans_trace"),
        ]
        ordering = ["-start_time"]

    def __str__(self):
        return f"{self.name} ({self.trace_id[:8]}…/{self.span_id})"
