"""Per-workspace bearer tokens (spec §2.1) and the busy-target A2A queue (spec §8.4, §19)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


class WorkspaceAuthToken(models.Model):
    """A bearer token bound to one workspace.

    Only ``sha256(plaintext)`` and the first 8 plaintext characters are stored; the plaintext
    is shown once, when minted. Revocation sets ``revoked_at``; rows are kept for audit.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="auth_tokens")
    token_hash = models.BinaryField(unique=True)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "workspace_auth_tokens"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["workspace"], name="idx_tokens_live_workspace", condition=Q(revoked_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({'revoked' if self.revoked_at else 'live'})"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None


class A2AQueueStatus(models.TextChoices):
    QUEUED = "queued"
    DISPATCHED = "dispatched"
    COMPLETED = "completed"
    FAILED = "failed"


class A2AQueueItem(models.Model):
    """An A2A request that found its target busy, waiting to be re-sent (spec §8.4, §19 "A2A queue").

    The proxy answers 202 ``queued`` and writes one row; a heartbeat with spare capacity drains
    one row per beat: the highest ``priority``, oldest first, claimed with ``SKIP LOCKED`` so
    two drainers never take the same item. ``body`` is the normalised JSON-RPC request;
    ``caller_id`` is the ``X-Workspace-ID`` that sent it (NULL for the canvas).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="a2a_queue")
    caller_id = models.TextField(null=True, blank=True)
    body = models.JSONField()
    priority = models.IntegerField(default=50, db_default=50)
    status = models.CharField(
        max_length=20, choices=A2AQueueStatus.choices, default=A2AQueueStatus.QUEUED, db_default=A2AQueueStatus.QUEUED
    )
    attempts = models.IntegerField(default=0, db_default=0)
    idempotency_key = models.TextField(null=True, blank=True)
    last_error = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    dispatched_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "a2a_queue"
        ordering = ["-priority", "created_at"]
        indexes = [
            models.Index(
                fields=["workspace", "status", "-priority", "created_at"],
                name="idx_a2a_queue_drain",
                condition=Q(status="queued"),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=A2AQueueStatus.values), name="a2a_queue_status_valid"),
            # A request re-sent while its twin still waits is not queued twice.
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"],
                condition=Q(status="queued", idempotency_key__isnull=False),
                name="a2a_queue_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"A2A to {self.workspace_id} ({self.status})"
