"""Per-workspace bearer tokens (spec §2.1)."""

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
