"""Hibernation (spec §6.5, §19): the route's statuses and errors, the procedure (claim → stop →
hibernated, one event), the idle deadline that register, heartbeats and PATCH write, the idle
monitor, and the wake a schedule or the proxy asks for. A recording backend stands in for the
provisioner here; workspaces/tests/test_hibernation_local.py runs the same with real runtimes."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.utils import timezone

from activity.models import StructureEvent
from molecule_site.celery import app
from molecule_site.tests.backends import use_backend
from registry import liveness, redis_keys
from registry.services import workspace_heartbeat, workspace_register
from registry.tokens import token_mint
from workspaces import provisioning, services
from workspaces.admin import WorkspaceChangeForm
from workspaces.models import Workspace, WorkspaceStatus
from workspaces.provisioners.base import Provisioner

pytestmark = pytest.mark.django_db(transaction=True)

ADMIN = "admin-token-for-tests"
NOT_HIBERNATABLE = b'{"error":"workspace not found or not in a hibernatable state (must be online or degraded)"}'


class RecordingBackend(Provisioner):
    name = "recording"
    available = True
    runs_local_runtimes = True

    def __init__(self):
        self.stopped: list[str] = []
        self.provisioned: set[str] | None = None

    def start(self, workspace, *, launch):
        pass

    def stop(self, workspace):
        self.stopped.append(str(workspace.id))

    def provisioned_workspace_ids(self):
        if self.provisioned is None:
            return {str(w) for w in Workspace.objects.values_list("id", flat=True)}
        return self.provisioned

    def live_workspace_ids(self):
        return set()


@pytest.fixture(autouse=True)
def admin_token(settings):
    settings.ADMIN_TOKEN = ADMIN
    settings.DEV_MODE = False


@pytest.fixture
def backend(monkeypatch):
    recording = RecordingBackend()
    use_backend(monkeypatch, recording)
    recording.started = []
    monkeypatch.setattr(provisioning.provision_workspace, "delay",
                        lambda workspace_id, **options: recording.started.append((workspace_id, options)))
    return recording


@pytest.fixture
def api(client):
    def call(path, token=ADMIN, method="post", body=None):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        if body is not None:
            headers.update(data=json.dumps(body), content_type="application/json")
        return getattr(client, method)(path, **headers)

    return call


def online(name="PM", **fields) -> Workspace:
    fields = {"status": WorkspaceStatus.ONLINE, "runtime": "echo", "tier": 2, **fields}
    return Workspace.objects.create(name=name, url="http://agent.example:8000", **fields)


def events(workspace, kind="WORKSPACE_HIBERNATED"):
    return list(StructureEvent.objects.filter(workspace_id=workspace.id, event_type=kind).values_list("payload", flat=True))


# --- POST /workspaces/:id/hibernate ----------------------------------------------------------------------

@pytest.mark.parametrize("status", [WorkspaceStatus.ONLINE, WorkspaceStatus.DEGRADED])
def test_hibernate_stops_the_runtime_clears_the_url_and_emits_once(api, backend, redis_client, status):
    workspace = online(status=status)
    redis_client.set(redis_keys.url_key(workspace.id), workspace.url)
    response = api(f"/workspaces/{workspace.id}/hibernate")
    assert (response.status_code, response.content) == (200, b'{"status":"hibernated"}')
    workspace.refresh_from_db()
    assert (workspace.status, workspace.url) == (WorkspaceStatus.HIBERNATED, "")
    assert backend.stopped == [str(workspace.id)]
    assert events(workspace) == [{"name": "PM", "tier": 2}]
    assert redis_client.get(redis_keys.url_key(workspace.id)) is None


@pytest.mark.parametrize("status", ["offline", "paused", "hibernated", "hibernating", "provisioning", "failed",
                                    "removed", "awaiting_agent"])
def test_only_online_or_degraded_workspaces_hibernate(api, backend, status):
    workspace = online(status=status)
    response = api(f"/workspaces/{workspace.id}/hibernate")
    assert (response.status_code, response.content) == (404, NOT_HIBERNATABLE)
    assert backend.stopped == [] and Workspace.objects.get(pk=workspace.pk).status == status


@pytest.mark.parametrize("workspace_id", ["not-a-uuid", "6f1c1c1e-0000-4000-8000-000000000000"])
def test_unknown_ids_are_the_same_404(api, backend, workspace_id):
    response = api(f"/workspaces/{workspace_id}/hibernate")
    assert (response.status_code, response.content) == (404, NOT_HIBERNATABLE)


def test_a_busy_workspace_needs_force_and_force_hibernates_it(api, backend):
    workspace = online(active_tasks=2, current_task="writing")
    response = api(f"/workspaces/{workspace.id}/hibernate")
    assert response.status_code == 409
    assert response.content == b'{"error":"workspace has active tasks; use ?force=true to terminate them","active_tasks":2}'
    assert backend.stopped == []
    assert api(f"/workspaces/{workspace.id}/hibernate?force=false").status_code == 409

    response = api(f"/workspaces/{workspace.id}/hibernate?force=true")
    assert response.content == b'{"status":"hibernated"}'
    workspace.refresh_from_db()
    assert (workspace.status, workspace.active_tasks, workspace.current_task) == ("hibernated", 0, "")
    assert backend.stopped == [str(workspace.id)]


def test_hibernate_needs_the_workspaces_own_token_or_the_operator(api, backend):
    workspace, other = online(), online("Other")
    _, own = token_mint(workspace=workspace)
    _, foreign = token_mint(workspace=other)
    assert api(f"/workspaces/{workspace.id}/hibernate", token=None).status_code == 401
    assert api(f"/workspaces/{workspace.id}/hibernate", token=foreign).status_code == 401
    assert api(f"/workspaces/{workspace.id}/hibernate", method="get").status_code == 404  # gin's plain 404
    assert backend.stopped == []
    assert api(f"/workspaces/{workspace.id}/hibernate", token=own).status_code == 200
    assert backend.stopped == [str(workspace.id)]


def test_the_claim_lets_one_of_two_concurrent_hibernates_act(backend):
    workspace = online()
    results = []
    barrier = threading.Barrier(2)

    def hibernate():
        barrier.wait()
        results.append(services.hibernate(workspace_id=workspace.id))
        connection.close()

    threads = [threading.Thread(target=hibernate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    assert backend.stopped == [str(workspace.id)] and len(events(workspace)) == 1


def test_a_runtime_that_will_not_stop_still_ends_hibernated(backend, monkeypatch):
    def refuse(_workspace):
        raise RuntimeError("engine gone")

    monkeypatch.setattr(backend, "stop", refuse)
    workspace = online()
    assert services.hibernate(workspace_id=workspace.id)
    assert Workspace.objects.get(pk=workspace.pk).status == WorkspaceStatus.HIBERNATED


# --- the idle deadline ------------------------------------------------------------------------------------

def test_patch_sets_the_idle_minutes_and_starts_the_clock_operator_only(api, backend):
    workspace = online()
    _, own = token_mint(workspace=workspace)
    before = timezone.now()
    response = api(f"/workspaces/{workspace.id}", method="patch", body={"hibernation_idle_minutes": 15})
    assert response.status_code == 200, response.content
    workspace.refresh_from_db()
    assert workspace.hibernation_idle_minutes == 15
    assert before + timedelta(minutes=15) <= workspace.hibernation_deadline <= timezone.now() + timedelta(minutes=15)

    refused = api(f"/workspaces/{workspace.id}", token=own, method="patch", body={"hibernation_idle_minutes": 1})
    assert refused.status_code == 403
    for bad in (-1, "5", 1.5, True, 10**9):
        response = api(f"/workspaces/{workspace.id}", method="patch", body={"hibernation_idle_minutes": bad})
        assert response.status_code == 400, bad
        assert response.json()["error"].startswith("hibernation_idle_minutes must be null or a whole number")
    assert api(f"/workspaces/{workspace.id}", method="patch", body={"hibernation_idle_minutes": None}).status_code == 200
    workspace.refresh_from_db()
    assert (workspace.hibernation_idle_minutes, workspace.hibernation_deadline) == (None, None)


def test_register_starts_the_idle_clock_and_busy_heartbeats_push_it(backend):
    workspace = Workspace.objects.create(name="PM", status=WorkspaceStatus.PROVISIONING, runtime="echo",
                                         hibernation_idle_minutes=10)
    async_to_sync(workspace_register)(workspace_id=str(workspace.id), url="https://agent.example", agent_card={"name": "PM"})
    workspace.refresh_from_db()
    registered_deadline = workspace.hibernation_deadline
    assert timezone.now() + timedelta(minutes=9) < registered_deadline <= timezone.now() + timedelta(minutes=10)

    async_to_sync(workspace_heartbeat)(workspace_id=str(workspace.id), active_tasks=0)
    workspace.refresh_from_db()
    assert workspace.hibernation_deadline == registered_deadline  # idle beats leave it

    async_to_sync(workspace_heartbeat)(workspace_id=str(workspace.id), active_tasks=1)
    workspace.refresh_from_db()
    assert workspace.hibernation_deadline > registered_deadline  # seen working: idle from now

    Workspace.objects.filter(pk=workspace.pk).update(hibernation_idle_minutes=None)
    async_to_sync(workspace_heartbeat)(workspace_id=str(workspace.id), active_tasks=1)
    assert Workspace.objects.get(pk=workspace.pk).hibernation_deadline is None


# --- the idle monitor -------------------------------------------------------------------------------------

def test_the_monitor_hibernates_only_idle_due_workspaces_it_can_wake(backend):
    past = timezone.now() - timedelta(seconds=1)
    due = online("Due", hibernation_idle_minutes=5, hibernation_deadline=past)
    busy = online("Busy", hibernation_idle_minutes=5, hibernation_deadline=past, active_tasks=1)
    later = online("Later", hibernation_idle_minutes=5, hibernation_deadline=timezone.now() + timedelta(minutes=3))
    external = online("External", hibernation_idle_minutes=5, hibernation_deadline=past, runtime="external")
    offline = online("Offline", hibernation_idle_minutes=5, hibernation_deadline=past, status="offline")
    unset = online("Unset", hibernation_deadline=past)  # a stale deadline without the setting
    assert liveness.hibernation_sweep() == 1
    statuses = dict(Workspace.objects.values_list("name", "status"))
    assert statuses == {"Due": "hibernated", "Busy": "online", "Later": "online", "External": "online",
                        "Offline": "offline", "Unset": "online"}
    assert backend.stopped == [str(due.id)]
    assert liveness.hibernation_sweep() == 0  # nothing twice
    for workspace in (busy, later, external, offline, unset):
        assert events(workspace) == []


def test_the_monitor_reads_through_the_partial_index_in_batches(backend, django_assert_max_num_queries):
    past = timezone.now() - timedelta(seconds=1)
    for index in range(5):
        online(f"W{index}", hibernation_idle_minutes=1, hibernation_deadline=past - timedelta(seconds=index))
    assert liveness.hibernation_sweep(batch=2) == 5
    assert Workspace.objects.filter(status=WorkspaceStatus.HIBERNATED).count() == 5
    with django_assert_max_num_queries(1):
        assert liveness.hibernation_sweep() == 0


def test_the_beat_schedule_runs_the_monitor():
    app.loader.import_default_modules()
    entry = app.conf.beat_schedule["hibernation-sweep"]
    assert entry["task"] == "registry.tasks.sweep_idle_hibernation"
    assert entry["schedule"] == timedelta(seconds=120)


# --- wake ------------------------------------------------------------------------------------------------

def test_wake_starts_a_hibernated_workspace_once_with_its_briefing(backend):
    workspace = online(status=WorkspaceStatus.HIBERNATED, hibernation_idle_minutes=5)
    assert services.workspace_wake(workspace_id=workspace.id)
    assert Workspace.objects.get(pk=workspace.pk).status == WorkspaceStatus.PROVISIONING
    assert backend.started == [(str(workspace.id), {"restart": False, "reason": provisioning.REASON_WAKE})]
    assert events(workspace, "WORKSPACE_PROVISIONING") == [{"name": "PM", "tier": 2, "runtime": "echo"}]
    assert not services.workspace_wake(workspace_id=workspace.id)  # already waking
    assert len(backend.started) == 1


def test_wake_leaves_workspaces_it_cannot_start_alone(backend):
    awake = online()
    external = online("Ext", status=WorkspaceStatus.HIBERNATED, runtime="external")
    stranger = online("Stranger", status=WorkspaceStatus.HIBERNATED)
    backend.provisioned = {str(awake.id), str(external.id)}
    for workspace in (awake, external, stranger):
        assert not services.workspace_wake(workspace_id=workspace.id)
    assert backend.started == []
    assert dict(Workspace.objects.values_list("name", "status")) == {
        "PM": "online", "Ext": "hibernated", "Stranger": "hibernated"}


def test_the_admin_form_sets_the_idle_minutes_through_the_same_service(backend):
    workspace = online()
    data = {"name": "PM", "role": "", "tier": "2", "runtime": "echo", "parent": "", "workspace_dir": ""}
    assert not WorkspaceChangeForm(instance=workspace, data={**data, "hibernation_idle_minutes": "-5"}).is_valid()
    form = WorkspaceChangeForm(instance=Workspace.objects.get(pk=workspace.pk), data={**data, "hibernation_idle_minutes": "30"})
    assert form.is_valid(), form.errors
    assert "hibernation_idle_minutes" in form.changed_data
    services.workspace_update(workspace=Workspace.objects.get(pk=workspace.pk),
                              changes={"hibernation_idle_minutes": form.cleaned_data["hibernation_idle_minutes"]})
    workspace.refresh_from_db()
    assert workspace.hibernation_idle_minutes == 30 and workspace.hibernation_deadline is not None
