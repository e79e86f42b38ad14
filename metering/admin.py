from django.contrib import admin

from metering.models import WorkspaceTokenUsage
from molecule_site.admin_site import ViewOnlyModelAdmin


@admin.register(WorkspaceTokenUsage)
class WorkspaceTokenUsageAdmin(ViewOnlyModelAdmin):
    """Usage is metered from the agents' replies, never typed in."""

    list_display = ("workspace", "model", "day", "input_tokens", "output_tokens", "call_count", "cost_cents")
    list_filter = ("day",)
    search_fields = ("workspace__name", "model")
    list_select_related = ("workspace",)
