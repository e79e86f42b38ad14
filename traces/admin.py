from django.contrib import admin

from molecule_site.admin_site import ViewOnlyModelAdmin
from traces.models import TraceSpan


@admin.register(TraceSpan)
class TraceSpanAdmin(ViewOnlyModelAdmin):
    """Spans are exported by the runtimes and the platform, never typed in."""

    list_display = ("name", "trace_id", "span_id", "workspace", "service_name", "kind", "status", "start_time",
                    "duration_ms")
    list_filter = ("status", "kind", "service_name")
    search_fields = ("trace_id", "span_id", "name", "workspace__name")
    list_select_related = ("workspace",)
    show_full_result_count = False  # a big table: no COUNT(*) per page
