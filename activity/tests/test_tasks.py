from datetime import timedelta

import pytest
from django.utils import timezone

from activity.models import ActivityLog
from activity.tasks import purge_old_activity
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


def test_retention_deletes_only_rows_older_than_the_retention_window(settings):
    settings.ACTIVITY_RETENTION_DAYS = 7
    workspace = Workspace.objects.create(name="PM")
    old = ActivityLog.objects.create(workspace=workspace, activity_type="a2a_receive")
    recent = ActivityLog.objects.create(workspace=workspace, activity_type="a2a_receive")
    ActivityLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    ActivityLog.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(days=6))

    assert purge_old_activity() == 1
    assert list(ActivityLog.objects.values_list("pk", flat=True)) == [recent.pk]


def test_retention_job_is_declared_in_the_beat_schedule(settings):
    from molecule_site.celery import app

    app.loader.import_default_modules()
    job = app.conf.beat_schedule["activity-retention"]
    assert job["task"] == "activity.tasks.purge_old_activity"
    assert job["schedule"] == timedelta(hours=settings.ACTIVITY_CLEANUP_INTERVAL_HOURS)
