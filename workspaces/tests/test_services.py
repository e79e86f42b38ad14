"""Service-level guarantees: events only after commit, provisioning through Celery on commit."""

import pytest
from django.db import transaction

from activity.models import StructureEvent
from molecule_site.errors import ApiError
from workspaces import services, tasks
from workspaces.models import Workspace
from workspaces.provisioners.base import Provisioner

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


class RecordingProvisioner(Provisioner):
    """A backend that can start workspaces, recording what it is asked to do."""

    name = "recording"
    available = True

    def __init__(self, fail_with: str | None = None):
        self.started: list[tuple[str, dict]] = []
        self.fail_with = fail_with

    def start(self, workspace, *, env):
        if self.fail_with:
            raise RuntimeError(self.fail_with)
        self.started.append((str(workspace.id), env))

    def stop(self, workspace):
        return None

    def restart_workspaces(self, workspace_ids):
        return None


@pytest.fixture
def provisioner(monkeypatch):
    backend = RecordingProvisioner()
    monkeypatch.setattr(services, "get_provisioner", lambda: backend)
    monkeypatch.setattr(tasks, "get_provisioner", lambda: backend)
    return backend


def test_create_queues_provisioning_on_commit_and_the_task_starts_the_runtime(provisioner, monkeypatch, settings):
    queued: list[str] = []
    monkeypatch.setattr(tasks.provision_workspace, "delay", lambda workspace_id, restart=False: queued.append(workspace_id))
    with transaction.atomic():
        body = services.workspace_create(new=services.NewWorkspace(name="Dev"), platform_url="http://p")
        assert queued == []  # nothing leaves the request before commit
    assert queued == [body["id"]]
    assert Workspace.objects.get(pk=body["id"]).status == "provisioning"

    tasks.provision_workspace.apply(args=[body["id"]])
    assert provisioner.started == [(body["id"], {"WORKSPACE_ID": body["id"], "PLATFORM_URL": settings.PLATFORM_URL})]


def test_a_failing_backend_marks_the_workspace_failed_with_an_event(monkeypatch):
    backend = RecordingProvisioner(fail_with="image not found")
    monkeypatch.setattr(tasks, "get_provisioner", lambda: backend)
    workspace = Workspace.objects.create(name="Dev")
    tasks.provision_workspace.apply(args=[str(workspace.id)])
    workspace.refresh_from_db()
    assert (workspace.status, workspace.last_sample_error) == ("failed", "image not found")
    event = StructureEvent.objects.get(event_type="WORKSPACE_PROVISION_FAILED")
    assert event.payload == {"error": "image not found"}


def test_resume_with_a_provisioner_resumes_the_paused_subtree(provisioner, monkeypatch):
    queued: list[str] = []
    monkeypatch.setattr(tasks.provision_workspace, "delay", lambda workspace_id, restart=False: queued.append(workspace_id))
    root = Workspace.objects.create(name="Root", status="paused")
    child = Workspace.objects.create(name="Child", parent=root, status="paused")
    assert services.workspace_resume(workspace_id=root.id) == {"status": "provisioning", "resumed_count": 2}
    assert sorted(queued) == sorted([str(root.id), str(child.id)])
    assert set(Workspace.objects.values_list("status", flat=True)) == {"provisioning"}


def test_resume_restamps_updated_at_so_the_provision_timeout_starts_afresh(provisioner, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    monkeypatch.setattr(tasks.provision_workspace, "delay", lambda workspace_id, restart=False: None)
    workspace = Workspace.objects.create(name="Dev", status="paused")
    Workspace.objects.filter(pk=workspace.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    services.workspace_resume(workspace_id=workspace.id)
    workspace.refresh_from_db()
    assert timezone.now() - workspace.updated_at < timedelta(minutes=1)


class LocalRuntimesAfterARestart(RecordingProvisioner):
    """A backend that runs local runtimes: it provisioned some workspaces, none is running now."""

    runs_local_runtimes = True

    def __init__(self, provisioned):
        super().__init__()
        self.provisioned = {str(w.id) for w in provisioned}

    def provisioned_workspace_ids(self):
        return set(self.provisioned)

    def live_workspace_ids(self):
        return set()


def test_platform_start_restarts_the_runtimes_that_should_run_instead_of_a_stale_online(monkeypatch, redis_client):
    """After make run stops every runtime, the rows must not keep saying online with old URLs."""
    was_online = Workspace.objects.create(name="PM", status="online", url="http://localhost:40001")
    was_degraded = Workspace.objects.create(name="QA", status="degraded", url="http://localhost:40002")
    paused = Workspace.objects.create(name="Ops", status="paused", url="http://localhost:40003")
    not_ours = Workspace.objects.create(name="Stranger", status="online", url="https://agent.example.com")
    backend = LocalRuntimesAfterARestart([was_online, was_degraded, paused])
    monkeypatch.setattr(services, "get_provisioner", lambda: backend)
    queued = []
    monkeypatch.setattr(tasks.provision_workspace, "delay",
                        lambda workspace_id, restart=False: queued.append((workspace_id, restart)))
    redis_client.set(f"ws:{was_online.id}:url", "http://localhost:40001")

    assert services.restart_runtimes_after_platform_start() == 2

    rows = dict(Workspace.objects.values_list("name", "status"))
    assert rows == {"PM": "provisioning", "QA": "provisioning", "Ops": "paused", "Stranger": "online"}
    assert Workspace.objects.get(pk=was_online.pk).url == ""
    assert sorted(queued) == sorted([(str(was_online.id), True), (str(was_degraded.id), True)])
    assert redis_client.get(f"ws:{was_online.id}:url") is None
    assert sorted(StructureEvent.objects.filter(event_type="WORKSPACE_PROVISIONING").values_list("workspace_id", flat=True)) \
        == sorted([was_online.id, was_degraded.id])
