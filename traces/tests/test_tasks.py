"""Trace retention: the beat job drops spans older than TRACE_RETENTION_DAYS."""

from datetime import timedelta

import pytest
from django.utils import timezone

from molecule_site.celery import app
from traces.models import TraceSpan
from traces.tasks import purge_old_spans

pytestmark = pytest.mark.django_db


def _span(span_id: str, age: timedelta) -> TraceSpan:
    start = timezone.now() - age
    return TraceSpan.objects.create(trace_id="a" * 32, span_id=span_id, name="s", start_time=start, end_time=start)


def test_purge_drops_spans_older_than_the_retention_and_keeps_the_rest(settings):
    settings.TRACE_RETENTION_DAYS = 7
    _span("1" * 16, timedelta(days=8))
    _span("2" * 16, timedelta(days=7, minutes=1))
    kept = _span("3" * 16, timedelta(days=6, hours=23))
    assert purge_old_spans() == 2
    assert list(TraceSpan.objects.all()) == [kept]
    assert purge_old_spans() == 0


def test_retention_follows_the_setting(settings):
    settings.TRACE_RETENTION_DAYS = 1
    _span("1" * 16, timedelta(days=2))
    assert purge_old_spans() == 1


def test_the_retention_job_is_on_the_beat_schedule(settings):
    app.loader.import_default_modules()
    entry = app.conf.beat_schedule["trace-retention"]
    assert entry["task"] == "traces.tasks.purge_old_spans"
    assert entry["schedule"] == timedelta(hours=settings.TRACE_CLEANUP_INTERVAL_HOURS)
    assert "traces.tasks.purge_old_spans" in app.tasks
