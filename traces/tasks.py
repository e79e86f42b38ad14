"""Celery tasks of the traces app (scheduled in ``molecule_site.celery``)."""

import logging

from celery import shared_task
from django.conf import settings

from traces.services import spans_purge_older_than

log = logging.getLogger(__name__)


@shared_task
def purge_old_spans() -> int:
    """Trace retention: drop spans that started more than ``TRACE_RETENTION_DAYS`` ago."""
    deleted = spans_purge_older_than(days=settings.TRACE_RETENTION_DAYS)
    if deleted:
        log.info("trace retention: deleted %d spans older than %d days", deleted, settings.TRACE_RETENTION_DAYS)
    return deleted
