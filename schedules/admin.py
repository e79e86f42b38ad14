from django.contrib import admin

from molecule_site.admin_site import ViewOnlyModelAdmin
from schedules import services
from schedules.inputs import ScheduleInput
from schedules.models import WorkspaceSchedule


@admin.register(WorkspaceSchedule)
class WorkspaceScheduleAdmin(ViewOnlyModelAdmin):
    """Schedules are written through the API and the canvas (which compute their deadline); the
    admin shows them and can switch them off through the same service."""

    list_display = ("name", "workspace", "cron_expr", "timezone", "enabled", "source", "status", "last_run_at",
                    "last_status", "next_fire_at")
    list_filter = ("enabled", "source", "status")
    search_fields = ("name", "workspace__name", "prompt")
    list_select_related = ("workspace",)
    show_full_result_count = False
    actions = ["disable"]

    @admin.action(description="Disable the selected schedules")
    def disable(self, request, queryset):
        rows = list(queryset.filter(enabled=True))
        for row in rows:
            services.schedule_update(schedule=row, fields=ScheduleInput(enabled=False))
        self.message_user(request, f"{len(rows)} schedule(s) disabled.")
