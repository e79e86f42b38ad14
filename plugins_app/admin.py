from django import forms
from django.contrib import admin

from molecule_site.admin_site import OperatorModelAdmin, ViewOnlyModelAdmin
from plugins_app import registry, services
from plugins_app.models import OrgPluginAllowlist, SkillCandidateDecision, SkillVersion


class AllowlistForm(forms.ModelForm):
    class Meta:
        model = OrgPluginAllowlist
        fields = ("org", "plugin_name")

    def clean_plugin_name(self):
        name = self.cleaned_data["plugin_name"]
        if not registry.valid_name(name):
            raise forms.ValidationError("lowercase letters, digits, '-' and '_' only")
        return name

    def clean_org(self):
        org = self.cleaned_data["org"]
        if org.parent_id is not None:
            raise forms.ValidationError("the allowlist is kept on the org root (a workspace without parent)")
        return org


@admin.register(OrgPluginAllowlist)
class OrgPluginAllowlistAdmin(OperatorModelAdmin):
    """Which plugins an org may install; an org without entries may install any."""

    form = AllowlistForm
    list_display = ("plugin_name", "org", "enabled_by", "created_at")
    search_fields = ("plugin_name", "org__name")
    list_select_related = ("org",)
    readonly_fields = ("enabled_by", "created_at")

    def save_model(self, request, obj, form, change):
        services.allowlist_entry_save(entry=obj, actor=request.user.get_username())

    def delete_model(self, request, obj):
        services.allowlist_entry_delete(entry=obj, actor=request.user.get_username())

    def delete_queryset(self, request, queryset):
        for entry in queryset:
            services.allowlist_entry_delete(entry=entry, actor=request.user.get_username())


@admin.register(SkillVersion)
class SkillVersionAdmin(ViewOnlyModelAdmin):
    """The history of every workspace skill; roll back from the canvas or the API."""

    list_display = ("skill", "version", "action", "workspace", "actor", "created_at")
    list_filter = ("action",)
    search_fields = ("skill", "workspace__name")
    list_select_related = ("workspace",)


@admin.register(SkillCandidateDecision)
class SkillCandidateDecisionAdmin(ViewOnlyModelAdmin):
    list_display = ("decision", "skill", "workspace", "decided_by", "decided_at")
    list_filter = ("decision",)
    list_select_related = ("workspace",)
