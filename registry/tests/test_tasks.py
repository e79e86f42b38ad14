"""The registry's Celery tasks and their place in the beat schedule (``molecule_site.celery``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from activity.models import StructureEvent
from molecule_site.celery import ORPHAN_CONTAINER_SWEEP_SECONDS, app
from registry import tasks
from registry.models import WorkspaceAuthToken
from registry.tokens import token_mint
from workspaces.models import Workspace


@pytest.fixture
def schedule():
    app.loader.import_default_modules()
    return app.conf.beat_schedule


def test_every_sweep_is_declared_once_in_the_beat_schedule_with_its_interval_from_settings(schedule, settings):
    sweeps = {
        "liveness-sweep": ("registry.tasks.sweep_liveness", settings.LIVENESS_SWEEP_SECONDS),
        "provision-timeout-sweep": ("registry.tasks.sweep_provision_timeouts", settings.PROVISION_SWEEP_SECONDS),
        "stale-token-sweep": ("registry.tasks.sweep_stale_tokens", settings.STALE_TOKEN_SWEEP_SECONDS),
        "orphan-container-sweep": ("registry.tasks.sweep_orphan_containers", ORPHAN_CONTAINER_SWEEP_SECONDS),
        "container-health-sweep": ("registry.tasks.sweep_container_health", settings.CONTAINER_SWEEP_SECONDS),
        "hibernation-sweep": ("registry.tasks.sweep_idle_hibernation", settings.HIBERNATION_SWEEP_SECONDS),
        "schedule-sweep": ("schedules.tasks.sweep_schedules", settings.SCHEDULE_SWEEP_SECONDS),
    }
    for name, (task, seconds) in sweeps.items():
        job = schedule[name]
        assert job["task"] == task
        assert job["schedule"] == timedelta(seconds=seconds)
        assert job["options"] == {"expires": seconds}  # a late sweep is dropped, not piled up
    assert set(schedule) == {*sweeps, "activity-retention", "trace-retention"}
    assert ORPHAN_CONTAINER_SWEEP_SECONDS == 60


def test_every_scheduled_task_is_registered_with_the_worker(schedule):
    for job in schedule.values():
        assert job["task"] in app.tasks


@pytest.mark.django_db(transaction=True)
def test_the_liveness_task_takes_expired_workspaces_offline():
    workspace = Workspace.objects.create(name="Dev", status="online")
    Workspace.objects.filter(pk=workspace.pk).update(liveness_deadline=timezone.now() - timedelta(seconds=1))

    assert tasks.sweep_liveness.apply().get() == 1

    assert Workspace.objects.get(pk=workspace.pk).status == "offline"
    assert StructureEvent.objects.filter(event_type="WORKSPACE_OFFLINE", workspace_id=workspace.pk).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_provision_timeout_task_fails_stuck_workspaces():
    workspace = Workspace.objects.create(name="Dev", status="provisioning")
    Workspace.objects.filter(pk=workspace.pk).update(updated_at=timezone.now() - timedelta(hours=1))

    assert tasks.sweep_provision_timeouts.apply().get() == 1

    assert Workspace.objects.get(pk=workspace.pk).status == "failed"
    assert StructureEvent.objects.filter(event_type="WORKSPACE_PROVISION_FAILED").count() == 1


@pytest.mark.django_db
def test_the_stale_token_task_runs_and_is_a_no_op_with_the_none_backend():
    workspace = Workspace.objects.create(name="Dev", status="offline")
    token, _ = token_mint(workspace=workspace)
    WorkspaceAuthToken.objects.filter(pk=token.pk).update(created_at=timezone.now() - timedelta(hours=1))

    assert tasks.sweep_stale_tokens.apply().get() == 0

    assert WorkspaceAuthToken.objects.get(pk=token.pk).revoked_at is None


@pytest.mark.django_db
@pytest.mark.parametrize("task", [tasks.sweep_orphan_containers, tasks.sweep_container_health])
def test_the_docker_only_tasks_run_and_are_no_ops_with_the_none_backend(task):
    workspace = Workspace.objects.create(name="Dev", status="online")
    assert task.apply().get() == 0
    assert Workspace.objects.get(pk=workspace.pk).status == "online"
