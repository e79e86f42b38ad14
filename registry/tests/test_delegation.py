"""Async delegation (spec §9): the routes, the background task, and the whole flow end to end.

Three layers:
- the routes, with the Celery task's ``delay`` recorded instead of sent;
- the task run eagerly in-process against a stand-in for the proxy core, to pin every outcome
  (success, retry rules, queued, failure) to its rows and events;
- END TO END (marked ``celery_worker``): a real Celery worker subprocess, the real proxy and a
  real A2A server on loopback.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from activity import events as events_module
from activity.models import ActivityLog, StructureEvent
from registry import delegation
from registry.tokens import token_mint
from workspaces.models import Workspace, WorkspaceStatus

ADMIN = "admin-token-for-delegation-tests"
E2E_TIMEOUT_SECONDS = 15


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.ADMIN_TOKEN = ADMIN
    settings.DEV_MODE = False
    settings.A2A_ALLOW_PRIVATE_TARGETS = True
    settings.DELEGATION_RETRY_DELAY_SECONDS = 8


@pytest.fixture
def api(client, django_capture_on_commit_callbacks):
    """Calls a route; what it queued for after commit runs once it answered."""

    def call(method, path, body=None, token=ADMIN, raw=None):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        if raw is not None:
            kwargs.update(data=raw, content_type="application/json")
        elif body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        with django_capture_on_commit_callbacks(execute=True):
            return getattr(client, method.lower())(path, **kwargs)

    return call


@pytest.fixture
def queued_tasks(monkeypatch):
    """``execute_delegation.delay`` calls, recorded instead of sent to the broker."""
    calls = []
    monkeypatch.setattr(delegation.execute_delegation, "delay", lambda *args: calls.append(args))
    return calls


@pytest.fixture
def delivered(monkeypatch):
    """Events as they leave after commit: ``[(type, workspace_id, payload, persist)]``."""
    seen = []
    monkeypatch.setattr(
        events_module, "_deliver",
        lambda event_type, workspace_id, payload, persist, agent_id, target_id: seen.append(
            (event_type, str(workspace_id), payload, persist)
        ),
    )
    return seen


def pair():
    source = Workspace.objects.create(name="PM", status=WorkspaceStatus.ONLINE)
    target = Workspace.objects.create(name="Dev Lead", status=WorkspaceStatus.ONLINE)
    return source, target


def delegate_rows(source):
    return ActivityLog.objects.filter(workspace=source, method="delegate")


def result_rows(source):
    return ActivityLog.objects.filter(workspace=source, method="delegate_result")


# --- POST /workspaces/:id/delegate ---------------------------------------------------------------

@pytest.mark.django_db
def test_delegate_records_the_row_announces_it_and_queues_the_task(api, queued_tasks, delivered):
    source, target = pair()
    _, token = token_mint(workspace=source)
    task = "Write the release notes " + "x" * 100
    response = api("POST", f"/workspaces/{source.id}/delegate",
                   {"target_id": str(target.id), "task": task, "idempotency_key": "k1"}, token=token)
    assert response.status_code == 202
    body = response.json()
    delegation_id = body["delegation_id"]
    assert uuid.UUID(delegation_id)
    assert response.content == (
        f'{{"delegation_id":"{delegation_id}","status":"delegated","target_id":"{target.id}"}}'.encode()
    )
    row = delegate_rows(source).get()
    assert (row.activity_type, row.method, row.source_id, row.target_id, row.status, row.idempotency_key) == (
        "delegation", "delegate", source.id, target.id, "pending", "k1"
    )
    assert row.summary == f"Delegating to {target.id}"
    assert row.request_body == {"task": task, "delegation_id": delegation_id}
    assert delivered == [("DELEGATION_SENT", str(source.id), {
        "delegation_id": delegation_id, "target_id": str(target.id), "task_preview": task[:100] + "...",
    }, True)]
    assert queued_tasks == [(str(source.id), str(target.id), delegation_id, task)]


@pytest.mark.django_db
def test_delegate_short_task_preview_has_no_ellipsis(api, queued_tasks, delivered):
    source, target = pair()
    api("POST", f"/workspaces/{source.id}/delegate", {"target_id": str(target.id), "task": "Ship it"})
    assert delivered[0][2]["task_preview"] == "Ship it"


@pytest.mark.django_db
@pytest.mark.parametrize("body", [
    {},
    {"task": "t"},
    {"target_id": "", "task": "t"},
    {"target_id": str(uuid.uuid4())},
    {"target_id": str(uuid.uuid4()), "task": ""},
    {"target_id": str(uuid.uuid4()), "task": 5},
    {"target_id": str(uuid.uuid4()), "task": "t", "idempotency_key": 7},
    [],
])
def test_delegate_rejects_an_unbindable_request(api, queued_tasks, body):
    source, _ = pair()
    response = api("POST", f"/workspaces/{source.id}/delegate", body)
    assert (response.status_code, response.content) == (400, b'{"error":"invalid delegation request"}')
    assert not ActivityLog.objects.exists() and not queued_tasks


@pytest.mark.django_db
def test_delegate_rejects_malformed_json_a_bad_target_and_itself(api, queued_tasks):
    source, _ = pair()
    malformed = api("POST", f"/workspaces/{source.id}/delegate", raw="{oops")
    assert (malformed.status_code, malformed.content) == (400, b'{"error":"invalid delegation request"}')
    bad_target = api("POST", f"/workspaces/{source.id}/delegate", {"target_id": "dev-lead", "task": "t"})
    assert (bad_target.status_code, bad_target.content) == (400, b'{"error":"target_id must be a valid UUID"}')
    itself = api("POST", f"/workspaces/{source.id}/delegate", {"target_id": str(source.id), "task": "t"})
    assert (itself.status_code, itself.content) == (400, b'{"error":"self-delegation not permitted"}')
    assert not ActivityLog.objects.exists() and not queued_tasks


@pytest.mark.django_db
def test_delegate_needs_the_source_token_and_an_existing_source(api, queued_tasks):
    source, target = pair()
    _, target_token = token_mint(workspace=target)
    body = {"target_id": str(target.id), "task": "t"}
    missing = api("POST", f"/workspaces/{source.id}/delegate", body, token=None)
    assert (missing.status_code, missing.content) == (401, b'{"error":"missing workspace auth token"}')
    foreign = api("POST", f"/workspaces/{source.id}/delegate", body, token=target_token)
    assert (foreign.status_code, foreign.content) == (401, b'{"error":"invalid workspace auth token"}')
    unknown = api("POST", f"/workspaces/{uuid.uuid4()}/delegate", body)
    assert (unknown.status_code, unknown.content) == (404, b'{"error":"workspace not found"}')
    assert not queued_tasks


@pytest.mark.django_db
def test_delegate_with_a_known_key_returns_the_first_delegation(api, queued_tasks, delivered):
    source, target = pair()
    body = {"target_id": str(target.id), "task": "t", "idempotency_key": "same"}
    first = api("POST", f"/workspaces/{source.id}/delegate", body).json()
    delegate_rows(source).update(status="dispatched")
    again = api("POST", f"/workspaces/{source.id}/delegate", body)
    assert again.status_code == 200
    assert again.content == (
        f'{{"delegation_id":"{first["delegation_id"]}","status":"dispatched","target_id":"{target.id}",'
        f'"idempotent_hit":true}}'.encode()
    )
    assert delegate_rows(source).count() == 1
    assert len(queued_tasks) == 1 and len(delivered) == 1


@pytest.mark.django_db
def test_delegate_retries_a_failed_delegation_with_the_same_key(api, queued_tasks):
    source, target = pair()
    body = {"target_id": str(target.id), "task": "t", "idempotency_key": "again"}
    first = api("POST", f"/workspaces/{source.id}/delegate", body).json()
    delegate_rows(source).update(status="failed", error_detail="boom")
    retried = api("POST", f"/workspaces/{source.id}/delegate", body)
    assert retried.status_code == 202
    assert retried.json()["delegation_id"] != first["delegation_id"]
    row = delegate_rows(source).get()
    assert (row.status, row.request_body["delegation_id"]) == ("pending", retried.json()["delegation_id"])
    assert len(queued_tasks) == 2


@pytest.mark.django_db
def test_keys_are_per_source_workspace(api, queued_tasks):
    source, target = pair()
    other = Workspace.objects.create(name="QA")
    body = {"target_id": str(target.id), "task": "t", "idempotency_key": "shared"}
    assert api("POST", f"/workspaces/{source.id}/delegate", body).status_code == 202
    assert api("POST", f"/workspaces/{other.id}/delegate", body).status_code == 202
    assert len(queued_tasks) == 2


@pytest.mark.django_db
def test_delegate_warns_when_the_row_cannot_be_written(api, queued_tasks, monkeypatch):
    from django.db import DatabaseError

    source, target = pair()

    def broken(**kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(delegation, "_delegate_row", broken)
    response = api("POST", f"/workspaces/{source.id}/delegate", {"target_id": str(target.id), "task": "t"})
    assert response.status_code == 202
    body = response.json()
    assert body == {"delegation_id": body["delegation_id"], "status": "delegated", "target_id": str(target.id),
                    "warning": "delegation dispatched but status tracking unavailable"}
    assert len(queued_tasks) == 1


# --- POST /workspaces/:id/delegations/record --------------------------------------------------------

@pytest.mark.django_db
def test_record_stores_a_dispatched_delegation(api, delivered):
    source, target = pair()
    delegation_id = str(uuid.uuid4())
    response = api("POST", f"/workspaces/{source.id}/delegations/record",
                   {"target_id": str(target.id), "task": "Review PR 12", "delegation_id": delegation_id})
    assert (response.status_code, response.content) == (
        202, f'{{"delegation_id":"{delegation_id}","status":"recorded"}}'.encode()
    )
    row = delegate_rows(source).get()
    assert (row.status, row.source_id, row.target_id, row.summary, row.request_body) == (
        "dispatched", source.id, target.id, f"Delegating to {target.id}",
        {"task": "Review PR 12", "delegation_id": delegation_id},
    )
    assert delivered == [("DELEGATION_SENT", str(source.id), {
        "delegation_id": delegation_id, "target_id": str(target.id), "task_preview": "Review PR 12"}, True)]


@pytest.mark.django_db
@pytest.mark.parametrize("body", [
    {"task": "t", "delegation_id": "d"},
    {"target_id": str(uuid.uuid4()), "delegation_id": "d"},
    {"target_id": str(uuid.uuid4()), "task": "t"},
    {"target_id": str(uuid.uuid4()), "task": "t", "delegation_id": ""},
])
def test_record_requires_every_field(api, body):
    source, _ = pair()
    response = api("POST", f"/workspaces/{source.id}/delegations/record", body)
    assert (response.status_code, response.content) == (400, b'{"error":"invalid request body"}')


@pytest.mark.django_db
def test_record_requires_a_uuid_target(api):
    source, _ = pair()
    response = api("POST", f"/workspaces/{source.id}/delegations/record",
                   {"target_id": "qa", "task": "t", "delegation_id": "d"})
    assert (response.status_code, response.content) == (400, b'{"error":"target_id must be a valid UUID"}')


# --- POST /workspaces/:id/delegations/:delegation_id/update -------------------------------------------

def recorded(api, source, target, delegation_id):
    api("POST", f"/workspaces/{source.id}/delegations/record",
        {"target_id": str(target.id), "task": "t", "delegation_id": delegation_id})


@pytest.mark.django_db
def test_update_completed_adds_the_result_row(api, delivered):
    source, target = pair()
    delegation_id = str(uuid.uuid4())
    recorded(api, source, target, delegation_id)
    delivered.clear()
    preview = "All 12 tests pass. " * 6
    response = api("POST", f"/workspaces/{source.id}/delegations/{delegation_id}/update",
                   {"status": "completed", "response_preview": preview})
    assert (response.status_code, response.content) == (
        200, f'{{"status":"completed","delegation_id":"{delegation_id}"}}'.encode()
    )
    assert delegate_rows(source).get().status == "completed"
    result = result_rows(source).get()
    assert (result.status, result.target_id, result.source_id) == ("completed", target.id, source.id)
    assert result.summary == f"Delegation completed ({preview[:80]}...)"
    assert result.response_body == {"text": preview, "delegation_id": delegation_id}
    assert delivered == [("DELEGATION_COMPLETE", str(source.id),
                          {"delegation_id": delegation_id, "response_preview": preview}, True)]


@pytest.mark.django_db
def test_update_failed_records_the_error(api, delivered):
    source, target = pair()
    delegation_id = str(uuid.uuid4())
    recorded(api, source, target, delegation_id)
    delivered.clear()
    response = api("POST", f"/workspaces/{source.id}/delegations/{delegation_id}/update",
                   {"status": "failed", "error": "peer timed out"})
    assert (response.status_code, response.content) == (
        200, f'{{"status":"failed","delegation_id":"{delegation_id}"}}'.encode()
    )
    row = delegate_rows(source).get()
    assert (row.status, row.error_detail) == ("failed", "peer timed out")
    assert not result_rows(source).exists()
    assert delivered == [("DELEGATION_FAILED", str(source.id),
                          {"delegation_id": delegation_id, "error": "peer timed out"}, True)]


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{}, {"status": "queued"}, {"status": "COMPLETED"}, {"status": 1}])
def test_update_accepts_only_completed_or_failed(api, body):
    source, _ = pair()
    response = api("POST", f"/workspaces/{source.id}/delegations/{uuid.uuid4()}/update", body)
    assert (response.status_code, response.content) == (400, b'{"error":"status must be \'completed\' or \'failed\'"}')


# --- GET /workspaces/:id/delegations -------------------------------------------------------------------

@pytest.mark.django_db
def test_delegations_list_newest_first_with_optional_keys(api):
    source, target = pair()
    base = timezone.now()

    def row(minutes_ago, **fields):
        created = ActivityLog.objects.create(workspace=source, activity_type="delegation", source_id=source.id,
                                             target_id=target.id, **fields)
        ActivityLog.objects.filter(pk=created.pk).update(created_at=base - timedelta(minutes=minutes_ago))
        return created

    sent = row(3, method="delegate", summary=f"Delegating to {target.id}", status="completed",
               request_body={"task": "t", "delegation_id": "d-1"})
    done = row(2, method="delegate_result", summary="Delegation completed (ok)", status="completed",
               response_body={"text": "y" * 400, "delegation_id": "d-1"})
    failed = row(1, method="delegate_result", summary="Delegation failed", status="failed", error_detail="boom",
                 response_body={"delegation_id": "d-2"})
    row(0, method="notify", summary="not a delegation")
    response = api("GET", f"/workspaces/{source.id}/delegations")
    assert response.status_code == 200
    items = response.json()
    stamps = [item["created_at"] for item in items]
    assert items == [
        {"id": str(failed.id), "type": "delegation", "source_id": str(source.id), "target_id": str(target.id),
         "summary": "Delegation failed", "status": "failed", "created_at": stamps[0], "delegation_id": "d-2",
         "error": "boom"},
        {"id": str(done.id), "type": "delegation", "source_id": str(source.id), "target_id": str(target.id),
         "summary": "Delegation completed (ok)", "status": "completed", "created_at": stamps[1],
         "delegation_id": "d-1", "response_preview": "y" * 300},
        {"id": str(sent.id), "type": "delegation", "source_id": str(source.id), "target_id": str(target.id),
         "summary": f"Delegating to {target.id}", "status": "completed", "created_at": stamps[2],
         "delegation_id": "d-1"},
    ]


@pytest.mark.django_db
def test_delegations_list_is_capped_at_50_and_empty_is_an_array(api):
    source, target = pair()
    assert api("GET", f"/workspaces/{source.id}/delegations").content == b"[]"
    ActivityLog.objects.bulk_create(
        ActivityLog(workspace=source, activity_type="delegation", method="delegate", target_id=target.id)
        for _ in range(55)
    )
    assert len(api("GET", f"/workspaces/{source.id}/delegations").json()) == 50
    missing = api("GET", f"/workspaces/{source.id}/delegations", token=None)
    assert (missing.status_code, missing.content) == (401, b'{"error":"missing workspace auth token"}')


# --- the background task, against a stand-in proxy ---------------------------------------------------------

@dataclass
class Answer:
    """Shaped like ``registry.proxy.ProxyResult``."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)
    queued: bool = False
    restarting: bool = False


def rpc_result(result: dict) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": "1", "result": result}).encode()


@pytest.fixture
def proxy(monkeypatch):
    """Replace the proxy core: ``proxy.answers`` are returned in order; calls are recorded."""
    class Stand:
        answers: list = []
        calls: list = []

        def __call__(self, *, target_id, caller_id, body, log_activity=True, traceparent=None):
            self.calls.append({"target_id": target_id, "caller_id": caller_id, "body": json.loads(body)})
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    stand = Stand()
    stand.answers, stand.calls = [], []
    monkeypatch.setattr(delegation, "proxy_a2a_sync", stand)
    return stand


def run_task(django_capture_on_commit_callbacks, source, target, delegation_id, task="Ship it"):
    with django_capture_on_commit_callbacks(execute=True):
        return delegation.execute_delegation.apply(args=(str(source.id), str(target.id), delegation_id, task)).get()


@pytest.fixture
def started(api, queued_tasks):
    """A delegation as ``POST /delegate`` leaves it: a pending row, the task queued."""
    source, target = pair()
    response = api("POST", f"/workspaces/{source.id}/delegate", {"target_id": str(target.id), "task": "Ship it"})
    return source, target, response.json()["delegation_id"]


@pytest.mark.django_db
def test_task_sends_message_send_as_the_source_and_records_completion(
    started, proxy, delivered, django_capture_on_commit_callbacks
):
    source, target, delegation_id = started
    text = "done: " + "z" * 300
    proxy.answers = [Answer(200, rpc_result({"parts": [{"kind": "data", "data": {}}, {"kind": "text", "text": text}]}))]
    assert run_task(django_capture_on_commit_callbacks, source, target, delegation_id) == "completed"
    assert proxy.calls == [{
        "target_id": str(target.id), "caller_id": str(source.id),
        "body": {"method": "message/send", "params": {"message": {
            "role": "user", "messageId": delegation_id, "parts": [{"type": "text", "text": "Ship it"}],
            "metadata": {"delegation_id": delegation_id}}}},
    }]
    assert delegate_rows(source).get().status == "completed"
    result = result_rows(source).get()
    assert (result.status, result.source_id, result.target_id) == ("completed", source.id, target.id)
    assert result.summary == f"Delegation completed ({text[:80]}...)"
    assert result.response_body == {"text": text, "delegation_id": delegation_id}
    assert delivered == [
        ("DELEGATION_STATUS", str(source.id),
         {"delegation_id": delegation_id, "target_id": str(target.id), "status": "dispatched"}, True),
        ("DELEGATION_COMPLETE", str(source.id),
         {"delegation_id": delegation_id, "target_id": str(target.id), "response_preview": text[:200] + "..."}, True),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("first", [
    Answer(502, b'{"error":"failed to reach workspace agent"}'),
    Answer(503, b'{"error":"workspace agent unreachable","restarting":true}', restarting=True),
])
def test_task_retries_once_when_the_target_was_unreachable_or_restarting(
    started, proxy, delivered, django_capture_on_commit_callbacks, first
):
    source, target, delegation_id = started
    proxy.answers = [first, Answer(200, rpc_result({"parts": [{"kind": "text", "text": "ok"}]}))]
    assert run_task(django_capture_on_commit_callbacks, source, target, delegation_id) == "completed"
    assert len(proxy.calls) == 2
    assert [event[0] for event in delivered] == ["DELEGATION_STATUS", "DELEGATION_COMPLETE"]  # dispatched once
    assert result_rows(source).get().summary == "Delegation completed (ok)"


@pytest.mark.django_db
def test_task_fails_after_the_one_retry(started, proxy, delivered, django_capture_on_commit_callbacks):
    source, target, delegation_id = started
    proxy.answers = [Answer(502, b'{"error":"failed to reach workspace agent"}')] * 2
    assert run_task(django_capture_on_commit_callbacks, source, target, delegation_id) == "failed"
    assert len(proxy.calls) == 2
    row = delegate_rows(source).get()
    assert (row.status, row.error_detail) == ("failed", "failed to reach workspace agent")
    result = result_rows(source).get()
    assert (result.status, result.summary, result.error_detail, result.target_id) == (
        "failed", "Delegation failed", "failed to reach workspace agent", target.id
    )
    assert delivered[-1] == ("DELEGATION_FAILED", str(source.id), {
        "delegation_id": delegation_id, "target_id": str(target.id), "error": "failed to reach workspace agent"
    }, True)


@pytest.mark.django_db
@pytest.mark.parametrize("answer, error", [
    (Answer(500, b'{"error":"Internal Server Error"}'), "Internal Server Error"),
    (Answer(503, b'{"error":"workspace has no URL","status":"offline"}'), "workspace has no URL"),
    (Answer(403, b'{"error":"access denied: workspaces cannot communicate per hierarchy rules"}'),
     "access denied: workspaces cannot communicate per hierarchy rules"),
    (Answer(504, b"gateway timeout"), "HTTP 504"),
    (RuntimeError("proxy exploded"), "proxy exploded"),
])
def test_task_fails_without_retry_on_other_errors(started, proxy, django_capture_on_commit_callbacks, answer, error):
    source, target, delegation_id = started
    proxy.answers = [answer]
    assert run_task(django_capture_on_commit_callbacks, source, target, delegation_id) == "failed"
    assert len(proxy.calls) == 1
    assert delegate_rows(source).get().error_detail == error


@pytest.mark.django_db
def test_task_records_a_queued_delegation(started, proxy, delivered, django_capture_on_commit_callbacks):
    source, target, delegation_id = started
    proxy.answers = [Answer(202, b'{"queued":true,"queue_id":"q","queue_depth":1}', queued=True)]
    assert run_task(django_capture_on_commit_callbacks, source, target, delegation_id) == "queued"
    assert delegate_rows(source).get().status == "queued"
    result = result_rows(source).get()
    assert (result.status, result.response_body) == ("queued", {"delegation_id": delegation_id, "queued": True})
    assert delivered[-1] == ("DELEGATION_STATUS", str(source.id),
                             {"delegation_id": delegation_id, "target_id": str(target.id), "status": "queued"}, True)


@pytest.mark.parametrize("body, text", [
    (rpc_result({"parts": [{"kind": "text", "text": "from parts"}]}), "from parts"),
    (rpc_result({"parts": [], "artifacts": [
        {"parts": [{"kind": "file"}]}, {"parts": [{"kind": "text", "text": "art"}]},
    ]}), "art"),
    (rpc_result({"status": {"state": "completed"}}), None),
    (b'{"jsonrpc":"2.0","id":"1","error":{"code":-32000,"message":"nope"}}', None),
    (b"plain words", None),
])
def test_response_text_prefers_parts_then_artifacts_then_the_raw_body(body, text):
    assert delegation.response_text(body) == (text if text is not None else body.decode())


# --- END TO END: a real Celery worker, the real proxy, a real A2A server on loopback ---------------------

class A2AServer:
    """A tiny agent answering JSON-RPC ``message/send`` on 127.0.0.1.

    Modes: ``ok`` answers ``done: <task>``; ``bad-gateway`` answers HTTP 502 (the proxy passes
    it on, the delegation retries once); ``hang-up`` closes the connection without answering
    (the proxy treats the target as busy and queues the message).
    """

    def __init__(self, mode: str):
        self.mode = mode
        self.requests: list[dict] = []
        self.times: list[float] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                server.requests.append(body)
                server.times.append(time.monotonic())
                if server.mode == "hang-up":
                    self.close_connection = True
                    return
                if server.mode == "bad-gateway":
                    self._send(502, {"error": "agent backend down"})
                    return
                task = body["params"]["message"]["parts"][0]["text"]
                self._send(200, {"jsonrpc": "2.0", "id": body.get("id"),
                                 "result": {"parts": [{"kind": "text", "text": f"done: {task}"}]}})

            def _send(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for_final_row(source, worker, statuses=("completed", "failed", "queued")) -> ActivityLog:
    deadline = time.monotonic() + E2E_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        row = delegate_rows(source).first()
        if row is not None and row.status in statuses:
            return row
        time.sleep(0.1)
    pytest.fail(f"delegation did not finish within {E2E_TIMEOUT_SECONDS}s; worker log:\n{worker.log()}")


def e2e_pair(url):
    source = Workspace.objects.create(name="PM", status=WorkspaceStatus.ONLINE)
    target = Workspace.objects.create(name="Dev Lead", status=WorkspaceStatus.ONLINE, url=url)
    _, token = token_mint(workspace=source)
    return source, target, token


def delegate_for_real(client, source, target, token, task):
    response = client.post(
        f"/workspaces/{source.id}/delegate", json.dumps({"target_id": str(target.id), "task": task}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 202, response.content
    return response.json()["delegation_id"]


def event_payloads(source, delegation_id):
    events = StructureEvent.objects.filter(workspace_id=source.id, payload__delegation_id=delegation_id)
    return [(e.event_type, e.payload) for e in events.order_by("created_at")]


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_e2e_delegation_completes_through_worker_proxy_and_agent(client, celery_worker):
    with A2AServer("ok") as agent:
        source, target, token = e2e_pair(agent.url)
        delegation_id = delegate_for_real(client, source, target, token, "write the changelog")
        row = wait_for_final_row(source, celery_worker)
    assert row.status == "completed", celery_worker.log()
    [sent] = agent.requests
    assert sent["jsonrpc"] == "2.0" and sent["method"] == "message/send"
    assert sent["params"]["message"] == {
        "role": "user", "messageId": delegation_id, "parts": [{"type": "text", "text": "write the changelog"}],
        "metadata": {"delegation_id": delegation_id},
    }
    result = result_rows(source).get()
    assert (result.status, result.summary) == ("completed", "Delegation completed (done: write the changelog)")
    assert result.response_body == {"text": "done: write the changelog", "delegation_id": delegation_id}
    assert event_payloads(source, delegation_id) == [
        ("DELEGATION_SENT", {"delegation_id": delegation_id, "target_id": str(target.id),
                             "task_preview": "write the changelog"}),
        ("DELEGATION_STATUS", {"delegation_id": delegation_id, "target_id": str(target.id), "status": "dispatched"}),
        ("DELEGATION_COMPLETE", {"delegation_id": delegation_id, "target_id": str(target.id),
                                 "response_preview": "done: write the changelog"}),
    ]
    listed = client.get(f"/workspaces/{source.id}/delegations", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert [(i["status"], i.get("response_preview")) for i in listed] == [
        ("completed", "done: write the changelog"), ("completed", None)
    ]
    # The proxy logged the call on the target, with the source as caller.
    received = ActivityLog.objects.get(workspace=target, activity_type="a2a_receive")
    assert (received.source_id, received.method) == (source.id, "message/send")


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_e2e_unreachable_agent_is_retried_once_then_the_delegation_fails(client, celery_worker):
    with A2AServer("bad-gateway") as agent:
        source, target, token = e2e_pair(agent.url)
        delegation_id = delegate_for_real(client, source, target, token, "deploy")
        row = wait_for_final_row(source, celery_worker, statuses=("failed", "completed", "queued"))
        time.sleep(0.3)  # a third attempt would show here
    assert row.status == "failed", celery_worker.log()
    assert len(agent.requests) == 2
    assert agent.times[1] - agent.times[0] >= 1.0  # the worker runs with DELEGATION_RETRY_DELAY_SECONDS=1
    assert row.error_detail == "agent backend down"
    result = result_rows(source).get()
    assert (result.status, result.summary, result.error_detail) == ("failed", "Delegation failed", "agent backend down")
    assert [event for event, _ in event_payloads(source, delegation_id)] == [
        "DELEGATION_SENT", "DELEGATION_STATUS", "DELEGATION_FAILED"
    ]


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_e2e_busy_agent_leaves_the_delegation_queued(client, celery_worker):
    with A2AServer("hang-up") as agent:
        source, target, token = e2e_pair(agent.url)
        delegation_id = delegate_for_real(client, source, target, token, "triage bugs")
        row = wait_for_final_row(source, celery_worker)
    assert row.status == "queued", celery_worker.log()
    assert len(agent.requests) == 1
    result = result_rows(source).get()
    assert (result.status, result.response_body) == ("queued", {"delegation_id": delegation_id, "queued": True})
    assert event_payloads(source, delegation_id)[-1] == (
        "DELEGATION_STATUS", {"delegation_id": delegation_id, "target_id": str(target.id), "status": "queued"}
    )
