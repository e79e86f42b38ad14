import uuid

import pytest

from activity.models import StructureEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def admin_token(settings):
    settings.ADMIN_TOKEN = "admin"


def get(client, path):
    return client.get(path, HTTP_AUTHORIZATION="Bearer admin")


def test_events_list_newest_first_capped_at_100(client):
    workspace_id = uuid.uuid4()
    for n in range(105):
        StructureEvent.objects.create(event_type="WORKSPACE_HEARTBEAT", workspace_id=workspace_id, payload={"n": n})
    items = get(client, "/events").json()
    assert len(items) == 100
    assert items[0]["payload"] == {"n": 104} and items[-1]["payload"] == {"n": 5}
    assert set(items[0]) == {"id", "event_type", "workspace_id", "payload", "created_at"}
    assert items[0]["created_at"].endswith("Z")


def test_events_for_one_workspace(client):
    mine, other = uuid.uuid4(), uuid.uuid4()
    StructureEvent.objects.create(event_type="WORKSPACE_ONLINE", workspace_id=mine, payload={})
    StructureEvent.objects.create(event_type="WORKSPACE_OFFLINE", workspace_id=other, payload={})
    items = get(client, f"/events/{mine}").json()
    assert [(i["event_type"], i["workspace_id"]) for i in items] == [("WORKSPACE_ONLINE", str(mine))]


def test_events_list_is_an_empty_array_and_needs_admin_auth(client):
    assert get(client, "/events").content == b"[]"
    response = client.get("/events", HTTP_AUTHORIZATION="Bearer wrong")
    assert (response.status_code, response.content) == (401, b'{"error":"invalid admin auth token"}')
