"""The operator admin at ``/django-admin/``: a fleet dashboard as its landing page, and the
helpers every app's admin shares (status badges, ages, add pages without unsaved defaults).

The dashboard answers "what is wrong with my fleet right now": workspaces by status, the failing
ones with their last error, pending approvals, the latest structure events, and whether the
database, Redis and the provisioner answer. Each health check is bounded by a short timeout and
reports a failure as a red row, never as an error page.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime

import redis
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import flatten
from django.db import DatabaseError, connection
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from activity.models import ApprovalRequest, ApprovalStatus, StructureEvent
from workspaces.models import Workspace, WorkspaceStatus
from workspaces.provisioners import get_provisioner

HEALTH_TIMEOUT_SECONDS = 0.5
FAILING_STATUSES = (WorkspaceStatus.FAILED, WorkspaceStatus.DEGRADED, WorkspaceStatus.OFFLINE)
# Dashboard order: what needs attention first, then what is fine, then what is parked.
STATUS_ORDER = (
    WorkspaceStatus.FAILED, WorkspaceStatus.DEGRADED, WorkspaceStatus.OFFLINE, WorkspaceStatus.PROVISIONING,
    WorkspaceStatus.AWAITING_AGENT, WorkspaceStatus.ONLINE, WorkspaceStatus.HIBERNATING,
    WorkspaceStatus.HIBERNATED, WorkspaceStatus.PAUSED, WorkspaceStatus.REMOVED,
)
DASHBOARD_FAILING_ROWS = 20
DASHBOARD_APPROVAL_ROWS = 10
DASHBOARD_EVENT_ROWS = 15


# --- helpers shared by the app admins ----------------------------------------------------------------

def status_badge(status: str):
    """A workspace status as a coloured pill (colours in ``static/admin/molecule.css``)."""
    return format_html('<span class="mol-status mol-status-{}">{}</span>', status, status)


def short_age(moment: datetime | None) -> str:
    """``12 s``, ``4 min``, ``3 h``, ``2 d`` since ``moment``; ``never`` without one.

    Heartbeats come every 30 s, so seconds matter where ``timesince`` would say "0 minutes"."""
    if moment is None:
        return "never"
    seconds = max(int((timezone.now() - moment).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def compact_json(value, limit: int = 120) -> str:
    return Truncator(json.dumps(value, separators=(",", ":"), default=str)).chars(limit) if value else ""


class OperatorModelAdmin(admin.ModelAdmin):
    """Base for every model admin of the platform.

    An add page has nothing to show in read-only fields: the row does not exist yet, and a field
    with only a database default would render as ``<DatabaseDefault object at 0x…>``. So add pages
    leave read-only fields out; change pages show them.
    """

    def get_readonly_fields(self, request, obj=None):
        return super().get_readonly_fields(request, obj) if obj is not None else ()

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None:
            return fieldsets
        unsaved = set(super().get_readonly_fields(request, obj))
        kept = []
        for name, options in fieldsets:
            fields = [
                entry for entry in options["fields"]
                if not set(flatten([entry]) if isinstance(entry, (list, tuple)) else [entry]) <= unsaved
            ]
            if fields:
                kept.append((name, {**options, "fields": fields}))
        return kept


class ViewOnlyModelAdmin(OperatorModelAdmin):
    """An admin for rows the platform writes and nobody edits: the event log, metered usage, history."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- health checks -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HealthCheck:
    name: str
    level: str  # "ok" | "warn" | "down"
    detail: str


def _elapsed_ms(started: float) -> str:
    return f"{(time.monotonic() - started) * 1000:.0f} ms"


def database_health() -> HealthCheck:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        return HealthCheck("PostgreSQL", "down", f"{type(error).__name__}: {error}")
    return HealthCheck("PostgreSQL", "ok", f"answered in {_elapsed_ms(started)}")


def redis_health() -> HealthCheck:
    # A client of its own: the shared ones wait up to 5 s, far too long for a page.
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=HEALTH_TIMEOUT_SECONDS, socket_connect_timeout=HEALTH_TIMEOUT_SECONDS
    )
    started = time.monotonic()
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        return HealthCheck("Redis", "down", f"{type(error).__name__}: {error}")
    finally:
        client.close()
    return HealthCheck("Redis", "ok", f"answered in {_elapsed_ms(started)}")


def provisioner_health() -> HealthCheck:
    try:
        provisioner = get_provisioner()
        if not provisioner.available:
            return HealthCheck(f"Provisioner ({provisioner.name})", "warn", provisioner.unavailable_reason)
        running = len(provisioner.live_workspace_ids())
    except Exception as error:  # noqa: BLE001 — any backend failure is what this row reports
        return HealthCheck("Provisioner", "down", f"{type(error).__name__}: {error}")
    return HealthCheck(f"Provisioner ({provisioner.name})", "ok", f"{running} runtime(s) running")


# --- the dashboard -------------------------------------------------------------------------------------

def _changelist(model, **filters) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return url + ("?" + "&".join(f"{key}={value}" for key, value in filters.items()) if filters else "")


def fleet_dashboard() -> dict:
    """The dashboard's context: a fixed handful of queries, whatever the fleet's size."""
    counts = dict(Workspace.objects.values_list("status").annotate(count=Count("id")).order_by())
    workspaces_changelist = _changelist(Workspace)
    by_status = [
        {"status": status, "count": counts[status], "url": _changelist(Workspace, status__exact=status)}
        for status in STATUS_ORDER if counts.get(status)
    ]

    failing = list(
        Workspace.objects.filter(status__in=FAILING_STATUSES).select_related("parent")
        .order_by("-updated_at")[:DASHBOARD_FAILING_ROWS]
    )
    for workspace in failing:
        workspace.heartbeat_age = short_age(workspace.last_heartbeat_at)

    pending = ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING)
    approvals = list(pending.select_related("workspace").order_by("created_at")[:DASHBOARD_APPROVAL_ROWS])
    for approval in approvals:
        approval.age = short_age(approval.created_at)

    events = list(StructureEvent.objects.order_by("-created_at")[:DASHBOARD_EVENT_ROWS])
    names = dict(Workspace.objects.filter(pk__in={e.workspace_id for e in events if e.workspace_id})
                 .values_list("id", "name"))
    for event in events:
        event.workspace_name = names.get(event.workspace_id)
        event.payload_preview = compact_json(event.payload)
        event.age = short_age(event.created_at)

    return {
        "fleet_total": sum(counts.values()),
        "fleet_by_status": by_status,
        "fleet_failing": failing,
        "fleet_failing_count": sum(counts.get(status, 0) for status in FAILING_STATUSES),
        "fleet_failing_url": workspaces_changelist + "?status__in=" + ",".join(FAILING_STATUSES),
        "fleet_approvals": approvals,
        "fleet_approvals_count": pending.count() if len(approvals) == DASHBOARD_APPROVAL_ROWS else len(approvals),
        "fleet_approvals_url": _changelist(ApprovalRequest, status__exact=ApprovalStatus.PENDING),
        "fleet_events": events,
        "fleet_events_url": _changelist(StructureEvent),
        "fleet_health": [database_health(), redis_health(), provisioner_health()],
        "workspaces_url": workspaces_changelist,
    }


class MoleculeAdminSite(admin.AdminSite):
    site_header = "Molecule"
    site_title = "Molecule"
    index_title = "Fleet dashboard"
    # The canvas lives at the root.
    site_url = "/"
    index_template = "admin/molecule/dashboard.html"

    def index(self, request, extra_context=None):
        return super().index(request, extra_context={**fleet_dashboard(), **(extra_context or {})})
