"""Operator admin for workspace bearer tokens.

Tokens are minted here and revoked here, never edited. ``token_hash`` appears in no form,
page or column: the digest is as good as a credential for anyone who can query the database.
"""

from django.contrib import admin, messages
from django.utils.translation import ngettext

from registry.models import WorkspaceAuthToken
from registry.tokens import token_mint, token_revoke


class LiveFilter(admin.SimpleListFilter):
    title = "live"
    parameter_name = "live"

    def lookups(self, request, model_admin):
        return (("yes", "Live"), ("no", "Revoked"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(WorkspaceAuthToken)
class WorkspaceAuthTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix_display", "workspace", "created_at", "last_used_at", "revoked_at", "live")
    list_filter = (LiveFilter, "created_at")
    search_fields = ("prefix", "workspace__name", "workspace__id")
    list_select_related = ("workspace",)
    ordering = ("-created_at",)
    list_per_page = 50
    show_full_result_count = False  # an exact count of a large table on every page is not worth it
    actions = ("revoke_selected",)
    exclude = ("token_hash",)
    readonly_fields = ("id", "prefix_display", "workspace", "created_at", "last_used_at", "revoked_at", "live")
    autocomplete_fields = ("workspace",)

    @admin.display(description="token", ordering="prefix")
    def prefix_display(self, token: WorkspaceAuthToken) -> str:
        return f"{token.prefix}…"

    @admin.display(description="live", boolean=True)
    def live(self, token: WorkspaceAuthToken) -> bool:
        return token.is_live

    def get_fields(self, request, obj=None):
        # The add page mints: its form has the workspace only; everything else comes from token_mint.
        return ("workspace",) if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        # View-only detail pages; the only write on an existing token is the revoke action.
        return False

    def has_delete_permission(self, request, obj=None):
        # Revoked rows are kept for audit (spec §2.1): revoke, do not delete.
        return False

    def has_revoke_permission(self, request) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def save_model(self, request, obj, form, change):
        token, plaintext = token_mint(workspace=form.cleaned_data["workspace"])
        # The admin logs and redirects with the object it passed in, so give it the minted row's state.
        for field in token._meta.concrete_fields:
            setattr(obj, field.attname, getattr(token, field.attname))
        obj._state.adding = False
        messages.success(
            request,
            f"New token for {token.workspace}: {plaintext} — copy it now; it will not be shown again.",
        )

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        revoked = token_revoke(tokens=queryset)
        self.message_user(
            request,
            ngettext("Revoked %d token.", "Revoked %d tokens.", revoked) % revoked,
            messages.SUCCESS,
        )
