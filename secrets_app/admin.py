"""Operator admin for secrets: values are write-only.

A value typed here is encrypted on save and never rendered back: not in lists, detail pages,
re-rendered forms after a validation error, the admin log (it records changed field names
only), nor in error reports (``sensitive_post_parameters``).
"""

from django import forms
from django.contrib import admin
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters

from secrets_app.crypto import encrypt
from secrets_app.models import GlobalSecret, WorkspaceSecret


class SecretValueForm(forms.ModelForm):
    """Takes a new value, encrypts it into ``encrypted_value``; a blank value on change keeps the old one."""

    value = forms.CharField(label="Value", widget=forms.PasswordInput(render_value=False), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance._state.adding:
            self.fields["value"].required = True
            self.fields["value"].help_text = "Encrypted before it is stored; it cannot be read back here."
        else:
            self.fields["value"].help_text = "Leave blank to keep the stored value."

    def save(self, commit=True):
        value = self.cleaned_data.get("value")
        if value:
            self.instance.encrypted_value, self.instance.encryption_version = encrypt(value)
        return super().save(commit)


class SecretAdmin(admin.ModelAdmin):
    form = SecretValueForm
    exclude = ("encrypted_value",)
    readonly_fields = ("encryption_version", "created_at", "updated_at")
    list_filter = ("encryption_version",)
    ordering = ("key",)

    @method_decorator(sensitive_post_parameters("value"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)


@admin.register(WorkspaceSecret)
class WorkspaceSecretAdmin(SecretAdmin):
    fields = ("workspace", "key", "value", "encryption_version", "created_at", "updated_at")
    list_display = ("key", "workspace", "encryption_version", "updated_at")
    search_fields = ("key", "workspace__name")
    list_select_related = ("workspace",)
    ordering = ("workspace__name", "key")
    autocomplete_fields = ("workspace",)


@admin.register(GlobalSecret)
class GlobalSecretAdmin(SecretAdmin):
    fields = ("key", "value", "encryption_version", "created_at", "updated_at")
    list_display = ("key", "encryption_version", "updated_at")
    search_fields = ("key",)
