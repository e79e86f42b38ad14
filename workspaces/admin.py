"""Operator admin for the org tree. Lifecycle actions call the same services as the API."""

from django.contrib import admin, messages
from django.db.models import Count
from django.utils.html import format_html

from molecule_site.errors import ApiError
from workspaces import services
from workspaces.models import Agent, CanvasLayout, CanvasViewport, Workspace, WorkspaceConfig
from workspaces.provisioners.local import read_log_tail

RUNTIME_LOG_TAIL_BYTES = 20 * 1024

admin.site.site_header = "Molecule operator admin"
admin.site.site_title = "Molecule operator admin"
admin.site.index_title = "Control plane"


class CanvasLayoutInline(admin.StackedInline):
    model = CanvasLayout
    can_delete = False
    max_num = 1


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "tier", "runtime", "parent", "children_count", "last_heartbeat_at")
    list_filter = ("status", "tier", "runtime")
    search_fields = ("name", "role", "id")
    list_select_related = ("parent",)
    ordering = ("name",)
    autocomplete_fields = ("parent", "forwarded_to")
    inlines = (CanvasLayoutInline,)
    actions = ("pause_selected", "resume_selected", "restart_selected", "remove_selected")
    # Runtime-reported fields: heartbeats overwrite them, so editing them here would only mislead.
    readonly_fields = (
        "id",
        "last_heartbeat_at",
        "liveness_deadline",
        "last_error_rate",
        "last_sample_error",
        "active_tasks",
        "uptime_seconds",
        "current_task",
        "last_outbound_at",
        "created_at",
        "updated_at",
        "runtime_log",
    )
    fieldsets = (
        (None, {"fields": ("id", "name", "role", "tier", "status", "parent", "forwarded_to")}),
        ("Runtime", {"fields": ("runtime", "url", "instance_id", "agent_card", "workspace_dir", "workspace_access")}),
        (
            "Liveness",
            {
                "fields": (
                    "last_heartbeat_at",
                    "liveness_deadline",
                    "last_error_rate",
                    "last_sample_error",
                    "active_tasks",
                    "uptime_seconds",
                    "current_task",
                    "last_outbound_at",
                )
            },
        ),
        (
            "Limits",
            {
                "fields": (
                    "max_concurrent_tasks",
                    "budget_limit",
                    "monthly_spend",
                    "hibernation_idle_minutes",
                    "awareness_namespace",
                    "source_bundle_id",
                )
            },
        ),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
        ("Runtime log", {"fields": ("runtime_log",), "classes": ("collapse",)}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(children_count=Count("children"))

    def has_delete_permission(self, request, obj=None):
        # Removal is a lifecycle step (status "removed", tokens revoked, runtime stopped), not a
        # row deletion: the "remove" action does it through the service.
        return False

    def _run_lifecycle(self, request, queryset, verb: str, call) -> None:
        done, failures = 0, []
        for workspace in queryset:
            try:
                call(workspace)
                done += 1
            except ApiError as error:
                failures.append(f"{workspace.name}: {error.body.get('error') or error.body.get('message')}")
        if done:
            self.message_user(request, f"{verb} {done} workspace(s).", messages.SUCCESS)
        for failure in failures:
            self.message_user(request, failure, messages.ERROR)

    @admin.action(description="Pause selected workspaces (and their sub-workspaces)", permissions=["change"])
    def pause_selected(self, request, queryset):
        self._run_lifecycle(request, queryset, "Paused", lambda w: services.workspace_pause(workspace_id=w.id))

    @admin.action(description="Resume selected workspaces", permissions=["change"])
    def resume_selected(self, request, queryset):
        self._run_lifecycle(request, queryset, "Resumed", lambda w: services.workspace_resume(workspace_id=w.id))

    @admin.action(description="Restart selected workspaces", permissions=["change"])
    def restart_selected(self, request, queryset):
        self._run_lifecycle(request, queryset, "Restarted", lambda w: services.workspace_restart(workspace_id=w.id))

    @admin.action(description="Remove selected workspaces with all their sub-workspaces", permissions=["change"])
    def remove_selected(self, request, queryset):
        self._run_lifecycle(
            request, queryset, "Removed",
            lambda w: services.workspace_delete(workspace_id=w.id, confirm=True, purge=False),
        )

    @admin.display(description="Runtime log (last 20 KB)")
    def runtime_log(self, workspace: Workspace) -> str:
        """The tail of the local runtime's log, as the runtime printed it (escaped, never rendered)."""
        tail = read_log_tail(workspace.id, RUNTIME_LOG_TAIL_BYTES) if workspace.pk else ""
        if not tail:
            return "(no runtime log on this machine)"
        return format_html('<pre style="max-height:30em;overflow:auto;white-space:pre-wrap">{}</pre>', tail)

    @admin.display(description="children", ordering="children_count")
    def children_count(self, workspace: Workspace) -> int:
        return workspace.children_count


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("model", "workspace", "status", "created_at", "removed_at")
    list_filter = ("status",)
    search_fields = ("model", "workspace__name", "removal_reason")
    list_select_related = ("workspace",)
    ordering = ("-created_at",)
    autocomplete_fields = ("workspace",)
    readonly_fields = ("id", "created_at")


@admin.register(CanvasLayout)
class CanvasLayoutAdmin(admin.ModelAdmin):
    list_display = ("workspace", "x", "y", "collapsed")
    list_filter = ("collapsed",)
    search_fields = ("workspace__name",)
    list_select_related = ("workspace",)
    ordering = ("workspace__name",)
    autocomplete_fields = ("workspace",)


@admin.register(CanvasViewport)
class CanvasViewportAdmin(admin.ModelAdmin):
    list_display = ("__str__", "x", "y", "zoom", "saved_at")
    readonly_fields = ("saved_at",)

    def has_add_permission(self, request):
        # A single shared row (fixed id, enforced by a check constraint): add only while it is missing.
        return super().has_add_permission(request) and not CanvasViewport.objects.exists()


@admin.register(WorkspaceConfig)
class WorkspaceConfigAdmin(admin.ModelAdmin):
    list_display = ("workspace", "updated_at")
    search_fields = ("workspace__name",)
    list_select_related = ("workspace",)
    ordering = ("workspace__name",)
    autocomplete_fields = ("workspace",)
    readonly_fields = ("updated_at",)
