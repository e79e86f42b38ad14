"""Writes to the activity log."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from activity.models import ActivityLog


def activity_purge_older_than(*, days: int) -> int:
    """Delete activity rows older than ``days``; returns how many were deleted."""
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = ActivityLog.objects.filter(created_at__lt=cutoff).delete()
    return deleted
