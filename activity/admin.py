"""Operator admin for activity logs, the append-only structure event log, and approvals."""

from django.contrib import admin
from django.utils.text import Truncator

from activity.models import ActivityLog, ApprovalRequest, StructureEvent


@admin.register(ActivityLog)
class ActivityLogAdmin(admin.ModelAdmin):
    """Rows are written by the platform, so they can be read and pruned here but not added or edited."""

    list_display = ("created_at", "workspace", "activity_type", "method", "status", "duration_ms", "summary_preview")
    list_filter = ("activity_type", "status")
    search_fields = ("summary", "method", "idempotency_key", "workspace__name", "source_id", "target_id")
    list_select_related = ("workspace",)
    ordering = ("-created_at",)
    date_hierarchy = "created_at"

    @admin.display(description="summary", ordering="summary")
    def summary_preview(self, log: ActivityLog) -> str:
        return Truncator(log.summary or "").chars(80)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(StructureEvent)
class StructureEventAdmin(admin.ModelAdmin):
    """View only: the table is append-only (model guard + database trigger)."""

    list_display = ("created_at", "event_type", "workspace_id", "agent_id", "target_id")
    list_filter = ("event_type",)
    search_fields = ("event_type", "workspace_id", "agent_id", "target_id")
    ordering = ("-created_at",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(admin.ModelAdmin):
    list_display = ("action", "workspace", "status", "task_id", "decided_by", "decided_at", "created_at")
    list_filter = ("status",)
    search_fields = ("action", "reason", "task_id", "decided_by", "workspace__name")
    list_select_related = ("workspace",)
    ordering = ("-created_at",)
    autocomplete_fields = ("workspace",)
    readonly_fields = ("id", "created_at")
