"""The schedules' place in the beat schedule (``molecule_site.celery``): one sweep, not a task per schedule."""

from __future__ import annotations

from datetime import timedelta

from molecule_site.celery import app


def test_the_sweep_is_on_the_beat_schedule_every_30_seconds_by_default(settings):
    app.loader.import_default_modules()
    entry = app.conf.beat_schedule["schedule-sweep"]
    assert entry["task"] == "schedules.tasks.sweep_schedules"
    assert entry["schedule"] == timedelta(seconds=settings.SCHEDULE_SWEEP_SECONDS) == timedelta(seconds=30)
    assert entry["options"] == {"expires": 30}  # a late sweep is dropped, not piled up
    assert [name for name, job in app.conf.beat_schedule.items() if job["task"].startswith("schedules.")] == [
        "schedule-sweep"]
