"""Activity logs, the append-only structure event log, and human approvals (spec §3.1, §10, §13)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


class ActivityLog(models.Model):
    """One thing a workspace did or had done to it: an A2A call, a tool run, a delegation…

    Kept for ``ACTIVITY_RETENTION_DAYS``. ``idempotency_key`` is unique per workspace when set,
    so a retried delegation is recorded once.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="activity")
    activity_type = models.TextField()
    source_id = models.UUIDField(null=True, blank=True)
    target_id = models.UUIDField(null=True, blank=True)
    method = models.TextField(null=True, blank=True)
    summary = models.TextField(null=True, blank=True)
    request_body = models.JSONField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    duration_ms = models.IntegerField(null=True, blank=True)
    status = models.TextField(default="ok", db_default="ok")
    error_detail = models.TextField(null=True, blank=True)
    idempotency_key = models.TextField(null=True, blank=True)
    tool_trace = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "activity_logs"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["workspace", "activity_type", "-created_at"], name="idx_activity_ws_type_created"),
            models.Index(fields=["created_at"], name="idx_activity_created_at"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="activity_logs_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.activity_type}: {self.summary or ''}"[:80]


class StructureEvent(models.Model):
    """An append-only record of a state change (WORKSPACE_ONLINE, AGENT_ASSIGNED…).

    PostgreSQL rejects UPDATE and DELETE on the table (trigger in the initial migration); the
    model refuses them too, so the log can only grow. ``workspace_id`` has no foreign key: the
    history outlives the workspaces it mentions.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event_type = models.TextField()
    workspace_id = models.UUIDField(null=True, blank=True, db_index=True)
    agent_id = models.UUIDField(null=True, blank=True)
    target_id = models.UUIDField(null=True, blank=True)
    payload = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now(), db_index=True)

    class Meta:
        db_table = "structure_events"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.workspace_id or ''}".strip()

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("structure_events is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("structure_events is append-only")


class ApprovalStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    ESCALATED = "escalated"


class ApprovalRequest(models.Model):
    """An agent asking a human (or its parent) before it takes an action."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="approvals")
    task_id = models.TextField(null=True, blank=True)
    action = models.TextField()
    reason = models.TextField(null=True, blank=True)
    context = models.JSONField(default=dict, db_default={})
    status = models.CharField(
        max_length=20, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING, db_default=ApprovalStatus.PENDING
    )
    decided_by = models.TextField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "approval_requests"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "status"], name="idx_approvals_ws_status")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ApprovalStatus.values), name="approval_requests_status_valid")
        ]

    def __str__(self) -> str:
        return f"{self.action} ({self.status})"
