"""Agent memory: scoped memories with full-text search, and key/value memory (spec §3.1, §11)."""

from __future__ import annotations

import uuid

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now


class MemoryScope(models.TextChoices):
    LOCAL = "LOCAL"
    TEAM = "TEAM"
    GLOBAL = "GLOBAL"


class AgentMemory(models.Model):
    """A fact an agent committed, visible by scope: LOCAL (itself), TEAM (its team), GLOBAL (all).

    ``content_tsv`` is a stored generated column, so full-text search needs no write-side code.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="memories")
    content = models.TextField()
    scope = models.CharField(max_length=10, choices=MemoryScope.choices)
    namespace = models.CharField(max_length=50, default="general", db_default="general")
    content_tsv = models.GeneratedField(
        expression=SearchVector("content", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "agent_memories"
        verbose_name_plural = "agent memories"
        ordering = ["-created_at"]
        indexes = [
            GinIndex(fields=["content_tsv"], name="idx_agent_memories_tsv"),
            models.Index(fields=["workspace", "scope"], name="idx_agent_memories_ws_scope"),
        ]
        constraints = [models.CheckConstraint(condition=Q(scope__in=MemoryScope.values), name="agent_memories_scope_valid")]

    def __str__(self) -> str:
        return f"[{self.scope}] {self.content[:60]}"


class WorkspaceMemory(models.Model):
    """A key/value entry with optional expiry and a version for optimistic concurrency."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="kv_memory")
    key = models.TextField()
    value = models.JSONField()
    expires_at = models.DateTimeField(null=True, blank=True)
    version = models.BigIntegerField(default=1, db_default=1)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "workspace_memory"
        verbose_name = "workspace key/value memory"
        verbose_name_plural = "workspace key/value memories"
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["workspace", "key"], name="workspace_memory_workspace_key")]

    def __str__(self) -> str:
        return self.key
