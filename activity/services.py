"""Writes to the activity log: retention, agent reports, notifications, workspace config."""

from __future__ import annotations

import json
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from activity.events import emit
from activity.models import ActivityLog
from memory.redaction import redact_secrets
from workspaces import chat
from workspaces.models import Workspace


def activity_purge_older_than(*, days: int) -> int:
    """Delete activity rows older than ``days``; returns how many were deleted."""
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = ActivityLog.objects.filter(created_at__lt=cutoff).delete()
    return deleted


# --- reports, notifications, config (spec §10) ------------------------------------------------------

REPORTABLE_TYPES = (
    "a2a_send", "a2a_receive", "task_update", "agent_log", "skill_promotion", "memory_write", "error",
)
NOTIFY_SUMMARY_CHARS = 80


def activity_report(
    *,
    workspace_id,
    activity_type: str,
    source_id,
    target_id=None,
    method: str | None = None,
    summary: str | None = None,
    status: str = "ok",
    error_detail: str | None = None,
    duration_ms: int | None = None,
    request_body=None,
    response_body=None,
    tool_trace=None,
) -> ActivityLog:
    """``POST /workspaces/:id/activity``: one row plus a broadcast-only ``ACTIVITY_LOGGED``.

    Beyond the spec, ``summary`` and ``error_detail`` are secret-redacted (an agent's summary or
    a provider error may quote a credential). The bodies and tool trace are stored as sent: they
    are the A2A messages the canvas chat and delegation results are rebuilt from, and the
    redaction patterns (base64 runs above all) would alter file parts and code in them.
    """
    summary = redact_secrets(summary) if summary else summary
    error_detail = redact_secrets(error_detail) if error_detail else error_detail
    with transaction.atomic():
        row = ActivityLog.objects.create(
            workspace_id=workspace_id, activity_type=activity_type, source_id=source_id, target_id=target_id,
            method=method, summary=summary, status=status, error_detail=error_detail, duration_ms=duration_ms,
            request_body=request_body, response_body=response_body, tool_trace=tool_trace,
        )
        payload = {
            "activity_type": activity_type,
            "method": method,
            "summary": summary,
            "status": status,
            "source_id": str(source_id) if source_id else None,
            "target_id": str(target_id) if target_id else None,
            "duration_ms": duration_ms,
        }
        if tool_trace is not None:
            payload["tool_trace"] = tool_trace
        emit("ACTIVITY_LOGGED", workspace_id, payload, persist=False)
    return row


def _attachment_file(workspace: Workspace, attachment: dict) -> dict:
    """``{uri, name[, mimeType][, size]}``: empty mime types and non-positive sizes are left out.

    A ``workspace:`` URI naming one of the workspace's chat uploads (what ``/chat/uploads``
    answered, what ``/chat/download`` serves) gets its size from the store and, when none was
    given, a mime type guessed from its name. Other URIs are carried as given, as the original
    does (an agent may point at a file of its own container).
    """
    file = {"uri": attachment["uri"], "name": attachment["name"]}
    if attachment.get("mimeType"):
        file["mimeType"] = attachment["mimeType"]
    if attachment.get("size"):
        file["size"] = attachment["size"]
    if file["uri"].startswith(chat.URI_SCHEME):
        size = chat.uploaded_file_size(workspace=workspace, uri=file["uri"])
        if size is not None:
            file["size"] = size
            file.setdefault("mimeType", chat.guess_mime(file["name"]))
    return file


def workspace_notify(*, workspace: Workspace, message: str, attachments: list[dict]) -> ActivityLog:
    """``POST /workspaces/:id/notify``: an agent speaks to the user on the canvas.

    Broadcast-only ``AGENT_MESSAGE`` and an ``a2a_receive``/``notify`` row (no source: it shows
    in the canvas chat as the agent's reply). Beyond the spec, the message is secret-redacted
    first, so the stored row and the broadcast say the same thing. Attachment URIs are not: they
    are links the canvas downloads from.
    """
    message = redact_secrets(message)
    files = [_attachment_file(workspace, a) for a in attachments]
    summary = "Agent message: " + (
        message[:NOTIFY_SUMMARY_CHARS] + "…" if len(message) > NOTIFY_SUMMARY_CHARS else message
    )
    response_body: dict = {"result": message}
    if files:
        response_body["parts"] = [{"kind": "file", "file": file} for file in files]
    payload: dict = {"message": message, "workspace_id": str(workspace.id), "name": workspace.name}
    if files:
        payload["attachments"] = files
    with transaction.atomic():
        row = ActivityLog.objects.create(
            workspace=workspace, activity_type="a2a_receive", method="notify", source_id=None,
            summary=summary, response_body=response_body, status="ok",
        )
        emit("AGENT_MESSAGE", workspace.id, payload, persist=False)
    return row


_CONFIG_MERGE_SQL = """
INSERT INTO workspace_config (workspace_id, data, updated_at) VALUES (%s, %s::jsonb, now())
ON CONFLICT (workspace_id) DO UPDATE
SET data = workspace_config.data || EXCLUDED.data, updated_at = now()
"""


def config_merge(*, workspace_id, changes: dict) -> None:
    """``PATCH /workspaces/:id/config``: top-level merge ``data || changes`` in one statement,
    so two concurrent patches both land (no read-modify-write)."""
    with connection.cursor() as cursor:
        cursor.execute(_CONFIG_MERGE_SQL, [workspace_id, json.dumps(changes)])
