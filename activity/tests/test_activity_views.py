"""Activity routes on the wire (spec §10): the feed, agent reports, notify, session search and
workspace config — exact status codes and bodies, and the events each write announces."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from activity import events as events_module
from activity.models import ActivityLog
from memory.models import AgentMemory
from registry.tokens import token_mint
from workspaces.models import Workspace, WorkspaceConfig, WorkspaceStatus

pytestmark = pytest.mark.django_db

ADMIN = "admin-token-for-activity-tests"
INVALID_BODY = b'{"error":"invalid request body"}'
NOT_FOUND = b'{"error":"workspace not found"}'


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.ADMIN_TOKEN = ADMIN
    settings.DEV_MODE = False


@pytest.fixture
def workspace():
    return Workspace.objects.create(name="Dev Lead", status=WorkspaceStatus.ONLINE)


@pytest.fixture
def api(client, django_capture_on_commit_callbacks):
    """Calls a route as an agent does; what the request queued for after commit runs after it."""

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


def log(workspace, minutes_ago=0, **fields):
    row = ActivityLog.objects.create(workspace=workspace, **{"activity_type": "agent_log", **fields})
    ActivityLog.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    row.refresh_from_db()
    return row


# --- GET /workspaces/:id/activity ----------------------------------------------------------------

def test_activity_list_is_newest_first_with_optional_keys_only_when_set(api, workspace):
    source = uuid.uuid4()
    old = log(workspace, minutes_ago=5, method="message/send", summary="old")
    new = log(
        workspace, minutes_ago=1, activity_type="a2a_receive", source_id=source, target_id=workspace.id,
        method="message/send", summary="new", duration_ms=12, status="error", error_detail="boom",
        request_body={"q": 1}, response_body={"a": 2}, tool_trace=[{"tool": "x"}],
    )
    response = api("GET", f"/workspaces/{workspace.id}/activity")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    items = response.json()
    assert items == [
        {
            "id": str(new.id), "workspace_id": str(workspace.id), "activity_type": "a2a_receive",
            "source_id": str(source), "target_id": str(workspace.id), "method": "message/send", "summary": "new",
            "duration_ms": 12, "status": "error", "error_detail": "boom",
            "created_at": items[0]["created_at"],
            "request_body": {"q": 1}, "response_body": {"a": 2}, "tool_trace": [{"tool": "x"}],
        },
        {
            "id": str(old.id), "workspace_id": str(workspace.id), "activity_type": "agent_log",
            "source_id": None, "target_id": None, "method": "message/send", "summary": "old",
            "duration_ms": None, "status": "ok", "error_detail": None, "created_at": items[1]["created_at"],
        },
    ]
    assert items[0]["created_at"].endswith("Z")
    assert b'"status":"error"' in response.content  # compact JSON


def test_activity_list_filters_by_type_and_source(api, workspace):
    canvas = log(workspace, minutes_ago=3, activity_type="a2a_receive")
    agent = log(workspace, minutes_ago=2, activity_type="a2a_receive", source_id=uuid.uuid4())
    other_type = log(workspace, minutes_ago=1, activity_type="task_update", source_id=uuid.uuid4())

    def ids(query):
        response = api("GET", f"/workspaces/{workspace.id}/activity{query}")
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()]

    assert ids("") == [str(other_type.id), str(agent.id), str(canvas.id)]
    assert ids("?type=a2a_receive") == [str(agent.id), str(canvas.id)]
    assert ids("?source=canvas") == [str(canvas.id)]
    assert ids("?source=agent") == [str(other_type.id), str(agent.id)]
    assert ids("?type=a2a_receive&source=agent") == [str(agent.id)]


def test_activity_list_rejects_an_unknown_source(api, workspace):
    response = api("GET", f"/workspaces/{workspace.id}/activity?source=human")
    assert (response.status_code, response.content) == (400, b'{"error":"source must be \'canvas\' or \'agent\'"}')


def test_activity_list_limit_defaults_to_100_caps_at_500_and_ignores_bad_values(api, workspace):
    ActivityLog.objects.bulk_create(ActivityLog(workspace=workspace, activity_type="agent_log") for _ in range(510))

    def count(query):
        return len(api("GET", f"/workspaces/{workspace.id}/activity{query}").json())

    assert count("") == 100
    assert count("?limit=7") == 7
    assert count("?limit=9999") == 500
    assert count("?limit=abc") == 100
    assert count("?limit=0") == 100
    assert count("?limit=-3") == 100


def test_activity_list_of_an_unknown_workspace_is_an_empty_array(api):
    response = api("GET", f"/workspaces/{uuid.uuid4()}/activity")
    assert (response.status_code, response.content) == (200, b"[]")


def test_activity_routes_need_the_workspace_token(api, workspace):
    other = Workspace.objects.create(name="QA")
    _, other_token = token_mint(workspace=other)
    _, own_token = token_mint(workspace=workspace)
    missing = api("GET", f"/workspaces/{workspace.id}/activity", token=None)
    assert (missing.status_code, missing.content) == (401, b'{"error":"missing workspace auth token"}')
    foreign = api("GET", f"/workspaces/{workspace.id}/activity", token=other_token)
    assert (foreign.status_code, foreign.content) == (401, b'{"error":"invalid workspace auth token"}')
    assert api("GET", f"/workspaces/{workspace.id}/activity", token=own_token).status_code == 200
    for method, path in (("POST", "activity"), ("POST", "notify"), ("GET", "session-search"), ("GET", "config"),
                         ("PATCH", "config")):
        body = {"message": "x"} if method != "GET" else None
        response = api(method, f"/workspaces/{workspace.id}/{path}", body, token=None)
        assert (response.status_code, response.content) == (401, b'{"error":"missing workspace auth token"}')


# --- POST /workspaces/:id/activity -----------------------------------------------------------------

def test_report_logs_a_row_defaults_source_and_status_and_broadcasts(api, workspace, delivered):
    _, token = token_mint(workspace=workspace)
    target = uuid.uuid4()
    response = api(
        "POST", f"/workspaces/{workspace.id}/activity",
        {"activity_type": "skill_promotion", "method": "memory/skill-promotion", "summary": "promoted",
         "target_id": str(target), "duration_ms": 40, "metadata": {"source": "memory-curation"},
         "response_body": {"ok": True}, "unknown_field": "ignored"},
        token=token,
    )
    assert (response.status_code, response.content) == (200, b'{"status":"logged"}')
    row = ActivityLog.objects.get(workspace=workspace)
    assert (row.activity_type, row.method, row.summary, row.status) == (
        "skill_promotion", "memory/skill-promotion", "promoted", "ok"
    )
    assert (row.source_id, row.target_id, row.duration_ms) == (workspace.id, target, 40)
    assert row.request_body == {"source": "memory-curation"}  # falls back to metadata
    assert row.response_body == {"ok": True}
    assert row.error_detail is None and row.tool_trace is None
    assert delivered == [(
        "ACTIVITY_LOGGED", str(workspace.id),
        {"activity_type": "skill_promotion", "method": "memory/skill-promotion", "summary": "promoted",
         "status": "ok", "source_id": str(workspace.id), "target_id": str(target), "duration_ms": 40},
        False,
    )]


def test_report_keeps_request_body_over_metadata_and_carries_tool_trace(api, workspace, delivered):
    response = api(
        "POST", f"/workspaces/{workspace.id}/activity",
        {"activity_type": "error", "source_id": str(workspace.id), "status": "error", "error_detail": "bad",
         "request_body": {"r": 1}, "metadata": {"m": 2}, "tool_trace": [{"tool": "grep"}]},
    )
    assert (response.status_code, response.content) == (200, b'{"status":"logged"}')
    row = ActivityLog.objects.get(workspace=workspace)
    assert (row.request_body, row.status, row.error_detail, row.tool_trace) == (
        {"r": 1}, "error", "bad", [{"tool": "grep"}]
    )
    assert delivered[0][2] == {
        "activity_type": "error", "method": None, "summary": None, "status": "error",
        "source_id": str(workspace.id), "target_id": None, "duration_ms": None, "tool_trace": [{"tool": "grep"}],
    }


@pytest.mark.parametrize("body", [
    {},
    {"activity_type": ""},
    {"activity_type": 5},
    {"activity_type": "agent_log", "duration_ms": "fast"},
    {"activity_type": "agent_log", "duration_ms": 1.5},
    {"activity_type": "agent_log", "duration_ms": 2**31},
    {"activity_type": "agent_log", "summary": ["not", "text"]},
    {"activity_type": "agent_log", "target_id": "not-a-uuid"},
    [],
])
def test_report_rejects_an_unbindable_body(api, workspace, body):
    response = api("POST", f"/workspaces/{workspace.id}/activity", body)
    assert (response.status_code, response.content) == (400, INVALID_BODY)
    assert not ActivityLog.objects.exists()


def test_report_stores_summary_and_error_detail_redacted_and_the_bodies_as_sent(api, workspace, delivered):
    _, token = token_mint(workspace=workspace)
    body = {
        "activity_type": "error", "summary": f"connecting to {DSN}", "error_detail": f"bad key\n{PEM}",
        "request_body": {"text": f"connect to {DSN}"},
    }
    assert api("POST", f"/workspaces/{workspace.id}/activity", body, token=token).status_code == 200
    [item] = api("GET", f"/workspaces/{workspace.id}/activity", token=token).json()
    assert (item["summary"], item["error_detail"]) == (
        "connecting to postgres://[REDACTED:URL_CREDENTIALS]@db/x", "bad key\n[REDACTED:PRIVATE_KEY]",
    )
    assert item["request_body"] == {"text": f"connect to {DSN}"}  # an A2A body: not rewritten
    assert delivered[0][2]["summary"] == "connecting to postgres://[REDACTED:URL_CREDENTIALS]@db/x"


def test_report_rejects_malformed_json(api, workspace):
    response = api("POST", f"/workspaces/{workspace.id}/activity", raw="{nope")
    assert (response.status_code, response.content) == (400, INVALID_BODY)


def test_report_rejects_an_unknown_activity_type(api, workspace):
    response = api("POST", f"/workspaces/{workspace.id}/activity", {"activity_type": "delegation"})
    assert response.status_code == 400
    assert response.content == (
        b'{"error":"invalid activity_type, must be one of: a2a_send, a2a_receive, task_update, agent_log, '
        b'skill_promotion, memory_write, error"}'
    )


def test_report_refuses_a_foreign_source_id(api, workspace):
    response = api(
        "POST", f"/workspaces/{workspace.id}/activity", {"activity_type": "agent_log", "source_id": str(uuid.uuid4())}
    )
    assert response.status_code == 403
    assert response.content == b'{"error":"source_id must match authenticated workspace"}'
    assert not ActivityLog.objects.exists()


def test_report_for_an_unknown_workspace_is_not_found(api):
    response = api("POST", f"/workspaces/{uuid.uuid4()}/activity", {"activity_type": "agent_log"})
    assert (response.status_code, response.content) == (404, NOT_FOUND)


# --- POST /workspaces/:id/notify ---------------------------------------------------------------------

def test_notify_logs_the_message_with_file_parts_and_broadcasts(api, workspace, delivered):
    message = "x " * 40 + "y"  # 81 characters, with no run the secret redaction would take
    response = api(
        "POST", f"/workspaces/{workspace.id}/notify",
        {"message": message, "type": "delegation_result", "attachments": [
            {"uri": "workspace:/out/report.pdf", "name": "report.pdf", "mimeType": "application/pdf", "size": 2048.0},
            {"uri": "https://example.com/a.txt", "name": "a.txt", "size": 0},
        ]},
    )
    assert (response.status_code, response.content) == (200, b'{"status":"sent"}')
    files = [
        {"uri": "workspace:/out/report.pdf", "name": "report.pdf", "mimeType": "application/pdf", "size": 2048},
        {"uri": "https://example.com/a.txt", "name": "a.txt"},
    ]
    row = ActivityLog.objects.get(workspace=workspace)
    assert (row.activity_type, row.method, row.source_id, row.target_id, row.status) == (
        "a2a_receive", "notify", None, None, "ok"
    )
    assert row.summary == "Agent message: " + "x " * 40 + "…"
    assert row.response_body == {"result": message, "parts": [{"kind": "file", "file": f} for f in files]}
    assert json.dumps(row.response_body["parts"][0]["file"]["size"]) == "2048"  # stays an integer
    assert delivered == [(
        "AGENT_MESSAGE", str(workspace.id),
        {"message": message, "workspace_id": str(workspace.id), "name": "Dev Lead", "attachments": files},
        False,
    )]


def test_notify_without_attachments_has_no_parts(api, workspace, delivered):
    response = api("POST", f"/workspaces/{workspace.id}/notify", {"message": "Build is green", "attachments": []})
    assert (response.status_code, response.content) == (200, b'{"status":"sent"}')
    row = ActivityLog.objects.get(workspace=workspace)
    assert row.summary == "Agent message: Build is green"
    assert row.response_body == {"result": "Build is green"}
    assert delivered == [(
        "AGENT_MESSAGE", str(workspace.id),
        {"message": "Build is green", "workspace_id": str(workspace.id), "name": "Dev Lead"}, False,
    )]


PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----"
DSN = "postgres://u:p4ss@db/x"


def test_notify_stores_and_broadcasts_the_message_redacted(api, workspace, delivered):
    _, token = token_mint(workspace=workspace)
    response = api("POST", f"/workspaces/{workspace.id}/notify", {"message": f"use {DSN}\n{PEM}"}, token=token)
    assert (response.status_code, response.content) == (200, b'{"status":"sent"}')
    redacted = "use postgres://[REDACTED:URL_CREDENTIALS]@db/x\n[REDACTED:PRIVATE_KEY]"
    [item] = api("GET", f"/workspaces/{workspace.id}/activity", token=token).json()
    assert (item["summary"], item["response_body"]) == ("Agent message: " + redacted, {"result": redacted})
    assert delivered[0][2]["message"] == redacted


@pytest.mark.parametrize("body", [{}, {"message": ""}, {"attachments": [{"uri": "u", "name": "n"}]}])
def test_notify_requires_a_message(api, workspace, body):
    response = api("POST", f"/workspaces/{workspace.id}/notify", body)
    assert (response.status_code, response.content) == (400, b'{"error":"message is required"}')


def test_notify_requires_uri_and_name_on_each_attachment(api, workspace):
    response = api(
        "POST", f"/workspaces/{workspace.id}/notify",
        {"message": "hi", "attachments": [{"uri": "u", "name": "n"}, {"uri": "u2", "name": ""}]},
    )
    assert (response.status_code, response.content) == (400, b'{"error":"attachment[1]: uri and name are required"}')
    response = api("POST", f"/workspaces/{workspace.id}/notify", {"message": "hi", "attachments": [{"name": "n"}]})
    assert (response.status_code, response.content) == (400, b'{"error":"attachment[0]: uri and name are required"}')
    assert not ActivityLog.objects.exists()


def test_notify_rejects_a_fractional_size(api, workspace):
    response = api(
        "POST", f"/workspaces/{workspace.id}/notify",
        {"message": "hi", "attachments": [{"uri": "u", "name": "n", "size": 1.5}]},
    )
    assert (response.status_code, response.content) == (400, INVALID_BODY)


def test_notify_for_a_missing_or_removed_workspace_is_not_found(api, workspace):
    assert api("POST", f"/workspaces/{uuid.uuid4()}/notify", {"message": "hi"}).content == NOT_FOUND
    Workspace.objects.filter(pk=workspace.pk).update(status=WorkspaceStatus.REMOVED)
    response = api("POST", f"/workspaces/{workspace.id}/notify", {"message": "hi"})
    assert (response.status_code, response.content) == (404, NOT_FOUND)
    assert not ActivityLog.objects.exists()


# --- GET /workspaces/:id/session-search ---------------------------------------------------------------

def memory(workspace, content, scope="LOCAL", minutes_ago=0):
    row = AgentMemory.objects.create(workspace=workspace, content=content, scope=scope)
    AgentMemory.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    return row


def test_session_search_merges_activity_and_memories_newest_first(api, workspace):
    other = Workspace.objects.create(name="QA")
    act = log(workspace, minutes_ago=3, activity_type="a2a_receive", method="message/send", summary="deploy done",
              request_body={"task": "deploy"}, response_body={"text": "ok"})
    mem = memory(workspace, "We deploy on Fridays", scope="TEAM", minutes_ago=1)
    plain = log(workspace, minutes_ago=2, summary="idle")
    memory(other, "not mine")
    response = api("GET", f"/workspaces/{workspace.id}/session-search")
    assert response.status_code == 200
    items = response.json()
    assert items == [
        {"kind": "memory", "id": str(mem.id), "workspace_id": str(workspace.id), "label": "TEAM",
         "content": "We deploy on Fridays", "method": None, "status": None, "created_at": items[0]["created_at"]},
        {"kind": "activity", "id": str(plain.id), "workspace_id": str(workspace.id), "label": "agent_log",
         "content": "idle", "method": None, "status": "ok", "created_at": items[1]["created_at"]},
        {"kind": "activity", "id": str(act.id), "workspace_id": str(workspace.id), "label": "a2a_receive",
         "content": "deploy done", "method": "message/send", "status": "ok", "created_at": items[2]["created_at"],
         "request_body": {"task": "deploy"}, "response_body": {"text": "ok"}},
    ]
    assert all(item["created_at"].endswith("Z") for item in items)


def test_session_search_matches_every_listed_column_case_insensitively(api, workspace):
    by_summary = log(workspace, minutes_ago=6, summary="Shipped the BILLING fix")
    by_label = log(workspace, minutes_ago=5, activity_type="billing_audit")
    by_method = log(workspace, minutes_ago=4, method="billing/charge")
    by_status = log(workspace, minutes_ago=3, status="billing-hold")
    by_request = log(workspace, minutes_ago=2, request_body={"task": "check billing"})
    by_response = log(workspace, minutes_ago=1, response_body={"text": "Billing ok"})
    by_memory = memory(workspace, "billing runs monthly")
    log(workspace, summary="unrelated")
    memory(workspace, "unrelated memory")
    response = api("GET", f"/workspaces/{workspace.id}/session-search?q=BiLLing")
    assert [item["id"] for item in response.json()] == [
        str(r.id) for r in (by_memory, by_response, by_request, by_status, by_method, by_label, by_summary)
    ]
    scope_hit = api("GET", f"/workspaces/{workspace.id}/session-search?q=local").json()
    assert {item["content"] for item in scope_hit} == {"billing runs monthly", "unrelated memory"}


def test_session_search_takes_wildcards_literally(api, workspace):
    hit = log(workspace, summary="coverage at 100% now")
    log(workspace, summary="coverage at 1000 lines")
    items = api("GET", f"/workspaces/{workspace.id}/session-search?q=100%25").json()
    assert [item["id"] for item in items] == [str(hit.id)]


def test_session_search_limit_defaults_to_50_and_caps_at_200(api, workspace):
    ActivityLog.objects.bulk_create(ActivityLog(workspace=workspace, activity_type="agent_log") for _ in range(205))

    def count(query):
        return len(api("GET", f"/workspaces/{workspace.id}/session-search{query}").json())

    assert count("") == 50
    assert count("?limit=3") == 3
    assert count("?limit=1000") == 200
    assert count("?limit=x") == 50


def test_session_search_of_an_unknown_workspace_is_an_empty_array(api):
    response = api("GET", f"/workspaces/{uuid.uuid4()}/session-search?q=x")
    assert (response.status_code, response.content) == (200, b"[]")


# --- GET/PATCH /workspaces/:id/config ------------------------------------------------------------------

def test_config_is_an_empty_object_until_set(api, workspace):
    response = api("GET", f"/workspaces/{workspace.id}/config")
    assert (response.status_code, response.content) == (200, b'{"data":{}}')
    assert api("GET", f"/workspaces/{uuid.uuid4()}/config").content == b'{"data":{}}'


def test_config_patch_merges_top_level_keys(api, workspace):
    first = api("PATCH", f"/workspaces/{workspace.id}/config", {"model": "sonnet", "tools": {"web": True}, "tier": 2})
    assert (first.status_code, first.content) == (200, b'{"status":"updated"}')
    second = api("PATCH", f"/workspaces/{workspace.id}/config", {"tools": {"shell": True}, "name": "Dev"})
    assert (second.status_code, second.content) == (200, b'{"status":"updated"}')
    response = api("GET", f"/workspaces/{workspace.id}/config")
    assert response.json() == {"data": {"model": "sonnet", "tools": {"shell": True}, "tier": 2, "name": "Dev"}}
    assert WorkspaceConfig.objects.get(workspace=workspace).data["tools"] == {"shell": True}


def test_config_patch_over_256_kib_is_refused(api, workspace):
    body = json.dumps({"blob": "x" * (256 * 1024)})
    response = api("PATCH", f"/workspaces/{workspace.id}/config", raw=body)
    assert (response.status_code, response.content) == (413, b'{"error":"body too large or unreadable"}')
    assert not WorkspaceConfig.objects.filter(workspace=workspace).exists()
    just_fits = json.dumps({"blob": "x" * (256 * 1024 - 20)})
    assert len(just_fits) <= 256 * 1024
    assert api("PATCH", f"/workspaces/{workspace.id}/config", raw=just_fits).status_code == 200


@pytest.mark.parametrize("raw", ["{not json", "", "[1, 2]", '"text"'])
def test_config_patch_rejects_anything_but_a_json_object(api, workspace, raw):
    response = api("PATCH", f"/workspaces/{workspace.id}/config", raw=raw)
    assert (response.status_code, response.content) == (400, b'{"error":"invalid JSON"}')


def test_config_patch_of_an_unknown_workspace_is_not_found(api):
    response = api("PATCH", f"/workspaces/{uuid.uuid4()}/config", {"a": 1})
    assert (response.status_code, response.content) == (404, NOT_FOUND)
