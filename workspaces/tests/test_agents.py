"""Agent assignment routes (spec §13): assign, replace, remove, move, with their events."""

import json
import uuid

import pytest

from activity.models import StructureEvent
from workspaces.models import Agent, Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def admin_token(settings):
    settings.ADMIN_TOKEN = "admin"


@pytest.fixture
def call(client, django_capture_on_commit_callbacks):
    def send(method, path, body=None):
        with django_capture_on_commit_callbacks(execute=True):
            return getattr(client, method)(
                path, data=json.dumps(body) if body is not None else None, content_type="application/json",
                HTTP_AUTHORIZATION="Bearer admin",
            )
    return send


def events(event_type):
    return [(e.workspace_id, e.payload) for e in StructureEvent.objects.filter(event_type=event_type)]


def test_assign_then_conflict(call):
    workspace = Workspace.objects.create(name="Dev")
    response = call("post", f"/workspaces/{workspace.id}/agent", {"model": "gpt-4o"})
    agent = Agent.objects.get()
    assert (response.status_code, response.json()) == (201, {"agent_id": str(agent.id), "model": "gpt-4o"})
    assert events("AGENT_ASSIGNED") == [(workspace.id, {"agent_id": str(agent.id), "model": "gpt-4o"})]
    again = call("post", f"/workspaces/{workspace.id}/agent", {"model": "claude"})
    assert (again.status_code, again.json()) == (409, {"error": "workspace already has an active agent, use PATCH to replace"})
    assert Agent.objects.count() == 1


def test_replace_keeps_history(call):
    workspace = Workspace.objects.create(name="Dev")
    call("post", f"/workspaces/{workspace.id}/agent", {"model": "gpt-4o"})
    response = call("patch", f"/workspaces/{workspace.id}/agent", {"model": "claude-sonnet"})
    new = Agent.objects.get(status="active")
    assert response.json() == {"agent_id": str(new.id), "model": "claude-sonnet", "old_model": "gpt-4o"}
    assert Agent.objects.get(status="replaced").model == "gpt-4o"
    assert events("AGENT_REPLACED") == [(workspace.id, {"agent_id": str(new.id), "model": "claude-sonnet", "old_model": "gpt-4o"})]


def test_replace_and_remove_need_an_active_agent(call):
    workspace = Workspace.objects.create(name="Dev")
    response = call("patch", f"/workspaces/{workspace.id}/agent", {"model": "x"})
    assert (response.status_code, response.json()) == (404, {"error": "no active agent to replace"})
    response = call("delete", f"/workspaces/{workspace.id}/agent")
    assert (response.status_code, response.json()) == (404, {"error": "no active agent to remove"})


def test_remove(call):
    workspace = Workspace.objects.create(name="Dev")
    agent_id = call("post", f"/workspaces/{workspace.id}/agent", {"model": "gpt-4o"}).json()["agent_id"]
    response = call("delete", f"/workspaces/{workspace.id}/agent")
    assert response.json() == {"status": "removed", "agent_id": agent_id}
    assert Agent.objects.get().status == "removed" and Agent.objects.get().removed_at is not None
    assert events("AGENT_REMOVED") == [(workspace.id, {"agent_id": agent_id, "model": "gpt-4o"})]


@pytest.mark.parametrize("body", [{}, {"model": ""}, {"model": 5}, {"model": "m" * 101}])
def test_model_is_required(call, body):
    workspace = Workspace.objects.create(name="Dev")
    response = call("post", f"/workspaces/{workspace.id}/agent", body)
    assert (response.status_code, response.json()) == (400, {"error": "invalid request body"})


def test_move_between_workspaces_with_events_on_both(call):
    source, target = Workspace.objects.create(name="A"), Workspace.objects.create(name="B")
    agent_id = call("post", f"/workspaces/{source.id}/agent", {"model": "gpt-4o"}).json()["agent_id"]
    response = call("post", f"/workspaces/{source.id}/agent/move", {"target_workspace_id": str(target.id)})
    assert response.json() == {
        "agent_id": agent_id, "model": "gpt-4o", "from_workspace": str(source.id), "to_workspace": str(target.id),
    }
    assert Agent.objects.get().workspace_id == target.id
    assert sorted(events("AGENT_MOVED"), key=lambda e: e[0] == target.id) == [
        (source.id, {"agent_id": agent_id, "model": "gpt-4o", "target_workspace_id": str(target.id)}),
        (target.id, {"agent_id": agent_id, "model": "gpt-4o", "source_workspace_id": str(source.id)}),
    ]


def test_move_error_paths(call):
    source, target = Workspace.objects.create(name="A"), Workspace.objects.create(name="B")
    unknown = call("post", f"/workspaces/{source.id}/agent/move", {"target_workspace_id": str(uuid.uuid4())})
    assert (unknown.status_code, unknown.json()) == (404, {"error": "target workspace not found"})
    empty = call("post", f"/workspaces/{source.id}/agent/move", {"target_workspace_id": str(target.id)})
    assert (empty.status_code, empty.json()) == (404, {"error": "no active agent in source workspace"})
    call("post", f"/workspaces/{source.id}/agent", {"model": "a"})
    call("post", f"/workspaces/{target.id}/agent", {"model": "b"})
    busy = call("post", f"/workspaces/{source.id}/agent/move", {"target_workspace_id": str(target.id)})
    assert (busy.status_code, busy.json()) == (409, {"error": "target workspace already has an active agent"})


def test_database_allows_one_active_agent_per_workspace(db):
    from django.db import IntegrityError, transaction

    workspace = Workspace.objects.create(name="Dev")
    Agent.objects.create(workspace=workspace, model="a")
    Agent.objects.create(workspace=workspace, model="old", status="replaced")
    with pytest.raises(IntegrityError), transaction.atomic():
        Agent.objects.create(workspace=workspace, model="b")
