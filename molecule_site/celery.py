"""The Celery app for the worker and the single beat process.

Every periodic job is declared here, in one place, with its interval taken from settings
(DESIGN: never one periodic task per workspace).
"""

import os
from datetime import timedelta

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "molecule_site.settings")

app = Celery("molecule")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def declare_periodic_jobs(sender, **kwargs):
    from django.conf import settings

    sender.conf.beat_schedule = {
        "activity-retention": {
            "task": "activity.tasks.purge_old_activity",
            "schedule": timedelta(hours=settings.ACTIVITY_CLEANUP_INTERVAL_HOURS),
        },
    }
