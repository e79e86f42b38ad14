"""Service-level guarantees: events only after commit, the lifecycle handing rows to provisioning."""

import pytest
from django.db import transaction

from activity.models import StructureEvent
from molecule_site.errors import ApiError
from workspaces import provisioning, services
from workspaces.models import Workspace
from workspaces.tests.test_provisioning import provisioner  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_rolled_back_service_writes_no_event():
    root = Workspace.objects.create(name="Root", status="online")
    with pytest.raises(RuntimeError), transaction.atomic():
        services.workspace_pause(workspace_id=root.id)
        raise RuntimeError("the caller's transaction fails after the service ran")
    root.refresh_from_db()
    assert root.status == "online"
    assert not StructureEvent.objects.exists()


def test_events_are_written_once_the_transaction_commits():
    root = Workspace.objects.create(name="Root", status="online")
    with transaction.atomic():
        services.workspace_pause(workspace_id=root.id)
        assert not StructureEvent.objects.exists()  # not before commit
    assert list(StructureEvent.objects.values_list("event_type", "payload")) == [("WORKSPACE_PAUSED", {"name": "Root"})]


def test_a_refused_service_call_changes_nothing():
    root = Workspace.objects.create(name="Root", status="paused")
    with pytest.raises(ApiError) as refused:
        services.workspace_pause(workspace_id=root.id)
    assert (refused.value.status, refused.value.body) == (404, {"error": "workspace not found or already paused"})
    assert not StructureEvent.objects.exists()


def test_resume_with_a_provisioner_resumes_the_paused_subtree(provisioner, monkeypatch):
    queued: list[str] = []
    monkeypatch.setattr(provisioning.provision_workspace, "delay", lambda workspace_id, restart=False, **_options: queued.append(workspace_id))
    root = Workspace.objects.create(name="Root", status="paused")
    child = Workspace.objects.create(name="Child", parent=root, status="paused")
    assert services.workspace_resume(workspace_id=root.id) == {"status": "provisioning", "resumed_count": 2}
    assert sorted(queued) == sorted([str(root.id), str(child.id)])
    assert set(Workspace.objects.values_list("status", flat=True)) == {"provisioning"}


def test_resume_restamps_updated_at_so_the_provision_timeout_starts_afresh(provisioner, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    monkeypatch.setattr(provisioning.provision_workspace, "delay", lambda workspace_id, restart=False, **_options: None)
    workspace = Workspace.objects.create(name="Dev", status="paused")
    Workspace.objects.filter(pk=workspace.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    services.workspace_resume(workspace_id=workspace.id)
    workspace.refresh_from_db()
    assert timezone.now() - workspace.updated_at < timedelta(minutes=1)
