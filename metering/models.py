"""Token usage per workspace, model and day (spec §19 ``workspace_token_usage``)."""

import uuid

from django.db import models

from workspaces.models import Workspace


class WorkspaceTokenUsage(models.Model):
    """One row per (workspace, model, UTC day); the A2A proxy adds each reply's ``usage`` to it.
    ``cost_cents`` keeps fractional cents: a cheap call costs far less than one."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="token_usage")
    model = models.CharField(max_length=200, blank=True, default="")
    day = models.DateField()
    input_tokens = models.BigIntegerField(default=0)
    output_tokens = models.BigIntegerField(default=0)
    call_count = models.IntegerField(default=0)
    cost_cents = models.FloatField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "workspace_token_usage"
        constraints = [models.UniqueConstraint(fields=["workspace", "model", "day"], name="token_usage_per_day")]
        ordering = ["-day", "model"]

    def __str__(self):
        return f"{self.workspace_id} {self.model or '(unknown model)'} {self.day}"
