"""Decoding OTLP/HTTP trace exports into bounded span rows (OTLP 1.x, ``ExportTraceServiceRequest``).

Two encodings of one message: protobuf (``application/x-protobuf``) and OTLP JSON
(``application/json``: lowerCamelCase fields, hex trace/span ids, 64-bit integers as strings or
numbers, enums as integers — names are accepted too). Both become :class:`SpanRow` values.

Everything is bounded so a bad exporter cannot bloat the table: at most
:data:`MAX_SPANS_PER_REQUEST` spans per request, :data:`MAX_ATTRIBUTES` attributes and
:data:`MAX_EVENTS` events per span, strings cut at :data:`MAX_STRING_CHARS`, nested values cut at
:data:`MAX_VALUE_DEPTH`. NUL characters and unpaired surrogates (which PostgreSQL refuses in text
and jsonb) are dropped. A span with malformed ids or timestamps is rejected on its own (counted
in the answer's ``partial_success``); a body that is not an export request at all is an
:class:`OtlpError`.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

MAX_SPANS_PER_REQUEST = 1000
MAX_ATTRIBUTES = 64
MAX_EVENTS = 32
MAX_EVENT_ATTRIBUTES = 16
MAX_KEY_CHARS = 128
MAX_STRING_CHARS = 4096
MAX_NAME_CHARS = 256
MAX_STATUS_MESSAGE_CHARS = 1024
MAX_ARRAY_ITEMS = 64
MAX_VALUE_DEPTH = 4

KINDS = ("internal", "internal", "server", "client", "producer", "consumer")  # index = OTLP SpanKind
STATUSES = ("unset", "ok", "error")  # index = OTLP Status.StatusCode
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEX = re.compile(r"[0-9a-fA-F]+")
_MAX_NANOS = 2**63 - 1


class OtlpError(ValueError):
    """The body is not an OTLP trace export."""


@dataclass
class SpanRow:
    """A span as stored in ``trace_spans`` (ids lowercase hex; ``workspace_id`` set by the caller)."""

    trace_id: str
    span_id: str
    parent_span_id: str
    service_name: str
    name: str
    kind: str
    start_time: datetime
    end_time: datetime
    status: str
    status_message: str
    attributes: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    workspace_id: object = None

    @property
    def duration_ms(self) -> float:
        return max((self.end_time - self.start_time).total_seconds() * 1000, 0.0)


@dataclass
class Decoded:
    spans: list[SpanRow]
    rejected: int = 0
    reason: str = ""

    def reject(self, count: int, reason: str) -> None:
        self.rejected += count
        self.reason = self.reason or reason


# --- shared bounds ----------------------------------------------------------------------------------

def clean(text: str, limit: int = MAX_STRING_CHARS) -> str:
    """``text`` cut at ``limit``, without the characters PostgreSQL cannot store."""
    text = text[:limit]
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def bounded_value(value, depth: int = 0):
    """A JSON-storable copy of an attribute value (already decoded from AnyValue), bounded."""
    if value is None or isinstance(value, bool | int | float):
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            return str(value)  # jsonb has no NaN/Infinity
        return value
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, bytes):
        return clean(base64.b64encode(value[:MAX_STRING_CHARS]).decode())
    if depth >= MAX_VALUE_DEPTH:
        return None
    if isinstance(value, dict):
        return {clean(str(k), MAX_KEY_CHARS): bounded_value(v, depth + 1) for k, v in list(value.items())[:MAX_ATTRIBUTES]}
    if isinstance(value, list | tuple):
        return [bounded_value(item, depth + 1) for item in list(value)[:MAX_ARRAY_ITEMS]]
    return clean(str(value))


def bounded_attributes(pairs, limit: int = MAX_ATTRIBUTES) -> dict:
    """``{key: value}`` from ``(key, value)`` pairs, at most ``limit`` of them."""
    attributes = {}
    for key, value in pairs:
        if len(attributes) >= limit:
            break
        attributes[clean(str(key), MAX_KEY_CHARS)] = bounded_value(value)
    return attributes


def timestamp(nanos: int) -> datetime:
    if not 0 < nanos <= _MAX_NANOS:
        raise ValueError("timestamp out of range")
    return _EPOCH + timedelta(microseconds=nanos // 1000)


def make_row(*, trace_id: str, span_id: str, parent_span_id: str, service_name: str, name: str, kind: int,
             start: int, end: int, status: int, status_message: str, attributes: dict, events: list) -> SpanRow:
    """A checked :class:`SpanRow`; ``ValueError`` when the ids or times are malformed."""
    if len(trace_id) != 32 or not _HEX.fullmatch(trace_id) or not trace_id.strip("0"):
        raise ValueError("invalid trace id")
    if len(span_id) != 16 or not _HEX.fullmatch(span_id) or not span_id.strip("0"):
        raise ValueError("invalid span id")
    if parent_span_id and (len(parent_span_id) != 16 or not _HEX.fullmatch(parent_span_id)):
        raise ValueError("invalid parent span id")
    start_time = timestamp(start)
    end_time = timestamp(end) if end else start_time
    return SpanRow(
        trace_id=trace_id.lower(), span_id=span_id.lower(),
        parent_span_id="" if not parent_span_id.strip("0") else parent_span_id.lower(),
        service_name=clean(service_name, MAX_NAME_CHARS), name=clean(name, MAX_NAME_CHARS) or "(unnamed)",
        kind=KINDS[kind] if 0 <= kind < len(KINDS) else "internal",
        start_time=start_time, end_time=max(end_time, start_time),
        status=STATUSES[status] if 0 <= status < len(STATUSES) else "unset",
        status_message=clean(status_message, MAX_STATUS_MESSAGE_CHARS),
        attributes=attributes, events=events,
    )


# --- protobuf ---------------------------------------------------------------------------------------

def _pb_value(value):
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_pb_value(item) for item in value.array_value.values[:MAX_ARRAY_ITEMS]]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in value.kvlist_value.values[:MAX_ATTRIBUTES]}
    return getattr(value, which)


def _pb_attributes(key_values, limit: int = MAX_ATTRIBUTES) -> dict:
    return bounded_attributes(((kv.key, _pb_value(kv.value)) for kv in key_values[:limit]), limit)


def decode_protobuf(body: bytes) -> Decoded:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise OtlpError(str(exc)) from None
    decoded = Decoded([])
    for resource_spans in request.resource_spans:
        service = _pb_attributes(resource_spans.resource.attributes).get("service.name")
        service = service if isinstance(service, str) else ""
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if len(decoded.spans) >= MAX_SPANS_PER_REQUEST:
                    decoded.reject(1, f"more than {MAX_SPANS_PER_REQUEST} spans in one request")
                    continue
                try:
                    decoded.spans.append(make_row(
                        trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(), service_name=service, name=span.name,
                        kind=span.kind, start=span.start_time_unix_nano, end=span.end_time_unix_nano,
                        status=span.status.code, status_message=span.status.message,
                        attributes=_pb_attributes(span.attributes),
                        events=[
                            {"name": clean(event.name, MAX_NAME_CHARS),
                             "time": iso_or_none(event.time_unix_nano),
                             "attributes": _pb_attributes(event.attributes, MAX_EVENT_ATTRIBUTES)}
                            for event in span.events[:MAX_EVENTS]
                        ],
                    ))
                except ValueError as exc:
                    decoded.reject(1, str(exc))
    return decoded


def iso_or_none(nanos) -> str | None:
    try:
        return timestamp(int(nanos)).isoformat().replace("+00:00", "Z")
    except (ValueError, TypeError, OverflowError):
        return None


# --- JSON -------------------------------------------------------------------------------------------

def _get(data: dict, camel: str, snake: str, default=None):
    value = data.get(camel, data.get(snake, default))
    return default if value is None else value


def _list(data: dict, camel: str, snake: str) -> list:
    value = _get(data, camel, snake, [])
    if not isinstance(value, list):
        raise OtlpError(f"{camel} must be a list")
    return value


def _object(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise OtlpError(f"{what} must be an object")
    return value


def _int(value, *, enum: dict | None = None) -> int:
    if isinstance(value, bool):
        raise ValueError("not an integer")
    if isinstance(value, str) and enum is not None and value in enum:
        return enum[value]
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError("not an integer")


_KIND_NAMES = {f"SPAN_KIND_{name.upper()}": index for index, name in enumerate(KINDS) if index}
_KIND_NAMES["SPAN_KIND_UNSPECIFIED"] = 0
_STATUS_NAMES = {f"STATUS_CODE_{name.upper()}": index for index, name in enumerate(STATUSES)}


def _json_value(value, depth: int = 0):
    if not isinstance(value, dict) or depth > MAX_VALUE_DEPTH:
        return None
    for key, convert in (("stringValue", str), ("boolValue", bool), ("doubleValue", float)):
        if key in value:
            try:
                return convert(value[key])
            except (TypeError, ValueError):
                return None
    if "intValue" in value:
        try:
            return _int(value["intValue"])
        except ValueError:
            return None
    if "bytesValue" in value:
        return value["bytesValue"] if isinstance(value["bytesValue"], str) else None
    if "arrayValue" in value:
        items = value["arrayValue"].get("values") if isinstance(value["arrayValue"], dict) else None
        return [_json_value(item, depth + 1) for item in (items if isinstance(items, list) else [])[:MAX_ARRAY_ITEMS]]
    if "kvlistValue" in value:
        items = value["kvlistValue"].get("values") if isinstance(value["kvlistValue"], dict) else None
        return {str(kv.get("key")): _json_value(kv.get("value"), depth + 1)
                for kv in (items if isinstance(items, list) else [])[:MAX_ATTRIBUTES] if isinstance(kv, dict)}
    return None


def _json_attributes(items, limit: int = MAX_ATTRIBUTES) -> dict:
    if not isinstance(items, list):
        return {}
    pairs = ((kv.get("key"), _json_value(kv.get("value"))) for kv in items[:limit]
             if isinstance(kv, dict) and isinstance(kv.get("key"), str))
    return bounded_attributes(pairs, limit)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def decode_json(body: bytes) -> Decoded:
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise OtlpError(str(exc)) from None
    data = _object(data, "the request")
    decoded = Decoded([])
    for resource_spans in _list(data, "resourceSpans", "resource_spans"):
        resource_spans = _object(resource_spans, "resourceSpans[]")
        resource = _object(_get(resource_spans, "resource", "resource", {}), "resource")
        service = _json_attributes(resource.get("attributes")).get("service.name")
        service = service if isinstance(service, str) else ""
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            for span in _list(_object(scope_spans, "scopeSpans[]"), "spans", "spans"):
                span = _object(span, "spans[]")
                if len(decoded.spans) >= MAX_SPANS_PER_REQUEST:
                    decoded.reject(1, f"more than {MAX_SPANS_PER_REQUEST} spans in one request")
                    continue
                try:
                    decoded.spans.append(_json_span(span, service))
                except (ValueError, TypeError, AttributeError) as exc:
                    decoded.reject(1, str(exc) or "invalid span")
    return decoded


def _json_span(span: dict, service: str) -> SpanRow:
    status = _get(span, "status", "status", {})
    status = status if isinstance(status, dict) else {}
    events = _get(span, "events", "events", [])
    events = events if isinstance(events, list) else []
    ids = [_get(span, camel, snake, "") for camel, snake in
           (("traceId", "trace_id"), ("spanId", "span_id"), ("parentSpanId", "parent_span_id"))]
    if not all(isinstance(value, str) for value in ids):
        raise ValueError("span ids must be hex strings")
    name = _get(span, "name", "name", "")
    message = status.get("message", "")
    return make_row(
        trace_id=ids[0], span_id=ids[1], parent_span_id=ids[2], service_name=service,
        name=name if isinstance(name, str) else str(name),
        kind=_int(_get(span, "kind", "kind", 0), enum=_KIND_NAMES),
        start=_int(_get(span, "startTimeUnixNano", "start_time_unix_nano", 0)),
        end=_int(_get(span, "endTimeUnixNano", "end_time_unix_nano", 0)),
        status=_int(status.get("code", 0), enum=_STATUS_NAMES),
        status_message=message if isinstance(message, str) else "",
        attributes=_json_attributes(span.get("attributes")),
        events=[
            {"name": clean(str(event.get("name", "")), MAX_NAME_CHARS),
             "time": iso_or_none(_get(event, "timeUnixNano", "time_unix_nano", 0)),
             "attributes": _json_attributes(event.get("attributes"), MAX_EVENT_ATTRIBUTES)}
            for event in events[:MAX_EVENTS] if isinstance(event, dict)
        ],
    )


# --- answers ----------------------------------------------------------------------------------------

def protobuf_response(decoded: Decoded) -> bytes:
    response = ExportTraceServiceResponse()
    if decoded.rejected:
        response.partial_success.rejected_spans = decoded.rejected
        response.partial_success.error_message = decoded.reason
    return response.SerializeToString()


def json_response_body(decoded: Decoded) -> dict:
    if not decoded.rejected:
        return {}
    return {"partialSuccess": {"rejectedSpans": str(decoded.rejected), "errorMessage": decoded.reason}}
