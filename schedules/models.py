"""Cron schedules that prompt a workspace's agent (spec §19 "Schedules")."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


# Empty replies in a row after which a schedule is ``stale`` (spec §19).
STALE_AFTER_EMPTY_REPLIES = 3


class ScheduleSource(models.TextChoices):
    TEMPLATE = "template"  # from a template's config.yaml or an org.yaml on create/import
    RUNTIME = "runtime"  # created by the agent itself through the API with its own token
    OPERATOR = "operator"  # created by a person: the canvas, the admin token


class ScheduleStatus(models.TextChoices):
    OK = "ok"
    STALE = "stale"  # STALE_AFTER_EMPTY_REPLIES empty replies in a row
    ERROR = "error"  # the last run failed


class WorkspaceSchedule(models.Model):
    """A prompt sent to a workspace as an A2A ``message/send`` whenever its cron expression fires.

    ``next_fire_at`` is the deadline the beat sweep reads (partial index on enabled rows); the
    sweep claims a due row by moving it forward in one conditional UPDATE, so two sweepers never
    fire the same run. ``defer_until`` is set while a run waits for a busy target (capacity
    deferral): past it the run is skipped (``CRON_SKIPPED``).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="schedules")
    name = models.TextField()
    cron_expr = models.TextField()
    timezone = models.TextField(default="UTC", db_default="UTC")
    prompt = models.TextField()
    enabled = models.BooleanField(default=True, db_default=True)
    source = models.TextField(choices=ScheduleSource.choices, default=ScheduleSource.OPERATOR,
                              db_default=ScheduleSource.OPERATOR)
    status = models.TextField(choices=ScheduleStatus.choices, default=ScheduleStatus.OK, db_default=ScheduleStatus.OK)
    consecutive_empty = models.IntegerField(default=0, db_default=0)
    run_count = models.IntegerField(default=0, db_default=0)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_status = models.TextField(null=True, blank=True)  # ok | error | stale | skipped | queued
    last_error = models.TextField(null=True, blank=True)
    next_fire_at = models.DateTimeField(null=True, blank=True)
    defer_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "workspace_schedules"
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["next_fire_at"], condition=Q(enabled=True), name="idx_schedules_due"),
            models.Index(fields=["workspace", "created_at"], name="idx_schedules_workspace"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="workspace_schedules_name_unique"),
            models.CheckConstraint(condition=Q(source__in=ScheduleSource.values), name="workspace_schedules_source"),
            models.CheckConstraint(condition=Q(status__in=ScheduleStatus.values), name="workspace_schedules_status"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.cron_expr})"
