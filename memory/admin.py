"""Operator admin for agent memories and key/value workspace memory."""

from django import forms
from django.contrib import admin
from django.db import models
from django.db.models import F
from django.utils.text import Truncator

from memory.models import AgentMemory, WorkspaceMemory
from molecule_site.admin_site import OperatorModelAdmin


@admin.register(AgentMemory)
class AgentMemoryAdmin(OperatorModelAdmin):
    list_display = ("content_preview", "workspace", "scope", "namespace", "created_at")
    list_filter = ("scope", "namespace")
    search_fields = ("content", "namespace", "workspace__name")
    list_select_related = ("workspace",)
    ordering = ("-created_at",)
    list_per_page = 50
    show_full_result_count = False  # an exact count of a large table on every page is not worth it
    autocomplete_fields = ("workspace",)
    # content_tsv is a generated column: PostgreSQL computes it, a form must not try to.
    exclude = ("content_tsv",)
    readonly_fields = ("id", "created_at", "updated_at")

    @admin.display(description="content", ordering="content")
    def content_preview(self, memory: AgentMemory) -> str:
        return Truncator(memory.content).chars(80)


@admin.register(WorkspaceMemory)
class WorkspaceMemoryAdmin(OperatorModelAdmin):
    list_display = ("key", "workspace", "version", "expires_at", "updated_at")
    list_filter = (("expires_at", admin.EmptyFieldListFilter),)
    search_fields = ("key", "workspace__name")
    list_select_related = ("workspace",)
    ordering = ("workspace__name", "key")
    list_per_page = 50
    formfield_overrides = {models.TextField: {"widget": forms.TextInput(attrs={"class": "vTextField"})}}
    autocomplete_fields = ("workspace",)
    readonly_fields = ("id", "version", "updated_at")

    def save_model(self, request, obj, form, change):
        if change:
            # Clients write with optimistic concurrency on ``version``; an operator edit must bump it
            # too, or a client holding the old version would overwrite this edit unknowingly.
            obj.version = F("version") + 1
        super().save_model(request, obj, form, change)
        if change:
            obj.refresh_from_db(fields=["version"])
