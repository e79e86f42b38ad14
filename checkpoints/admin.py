from django.contrib import admin

from checkpoints.models import WorkflowCheckpoint
from molecule_site.admin_site import ViewOnlyModelAdmin, compact_json


@admin.register(WorkflowCheckpoint)
class WorkflowCheckpointAdmin(ViewOnlyModelAdmin):
    """Checkpoints are the agents' own bookkeeping: an operator reads them, never types them in."""

    list_display = ("workflow_id", "step_index", "step_name", "workspace", "payload_preview", "updated_at")
    search_fields = ("workflow_id", "step_name", "workspace__name")
    list_select_related = ("workspace",)
    ordering = ("-updated_at",)
    list_per_page = 50

    @admin.display(description="payload")
    def payload_preview(self, checkpoint: WorkflowCheckpoint) -> str:
        return compact_json(checkpoint.payload)
