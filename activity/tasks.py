"""Celery tasks of the activity app (scheduled in ``molecule_site.celery``)."""

import logging

from celery import shared_task
from django.conf import settings

from activity.services import activity_purge_older_than

log = logging.getLogger(__name__)


@shared_task
def purge_old_activity() -> int:
    """Activity retention: drop rows older than ``ACTIVITY_RETENTION_DAYS``."""
    deleted = activity_purge_older_than(days=settings.ACTIVITY_RETENTION_DAYS)
    if deleted:
        log.info("activity retention: deleted %d rows older than %d days", deleted, settings.ACTIVITY_RETENTION_DAYS)
    return deleted
