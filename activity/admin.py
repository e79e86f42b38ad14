"""Operator admin for activity logs, the append-only structure event log, and approvals."""

from django.contrib import admin, messages
from django.utils.text import Truncator

from activity import approvals
from activity.models import ActivityLog, ApprovalRequest, StructureEvent
from molecule_site.admin_site import OperatorModelAdmin, ViewOnlyModelAdmin, compact_json
from molecule_site.errors import ApiError


@admin.register(ActivityLog)
class ActivityLogAdmin(OperatorModelAdmin):
    """Rows are written by the platform, so they can be read and pruned here but not added or edited."""

    list_display = ("created_at", "workspace", "activity_type", "method", "status", "duration_ms", "summary_preview")
    list_filter = ("activity_type", "status")
    search_fields = ("summary", "method", "idempotency_key", "workspace__name", "source_id", "target_id")
    list_select_related = ("workspace",)
    ordering = ("-created_at",)
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False  # an exact count of a large table on every page is not worth it

    @admin.display(description="summary", ordering="summary")
    def summary_preview(self, log: ActivityLog) -> str:
        return Truncator(log.summary or "").chars(80)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(StructureEvent)
class StructureEventAdmin(ViewOnlyModelAdmin):
    """View only: the table is append-only (model guard + database trigger)."""

    list_display = ("created_at", "event_type", "workspace_id", "payload_preview")
    list_filter = ("event_type",)
    search_fields = ("event_type", "workspace_id", "agent_id", "target_id")
    ordering = ("-created_at",)
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False  # an exact count of a large table on every page is not worth it

    @admin.display(description="payload")
    def payload_preview(self, event: StructureEvent) -> str:
        return compact_json(event.payload, limit=100)


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(OperatorModelAdmin):
    list_display = ("action", "workspace", "status", "task_id", "decided_by", "decided_at", "created_at")
    list_filter = ("status",)
    search_fields = ("action", "reason", "task_id", "decided_by", "workspace__name")
    list_select_related = ("workspace",)
    ordering = ("-created_at",)
    autocomplete_fields = ("workspace",)
    readonly_fields = ("id", "created_at")
    actions = ("approve_selected", "deny_selected")

    def _decide(self, request, queryset, decision: str) -> None:
        """Decide through the same service as the API, so the events and the race rules hold."""
        decided_by = f"admin:{request.user.get_username()}"
        done = skipped = 0
        for approval in queryset:
            try:
                approvals.approval_decide(
                    workspace_id=approval.workspace_id, approval_id=approval.id, decision=decision, decided_by=decided_by
                )
                done += 1
            except ApiError:
                skipped += 1
        self.message_user(request, f"{decision.capitalize()} {done} request(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} request(s) were already decided.", messages.WARNING)

    @admin.action(description="Approve selected pending requests", permissions=["change"])
    def approve_selected(self, request, queryset):
        self._decide(request, queryset, "approved")

    @admin.action(description="Deny selected pending requests", permissions=["change"])
    def deny_selected(self, request, queryset):
        self._decide(request, queryset, "denied")
