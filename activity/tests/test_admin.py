"""Activity admin: structure events are view-only; activity logs cannot be forged or edited."""

import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse

from activity.models import ActivityLog, ApprovalRequest, ApprovalStatus, StructureEvent
from workspaces.models import Workspace


@pytest.fixture
def event(db):
    return StructureEvent.objects.create(event_type="WORKSPACE_ONLINE", payload={"url": "http://dev:8000"})


@pytest.mark.django_db
def test_structure_event_change_page_is_view_only(operator_client, event):
    url = reverse("admin:activity_structureevent_change", args=[event.pk])

    response = operator_client.get(url)

    body = response.content.decode()
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    assert "WORKSPACE_ONLINE" in body
    assert 'name="_save"' not in body
    assert 'name="event_type"' not in body
    assert reverse("admin:activity_structureevent_delete", args=[event.pk]) not in body
    assert operator_client.post(url, {"event_type": "FORGED"}).status_code == 403
    event.refresh_from_db()
    assert event.event_type == "WORKSPACE_ONLINE"


@pytest.mark.django_db
def test_structure_event_delete_is_refused(operator_client, event):
    delete_url = reverse("admin:activity_structureevent_delete", args=[event.pk])
    changelist_url = reverse("admin:activity_structureevent_changelist")

    assert operator_client.post(delete_url, {"post": "yes"}).status_code == 403
    operator_client.post(changelist_url, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"})

    assert "delete_selected" not in operator_client.get(changelist_url).content.decode()
    assert StructureEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db
def test_structure_event_model_refuses_update_and_delete(event):
    event.event_type = "FORGED"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    # Bulk writes bypass the model; the database trigger still refuses them.
    with pytest.raises(DatabaseError), transaction.atomic():
        StructureEvent.objects.filter(pk=event.pk).update(event_type="FORGED")
    assert StructureEvent.objects.get(pk=event.pk).event_type == "WORKSPACE_ONLINE"


@pytest.mark.django_db
def test_activity_log_cannot_be_added_or_edited(operator_client):
    log = ActivityLog.objects.create(
        workspace=Workspace.objects.create(name="Dev"), activity_type="a2a_send", summary="delegated the build"
    )
    change_url = reverse("admin:activity_activitylog_change", args=[log.pk])

    assert operator_client.get(reverse("admin:activity_activitylog_add")).status_code == 403
    assert "delegated the build" in operator_client.get(change_url).content.decode()
    assert operator_client.post(change_url, {"summary": "rewritten"}).status_code == 403
    log.refresh_from_db()
    assert log.summary == "delegated the build"


@pytest.mark.django_db
def test_approval_changelist_filters_by_status(operator_client):
    workspace = Workspace.objects.create(name="Dev")
    ApprovalRequest.objects.create(workspace=workspace, action="deploy to prod")
    ApprovalRequest.objects.create(workspace=workspace, action="drop the table", status=ApprovalStatus.DENIED)

    body = operator_client.get(
        reverse("admin:activity_approvalrequest_changelist"), {"status__exact": ApprovalStatus.PENDING}
    ).content.decode()

    assert "deploy to prod" in body
    assert "drop the table" not in body
