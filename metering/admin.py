from django.contrib import admin

from metering.models import WorkspaceTokenUsage


@admin.register(WorkspaceTokenUsage)
class WorkspaceTokenUsageAdmin(admin.ModelAdmin):
    """Read-only: usage is metered from the agents' replies, never typed in."""

    list_display = ("workspace", "model", "day", "input_tokens", "output_tokens", "call_count", "cost_cents")
    list_filter = ("day",)
    search_fields = ("workspace__name", "model")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
