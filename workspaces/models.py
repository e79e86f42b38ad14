"""The org tree: workspaces, the agents that play them, and their canvas/config rows (spec §3.1)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


class WorkspaceStatus(models.TextChoices):
    PROVISIONING = "provisioning"
    ONLINE = "online"
    OFFLINE = "offline"
    DEGRADED = "degraded"
    FAILED = "failed"
    REMOVED = "removed"
    PAUSED = "paused"
    HIBERNATED = "hibernated"
    AWAITING_AGENT = "awaiting_agent"
    HIBERNATING = "hibernating"


# The runtime of a workspace whose agent runs elsewhere and registers itself: nothing of ours
# provisions or restarts it.
EXTERNAL_RUNTIME = "external"

# Rows whose runtime is expected to heartbeat; the liveness sweep only looks at these.
LIVE_STATUSES = (WorkspaceStatus.ONLINE, WorkspaceStatus.DEGRADED)


class WorkspaceAccess(models.TextChoices):
    NONE = "none"
    READ_ONLY = "read_only"
    READ_WRITE = "read_write"


class Workspace(models.Model):
    """An organisational role (PM, Dev Lead, QA…) played by one agent runtime.

    ``parent`` makes the org chart, which is also the communication topology. Rows are never
    deleted by normal operation: removal sets ``status = removed`` (a purge deletes them).
    ``liveness_deadline`` is written on register/heartbeat; the liveness sweep takes live rows
    whose deadline has passed (DESIGN flow 3) instead of scanning every row. ``hibernation_deadline``
    works the same way for the idle monitor (spec §6.5, §19).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.TextField()
    role = models.TextField(null=True, blank=True)
    tier = models.IntegerField(default=1, db_default=1)
    status = models.CharField(
        max_length=20,
        choices=WorkspaceStatus.choices,
        default=WorkspaceStatus.PROVISIONING,
        db_default=WorkspaceStatus.PROVISIONING,
    )
    source_bundle_id = models.TextField(null=True, blank=True)
    agent_card = models.JSONField(null=True, blank=True)
    url = models.TextField(null=True, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children", db_column="parent_id"
    )
    forwarded_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_column="forwarded_to"
    )
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    liveness_deadline = models.DateTimeField(null=True, blank=True)
    last_error_rate = models.FloatField(default=0, db_default=0)
    last_sample_error = models.TextField(null=True, blank=True)
    active_tasks = models.IntegerField(default=0, db_default=0)
    uptime_seconds = models.IntegerField(default=0, db_default=0)
    current_task = models.TextField(null=True, blank=True)
    awareness_namespace = models.TextField(null=True, blank=True)
    runtime = models.TextField(default="langgraph", db_default="langgraph")
    workspace_dir = models.TextField(null=True, blank=True)
    workspace_access = models.CharField(
        max_length=20, choices=WorkspaceAccess.choices, default=WorkspaceAccess.NONE, db_default=WorkspaceAccess.NONE
    )
    budget_limit = models.BigIntegerField(null=True, blank=True, help_text="USD cents; empty = no limit")
    monthly_spend = models.BigIntegerField(default=0, db_default=0, help_text="USD cents")
    hibernation_idle_minutes = models.IntegerField(
        null=True, blank=True, help_text="hibernate after this many idle minutes; empty or 0 = never"
    )
    # When an idle workspace with hibernation_idle_minutes hibernates: written on register, on a
    # busy heartbeat and when the setting changes; the idle monitor reads only rows past it.
    hibernation_deadline = models.DateTimeField(null=True, blank=True)
    last_outbound_at = models.DateTimeField(null=True, blank=True)
    max_concurrent_tasks = models.IntegerField(default=1, db_default=1)
    instance_id = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "workspaces"
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["status"], name="idx_workspaces_status"),
            models.Index(
                fields=["instance_id"], name="idx_workspaces_instance_id", condition=Q(instance_id__isnull=False)
            ),
            models.Index(
                fields=["hibernation_idle_minutes"],
                name="idx_workspaces_hibernation",
                condition=Q(hibernation_idle_minutes__gt=0),
            ),
            models.Index(
                fields=["hibernation_deadline"],
                name="idx_workspaces_hibernate_due",
                condition=Q(status__in=LIVE_STATUSES) & Q(hibernation_deadline__isnull=False),
            ),
            models.Index(
                fields=["liveness_deadline"],
                name="idx_workspaces_live_deadline",
                condition=Q(status__in=LIVE_STATUSES) & Q(liveness_deadline__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=WorkspaceStatus.values), name="workspaces_status_valid"
            ),
            models.CheckConstraint(condition=Q(tier__gte=1, tier__lte=4), name="workspaces_tier_1_to_4"),
            models.CheckConstraint(
                condition=Q(workspace_access__in=WorkspaceAccess.values), name="workspaces_access_valid"
            ),
            models.CheckConstraint(condition=Q(max_concurrent_tasks__gte=1), name="workspaces_max_tasks_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class AgentStatus(models.TextChoices):
    ACTIVE = "active"
    REPLACED = "replaced"
    REMOVED = "removed"


class Agent(models.Model):
    """The model assignment behind a workspace; replacing a model keeps the old row as history."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="agents")
    model = models.TextField()
    status = models.CharField(
        max_length=20, choices=AgentStatus.choices, default=AgentStatus.ACTIVE, db_default=AgentStatus.ACTIVE
    )
    removed_at = models.DateTimeField(null=True, blank=True)
    removal_reason = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "agents"
        verbose_name = "agent model assignment"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=AgentStatus.values), name="agents_status_valid"),
            # At most one active agent per workspace, whatever races the API sees.
            models.UniqueConstraint(
                fields=["workspace"], condition=Q(status=AgentStatus.ACTIVE), name="agents_one_active_per_workspace"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} ({self.status})"


class CanvasLayout(models.Model):
    """Where a workspace card sits on the org-chart canvas, and whether its team is collapsed."""

    workspace = models.OneToOneField(
        Workspace, primary_key=True, on_delete=models.CASCADE, related_name="layout", db_column="workspace_id"
    )
    x = models.FloatField(default=0, db_default=0)
    y = models.FloatField(default=0, db_default=0)
    collapsed = models.BooleanField(default=False, db_default=False)

    class Meta:
        db_table = "canvas_layouts"

    def __str__(self) -> str:
        return f"{self.workspace_id} @ ({self.x:g}, {self.y:g})"


CANVAS_VIEWPORT_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")


class CanvasViewport(models.Model):
    """The canvas pan/zoom shared by every operator: a single row with a fixed id."""

    id = models.UUIDField(primary_key=True, default=CANVAS_VIEWPORT_ID, editable=False)
    x = models.FloatField(default=0, db_default=0)
    y = models.FloatField(default=0, db_default=0)
    zoom = models.FloatField(default=1, db_default=1)
    saved_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "canvas_viewport"
        constraints = [models.CheckConstraint(condition=Q(id=CANVAS_VIEWPORT_ID), name="canvas_viewport_single_row")]

    def __str__(self) -> str:
        return f"viewport ({self.x:g}, {self.y:g}) ×{self.zoom:g}"


class WorkspaceConfig(models.Model):
    """Free-form JSON configuration the platform keeps for a workspace (``GET/PATCH /config``)."""

    workspace = models.OneToOneField(
        Workspace, primary_key=True, on_delete=models.CASCADE, related_name="config", db_column="workspace_id"
    )
    data = models.JSONField(default=dict, db_default={})
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "workspace_config"

    def __str__(self) -> str:
        return f"config of {self.workspace_id}"
