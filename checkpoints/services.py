"""Writes of workflow checkpoints: upsert one step, delete a workflow.

Writes of one workspace are serialised by a transaction-scoped advisory lock on its id, so the
per-workspace bound (``MAX_CHECKPOINTS``) holds under concurrent writers and an upsert of a new
step never races another into a unique violation. Nothing is emitted: checkpoints are the agent's
own bookkeeping, written at every step.
"""

from __future__ import annotations

from django.db import connection, transaction

from checkpoints.models import WorkflowCheckpoint
from checkpoints.selectors import MAX_LIST
from molecule_site.errors import ApiError

MAX_CHECKPOINTS = MAX_LIST  # steps a workspace may hold across its workflows
TOO_MANY = f"too many checkpoints: a workspace holds at most {MAX_CHECKPOINTS} (delete finished workflows)"


def _lock(workspace_id) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"checkpoints:{workspace_id}"])


@transaction.atomic
def checkpoint_upsert(*, workspace_id, workflow_id: str, step_name: str, step_index: int,
                      payload) -> tuple[WorkflowCheckpoint, bool]:
    """Write step ``step_name`` of ``workflow_id``: (row, created)."""
    _lock(workspace_id)
    checkpoint = WorkflowCheckpoint.objects.filter(workspace_id=workspace_id, workflow_id=workflow_id,
                                                   step_name=step_name).first()
    if checkpoint is None:
        if WorkflowCheckpoint.objects.filter(workspace_id=workspace_id).count() >= MAX_CHECKPOINTS:
            raise ApiError(TOO_MANY, status=409)
        checkpoint = WorkflowCheckpoint.objects.create(workspace_id=workspace_id, workflow_id=workflow_id,
                                                       step_name=step_name, step_index=step_index, payload=payload)
        return checkpoint, True
    checkpoint.step_index, checkpoint.payload = step_index, payload
    checkpoint.save(update_fields=["step_index", "payload", "updated_at"])
    return checkpoint, False


@transaction.atomic
def checkpoint_delete_workflow(*, workspace_id, workflow_id: str) -> int:
    """Remove every step of the workflow; how many there were (0 is not an error)."""
    _lock(workspace_id)
    deleted, _ = WorkflowCheckpoint.objects.filter(workspace_id=workspace_id, workflow_id=workflow_id).delete()
    return deleted
