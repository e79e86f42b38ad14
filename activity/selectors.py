"""Reads of the activity log: the activity feed, session search, delegations, workspace config
(spec §9, §10). Each returns the wire shape the routes answer with."""

from __future__ import annotations

import json
import uuid

from django.db import connection

from activity.models import ActivityLog
from molecule_site.wire import rfc3339
from workspaces.models import WorkspaceConfig
from workspaces.selectors import as_uuid

ACTIVITY_OPTIONAL_KEYS = ("request_body", "response_body", "tool_trace")
DELEGATION_METHODS = ("delegate", "delegate_result")
DELEGATIONS_PAGE = 50
RESPONSE_PREVIEW_CHARS = 300


def _str_or_none(value) -> str | None:
    return None if value is None else str(value)


# --- GET /workspaces/:id/activity -------------------------------------------------------------

def activity_item(row: ActivityLog) -> dict:
    """One feed item; the JSON bodies and the tool trace appear only when they are set."""
    item = {
        "id": str(row.id),
        "workspace_id": str(row.workspace_id),
        "activity_type": row.activity_type,
        "source_id": _str_or_none(row.source_id),
        "target_id": _str_or_none(row.target_id),
        "method": row.method,
        "summary": row.summary,
        "duration_ms": row.duration_ms,
        "status": row.status,
        "error_detail": row.error_detail,
        "created_at": rfc3339(row.created_at),
    }
    for key in ACTIVITY_OPTIONAL_KEYS:
        value = getattr(row, key)
        if value is not None:
            item[key] = value
    return item


def activity_list(*, workspace_id, activity_type: str | None, from_agents: bool | None, limit: int) -> list[dict]:
    """Newest first. ``from_agents``: True ⇒ rows with a source, False ⇒ canvas rows (no source)."""
    parsed = as_uuid(workspace_id)
    if parsed is None:
        return []
    rows = ActivityLog.objects.filter(workspace_id=parsed)
    if activity_type:
        rows = rows.filter(activity_type=activity_type)
    if from_agents is not None:
        rows = rows.filter(source_id__isnull=not from_agents)
    return [activity_item(row) for row in rows.order_by("-created_at")[:limit]]


# --- GET /workspaces/:id/session-search --------------------------------------------------------

_SESSION_SEARCH_SQL = """
SELECT kind, id, workspace_id, label, content, method, status, created_at, request_body, response_body
FROM (
    SELECT 'activity' AS kind, id, workspace_id, activity_type AS label, summary AS content,
           method, status, created_at, request_body, response_body
    FROM activity_logs WHERE workspace_id = %(workspace_id)s
    UNION ALL
    SELECT 'memory', id, workspace_id, scope, content, NULL, NULL, created_at, NULL::jsonb, NULL::jsonb
    FROM agent_memories WHERE workspace_id = %(workspace_id)s
) AS found
WHERE %(pattern)s IS NULL
   OR content ILIKE %(pattern)s OR label ILIKE %(pattern)s OR method ILIKE %(pattern)s
   OR status ILIKE %(pattern)s OR request_body::text ILIKE %(pattern)s OR response_body::text ILIKE %(pattern)s
ORDER BY created_at DESC
LIMIT %(limit)s
"""


def _like_pattern(q: str) -> str:
    """``%q%`` with the LIKE wildcards in ``q`` taken literally (a search for ``100%`` means it)."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def session_search(*, workspace_id, q: str, limit: int) -> list[dict]:
    """The workspace's activity rows and memories matching ``q`` (all when empty), newest first."""
    parsed = as_uuid(workspace_id)
    if parsed is None:
        return []
    params = {"workspace_id": parsed, "pattern": _like_pattern(q) if q else None, "limit": limit}
    with connection.cursor() as cursor:
        cursor.execute(_SESSION_SEARCH_SQL, params)
        rows = cursor.fetchall()
    items = []
    for kind, row_id, ws_id, label, content, method, status, created_at, request_body, response_body in rows:
        item = {
            "kind": kind,
            "id": str(row_id),
            "workspace_id": str(ws_id),
            "label": label,
            "content": content,
            "method": method,
            "status": status,
            "created_at": rfc3339(created_at),
        }
        if request_body is not None:
            item["request_body"] = _decode_json(request_body)
        if response_body is not None:
            item["response_body"] = _decode_json(response_body)
        items.append(item)
    return items


def _decode_json(value):
    """Django loads jsonb as text on raw cursors (JSONField decodes it for the ORM); decode here."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# --- GET /workspaces/:id/config -------------------------------------------------------------------

def config_data(workspace_id) -> dict:
    parsed = as_uuid(workspace_id)
    if parsed is None:
        return {}
    data = WorkspaceConfig.objects.filter(workspace_id=parsed).values_list("data", flat=True).first()
    return data if data is not None else {}


# --- delegations (spec §9) ---------------------------------------------------------------------------

def delegation_row(*, source_id: uuid.UUID, delegation_id: str) -> ActivityLog | None:
    """The ``delegate`` row a delegation started with (its id lives in ``request_body``)."""
    return (
        ActivityLog.objects.filter(
            workspace_id=source_id, activity_type="delegation", method="delegate",
            request_body__delegation_id=delegation_id,
        )
        .order_by("-created_at")
        .first()
    )


def delegation_by_idempotency_key(*, source_id: uuid.UUID, key: str) -> ActivityLog | None:
    return ActivityLog.objects.filter(workspace_id=source_id, idempotency_key=key).first()


def _delegation_id_of(row: ActivityLog) -> str:
    for body in (row.request_body, row.response_body):
        if isinstance(body, dict) and isinstance(body.get("delegation_id"), str) and body["delegation_id"]:
            return body["delegation_id"]
    return ""


def delegation_list(*, workspace_id) -> list[dict]:
    """``GET /delegations``: the last 50 delegate / delegate_result rows, newest first."""
    parsed = as_uuid(workspace_id)
    if parsed is None:
        return []
    rows = ActivityLog.objects.filter(workspace_id=parsed, method__in=DELEGATION_METHODS).order_by("-created_at")
    items = []
    for row in rows[:DELEGATIONS_PAGE]:
        item = {
            "id": str(row.id),
            "type": "delegation",
            "source_id": _str_or_none(row.source_id),
            "target_id": _str_or_none(row.target_id),
            "summary": row.summary,
            "status": row.status,
            "created_at": rfc3339(row.created_at),
        }
        delegation_id = _delegation_id_of(row)
        if delegation_id:
            item["delegation_id"] = delegation_id
        if row.error_detail:
            item["error"] = row.error_detail
        text = row.response_body.get("text") if isinstance(row.response_body, dict) else None
        if isinstance(text, str) and text:
            item["response_preview"] = text[:RESPONSE_PREVIEW_CHARS]
        items.append(item)
    return items
