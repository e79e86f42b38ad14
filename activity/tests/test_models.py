import pytest
from django.db import DatabaseError, connection, transaction

from activity.models import StructureEvent


@pytest.fixture
def event(db):
    return StructureEvent.objects.create(event_type="WORKSPACE_ONLINE", payload={"url": "http://a"})


def test_postgres_rejects_update_of_structure_events(event):
    with pytest.raises(DatabaseError, match="append-only: UPDATE"), transaction.atomic():
        StructureEvent.objects.filter(pk=event.pk).update(event_type="TAMPERED")
    event.refresh_from_db()
    assert event.event_type == "WORKSPACE_ONLINE"


def test_postgres_rejects_delete_of_structure_events(event):
    with pytest.raises(DatabaseError, match="append-only: DELETE"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM structure_events WHERE id = %s", [event.pk])
    assert StructureEvent.objects.filter(pk=event.pk).exists()


def test_model_refuses_to_change_or_delete_an_event(event):
    event.event_type = "TAMPERED"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    assert StructureEvent.objects.get(pk=event.pk).event_type == "WORKSPACE_ONLINE"


def test_new_events_can_still_be_appended(event):
    StructureEvent.objects.create(event_type="WORKSPACE_OFFLINE", workspace_id=None)
    assert StructureEvent.objects.count() == 2
