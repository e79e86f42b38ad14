"""The canvas's live part on the server: the A2A overlay's edges (workspaces/canvas/edges.py and
``GET /canvas/edges/``), the sparkline's samples in the card, and the ``WORKSPACE_UPDATED`` frame a
PATCH sends so open canvases follow changes made elsewhere."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from activity import events
from activity.models import ActivityLog, StructureEvent
from registry.redis_keys import load_key
from workspaces import services
from workspaces.canvas.edges import a2a_edges
from workspaces.models import CanvasLayout, Workspace

pytestmark = pytest.mark.django_db

FRAGMENT = {"HTTP_X_MOLECULE_FRAGMENT": "1"}


def _ws(name, parent=None, **fields):
    workspace = Workspace.objects.create(name=name, parent=parent, status=fields.pop("status", "online"), **fields)
    CanvasLayout.objects.create(workspace=workspace, x=100, y=100)
    return workspace


def _delegation(source, target, *, minutes_ago=0, delegation_id=None):
    row = ActivityLog.objects.create(
        workspace=source, activity_type="delegation", method="delegate", source_id=source.id, target_id=target.id,
        request_body={"task": "write the report", "delegation_id": delegation_id or str(uuid.uuid4())},
    )
    _age(row, minutes_ago)
    return row


def _proxied_call(caller, target, *, minutes_ago=0, message_id=None, status="ok"):
    """The row the A2A proxy writes on the target (``source_id`` = the calling workspace)."""
    row = ActivityLog.objects.create(
        workspace=target, activity_type="a2a_receive", method="message/send", source_id=caller.id if caller else None,
        target_id=target.id, status=status,
        request_body={"jsonrpc": "2.0", "method": "message/send",
                      "params": {"message": {"messageId": message_id or str(uuid.uuid4()), "parts": []}}},
    )
    _age(row, minutes_ago)
    return row


def _age(row, minutes):
    if minutes:
        ActivityLog.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))


def test_calls_are_aggregated_per_directed_pair_with_the_latest_first():
    pm, dev, qa = _ws("PM"), _ws("Dev"), _ws("QA")
    _delegation(pm, dev, minutes_ago=30)
    _delegation(pm, dev, minutes_ago=2)
    _proxied_call(dev, qa, minutes_ago=10)
    _proxied_call(qa, dev, minutes_ago=1, status="error")  # a failed attempt is still a call
    edges = [(e.source, e.target, e.calls) for e in a2a_edges()]
    assert edges == [(qa.id, dev.id, 1), (pm.id, dev.id, 2), (dev.id, qa.id, 1)]


def test_a_delivered_delegation_counts_once_and_a_retried_delivery_too():
    pm, dev = _ws("PM"), _ws("Dev")
    delegation_id = str(uuid.uuid4())
    _delegation(pm, dev, delegation_id=delegation_id, minutes_ago=3)
    _proxied_call(pm, dev, message_id=delegation_id, status="error", minutes_ago=3)
    _proxied_call(pm, dev, message_id=delegation_id, minutes_ago=2)  # the proxy's retry
    [edge] = a2a_edges()
    assert (edge.source, edge.target, edge.calls) == (pm.id, dev.id, 1)


def test_old_rows_canvas_calls_and_what_runtimes_report_about_themselves_are_not_edges():
    pm, dev = _ws("PM"), _ws("Dev")
    _delegation(pm, dev, minutes_ago=61)
    _proxied_call(None, dev)  # the operator chatting from the canvas
    ActivityLog.objects.create(workspace=pm, activity_type="a2a_send", method="message/send", source_id=pm.id,
                               target_id=dev.id)
    ActivityLog.objects.create(workspace=pm, activity_type="a2a_receive", method="message/send", source_id=pm.id,
                               target_id=dev.id)  # the runtime's own "reply from Dev" row
    ActivityLog.objects.create(workspace=pm, activity_type="delegation", method="delegate_result", source_id=pm.id,
                               target_id=dev.id)
    assert a2a_edges() == []


def test_the_edges_endpoint_gives_ids_counts_and_server_side_ages(operator_client):
    pm, dev = _ws("PM"), _ws("Dev")
    _delegation(pm, dev, minutes_ago=2)
    response = operator_client.get("/canvas/edges/", **FRAGMENT)
    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["window_seconds"] == 3600
    [edge] = body["edges"]
    assert (edge["source"], edge["target"], edge["calls"]) == (str(pm.id), str(dev.id), 1)
    assert 115 <= edge["age_seconds"] <= 125
    assert edge["last_at"].endswith("Z")


def test_the_edges_endpoint_is_for_operators_only(client):
    assert client.get("/canvas/edges/", **FRAGMENT).status_code == 401
    assert client.get("/canvas/edges/")["Location"] == "/accounts/login/?next=/canvas/edges/"


def test_the_edges_read_is_two_queries_however_many_rows(operator_client, django_assert_num_queries):
    workspaces = [_ws(f"W{i}") for i in range(6)]
    for source in workspaces:
        for target in workspaces:
            if source != target:
                _delegation(source, target)
                _proxied_call(source, target)
    with django_assert_num_queries(2 + 2):  # the session and its user, then the two reads
        response = operator_client.get("/canvas/edges/", **FRAGMENT)
    assert len(json.loads(response.content)["edges"]) == 30


def test_cards_carry_the_load_samples_of_recent_heartbeats(operator_client, redis_client):
    busy, quiet = _ws("Busy"), _ws("Quiet")
    now = int(timezone.now().timestamp())
    redis_client.lpush(load_key(busy.id), *[f"{now - 30 * (3 - i)}:{n}" for i, n in enumerate([1, 3, 2])])
    html = operator_client.get("/canvas/cards/", **FRAGMENT).content.decode()

    def spark(workspace):
        card = html[html.index(f'data-workspace-id="{workspace.id}"'):]
        return re.search(r'<svg class="ws-spark" data-load="([^"]*)"[^>]*>', card).group(0)

    assert 'data-load="1,3,2"' in spark(busy) and " hidden" not in spark(busy)
    assert 'data-load=""' in spark(quiet) and " hidden" in spark(quiet)


@pytest.fixture
def published(monkeypatch):
    frames = []
    monkeypatch.setattr(events, "publish_sync", lambda group, message: frames.append(json.loads(message["text"])))
    return frames


def test_a_patch_tells_every_canvas_what_changed_without_a_structure_event(
    operator_client, published, django_capture_on_commit_callbacks,
):
    team, ws = _ws("Team"), _ws("Writer")
    with django_capture_on_commit_callbacks(execute=True):
        services.workspace_update(workspace=ws, changes={"name": "Editor", "parent_id": team.id, "x": 10, "y": 20})
    [frame] = published
    assert frame["event"] == "WORKSPACE_UPDATED" and frame["workspace_id"] == str(ws.id)
    assert frame["payload"] == {"name": "Editor", "x": 10, "y": 20, "parent_id": str(team.id)}
    assert not StructureEvent.objects.filter(event_type="WORKSPACE_UPDATED").exists()


def test_a_patch_of_what_no_canvas_draws_sends_nothing(published, django_capture_on_commit_callbacks):
    ws = _ws("Writer")
    with django_capture_on_commit_callbacks(execute=True):
        services.workspace_update(workspace=ws, changes={"workspace_dir": "/tmp/writer"})
    assert published == []
