"""``activity.events.emit``: one StructureEvent and one ``/ws`` frame, only after commit (spec §15)."""

import json
import re

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import transaction

from activity.events import emit
from activity.models import StructureEvent
from molecule_site.asgi import application
from workspaces.models import Workspace

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


class Rollback(Exception):
    pass


@database_sync_to_async
def emit_in_transaction(event_type, workspace_id, payload, *, persist=True, roll_back=False):
    try:
        with transaction.atomic():
            emit(event_type, workspace_id, payload, persist=persist)
            if roll_back:
                raise Rollback
    except Rollback:
        pass


def run_with_canvas(steps):
    """Connect a canvas client, run ``steps(communicator)``, disconnect; return its result."""

    async def scenario():
        communicator = WebsocketCommunicator(
            application, "/ws", headers=[(b"authorization", f"Bearer {settings.ADMIN_TOKEN}".encode())]
        )
        connected, _ = await communicator.connect(timeout=10)
        assert connected
        try:
            return await steps(communicator)
        finally:
            await communicator.disconnect()

    return async_to_sync(scenario)()


def test_committed_emit_writes_one_row_and_sends_the_frame():
    workspace = Workspace.objects.create(name="PM")

    async def steps(communicator):
        await emit_in_transaction("WORKSPACE_ONLINE", workspace.id, {"url": "http://pm:8000", "agent_card": None})
        raw = await communicator.receive_from(timeout=10)
        assert await communicator.receive_nothing(timeout=0.3)
        return raw

    raw = run_with_canvas(steps)
    frame = json.loads(raw)
    assert list(frame) == ["event", "workspace_id", "timestamp", "payload"]
    assert frame["event"] == "WORKSPACE_ONLINE"
    assert frame["workspace_id"] == str(workspace.id)
    assert frame["payload"] == {"url": "http://pm:8000", "agent_card": None}
    assert RFC3339_UTC.match(frame["timestamp"]), frame["timestamp"]

    row = StructureEvent.objects.get()
    assert row.event_type == "WORKSPACE_ONLINE"
    assert row.workspace_id == workspace.id
    assert row.payload == {"url": "http://pm:8000", "agent_card": None}
    assert frame["timestamp"].startswith(row.created_at.strftime("%Y-%m-%dT%H:%M:%S"))


def test_rolled_back_emit_writes_nothing_and_sends_nothing():
    workspace = Workspace.objects.create(name="PM")

    async def steps(communicator):
        await emit_in_transaction("WORKSPACE_OFFLINE", workspace.id, {}, roll_back=True)
        nothing = await communicator.receive_nothing(timeout=0.5)
        await emit_in_transaction("WORKSPACE_PAUSED", workspace.id, {"name": "PM"})
        return nothing, json.loads(await communicator.receive_from(timeout=10))

    nothing, next_frame = run_with_canvas(steps)
    assert nothing is True
    assert next_frame["event"] == "WORKSPACE_PAUSED"
    assert list(StructureEvent.objects.values_list("event_type", flat=True)) == ["WORKSPACE_PAUSED"]


def test_broadcast_only_emit_sends_but_writes_no_row():
    workspace = Workspace.objects.create(name="PM")

    async def steps(communicator):
        await emit_in_transaction(
            "WORKSPACE_HEARTBEAT", workspace.id, {"active_tasks": 2, "uptime_seconds": 30}, persist=False
        )
        return json.loads(await communicator.receive_from(timeout=10))

    frame = run_with_canvas(steps)
    assert frame["event"] == "WORKSPACE_HEARTBEAT"
    assert frame["payload"] == {"active_tasks": 2, "uptime_seconds": 30}
    assert RFC3339_UTC.match(frame["timestamp"])
    assert not StructureEvent.objects.exists()


def test_frames_are_compact_json():
    workspace = Workspace.objects.create(name="PM")

    async def steps(communicator):
        await emit_in_transaction(
            "AGENT_MESSAGE", workspace.id, {"message": "hi", "workspace_id": str(workspace.id), "name": "PM"}, persist=False
        )
        return await communicator.receive_from(timeout=10)

    raw = run_with_canvas(steps)
    assert ": " not in raw and ", " not in raw
    assert raw.startswith('{"event":"AGENT_MESSAGE","workspace_id":"')
    assert json.loads(raw)["payload"]["message"] == "hi"
