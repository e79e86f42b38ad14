"""Reads of workflow checkpoints: one workflow's steps, and the latest step (of one workflow, or of
the whole workspace)."""

from __future__ import annotations

from checkpoints.models import WorkflowCheckpoint

MAX_LIST = 1000  # steps of one workflow answered at most (a workspace holds at most as many)


def checkpoint_row(checkpoint: WorkflowCheckpoint) -> dict:
    return {
        "id": str(checkpoint.id),
        "workspace_id": str(checkpoint.workspace_id),
        "workflow_id": checkpoint.workflow_id,
        "step_name": checkpoint.step_name,
        "step_index": checkpoint.step_index,
        "payload": checkpoint.payload,
        "created_at": checkpoint.created_at,
        "updated_at": checkpoint.updated_at,
    }


def checkpoint_list(*, workspace_id, workflow_id: str) -> list[dict]:
    """The workflow's steps in step order (then the order they were first written)."""
    rows = WorkflowCheckpoint.objects.filter(workspace_id=workspace_id, workflow_id=workflow_id)
    return [checkpoint_row(row) for row in rows.order_by("step_index", "created_at")[:MAX_LIST]]


def checkpoint_latest(*, workspace_id, workflow_id: str = "") -> dict | None:
    """The furthest step of ``workflow_id`` (highest index, then the last written); without one,
    the step the workspace wrote last, whatever its workflow. None when there is none."""
    rows = WorkflowCheckpoint.objects.filter(workspace_id=workspace_id)
    if workflow_id:
        row = rows.filter(workflow_id=workflow_id).order_by("-step_index", "-updated_at").first()
    else:
        row = rows.order_by("-updated_at", "-step_index").first()
    return None if row is None else checkpoint_row(row)


