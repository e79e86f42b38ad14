"""Reads of the schedules: items for the API and the canvas, run history, health, previews."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from activity.models import ActivityLog
from molecule_site.wire import rfc3339
from schedules import cron
from schedules.models import ScheduleStatus, WorkspaceSchedule
from workspaces.models import WorkspaceStatus
from workspaces.selectors import as_uuid

ACTIVITY_TYPE = "cron_run"  # spec §10: the scheduler's activity rows, method "cron"
ACTIVITY_METHOD = "cron"
HISTORY_DEFAULT_LIMIT = 20
HISTORY_MAX_LIMIT = 100
PREVIEW_RUNS = 5


def _time(value) -> str | None:
    return rfc3339(value) if value is not None else None


def schedule_item(row: WorkspaceSchedule) -> dict:
    """One schedule as the API answers it."""
    return {
        "id": str(row.id),
        "workspace_id": str(row.workspace_id),
        "name": row.name,
        "cron_expr": row.cron_expr,
        "timezone": row.timezone,
        "prompt": row.prompt,
        "enabled": row.enabled,
        "source": row.source,
        "status": row.status,
        "consecutive_empty": row.consecutive_empty,
        "run_count": row.run_count,
        "last_run_at": _time(row.last_run_at),
        "last_status": row.last_status,
        "last_error": row.last_error,
        "next_run_at": _time(row.next_fire_at) if row.enabled else None,
        "deferred_until": _time(row.defer_until),
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    }


def workspace_schedules(workspace_id) -> list[WorkspaceSchedule]:
    return list(WorkspaceSchedule.objects.filter(workspace_id=workspace_id).order_by("created_at", "name"))


def schedule_get(workspace_id, schedule_id) -> WorkspaceSchedule | None:
    parsed = as_uuid(schedule_id)
    if parsed is None:
        return None
    return WorkspaceSchedule.objects.filter(workspace_id=workspace_id, pk=parsed).first()


def schedule_history(schedule: WorkspaceSchedule, *, limit: int = HISTORY_DEFAULT_LIMIT) -> list[dict]:
    """The schedule's runs, newest first, from its ``cron_run`` activity rows."""
    rows = (
        ActivityLog.objects.filter(workspace_id=schedule.workspace_id, activity_type=ACTIVITY_TYPE,
                                   request_body__schedule_id=str(schedule.id))
        .order_by("-created_at")[:limit]
    )
    return [run_item(row) for row in rows]


def run_item(row: ActivityLog) -> dict:
    body = row.response_body if isinstance(row.response_body, dict) else {}
    return {
        "id": str(row.id),
        "status": row.status,
        "summary": row.summary,
        "duration_ms": row.duration_ms,
        "error_detail": row.error_detail,
        "reply_preview": body.get("reply_preview") or "",
        "created_at": rfc3339(row.created_at),
    }


# --- Health ------------------------------------------------------------------------------------------

def _health_item(row: WorkspaceSchedule, now: datetime) -> dict:
    overdue = bool(row.enabled and row.next_fire_at and (now - row.next_fire_at).total_seconds() > 300)
    healthy = row.status == ScheduleStatus.OK and not overdue and row.last_status not in ("error", "skipped")
    return {
        "id": str(row.id),
        "workspace_id": str(row.workspace_id),
        "name": row.name,
        "enabled": row.enabled,
        "status": row.status,
        "healthy": healthy,
        "overdue": overdue,
        "consecutive_empty": row.consecutive_empty,
        "last_run_at": _time(row.last_run_at),
        "last_status": row.last_status,
        "last_error": row.last_error,
        "next_run_at": _time(row.next_fire_at) if row.enabled else None,
    }


def workspace_schedule_health(workspace_id) -> dict:
    """``GET /workspaces/:id/schedules/health``: each schedule's health and the workspace's verdict."""
    now = timezone.now()
    items = [_health_item(row, now) for row in workspace_schedules(workspace_id)]
    return {
        "workspace_id": str(workspace_id),
        "healthy": all(item["healthy"] for item in items if item["enabled"]),
        "schedules": items,
    }


def schedules_health() -> dict:
    """``GET /admin/schedules/health``: every schedule of the live workspaces, unhealthy first."""
    now = timezone.now()
    rows = (
        WorkspaceSchedule.objects.exclude(workspace__status=WorkspaceStatus.REMOVED)
        .select_related("workspace").order_by("workspace__name", "name")
    )
    items = []
    for row in rows:
        item = _health_item(row, now)
        item["workspace_name"] = row.workspace.name
        items.append(item)
    items.sort(key=lambda item: item["healthy"])
    enabled = [item for item in items if item["enabled"]]
    return {
        "total": len(items),
        "enabled": len(enabled),
        "unhealthy": sum(1 for item in enabled if not item["healthy"]),
        "stale": sum(1 for item in items if item["status"] == ScheduleStatus.STALE),
        "schedules": items,
    }


def due_schedules(now: datetime, *, limit: int) -> list[tuple]:
    """``(id, next_fire_at, cron_expr, timezone)`` of enabled rows due at ``now``, oldest deadline
    first: the partial index ``idx_schedules_due``."""
    return list(
        WorkspaceSchedule.objects.filter(Q(enabled=True) & Q(next_fire_at__lte=now))
        .order_by("next_fire_at").values_list("id", "next_fire_at", "cron_expr", "timezone")[:limit]
    )


# --- Previews ------------------------------------------------------------------------------------------

def preview(cron_expr, timezone_name, *, count: int = PREVIEW_RUNS, now: datetime | None = None) -> dict:
    """The next ``count`` runs of an expression in its zone, or the problem with it.

    ``{"ok", "error", "description", "runs": [{"at" (RFC 3339 UTC), "local" (readable, in the zone)}]}``
    """
    try:
        expression = cron.parse(cron_expr)
        zone = cron.zone(timezone_name or "UTC")
        runs = expression.next_runs(now or timezone.now(), zone, count)
    except cron.CronError as exc:
        return {"ok": False, "error": str(exc), "description": "", "runs": []}
    return {
        "ok": True,
        "error": "",
        "description": cron.describe(expression),
        "timezone": zone.key,
        "runs": [{"at": rfc3339(run), "local": run.astimezone(zone).strftime("%a %d %b %Y, %H:%M %Z")} for run in runs],
    }
