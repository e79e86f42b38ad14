"""Operator admin for secrets: values are write-only.

A value typed here is encrypted on save and never rendered back: not in lists, detail pages,
re-rendered forms after a validation error, the admin log (it records changed field names
only), nor in error reports (``sensitive_post_parameters``). Saves and deletes go through
``secrets_app.services``, like the API's, so they also restart the workspaces they affect.
"""

from django import forms
from django.contrib import admin
from django.db import models
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from molecule_site.admin_site import OperatorModelAdmin
from molecule_site.errors import ApiError
from secrets_app import services
from secrets_app.models import GlobalSecret, WorkspaceSecret


class SecretValueForm(forms.ModelForm):
    """Takes a new value for the save service to encrypt; a blank value on change keeps the old one."""

    value = forms.CharField(label="Value", widget=forms.PasswordInput(render_value=False), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance._state.adding:
            self.fields["value"].required = True
            self.fields["value"].help_text = "Encrypted before it is stored; it cannot be read back here."
        else:
            self.fields["value"].help_text = "Leave blank to keep the stored value."

    def clean_key(self):
        key = self.cleaned_data.get("key")
        if key and not services.is_valid_secret_key(key):
            raise forms.ValidationError("A key cannot contain “=” (it becomes an environment variable name).")
        return key


class SecretAdmin(OperatorModelAdmin):
    """Shared by both secret admins; each defines ``save_secret(obj, *, value)`` and
    ``delete_secret(obj)`` to route writes through its service (restarts included)."""

    form = SecretValueForm
    # Keys are one line (they become environment variable names).
    formfield_overrides = {models.TextField: {"widget": forms.TextInput(attrs={"class": "vTextField"})}}
    exclude = ("encrypted_value",)
    readonly_fields = ("encryption_version", "created_at", "updated_at")
    list_filter = ("encryption_version",)
    ordering = ("key",)

    @method_decorator(sensitive_post_parameters("value"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        self.save_secret(obj, value=form.cleaned_data.get("value") or None)

    def delete_model(self, request, obj):
        try:
            self.delete_secret(obj)
        except ApiError:
            pass  # already deleted by someone else: the outcome the operator asked for

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(WorkspaceSecret)
class WorkspaceSecretAdmin(SecretAdmin):
    fields = ("workspace", "key", "value", "encryption_version", "created_at", "updated_at")
    list_display = ("key", "workspace", "encryption_version", "updated_at")
    search_fields = ("key", "workspace__name")
    list_select_related = ("workspace",)
    ordering = ("workspace__name", "key")
    autocomplete_fields = ("workspace",)

    def save_secret(self, obj, *, value):
        services.workspace_secret_save(secret=obj, value=value)

    def delete_secret(self, obj):
        services.workspace_secret_delete(workspace_id=obj.workspace_id, key=obj.key)


@admin.register(GlobalSecret)
class GlobalSecretAdmin(SecretAdmin):
    fields = ("key", "value", "encryption_version", "created_at", "updated_at")
    list_display = ("key", "encryption_version", "updated_at")
    search_fields = ("key",)

    def save_secret(self, obj, *, value):
        services.global_secret_save(secret=obj, value=value)

    def delete_secret(self, obj):
        services.global_secret_delete(key=obj.key)
