"""Encrypted secrets: per-workspace values and global defaults (spec §3.1, §12).

Values are AES-256-GCM encrypted by the application (``secrets_app.crypto``) before they reach
the database; plaintext never is stored, logged, shown in the admin or listed.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models.functions import Now


class WorkspaceSecret(models.Model):
    """A secret set for one workspace; it overrides the global secret of the same key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="secrets")
    key = models.TextField()
    encrypted_value = models.BinaryField()
    encryption_version = models.IntegerField(default=0, db_default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "workspace_secrets"
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["workspace", "key"], name="workspace_secrets_workspace_key")]

    def __str__(self) -> str:
        return self.key


class GlobalSecret(models.Model):
    """A secret every workspace inherits unless it sets its own value for the key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    key = models.TextField(unique=True)
    encrypted_value = models.BinaryField()
    encryption_version = models.IntegerField(default=0, db_default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        db_table = "global_secrets"
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key
