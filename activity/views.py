"""Event log (spec §14) and activity routes (spec §10): activity feed and reports, notify,
session search, workspace config. Thin: parse, call a selector or service, shape."""

import json

from django.core.exceptions import RequestDataTooBig
from rest_framework.response import Response

from activity import approvals, selectors, services
from activity.models import StructureEvent
from molecule_site.api import Api, json_body, parse_uuid, query_int
from molecule_site.errors import ApiError
from molecule_site.wire import rfc3339, storable_json
from registry import auth
from registry.auth import AdminAuth, WorkspaceAuth
from workspaces.models import Workspace, WorkspaceStatus
from workspaces.selectors import as_uuid, workspace_get

EVENTS_PAGE = 100


def _event_item(event: StructureEvent) -> dict:
    return {
        "id": str(event.id),
        "event_type": event.event_type,
        "workspace_id": str(event.workspace_id) if event.workspace_id else None,
        "payload": event.payload,
        "created_at": rfc3339(event.created_at),
    }


class EventsApi(Api):
    auth_by_method = {"GET": (AdminAuth,)}

    def get(self, request, workspace_id=None):
        events = StructureEvent.objects.order_by("-created_at")
        if workspace_id is not None:
            events = events.filter(workspace_id=parse_uuid(workspace_id))
        return Response([_event_item(e) for e in events[:EVENTS_PAGE]])


# --- activity, notify, session search, config (spec §10) ---------------------------------------------

ACTIVITY_DEFAULT_LIMIT, ACTIVITY_MAX_LIMIT = 100, 500
SEARCH_DEFAULT_LIMIT, SEARCH_MAX_LIMIT = 50, 200
CONFIG_MAX_BYTES = 256 * 1024
INVALID_BODY = "invalid request body"
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _limit(request, default: int, maximum: int) -> int:
    """Absent, malformed or non-positive ⇒ ``default``; above ``maximum`` ⇒ ``maximum``."""
    limit = query_int(request, "limit", default)
    if limit is None or limit <= 0:
        return default
    return min(limit, maximum)


def _optional(body: dict, key: str, kind, error: str = INVALID_BODY):
    """``body[key]`` when present and of ``kind`` (JSON null counts as absent); else a 400."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ApiError(error)
    return value


def _existing_workspace(workspace_id, *, live_only: bool = False) -> Workspace:
    workspace = workspace_get(workspace_id)
    if workspace is None or (live_only and workspace.status == WorkspaceStatus.REMOVED):
        raise ApiError("workspace not found", status=404)
    return workspace


class ActivityApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,), "POST": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        source = request.query_params.get("source", "")
        if source not in ("", "canvas", "agent"):
            raise ApiError("source must be 'canvas' or 'agent'")
        return Response(
            selectors.activity_list(
                workspace_id=workspace_id,
                activity_type=request.query_params.get("type") or None,
                from_agents={"": None, "canvas": False, "agent": True}[source],
                limit=_limit(request, ACTIVITY_DEFAULT_LIMIT, ACTIVITY_MAX_LIMIT),
            )
        )

    def post(self, request, workspace_id):
        body = json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("activity_type"), str) or not body["activity_type"]:
            raise ApiError(INVALID_BODY)
        fields = {
            key: _optional(body, key, str)
            for key in ("method", "summary", "target_id", "source_id", "status", "error_detail")
        }
        duration_ms = _optional(body, "duration_ms", int)
        if duration_ms is not None and not INT32_MIN <= duration_ms <= INT32_MAX:
            raise ApiError(INVALID_BODY)  # an INT column: the original's INSERT fails (500)
        if body["activity_type"] not in services.REPORTABLE_TYPES:
            raise ApiError("invalid activity_type, must be one of: " + ", ".join(services.REPORTABLE_TYPES))
        source_id = fields["source_id"]
        if source_id and source_id != workspace_id and as_uuid(source_id) != as_uuid(workspace_id):
            raise ApiError("source_id must match authenticated workspace", status=403)
        target_id = None
        if fields["target_id"]:
            # A UUID column: the original's INSERT fails on anything else (500); refuse it as bad input.
            target_id = as_uuid(fields["target_id"])
            if target_id is None:
                raise ApiError(INVALID_BODY)
        workspace = _existing_workspace(workspace_id)
        request_body = body.get("request_body")
        if request_body is None:
            request_body = body.get("metadata")
        services.activity_report(
            workspace_id=workspace.id,
            activity_type=body["activity_type"],
            source_id=workspace.id,
            target_id=target_id,
            method=fields["method"] or None,
            summary=fields["summary"] or None,
            status=fields["status"] or "ok",
            error_detail=fields["error_detail"] or None,
            duration_ms=duration_ms,
            request_body=request_body,
            response_body=body.get("response_body"),
            tool_trace=body.get("tool_trace"),
        )
        return Response({"status": "logged"})


def _parse_attachments(value) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(a, dict) for a in value):
        raise ApiError(INVALID_BODY)
    attachments = []
    for index, attachment in enumerate(value):
        uri, name = _optional(attachment, "uri", str), _optional(attachment, "name", str)
        mime_type = _optional(attachment, "mimeType", str)
        size = attachment.get("size")
        if size is not None:
            # Sizes stay integers on the wire (Go int64): 2048.0 is 2048, 2048.5 is not a size.
            if isinstance(size, bool) or not isinstance(size, (int, float)) or size != int(size):
                raise ApiError(INVALID_BODY)
            size = int(size)
        if not uri or not name:
            raise ApiError(f"attachment[{index}]: uri and name are required")
        attachments.append({"uri": uri, "name": name, "mimeType": mime_type, "size": size})
    return attachments


class NotifyApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id):
        body = json_body(request)
        if not isinstance(body, dict):
            raise ApiError(INVALID_BODY)
        message = _optional(body, "message", str)
        if not message:
            raise ApiError("message is required")
        attachments = _parse_attachments(body.get("attachments"))
        workspace = _existing_workspace(workspace_id, live_only=True)
        services.workspace_notify(workspace=workspace, message=message, attachments=attachments)
        return Response({"status": "sent"})


class SessionSearchApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        return Response(
            selectors.session_search(
                workspace_id=workspace_id,
                q=request.query_params.get("q", ""),
                limit=_limit(request, SEARCH_DEFAULT_LIMIT, SEARCH_MAX_LIMIT),
            )
        )


class ConfigApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,), "PATCH": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        return Response({"data": selectors.config_data(workspace_id)})

    def patch(self, request, workspace_id):
        length = request.META.get("CONTENT_LENGTH")
        if length and length.isdigit() and int(length) > CONFIG_MAX_BYTES:
            raise ApiError("body too large or unreadable", status=413)
        try:
            raw = request.body
        except (RequestDataTooBig, OSError):
            raise ApiError("body too large or unreadable", status=413) from None
        if len(raw) > CONFIG_MAX_BYTES:
            raise ApiError("body too large or unreadable", status=413)
        try:
            changes = storable_json(json.loads(raw), raw)  # a NUL in jsonb was a 500 (the fuzz run)
        except ValueError:
            raise ApiError("invalid JSON") from None
        if not isinstance(changes, dict):
            # jsonb `||` with an array or scalar would replace the config object; refuse it.
            raise ApiError("invalid JSON")
        workspace = _existing_workspace(workspace_id)
        services.config_merge(workspace_id=workspace.id, changes=changes)
        return Response({"status": "updated"})


# --- approvals (spec §13) --------------------------------------------------------------------------

class ApprovalsApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,), "POST": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        return Response(approvals.approval_list(workspace_id=parse_uuid(workspace_id)))

    def post(self, request, workspace_id):
        body = json_body(request)
        if not isinstance(body, dict):
            raise ApiError(INVALID_BODY)
        action = body.get("action")
        if not isinstance(action, str) or not action:
            raise ApiError(INVALID_BODY)
        task_id = _optional(body, "task_id", str)
        reason = _optional(body, "reason", str)
        context = _optional(body, "context", dict) or {}
        workspace = _existing_workspace(workspace_id, live_only=True)
        result = approvals.approval_create(
            workspace=workspace, action=action, task_id=task_id, reason=reason, context=context
        )
        return Response(result, status=201)


class ApprovalDecideApi(Api):
    """Beyond the original: only an operator decides (its WorkspaceAuth let the requesting
    workspace approve itself), and ``decided_by`` is the authenticated operator — a
    ``decided_by`` in the body is ignored, not stored as given."""

    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id, approval_id):
        decided_by = auth.require_operator(request, "deciding an approval")
        body = json_body(request)
        if not isinstance(body, dict):
            raise ApiError(INVALID_BODY)
        if decided_by == auth.DEV_MODE_ACTOR:
            decided_by = _optional(body, "decided_by", str) or "human"  # the original's free text
        not_found = "approval not found or already decided"
        return Response(approvals.approval_decide(
            workspace_id=parse_uuid(workspace_id, not_found, status=404),
            approval_id=parse_uuid(approval_id, not_found, status=404),
            decision=body.get("decision") if isinstance(body.get("decision"), str) else "",
            decided_by=decided_by,
        ))


class PendingApprovalsApi(Api):
    auth_by_method = {"GET": (AdminAuth,)}

    def get(self, request):
        return Response(approvals.approvals_pending())
