"""Workflow checkpoints (spec §19 ``workflow_checkpoints``): Temporal-style durable steps. A
runtime records each completed step of a long workflow so that, after a restart, it can see how
far the work got and resume instead of starting over."""

import uuid

from django.db import models

from workspaces.models import Workspace

MAX_NAME = 200  # characters of a workflow id or a step name


class WorkflowCheckpoint(models.Model):
    """One step of one workflow of a workspace; writing the same (workflow_id, step_name) again
    replaces its index and payload. Removing the workspace removes its checkpoints."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="workflow_checkpoints")
    workflow_id = models.CharField(max_length=MAX_NAME)
    step_name = models.CharField(max_length=MAX_NAME)
    step_index = models.IntegerField(default=0)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "workflow_checkpoints"
        ordering = ["workflow_id", "step_index", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "workflow_id", "step_name"], name="workflow_checkpoint_step"),
            models.CheckConstraint(condition=models.Q(step_index__gte=0), name="workflow_checkpoint_index_non_negative"),
        ]
        indexes = [
            # GET …/checkpoints/latest without a workflow_id: the workspace's most recent step
            models.Index(fields=["workspace", "-updated_at"], name="workflow_checkpoint_recent"),
        ]

    def __str__(self):
        return f"{self.workflow_id} #{self.step_index} {self.step_name}"
