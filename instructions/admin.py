"""Operator admin for platform instructions: the same rules the ``/instructions`` API writes."""

from django.contrib import admin
from django.utils.text import Truncator

from instructions import services
from instructions.models import PlatformInstruction
from molecule_site.admin_site import OperatorModelAdmin


@admin.register(PlatformInstruction)
class PlatformInstructionAdmin(OperatorModelAdmin):
    list_display = ("title", "scope", "workspace", "priority", "enabled", "content_preview", "updated_at")
    list_filter = ("scope", "enabled")
    search_fields = ("title", "content", "workspace__name")
    list_select_related = ("workspace",)
    ordering = ("scope", "-priority", "created_at")
    autocomplete_fields = ("workspace",)
    readonly_fields = ("id", "created_at", "updated_at")
    fields = ("id", "scope", "workspace", "title", "content", "priority", "enabled", "created_at", "updated_at")

    @admin.display(description="content", ordering="content")
    def content_preview(self, instruction: PlatformInstruction) -> str:
        return Truncator(instruction.content).chars(80)

    def save_model(self, request, obj, form, change):
        services.instruction_save(instruction=obj)

    def delete_model(self, request, obj):
        services.instruction_delete(instruction=obj)
