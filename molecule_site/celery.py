"""The Celery app for the worker and the single beat process.

Every periodic job is declared here, in one place, with its interval taken from settings
(DESIGN: never one periodic task per workspace).
"""

import os
from datetime import timedelta

from celery import Celery
from celery.signals import beat_init, celeryd_init

from molecule_site import hardening

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "molecule_site.settings")

app = Celery("molecule")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The original's fixed cadence for the orphan container passes (spec §7.4); not tunable there.
ORPHAN_CONTAINER_SWEEP_SECONDS = 60


def _every(seconds: int) -> dict:
    # A sweep still queued when the next one is due is dropped: the next one does its work.
    return {"schedule": timedelta(seconds=seconds), "options": {"expires": seconds}}


@app.on_after_finalize.connect
def declare_periodic_jobs(sender, **kwargs):
    from django.conf import settings

    sender.conf.beat_schedule = {
        "activity-retention": {
            "task": "activity.tasks.purge_old_activity",
            "schedule": timedelta(hours=settings.ACTIVITY_CLEANUP_INTERVAL_HOURS),
        },
        "trace-retention": {
            "task": "traces.tasks.purge_old_spans",
            "schedule": timedelta(hours=settings.TRACE_CLEANUP_INTERVAL_HOURS),
        },
        "liveness-sweep": {"task": "registry.tasks.sweep_liveness", **_every(settings.LIVENESS_SWEEP_SECONDS)},
        "provision-timeout-sweep": {
            "task": "registry.tasks.sweep_provision_timeouts", **_every(settings.PROVISION_SWEEP_SECONDS)
        },
        "stale-token-sweep": {
            "task": "registry.tasks.sweep_stale_tokens", **_every(settings.STALE_TOKEN_SWEEP_SECONDS)
        },
        "orphan-container-sweep": {
            "task": "registry.tasks.sweep_orphan_containers", **_every(ORPHAN_CONTAINER_SWEEP_SECONDS)
        },
        "hibernation-sweep": {
            "task": "registry.tasks.sweep_idle_hibernation", **_every(settings.HIBERNATION_SWEEP_SECONDS)
        },
        "container-health-sweep": {
            "task": "registry.tasks.sweep_container_health", **_every(settings.CONTAINER_SWEEP_SECONDS)
        },
        "schedule-sweep": {"task": "schedules.tasks.sweep_schedules", **_every(settings.SCHEDULE_SWEEP_SECONDS)},
    }


@celeryd_init.connect
@beat_init.connect
def _undumpable(**kwargs):
    """The worker (its forked pool inherits the flag) and beat hold the platform's keys in their
    environment: no process of the same user may read it (molecule_site.hardening)."""
    hardening.make_undumpable()
