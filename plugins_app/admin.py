from django import forms
from django.contrib import admin, messages
from django.utils.text import Truncator

from molecule_site.admin_site import OperatorModelAdmin, ViewOnlyModelAdmin
from molecule_site.errors import ApiError
from plugins_app import registry, services, skills
from plugins_app.models import OrgPluginAllowlist, SkillCandidateDecision, SkillPromotionCandidate, SkillVersion


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


@admin.register(SkillPromotionCandidate)
class SkillPromotionCandidateAdmin(ViewOnlyModelAdmin):
    """Procedures agents flagged as worth a skill (runtime §6.4): promote them under their suggested
    name, or dismiss them. Edit a promoted skill from the canvas's Skills tab or the API."""

    list_display = ("created_at", "workspace", "summary_preview", "suggested_name")
    search_fields = ("summary", "workspace__name")
    list_select_related = ("workspace",)
    actions = ("promote_selected", "dismiss_selected")

    @admin.display(description="summary")
    def summary_preview(self, row) -> str:
        return Truncator(row.summary or "").chars(80)

    @admin.display(description="skill name")
    def suggested_name(self, row) -> str:
        return skills.candidate_dict(row)["suggested_name"]

    def has_delete_permission(self, request, obj=None):
        return False

    def _decide(self, request, queryset, verb: str) -> None:
        done, failed = 0, []
        for row in queryset:
            try:
                if verb == "promote":
                    skills.candidate_promote(workspace_id=row.workspace_id, candidate_id=str(row.id), body={},
                                             actor=request.user.get_username(), operator=True)
                else:
                    skills.candidate_dismiss(workspace_id=row.workspace_id, candidate_id=str(row.id),
                                             actor=request.user.get_username())
                done += 1
            except ApiError as exc:
                failed.append(f"{row.summary}: {exc}")
        self.message_user(request, f"{verb.capitalize()}d {done} candidate(s).", messages.SUCCESS)
        for failure in failed:
            self.message_user(request, failure, messages.WARNING)

    @admin.action(description="Promote selected candidates to skills")
    def promote_selected(self, request, queryset):
        self._decide(request, queryset, "promote")

    @admin.action(description="Dismiss selected candidates")
    def dismiss_selected(self, request, queryset):
        self._decide(request, queryset, "dismiss")
