"""``GET /workspaces/:id/traces``, ``/traces/:trace_id`` and ``/transcript``."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from molecule_site.tests.api_client import ADMIN_TOKEN
from registry.tests.a2a_server import closed_port_url
from registry.tokens import INBOUND_SECRET_HEADER, inbound_secret, token_mint
from traces.models import TraceSpan
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

T1 = "1" * 32
T2 = "2" * 32
T3 = "3" * 32


@pytest.fixture(autouse=True)
def _secure(secure, settings):
    settings.TRACES_EXTERNAL_URL = None


@pytest.fixture
def dev():
    ws = Workspace.objects.create(name="Dev", status=WorkspaceStatus.ONLINE)
    _, ws.token = token_mint(workspace=ws)
    return ws


@pytest.fixture
def pm():
    ws = Workspace.objects.create(name="PM", status=WorkspaceStatus.ONLINE)
    _, ws.token = token_mint(workspace=ws)
    return ws


BASE = timezone.now() - timedelta(minutes=5)


def span(trace_id, span_id, *, parent="", workspace=None, name=None, start=0.0, duration=1.0, status="ok",
         attributes=None, service="molecule-workspace", kind="internal"):
    start_time = BASE + timedelta(seconds=start)
    return TraceSpan.objects.create(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent, workspace=workspace, name=name or span_id,
        service_name=service, kind=kind, start_time=start_time, end_time=start_time + timedelta(seconds=duration),
        duration_ms=duration * 1000, status=status, attributes=attributes or {},
    )


def get(client, path, token):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def sid(n: int) -> str:
    return f"{n:016x}"


@pytest.fixture
def delegation_trace(dev, pm):
    """PM's runtime → platform proxy (attributed to Dev) → Dev's runtime with two model calls."""
    span(T1, sid(1), workspace=pm, name="a2a.task", start=0, duration=10, kind="server",
         attributes={"a2a.input_preview": "plan the release", "gen_ai.prompt": "PM secret prompt"})
    span(T1, sid(2), parent=sid(1), workspace=dev, name="a2a.proxy", start=1, duration=8, kind="server",
         service="molecule-platform", attributes={"workspace.id": "dev", "a2a.method": "message/send"})
    span(T1, sid(3), parent=sid(2), workspace=dev, name="a2a.task", start=1.5, duration=7,
         attributes={"a2a.input_preview": "write the notes"})
    span(T1, sid(5), parent=sid(3), workspace=dev, name="chat gpt-4o", start=4, duration=1, status="error",
         attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1000,
                     "gen_ai.usage.output_tokens": 200, "gen_ai.completion": "the notes"})
    span(T1, sid(4), parent=sid(3), workspace=dev, name="chat gpt-4o", start=2, duration=1,
         attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 500,
                     "gen_ai.usage.output_tokens": 100})
    span(T1, sid(6), parent=sid(4), workspace=dev, name="execute_tool search", start=2.2, duration=0.1)


# --- the list --------------------------------------------------------------------------------------

def test_traces_list_sums_tokens_across_the_trace_and_names_it_by_its_root(client, dev, delegation_trace):
    response = get(client, f"/workspaces/{dev.id}/traces", dev.token)
    assert response.status_code == 200
    body = response.json()
    assert body["external_url"] is None
    [trace] = body["data"]
    assert trace["id"] == T1
    assert trace["name"] == "a2a.task"  # the root span (parent '')
    assert trace["spans"] == 6
    assert trace["usage"] == {"input": 1500, "output": 300, "total": 1800}
    assert trace["status"] == "error"
    assert trace["latency"] == pytest.approx(10.0)
    assert trace["timestamp"].endswith("Z")
    assert trace["totalCost"] == pytest.approx((1500 * 250 + 300 * 1000) / 1_000_000)
    # input/output come from this workspace's own spans, never the caller's prompt
    assert trace["input"] == "write the notes"
    assert trace["output"] == "the notes"


def test_traces_list_is_newest_first_bounded_and_only_of_traces_with_a_span_of_the_workspace(client, dev, pm):
    span(T1, sid(1), workspace=dev, start=0)
    span(T2, sid(1), workspace=dev, start=60, status="unset")
    span(T3, sid(1), workspace=pm, start=120)
    body = get(client, f"/workspaces/{dev.id}/traces", dev.token).json()
    assert [t["id"] for t in body["data"]] == [T2, T1]
    assert body["data"][0]["status"] == "ok"
    assert body["data"][0]["input"] is None and body["data"][0]["output"] is None
    assert body["data"][0]["usage"] == {"input": 0, "output": 0, "total": 0}
    assert [t["id"] for t in get(client, f"/workspaces/{dev.id}/traces?limit=1", dev.token).json()["data"]] == [T2]


@pytest.mark.parametrize("limit", ["0", "201", "abc", "-1", "1.5"])
def test_a_bad_limit_is_400(client, dev, limit):
    response = get(client, f"/workspaces/{dev.id}/traces?limit={limit}", dev.token)
    assert (response.status_code, response.json()) == (400, {"error": "limit must be an integer from 1 to 200"})


def test_the_external_trace_ui_is_named_when_configured(client, dev, settings):
    settings.TRACES_EXTERNAL_URL = "https://langfuse.example.com"
    assert get(client, f"/workspaces/{dev.id}/traces", dev.token).json() == {
        "data": [], "external_url": "https://langfuse.example.com"}


def test_another_workspaces_token_reads_no_traces(client, dev, pm, delegation_trace):
    for path in (f"/workspaces/{dev.id}/traces", f"/workspaces/{dev.id}/traces/{T1}",
                 f"/workspaces/{dev.id}/transcript"):
        response = get(client, path, pm.token)
        assert (response.status_code, response.json()) == (401, {"error": "invalid workspace auth token"}), path
        assert client.get(path).status_code == 401
        assert client.head(path, HTTP_AUTHORIZATION=f"Bearer {pm.token}").status_code == 401
    for method in ("post", "put", "patch", "delete"):
        response = getattr(client, method)(f"/workspaces/{dev.id}/traces", HTTP_AUTHORIZATION=f"Bearer {dev.token}")
        assert (response.status_code, response.content) == (404, b"404 page not found")


# --- one trace -------------------------------------------------------------------------------------

def test_trace_tree_is_depth_first_with_children_by_start_time(client, dev, delegation_trace):
    response = get(client, f"/workspaces/{dev.id}/traces/{T1}", ADMIN_TOKEN)
    assert response.status_code == 200
    tree = response.json()
    assert tree["id"] == T1
    order = [(s["span_id"], s["depth"]) for s in tree["spans"]]
    assert order == [(sid(1), 0), (sid(2), 1), (sid(3), 2), (sid(4), 3), (sid(6), 4), (sid(5), 3)]
    first = tree["spans"][0]
    assert first["offset_ms"] == 0
    assert {s["span_id"]: s["offset_ms"] for s in tree["spans"]}[sid(5)] == pytest.approx(4000)
    proxy = tree["spans"][1]
    assert (proxy["name"], proxy["kind"], proxy["service"], proxy["workspace_id"], proxy["parent_span_id"]) == (
        "a2a.proxy", "server", "molecule-platform", str(dev.id), sid(1))
    assert proxy["duration_ms"] == 8000 and proxy["status"] == "ok"
    assert proxy["start"].endswith("Z") and proxy["end"].endswith("Z")
    assert first["attributes"]["gen_ai.prompt"] == "PM secret prompt"  # an operator sees everything


def test_a_workspace_sees_the_shape_but_not_the_attributes_of_other_workspaces_spans(client, dev, delegation_trace):
    spans = {s["span_id"]: s for s in get(client, f"/workspaces/{dev.id}/traces/{T1}", dev.token).json()["spans"]}
    assert spans[sid(1)]["attributes"] == {} and spans[sid(1)]["attributes_hidden"] is True
    assert spans[sid(3)]["attributes"] == {"a2a.input_preview": "write the notes"}
    assert "attributes_hidden" not in spans[sid(3)]


def test_a_span_whose_parent_is_missing_is_a_root(client, dev):
    span(T1, sid(2), parent=sid(99), workspace=dev, start=1)
    span(T1, sid(1), workspace=dev, start=0)
    spans = get(client, f"/workspaces/{dev.id}/traces/{T1}", dev.token).json()["spans"]
    assert [(s["span_id"], s["depth"]) for s in spans] == [(sid(1), 0), (sid(2), 0)]


def test_a_trace_without_a_span_of_the_workspace_is_404(client, dev, pm):
    span(T3, sid(1), workspace=pm)
    for trace_id in (T3, T2):
        response = get(client, f"/workspaces/{dev.id}/traces/{trace_id}", dev.token)
        assert (response.status_code, response.json()) == (404, {"error": "trace not found"})


@pytest.mark.parametrize("trace_id", ["xyz", "1" * 31, "g" * 32, "0" * 32, "1" * 33])
def test_a_malformed_trace_id_is_400(client, dev, trace_id):
    response = get(client, f"/workspaces/{dev.id}/traces/{trace_id}", dev.token)
    assert response.status_code == 400
    assert "invalid trace ID" in response.json()["error"]


def test_an_uppercase_trace_id_is_read_as_lowercase(client, dev):
    span("ab" * 16, sid(1), workspace=dev)
    assert get(client, f"/workspaces/{dev.id}/traces/{'AB' * 16}", dev.token).json()["id"] == "ab" * 16


# --- the transcript --------------------------------------------------------------------------------

class _Agent(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        parsed = urlsplit(self.path)
        self.server.requests.append({"path": parsed.path, "query": parse_qs(parsed.query),
                                     "headers": {k.lower(): v for k, v in self.headers.items()}})
        status, body = self.server.answer
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def agent():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Agent)
    server.daemon_threads = True
    server.requests = []
    server.answer = (200, {"runtime": "echo", "supported": True, "lines": [{"role": "user", "text": "hi"}],
                           "cursor": 1, "more": False})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def private_targets(settings):
    settings.A2A_ALLOW_PRIVATE_TARGETS = True
    settings.SAAS_MODE = False


def point(workspace, url):
    Workspace.objects.filter(pk=workspace.pk).update(url=url)


def test_transcript_is_read_from_the_agent_with_the_inbound_secret(client, dev, agent, private_targets):
    point(dev, agent.url + "/")
    response = get(client, f"/workspaces/{dev.id}/transcript?since=3&limit=20", dev.token)
    assert response.status_code == 200
    assert response.json()["lines"] == [{"role": "user", "text": "hi"}]
    [request] = agent.requests
    assert request["path"] == "/transcript"
    assert request["query"] == {"since": ["3"], "limit": ["20"]}
    assert request["headers"][INBOUND_SECRET_HEADER.lower()] == inbound_secret(dev.id)
    assert request["headers"]["authorization"] == f"Bearer {dev.token}"  # the workspace's own token


def test_an_operators_transcript_read_does_not_pass_the_admin_token_on(client, dev, agent, private_targets):
    point(dev, agent.url)
    assert get(client, f"/workspaces/{dev.id}/transcript", ADMIN_TOKEN).status_code == 200
    assert "authorization" not in agent.requests[0]["headers"]
    assert agent.requests[0]["query"] == {}


def test_transcript_without_a_url_is_503(client, dev):
    response = get(client, f"/workspaces/{dev.id}/transcript", dev.token)
    assert (response.status_code, response.json()) == (503, {"error": "workspace has no URL", "status": "online"})


def test_an_unreachable_agent_is_502(client, dev, private_targets):
    point(dev, closed_port_url())
    response = get(client, f"/workspaces/{dev.id}/transcript", dev.token)
    assert (response.status_code, response.json()) == (502, {"error": "failed to reach workspace agent"})


def test_a_refusing_or_garbled_agent_is_502(client, dev, agent, private_targets):
    point(dev, agent.url)
    agent.answer = (401, {"error": "unauthorized"})
    response = get(client, f"/workspaces/{dev.id}/transcript", dev.token)
    assert response.status_code == 502
    assert response.json() == {"error": "workspace agent refused the transcript read: unauthorized", "agent_status": 401}
    agent.answer = (200, b"<html>")
    response = get(client, f"/workspaces/{dev.id}/transcript", dev.token)
    assert (response.status_code, response.json()) == (502, {"error": "invalid transcript response from workspace agent"})


def test_a_loopback_url_is_refused_by_the_ssrf_rule_outside_private_targets(client, dev, agent, settings):
    settings.A2A_ALLOW_PRIVATE_TARGETS = False
    point(dev, agent.url)
    response = get(client, f"/workspaces/{dev.id}/transcript", dev.token)
    assert response.status_code == 502
    assert response.json()["error"] == "workspace URL is not publicly routable"
    assert agent.requests == []


@pytest.mark.parametrize("query,error", [("since=-1", "since must be a non-negative integer"),
                                         ("since=x", "since must be a non-negative integer"),
                                         ("limit=0", "limit must be a positive integer")])
def test_bad_transcript_parameters_are_400(client, dev, query, error):
    response = get(client, f"/workspaces/{dev.id}/transcript?{query}", dev.token)
    assert (response.status_code, response.json()) == (400, {"error": error})
