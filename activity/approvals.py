"""Human approvals (spec §13): an agent asks before acting; a human (or the clock) decides.

Creating a request notifies the workspace and, when it has one, escalates to its parent.
Deciding is a conditional UPDATE on ``status = 'pending'``, so two deciders cannot both win.
Pending requests older than ``APPROVAL_EXPIRY`` are auto-denied by whoever reads the pending list.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from activity.events import emit
from activity.models import ApprovalRequest, ApprovalStatus
from molecule_site.errors import ApiError
from molecule_site.wire import rfc3339
from workspaces.models import Workspace, WorkspaceStatus

APPROVAL_EXPIRY = timedelta(minutes=10)
AUTO_EXPIRED = "auto-expired"
DECISIONS = (ApprovalStatus.APPROVED, ApprovalStatus.DENIED)
LIST_LIMIT = 50


@transaction.atomic
def approval_create(*, workspace: Workspace, action: str, task_id: str | None, reason: str | None,
                    context: dict) -> dict:
    approval = ApprovalRequest.objects.create(
        workspace=workspace, action=action, task_id=task_id or None, reason=reason or None, context=context
    )
    approval_id = str(approval.id)
    emit("APPROVAL_REQUESTED", workspace.id,
         {"approval_id": approval_id, "action": action, "reason": reason or "", "task_id": task_id or ""})
    if workspace.parent_id:
        emit("APPROVAL_ESCALATED", workspace.parent_id,
             {"approval_id": approval_id, "from_workspace_id": str(workspace.id), "action": action,
              "reason": reason or ""})
    return {"approval_id": approval_id, "status": ApprovalStatus.PENDING}


@transaction.atomic
def approval_decide(*, workspace_id: uuid.UUID, approval_id: uuid.UUID, decision: str, decided_by: str) -> dict:
    if decision not in DECISIONS:
        raise ApiError("decision must be 'approved' or 'denied'")
    decided = ApprovalRequest.objects.filter(
        pk=approval_id, workspace_id=workspace_id, status=ApprovalStatus.PENDING
    ).update(status=decision, decided_by=decided_by, decided_at=timezone.now())
    if not decided:
        raise ApiError("approval not found or already decided", status=404)
    event = "APPROVAL_APPROVED" if decision == ApprovalStatus.APPROVED else "APPROVAL_DENIED"
    emit(event, workspace_id, {"approval_id": str(approval_id), "decision": decision, "decided_by": decided_by})
    return {"status": decision, "approval_id": str(approval_id)}


def approvals_expire_pending(*, now=None) -> int:
    """Auto-deny pending requests older than the expiry; returns how many."""
    cutoff = (now or timezone.now()) - APPROVAL_EXPIRY
    expired = ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING, created_at__lt=cutoff).update(
        status=ApprovalStatus.DENIED, decided_by=AUTO_EXPIRED, decided_at=timezone.now()
    )
    return expired


def approval_list(*, workspace_id: uuid.UUID) -> list[dict]:
    rows = ApprovalRequest.objects.filter(workspace_id=workspace_id).order_by("-created_at")[:LIST_LIMIT]
    return [
        {"id": str(a.id), "task_id": a.task_id, "action": a.action, "reason": a.reason, "status": a.status,
         "decided_by": a.decided_by, "decided_at": rfc3339(a.decided_at) if a.decided_at else None,
         "created_at": rfc3339(a.created_at)}
        for a in rows
    ]


def approvals_pending() -> list[dict]:
    """``GET /approvals/pending``: expire the stale ones first, then the oldest 50 still pending of
    workspaces that still exist (a removed one's requests can no longer be acted on)."""
    approvals_expire_pending()
    rows = (
        ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING)
        .exclude(workspace__status=WorkspaceStatus.REMOVED)
        .select_related("workspace").order_by("created_at")[:LIST_LIMIT]
    )
    return [
        {"id": str(a.id), "workspace_id": str(a.workspace_id), "workspace_name": a.workspace.name,
         "action": a.action, "reason": a.reason, "status": a.status, "created_at": rfc3339(a.created_at)}
        for a in rows
    ]
