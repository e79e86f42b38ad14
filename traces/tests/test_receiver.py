"""``POST /otlp/v1/traces``: OTLP/HTTP protobuf and JSON, bound to the exporting token's workspace."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from traces import otlp
from traces.models import TraceSpan
from registry.tokens import token_mint
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("secure")]

TRACE_ID = "5b8efff798038103d269b633813fc60c"
ROOT_ID = "eee19b7ec3c1b174"
CHILD_ID = "eee19b7ec3c1b173"
NOW_NS = int(time.time() * 1e9)


@pytest.fixture
def workspace():
    ws = Workspace.objects.create(name="Dev", status=WorkspaceStatus.ONLINE)
    _, ws.token = token_mint(workspace=ws)
    return ws


@pytest.fixture
def other():
    ws = Workspace.objects.create(name="Other", status=WorkspaceStatus.ONLINE)
    _, ws.token = token_mint(workspace=ws)
    return ws


def post(body: bytes, *, token: str | None, content_type="application/x-protobuf", method="post", headers=None):
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"

    async def run():
        client = AsyncClient()
        if method == "post":
            return await client.post("/otlp/v1/traces", data=body, content_type=content_type, headers=sent)
        return await client.generic(method.upper(), "/otlp/v1/traces", body, content_type=content_type, headers=sent)

    return async_to_sync(run)()


def kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        any_value = AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = AnyValue(int_value=value)
    elif isinstance(value, float):
        any_value = AnyValue(double_value=value)
    else:
        any_value = AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


def protobuf_request(*, claimed_workspace: str = "someone-else", spans=None) -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend([kv("service.name", "molecule-workspace"),
                                               kv("workspace.id", claimed_workspace)])
    scope = resource_spans.scope_spans.add()
    for span in spans if spans is not None else [
        Span(trace_id=bytes.fromhex(TRACE_ID), span_id=bytes.fromhex(ROOT_ID), name="a2a.task",
             kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=NOW_NS, end_time_unix_nano=NOW_NS + 2_000_000_000,
             attributes=[kv("a2a.input_preview", "hello"), kv("retries", 2), kv("ok", True)],
             status=Status(code=Status.STATUS_CODE_OK)),
        Span(trace_id=bytes.fromhex(TRACE_ID), span_id=bytes.fromhex(CHILD_ID), parent_span_id=bytes.fromhex(ROOT_ID),
             name="chat gpt-4o", kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=NOW_NS + 100_000_000,
             end_time_unix_nano=NOW_NS + 1_100_000_000,
             attributes=[kv("gen_ai.usage.input_tokens", 120), kv("gen_ai.usage.output_tokens", 30)],
             status=Status(code=Status.STATUS_CODE_ERROR, message="rate limited"),
             events=[Span.Event(time_unix_nano=NOW_NS + 200_000_000, name="retry", attributes=[kv("n", 1)])]),
    ]:
        scope.spans.append(span)
    return request.SerializeToString()


def json_request(**span_overrides) -> dict:
    span = {
        "traceId": TRACE_ID, "spanId": ROOT_ID, "parentSpanId": "", "name": "a2a.task", "kind": 2,
        "startTimeUnixNano": str(NOW_NS), "endTimeUnixNano": str(NOW_NS + 1_500_000_000),
        "attributes": [
            {"key": "a2a.input_preview", "value": {"stringValue": "hi there"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}},
            {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 2}]}}},
            {"key": "nested", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": True}}]}}},
            {"key": "ratio", "value": {"doubleValue": 0.5}},
        ],
        "status": {"code": 1, "message": ""},
        "events": [{"timeUnixNano": str(NOW_NS + 10), "name": "started", "attributes": []}],
    }
    span.update(span_overrides)
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "runtime-json"}}]},
        "scopeSpans": [{"scope": {"name": "x"}, "spans": [span]}],
    }]}


def test_protobuf_export_is_stored_under_the_tokens_workspace(workspace, other):
    response = post(protobuf_request(claimed_workspace=str(other.id)), token=workspace.token)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert not answer.HasField("partial_success")
    spans = {span.span_id: span for span in TraceSpan.objects.all()}
    assert set(spans) == {ROOT_ID, CHILD_ID}
    assert {span.workspace_id for span in spans.values()} == {workspace.id}  # not what the payload claimed
    root, child = spans[ROOT_ID], spans[CHILD_ID]
    assert (root.trace_id, root.parent_span_id, root.kind, root.status, root.service_name) == (
        TRACE_ID, "", "server", "ok", "molecule-workspace")
    assert root.attributes == {"a2a.input_preview": "hello", "retries": 2, "ok": True}
    assert root.duration_ms == pytest.approx(2000, abs=0.01)
    assert (child.parent_span_id, child.kind, child.status, child.status_message) == (ROOT_ID, "client", "error",
                                                                                        "rate limited")
    assert child.events[0]["name"] == "retry" and child.events[0]["attributes"] == {"n": 1}
    assert child.events[0]["time"].endswith("Z")


def test_json_export_decodes_hex_ids_camel_case_and_any_values(workspace):
    response = post(json.dumps(json_request()).encode(), token=workspace.token, content_type="application/json")
    assert (response.status_code, response.json()) == (200, {})
    assert response["Content-Type"].startswith("application/json")
    span = TraceSpan.objects.get()
    assert (span.trace_id, span.span_id, span.kind, span.status, span.service_name, span.workspace_id) == (
        TRACE_ID, ROOT_ID, "server", "ok", "runtime-json", workspace.id)
    assert span.attributes == {"a2a.input_preview": "hi there", "gen_ai.usage.input_tokens": 42, "tags": ["a", 2],
                               "nested": {"k": True}, "ratio": 0.5}
    assert span.events[0]["name"] == "started"


def test_json_accepts_uppercase_ids_and_enum_names(workspace):
    body = json_request(traceId=TRACE_ID.upper(), kind="SPAN_KIND_CONSUMER", status={"code": "STATUS_CODE_ERROR"})
    assert post(json.dumps(body).encode(), token=workspace.token, content_type="application/json").status_code == 200
    span = TraceSpan.objects.get()
    assert (span.trace_id, span.kind, span.status) == (TRACE_ID, "consumer", "error")


def test_resending_a_span_stores_it_once(workspace):
    for _ in range(2):
        assert post(protobuf_request(), token=workspace.token).status_code == 200
    assert TraceSpan.objects.count() == 2


def test_a_token_cannot_overwrite_another_workspaces_span(workspace, other):
    post(protobuf_request(), token=workspace.token)
    post(protobuf_request(), token=other.token)  # same ids, other token: nothing changes
    assert set(TraceSpan.objects.values_list("workspace_id", flat=True)) == {workspace.id}


@pytest.mark.parametrize("token", [None, "not-a-token", "traces-tests-admin-token"])
def test_missing_or_foreign_token_is_401_and_stores_nothing(workspace, token):
    response = post(protobuf_request(), token=token)
    assert response.status_code == 401
    expected = "missing workspace auth token" if token is None else "invalid workspace auth token"
    assert response.json() == {"error": expected}
    assert not TraceSpan.objects.exists()


def test_revoked_token_is_refused(workspace):
    from registry.models import WorkspaceAuthToken
    from registry.tokens import token_revoke

    token_revoke(tokens=WorkspaceAuthToken.objects.filter(workspace=workspace))
    assert post(protobuf_request(), token=workspace.token).status_code == 401


@pytest.mark.parametrize("content_type,body", [
    ("application/x-protobuf", b"\xff\xff\xff\xff garbage"),
    ("application/json", b"{not json"),
    ("application/json", b"[1, 2]"),
    ("application/json", b'{"resourceSpans": "nope"}'),
    ("application/json", b'{"resourceSpans": [{"scopeSpans": [{"spans": [7]}]}]}'),
    ("application/json", b'{"resourceSpans": [], "x": NaN}'),
])
def test_garbage_is_400_invalid_otlp_payload(workspace, content_type, body):
    response = post(body, token=workspace.token, content_type=content_type)
    assert (response.status_code, response.json()) == (400, {"error": "invalid OTLP payload"})
    assert not TraceSpan.objects.exists()


@pytest.mark.parametrize("content_type", ["text/plain", "application/grpc", "multipart/form-data; boundary=x", ""])
def test_other_content_types_are_415(workspace, content_type):
    response = post(b"{}", token=workspace.token, content_type=content_type)
    assert response.status_code == 415
    assert "application/x-protobuf" in response.json()["error"]


def test_bodies_over_the_limit_are_413(workspace, settings):
    settings.TRACE_MAX_BODY_BYTES = 2048
    response = post(b"\x00" * 4096, token=workspace.token)
    assert response.status_code == 413
    assert response.json() == {"error": "request body too large", "max_bytes": 2048}


def test_a_gzip_body_is_inflated_and_its_inflated_size_is_bounded(workspace, settings):
    body = protobuf_request()
    response = post(gzip.compress(body), token=workspace.token, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200 and TraceSpan.objects.count() == 2
    settings.TRACE_MAX_BODY_BYTES = 1024
    bomb = gzip.compress(b"\x00" * (256 << 10))
    assert len(bomb) < 1024
    assert post(bomb, token=workspace.token, headers={"Content-Encoding": "gzip"}).status_code == 413
    assert post(b"not gzip", token=workspace.token, headers={"Content-Encoding": "gzip"}).status_code == 400


@pytest.mark.parametrize("method", ["get", "head", "put", "patch", "delete", "options"])
def test_other_methods_are_gins_404(workspace, method):
    response = post(b"", token=workspace.token, method=method)
    assert response.status_code == 404
    assert response.content in (b"404 page not found", b"")  # HEAD has no body
    assert "Allow" not in response


def test_malformed_spans_are_rejected_alone_with_partial_success(workspace):
    good = Span(trace_id=bytes.fromhex(TRACE_ID), span_id=bytes.fromhex(ROOT_ID), name="ok",
                start_time_unix_nano=NOW_NS, end_time_unix_nano=NOW_NS + 1)
    zero_trace = Span(trace_id=bytes(16), span_id=bytes.fromhex(CHILD_ID), name="zero",
                      start_time_unix_nano=NOW_NS, end_time_unix_nano=NOW_NS)
    short_id = Span(trace_id=bytes.fromhex(TRACE_ID), span_id=b"\x01", name="short", start_time_unix_nano=NOW_NS)
    no_time = Span(trace_id=bytes.fromhex(TRACE_ID), span_id=bytes.fromhex("aaaaaaaaaaaaaaaa"), name="no time")
    response = post(protobuf_request(spans=[good, zero_trace, short_id, no_time]), token=workspace.token)
    assert response.status_code == 200
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert answer.partial_success.rejected_spans == 3
    assert answer.partial_success.error_message
    assert list(TraceSpan.objects.values_list("name", flat=True)) == ["ok"]


def test_json_partial_success_names_the_rejected_spans(workspace):
    response = post(json.dumps(json_request(spanId="xyz")).encode(), token=workspace.token,
                    content_type="application/json")
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedSpans"] == "1"


def test_spans_and_attributes_per_request_are_capped(workspace):
    spans = [Span(trace_id=bytes.fromhex(TRACE_ID), span_id=(index + 1).to_bytes(8, "big"), name="s" * 300,
                  start_time_unix_nano=NOW_NS, end_time_unix_nano=NOW_NS,
                  attributes=[kv(f"k{n}", "v" * 5000) for n in range(100)] if index == 0 else [])
             for index in range(otlp.MAX_SPANS_PER_REQUEST + 5)]
    response = post(protobuf_request(spans=spans), token=workspace.token)
    assert response.status_code == 200
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(response.content)
    assert answer.partial_success.rejected_spans == 5
    assert TraceSpan.objects.count() == otlp.MAX_SPANS_PER_REQUEST
    first = TraceSpan.objects.get(span_id=(1).to_bytes(8, "big").hex())
    assert len(first.name) == otlp.MAX_NAME_CHARS
    assert len(first.attributes) == otlp.MAX_ATTRIBUTES
    assert all(len(value) == otlp.MAX_STRING_CHARS for value in first.attributes.values())


def test_nul_characters_and_lone_surrogates_do_not_break_the_insert(workspace):
    body = json_request(name="bad\u0000name", attributes=[
        {"key": "k\u0000", "value": {"stringValue": "x\u0000y"}},
        {"key": "surrogate", "value": {"stringValue": "\ud800"}},
    ])
    response = post(json.dumps(body).encode(), token=workspace.token, content_type="application/json")
    assert response.status_code == 200
    span = TraceSpan.objects.get()
    assert span.name == "badname" and span.attributes["k"] == "xy"


def test_deeply_nested_values_are_cut(workspace):
    value = {"stringValue": "leaf"}
    for _ in range(50):
        value = {"arrayValue": {"values": [value]}}
    body = json_request(attributes=[{"key": "deep", "value": value}])
    assert post(json.dumps(body).encode(), token=workspace.token, content_type="application/json").status_code == 200
    depth, node = 0, TraceSpan.objects.get().attributes["deep"]
    while isinstance(node, list) and node:
        depth, node = depth + 1, node[0]
    assert depth <= otlp.MAX_VALUE_DEPTH + 1


def test_the_asgi_handler_refuses_a_long_body_before_django_reads_it(settings):
    """Django spools a whole body before any view runs: the handler cuts it at the route's limit."""
    from molecule_site.handler import route_body_limit, routes_to_async_view

    assert route_body_limit("/otlp/v1/traces") == settings.TRACE_MAX_BODY_BYTES
    assert routes_to_async_view("/otlp/v1/traces")  # on the event loop, no thread per export


def chat_span(span_id: str, *, model="gpt-4o", input_tokens=1000, output_tokens=500, **extra) -> Span:
    attributes = [kv("gen_ai.operation.name", "chat"), kv("gen_ai.request.model", model),
                  kv("gen_ai.usage.input_tokens", input_tokens), kv("gen_ai.usage.output_tokens", output_tokens)]
    attributes += [kv(key, value) for key, value in extra.items()]
    return Span(trace_id=bytes.fromhex(TRACE_ID), span_id=bytes.fromhex(span_id), name=f"chat {model}",
                kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=NOW_NS, end_time_unix_nano=NOW_NS + 1_000_000,
                attributes=attributes)


def test_an_external_agents_model_call_spans_are_metered_once(workspace, settings):
    """Usage no A2A reply reports (an external agent's own model calls) is metered from its spans,
    summed per model; an exporter resending the batch is not metered twice."""
    from metering.models import WorkspaceTokenUsage

    settings.MODEL_PRICES = {"gpt-4o": (250, 1000)}  # cents per million tokens in / out
    body = protobuf_request(spans=[chat_span("00000000000000a1"), chat_span("00000000000000a2", input_tokens=3000),
                                   chat_span("00000000000000a3", model="other-model", input_tokens=0, output_tokens=7)])
    for _ in range(2):
        assert post(body, token=workspace.token).status_code == 200
    rows = {row.model: row for row in WorkspaceTokenUsage.objects.filter(workspace=workspace)}
    assert {m: (r.input_tokens, r.output_tokens, r.call_count) for m, r in rows.items()} == {
        "gpt-4o": (4000, 1000, 2), "other-model": (0, 7, 1)}
    workspace.refresh_from_db()
    assert workspace.monthly_spend == 2  # 4000 × 250 + 1000 × 1000 per million = 2 cents


def test_spans_whose_usage_rode_on_a_reply_and_other_spans_are_not_metered(workspace):
    """Our runtime marks the chat spans of a task (the proxy metered the reply); spans that are no
    chat, or carry no usage, meter nothing."""
    from metering.models import WorkspaceTokenUsage

    spans = [chat_span("00000000000000b1", **{"molecule.usage.on_reply": True}),
             chat_span("00000000000000b2", input_tokens=0, output_tokens=0),
             chat_span("00000000000000b3", input_tokens=-5)]
    assert post(protobuf_request(spans=spans), token=workspace.token).status_code == 200
    assert post(protobuf_request(), token=workspace.token).status_code == 200  # a2a.task + an unlabelled span
    assert TraceSpan.objects.count() == 5
    assert not WorkspaceTokenUsage.objects.exists()
