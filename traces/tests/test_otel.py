"""The platform's own spans: ``a2a.proxy`` through the real proxy to a real loopback agent,
``a2a.delegate`` around a delegation's send, the database exporter and the OTLP exporter."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from molecule_site import adb
from registry import delegation, proxy
from registry.tests.a2a_server import a2a_server  # noqa: F401 - fixture
from registry.tokens import token_mint
from traces import otel
from traces.models import TraceSpan
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

ADMIN = "traces-otel-admin-token"
INBOUND_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INBOUND_SPAN = "00f067aa0ba902b7"
INBOUND = f"00-{INBOUND_TRACE}-{INBOUND_SPAN}-01"


@pytest.fixture(autouse=True, scope="module")
def _close_proxy_db_threads():
    yield
    proxy.close_db_connections()


@pytest.fixture(autouse=True)
def _settings(settings, a2a_server):  # noqa: F811
    settings.A2A_ALLOW_PRIVATE_TARGETS = True
    settings.SAAS_MODE = False
    settings.A2A_IDLE_TIMEOUT_SECONDS = 5
    settings.ADMIN_TOKEN = ADMIN
    settings.DEV_MODE = False
    settings.OTEL_SDK_DISABLED = False
    otel.force_flush()  # spans of earlier tests are not this test's
    TraceSpan.objects.all().delete()
    a2a_server.requests.clear()
    return settings


@pytest.fixture
def team(a2a_server):  # noqa: F811
    pm = Workspace.objects.create(name="PM", status=WorkspaceStatus.ONLINE, url=a2a_server.url("echo"))
    dev = Workspace.objects.create(name="Dev", parent=pm, status=WorkspaceStatus.ONLINE, url=a2a_server.url("echo"))
    for workspace in (pm, dev):
        _, workspace.token = token_mint(workspace=workspace)
    return pm, dev


def call(target, *, caller=None, headers=None, body=None):
    sent = dict(headers or {})
    if caller is not None:
        sent["X-Workspace-ID"] = str(caller.id)
        sent["Authorization"] = f"Bearer {caller.token}"
    else:
        sent["Authorization"] = f"Bearer {ADMIN}"
    data = json.dumps(body or {"method": "message/send",
                               "params": {"message": {"role": "user", "parts": [{"kind": "text", "text": "hi"}]}}})

    async def run():
        response = await AsyncClient().post(f"/workspaces/{target.id}/a2a", data=data,
                                            content_type="application/json", headers=sent)
        await proxy.settle()
        return response

    return async_to_sync(run)()


def forwarded(a2a_server) -> tuple[str, str, str, str]:  # noqa: F811
    [request] = a2a_server.requests
    headers = {name.lower(): value for name, value in request["headers"].items()}
    return tuple(headers["traceparent"].split("-"))


def stored(name: str) -> list[TraceSpan]:
    assert otel.force_flush()
    return list(TraceSpan.objects.filter(name=name).order_by("start_time"))


def test_the_proxy_span_continues_the_inbound_traceparent_and_forwards_its_own(team, a2a_server):  # noqa: F811
    pm, dev = team
    response = call(dev, caller=pm, headers={"traceparent": INBOUND})
    assert response.status_code == 200
    version, trace_id, parent_id, flags = forwarded(a2a_server)
    assert (version, trace_id, flags) == ("00", INBOUND_TRACE, "01")
    assert parent_id != INBOUND_SPAN  # the agent's parent is the proxy's span, not the caller's
    [span] = stored("a2a.proxy")
    assert (span.trace_id, span.span_id, span.parent_span_id) == (INBOUND_TRACE, parent_id, INBOUND_SPAN)
    assert (span.kind, span.status, span.service_name, span.workspace_id) == ("server", "unset", "molecule-platform",
                                                                              dev.id)
    assert span.attributes == {"workspace.id": str(dev.id), "a2a.caller_id": str(pm.id), "a2a.method": "message/send",
                               "http.response.status_code": 200}
    assert span.duration_ms >= 0


def test_without_a_traceparent_the_proxy_span_starts_a_trace(team, a2a_server):  # noqa: F811
    pm, dev = team
    assert call(dev).status_code == 200  # the canvas: no caller
    _, trace_id, parent_id, _ = forwarded(a2a_server)
    [span] = stored("a2a.proxy")
    assert (span.trace_id, span.span_id, span.parent_span_id) == (trace_id, parent_id, "")
    assert "a2a.caller_id" not in span.attributes


def test_a_malformed_traceparent_starts_a_new_trace(team, a2a_server):  # noqa: F811
    pm, dev = team
    call(dev, caller=pm, headers={"traceparent": "00-zz-yy-01"})
    _, trace_id, _, _ = forwarded(a2a_server)
    [span] = stored("a2a.proxy")
    assert span.trace_id == trace_id and span.parent_span_id == ""


def test_a_failed_call_is_an_error_span(team, a2a_server):  # noqa: F811
    pm, dev = team
    Workspace.objects.filter(pk=dev.pk).update(url=a2a_server.url("boom"))
    assert call(dev, caller=pm, headers={"traceparent": INBOUND}).status_code == 500
    [span] = stored("a2a.proxy")
    assert (span.status, span.status_message) == ("error", "boom")
    assert span.attributes["http.response.status_code"] == 500


def test_a_refused_call_is_an_error_span_too(team):
    pm, dev = team
    other = Workspace.objects.create(name="Stranger", status=WorkspaceStatus.ONLINE)
    _, other.token = token_mint(workspace=other)
    assert call(dev, caller=other).status_code == 403
    [span] = stored("a2a.proxy")
    assert span.status == "error" and span.attributes["http.response.status_code"] == 403


def test_spans_add_no_statement_to_the_call(team, settings):
    pm, dev = team

    def statements():
        with adb.capture_statements() as captured:
            assert call(dev, caller=pm, headers={"traceparent": INBOUND}).status_code == 200
        return len(captured)

    statements()  # warm the per-process caches (the hierarchy)
    settings.OTEL_SDK_DISABLED = True
    without = statements()
    settings.OTEL_SDK_DISABLED = False
    assert statements() == without


def test_disabled_spans_pass_the_inbound_traceparent_on_unchanged(team, a2a_server, settings):  # noqa: F811
    settings.OTEL_SDK_DISABLED = True
    pm, dev = team
    call(dev, caller=pm, headers={"traceparent": INBOUND})
    assert "-".join(forwarded(a2a_server)) == INBOUND
    assert stored("a2a.proxy") == []


def test_a_delegation_is_a_delegate_span_around_a_client_proxy_span(team, a2a_server):  # noqa: F811
    pm, dev = team
    delegation_id = str(uuid.uuid4())
    status = delegation.execute_delegation.apply(
        args=(str(pm.id), str(dev.id), delegation_id, "write the notes", INBOUND)).get()
    assert status == "completed"
    _, trace_id, parent_id, _ = forwarded(a2a_server)
    [delegate] = stored("a2a.delegate")
    [proxied] = stored("a2a.proxy")
    assert trace_id == INBOUND_TRACE
    assert (delegate.trace_id, delegate.parent_span_id, delegate.kind) == (INBOUND_TRACE, INBOUND_SPAN, "producer")
    assert (proxied.trace_id, proxied.parent_span_id, proxied.kind) == (INBOUND_TRACE, delegate.span_id, "client")
    assert proxied.span_id == parent_id
    assert delegate.attributes["a2a.delegation_id"] == delegation_id
    assert delegate.attributes["a2a.outcome"] == "completed"
    assert delegate.workspace_id == dev.id


def test_a_delegation_without_a_traceparent_still_links_its_spans(team, a2a_server):  # noqa: F811
    pm, dev = team
    delegation.execute_delegation.apply(args=(str(pm.id), str(dev.id), str(uuid.uuid4()), "task")).get()
    [delegate] = stored("a2a.delegate")
    [proxied] = stored("a2a.proxy")
    assert delegate.parent_span_id == "" and proxied.parent_span_id == delegate.span_id


def test_delegate_request_carries_its_traceparent_into_the_task(team, monkeypatch):
    pm, dev = team
    queued = []
    monkeypatch.setattr(delegation.execute_delegation, "delay", lambda *args: queued.append(args))
    response = AsyncClient()
    result = async_to_sync(response.post)(
        f"/workspaces/{pm.id}/delegate", data=json.dumps({"target_id": str(dev.id), "task": "t"}),
        content_type="application/json", headers={"Authorization": f"Bearer {pm.token}", "traceparent": INBOUND})
    assert result.status_code == 202
    assert queued[0][-1] == INBOUND


def test_the_exporter_attributes_spans_to_the_workspace_attribute_and_bounds_them(team):
    pm, _ = team
    for name, workspace_id in (("known", str(pm.id)), ("unknown", str(uuid.uuid4())), ("garbled", "nope")):
        span = otel.start_span(name, kind=otel.SpanKind.INTERNAL,
                               attributes={"workspace.id": workspace_id, "big": "x" * 10_000})
        span.add_event("step", {"n": 1})
        span.end()
    assert otel.force_flush()
    rows = {row.name: row for row in TraceSpan.objects.filter(name__in=["known", "unknown", "garbled"])}
    assert rows["known"].workspace_id == pm.id
    assert rows["unknown"].workspace_id is None and rows["garbled"].workspace_id is None
    assert len(rows["known"].attributes["big"]) == 4096
    assert rows["known"].events[0]["name"] == "step" and rows["known"].events[0]["attributes"] == {"n": 1}


class _Collector(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append((self.path, self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_with_an_otlp_endpoint_spans_are_also_sent_there(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.OTEL_EXPORTER_OTLP_ENDPOINT = f"http://127.0.0.1:{server.server_address[1]}/"
        tracer, provider = otel._build()
        tracer.start_span("exported", kind=otel.SpanKind.SERVER).end()
        assert provider.force_flush(10_000)
        provider.shutdown()
    finally:
        server.shutdown()
        server.server_close()
    [(path, content_type, body)] = server.received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    resource = request.resource_spans[0].resource
    assert {kv.key: kv.value.string_value for kv in resource.attributes}["service.name"] == "molecule-platform"
    assert request.resource_spans[0].scope_spans[0].spans[0].name == "exported"
    assert TraceSpan.objects.filter(name="exported").count() == 1  # and into trace_spans, as always
