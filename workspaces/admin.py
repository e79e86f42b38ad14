"""Operator admin for the org tree.

Every write goes through the lifecycle services, like the API's: the add form is ``POST
/workspaces`` (``parse_new_workspace`` → ``workspace_create``, which provisions on commit and
emits the events), the change form is ``PATCH /workspaces/:id`` (``workspace_update``), and
pause/resume/restart/expand/collapse/remove are buttons and list actions calling
``workspaces.services`` and ``workspaces.team``. ``status`` and everything a runtime reports are
read-only. The operator may change the structure fields (parent, tier, runtime, directory).
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from activity.models import ActivityLog
from memory.models import AgentMemory
from molecule_site.admin_site import OperatorModelAdmin, ViewOnlyModelAdmin, short_age, status_badge
from molecule_site.errors import ApiError
from registry.models import WorkspaceAuthToken
from secrets_app.models import WorkspaceSecret
from workspaces import selectors, services, team, templates, validators
from workspaces.models import (
    Agent, AgentStatus, CanvasLayout, CanvasViewport, Workspace, WorkspaceConfig, WorkspaceStatus,
)
from workspaces.provisioners.local import read_log_tail
from workspaces.serializers import MAX_HIBERNATION_IDLE_MINUTES, parse_new_workspace
from workspaces.views import request_platform_url

RUNTIME_LOG_TAIL_BYTES = 20 * 1024
RELATED_ROWS = 10
# Every text column of these models holds one line (names, ids, URLs, paths); a textarea per
# field made the workspace page ~3,500 px long.
ONE_LINE_TEXT = {models.TextField: {"widget": forms.TextInput(attrs={"class": "vTextField"})}}
TIER_CHOICES = [(tier, f"tier {tier}") for tier in range(1, 5)]


def _error_text(error: ApiError) -> str:
    return error.body.get("error") or error.body.get("message") or str(error)


def _table(headers: tuple[str, ...], rows, empty: str, more_url: str | None = None, more: str = ""):
    """A small read-only table for a change-page panel; ``rows`` hold already-escaped cells."""
    rows = list(rows)
    if not rows:
        body = format_html('<p class="mol-empty">{}</p>', empty)
    else:
        body = format_html(
            '<table class="mol-related"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
            format_html_join("", "<th>{}</th>", ((h,) for h in headers)),
            format_html_join("", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((c,) for c in row)),)
                                                  for row in rows)),
        )
    if more_url:
        body = format_html('{}<p class="mol-more"><a href="{}">{}</a></p>', body, more_url, more)
    return body


def _changelist_url(model, **filters) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return url + "?" + "&".join(f"{key}={value}" for key, value in filters.items())


# --- forms ---------------------------------------------------------------------------------------------

class WorkspaceAddForm(forms.ModelForm):
    """The fields of ``POST /workspaces``; the body is built and checked by the API's parser."""

    template = forms.ChoiceField(required=False, help_text="Runtime and model default to the template's.")
    runtime = forms.CharField(required=False, help_text="Empty: the template's, else langgraph.")
    model = forms.CharField(required=False, help_text="e.g. openai:gpt-4o; empty: the template's.")
    tier = forms.TypedChoiceField(choices=[(0, "default (tier 3)"), *TIER_CHOICES], coerce=int, initial=0)
    external = forms.BooleanField(required=False, help_text="The agent runs elsewhere and registers itself.")
    url = forms.CharField(required=False, help_text="An external agent's A2A URL, if it is already up.")
    canvas_x = forms.FloatField(required=False, label="Canvas x")
    canvas_y = forms.FloatField(required=False, label="Canvas y")

    class Meta:
        model = Workspace
        fields = ("name", "role", "parent", "workspace_dir", "workspace_access", "budget_limit", "max_concurrent_tasks")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = [("", "none"), *((d.name, d.name) for d in templates.template_dirs())]

    def clean(self):
        data = self.cleaned_data
        if self.errors:
            return data
        parent = data.get("parent")
        body = {
            key: data.get(key)
            for key in ("name", "role", "template", "runtime", "model", "url", "workspace_dir", "workspace_access",
                        "budget_limit", "max_concurrent_tasks")
            if data.get(key) not in (None, "")
        }
        body.update(tier=data.get("tier") or 0, external=bool(data.get("external")),
                    canvas={"x": data.get("canvas_x") or 0, "y": data.get("canvas_y") or 0})
        if parent is not None:
            body["parent_id"] = str(parent.pk)
        try:
            self.new_workspace = parse_new_workspace(body)
        except ApiError as error:
            raise forms.ValidationError(_error_text(error)) from None
        return data

    def _post_clean(self):
        # No model validation: the row is built by workspace_create from the parsed body.
        pass


class WorkspaceChangeForm(forms.ModelForm):
    """The fields ``PATCH /workspaces/:id`` changes, checked by the same rules."""

    tier = forms.TypedChoiceField(choices=TIER_CHOICES, coerce=int)

    class Meta:
        model = Workspace
        fields = ("name", "role", "tier", "runtime", "parent", "workspace_dir", "hibernation_idle_minutes")

    def _one_line(self, field: str):
        value = self.cleaned_data.get(field)
        problem = value and validators.field_problem(field, value)
        if problem:
            raise forms.ValidationError(problem)
        return value

    def clean_name(self):
        return self._one_line("name")

    def clean_role(self):
        return self._one_line("role")

    def clean_runtime(self):
        return self._one_line("runtime")

    def clean_workspace_dir(self):
        value = self.cleaned_data.get("workspace_dir") or None
        if value and not validators.workspace_dir_is_valid(value):
            raise forms.ValidationError("invalid workspace directory")
        return value

    def clean_hibernation_idle_minutes(self):
        value = self.cleaned_data.get("hibernation_idle_minutes")
        if value is not None and not 0 <= value <= MAX_HIBERNATION_IDLE_MINUTES:
            raise forms.ValidationError(f"a whole number of minutes from 0 to {MAX_HIBERNATION_IDLE_MINUTES}")
        return value

    def clean_parent(self):
        parent = self.cleaned_data.get("parent")
        if parent is not None and selectors.would_create_cycle(self.instance.pk, parent.pk):
            raise forms.ValidationError("parent_id would create a cycle in the workspace hierarchy")
        return parent


# --- list filters -------------------------------------------------------------------------------------

class TeamFilter(admin.SimpleListFilter):
    """Roots, or the members of one team (the children of a workspace that has any)."""

    title = "team"
    parameter_name = "team"

    def lookups(self, request, model_admin):
        parents = (
            Workspace.objects.filter(children__isnull=False).exclude(status=WorkspaceStatus.REMOVED)
            .distinct().order_by("name").values_list("id", "name")
        )
        return [("root", "Roots (no parent)"), *((str(pk), f"under {name}") for pk, name in parents)]

    def queryset(self, request, queryset):
        if self.value() == "root":
            return queryset.filter(parent__isnull=True)
        if self.value():
            return queryset.filter(parent_id=self.value())
        return queryset


# --- lifecycle ----------------------------------------------------------------------------------------

# verb → (past tense for messages, the service call). Remove and collapse take a confirmation page.
LIFECYCLE = {
    "pause": ("Paused", lambda wid: services.workspace_pause(workspace_id=wid)),
    "resume": ("Resumed", lambda wid: services.workspace_resume(workspace_id=wid)),
    "restart": ("Restarted", lambda wid: services.workspace_restart(workspace_id=wid)),
    "expand": ("Expanded", lambda wid: team.team_expand(workspace_id=wid)),
    "collapse": ("Collapsed", lambda wid: team.team_collapse(workspace_id=wid)),
    "remove": ("Removed", lambda wid: services.workspace_delete(workspace_id=wid, confirm=True, purge=False)),
}
CONFIRMED_VERBS = frozenset({"collapse", "remove"})


def _lifecycle_action(verb: str, description: str):
    """A changelist action running ``verb`` on each selected workspace."""
    @admin.action(description=description, permissions=["change"])
    def action(model_admin, request, queryset):
        model_admin.run_lifecycle(request, queryset.values_list("id", "name"), verb)

    action.__name__ = f"{verb}_selected"
    return action


@admin.register(Workspace)
class WorkspaceAdmin(OperatorModelAdmin):
    list_display = (
        "name", "status_display", "parent", "children_count", "heartbeat_age", "active_tasks", "current_task_preview",
        "runtime", "tier",
    )
    list_filter = ("status", "runtime", "tier", TeamFilter)
    search_fields = ("name", "role", "id")
    list_select_related = ("parent",)
    list_per_page = 50
    ordering = ("name",)
    autocomplete_fields = ("parent",)
    formfield_overrides = ONE_LINE_TEXT
    change_form_template = "admin/workspaces/workspace/change_form.html"
    actions = (
        "pause_selected", "resume_selected", "restart_selected", "expand_selected", "collapse_selected",
        "remove_selected",
    )
    add_fieldsets = (
        (None, {"fields": (("name", "role"), "template", ("runtime", "model"), "tier", "parent")}),
        ("External agent", {"fields": ("external", "url")}),
        ("Files and limits", {"fields": (("workspace_dir", "workspace_access"), ("max_concurrent_tasks", "budget_limit"),
                                         ("canvas_x", "canvas_y"))}),
    )
    fieldsets = (
        (None, {"fields": (("name", "role"), ("status_display", "tier"), "parent", "id")}),
        ("Runtime", {"fields": (("runtime", "workspace_dir"), ("url", "workspace_access"), "agent_assignment",
                                "instance_id")}),
        ("Liveness", {"fields": (("heartbeat", "liveness_deadline"), ("active_tasks", "current_task"),
                                 ("last_error_rate", "uptime_seconds"), "last_sample_error", "last_outbound_at")}),
        ("Team", {"fields": ("children_panel",)}),
        ("Recent activity", {"fields": ("recent_activity",)}),
        ("Tokens", {"fields": ("tokens_panel",)}),
        ("Secrets", {"fields": ("secret_keys",)}),
        ("Memories", {"fields": ("memories_panel",)}),
        ("Limits and bookkeeping", {"classes": ("collapse",), "fields": (
            ("max_concurrent_tasks", "budget_limit", "monthly_spend"), "hibernation_idle_minutes",
            "awareness_namespace", ("forwarded_to", "source_bundle_id"), ("created_at", "updated_at"),
        )}),
        ("Agent card", {"classes": ("collapse",), "fields": ("agent_card_pretty",)}),
        ("Runtime log", {"classes": ("collapse",), "fields": ("runtime_log",)}),
    )
    # What PATCH /workspaces/:id changes is editable; everything else on the page is read-only.
    readonly_fields = tuple(name for name in flatten_fieldsets(fieldsets) if name not in WorkspaceChangeForm.Meta.fields)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(children_count=Count("children"))

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = WorkspaceAddForm if obj is None else WorkspaceChangeForm
        return super().get_form(request, obj, change, **kwargs)

    def has_delete_permission(self, request, obj=None):
        # Removal is a lifecycle step (status "removed", tokens revoked, runtime stopped), not a
        # row deletion: the "remove" button and action do it through the service.
        return False

    # --- writes through the services ---

    def save_model(self, request, obj, form, change):
        if change:
            self._update(request, obj, form)
        else:
            self._create(request, obj, form)

    def _create(self, request, obj, form):
        result = services.workspace_create(new=form.new_workspace, platform_url=request_platform_url(request))
        created = Workspace.objects.get(pk=result["id"])
        # The admin logs and redirects with the object it passed in, so give it the created row's state.
        for field in created._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False
        if created.status == WorkspaceStatus.FAILED:
            messages.warning(request, f"{created.name} could not be provisioned: {created.last_sample_error}")
        connection = result.get("connection")
        if connection:
            messages.warning(
                request,
                f"Token for the external agent of {created.name}: {connection['auth_token']} — copy it now; it will "
                f"not be shown again. Inbound secret: {connection['inbound_secret']}.",
            )

    def _update(self, request, obj, form):
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name != "parent"}
        if "parent" in form.changed_data:
            parent = form.cleaned_data["parent"]
            changes["parent_id"] = parent.pk if parent else None
        if not changes:
            return
        # A fresh row: the form has already written its values onto ``obj``.
        workspace = selectors.workspace_get(obj.pk)
        try:
            body = services.workspace_update(workspace=workspace, changes=changes)
        except ApiError as error:
            messages.error(request, f"{workspace.name}: {_error_text(error)}")
            return
        if body.get("needs_restart"):
            messages.info(request, "The new directory takes effect when the workspace restarts.")

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        if "_addanother" in request.POST or IS_POPUP_VAR in request.POST:
            return response
        # Land on the new workspace: its status and provisioning outcome are what the operator wants next.
        return HttpResponseRedirect(reverse("admin:workspaces_workspace_change", args=[obj.pk]))

    # --- lifecycle: list actions and change-page buttons ---

    def run_lifecycle(self, request, workspace_ids, verb: str) -> None:
        done_word, call = LIFECYCLE[verb]
        done, failures = 0, []
        for workspace_id, name in workspace_ids:
            try:
                call(workspace_id)
                done += 1
            except ApiError as error:
                failures.append(f"{name}: {_error_text(error)}")
        if done:
            self.message_user(request, f"{done_word} {done} workspace(s).", messages.SUCCESS)
        for failure in failures:
            self.message_user(request, failure, messages.ERROR)

    pause_selected = _lifecycle_action("pause", "Pause selected workspaces (and their sub-workspaces)")
    resume_selected = _lifecycle_action("resume", "Resume selected workspaces")
    restart_selected = _lifecycle_action("restart", "Restart selected workspaces")
    expand_selected = _lifecycle_action("expand", "Expand selected workspaces' teams from their templates")
    collapse_selected = _lifecycle_action("collapse", "Collapse selected workspaces' teams (removes their children)")
    remove_selected = _lifecycle_action("remove", "Remove selected workspaces with all their sub-workspaces")

    def get_urls(self):
        lifecycle = path(
            "<path:object_id>/lifecycle/<str:verb>/",
            self.admin_site.admin_view(self.lifecycle_view),
            name="workspaces_workspace_lifecycle",
        )
        return [lifecycle, *super().get_urls()]

    def lifecycle_view(self, request, object_id, verb):
        """POST runs ``verb`` on one workspace; GET of remove/collapse asks for confirmation first."""
        workspace = selectors.workspace_get(object_id)
        if workspace is None or verb not in LIFECYCLE:
            raise Http404
        if not self.has_change_permission(request, workspace):
            raise PermissionDenied
        change_url = reverse("admin:workspaces_workspace_change", args=[workspace.pk])
        if request.method == "POST":
            self.run_lifecycle(request, [(workspace.pk, workspace.name)], verb)
            return HttpResponseRedirect(change_url)
        if request.method != "GET" or verb not in CONFIRMED_VERBS:
            return HttpResponseNotAllowed(["POST"])
        affected = (
            Workspace.objects.filter(pk__in=selectors.descendant_ids(workspace.pk)) if verb == "remove"
            else Workspace.objects.filter(parent=workspace).exclude(status=WorkspaceStatus.REMOVED)
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{verb.capitalize()} {workspace.name}?",
            "workspace": workspace,
            "verb": verb,
            "affected": affected.order_by("name"),
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/workspaces/workspace/lifecycle_confirm.html", context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["lifecycle_verbs"] = [
                (verb, verb in CONFIRMED_VERBS) for verb in LIFECYCLE if self._verb_applies(verb, obj)
            ]
        return super().render_change_form(request, context, add, change, form_url, obj)

    @staticmethod
    def _verb_applies(verb: str, workspace: Workspace) -> bool:
        """Only offer what the service would accept for this status; it re-checks anyway."""
        if workspace.status == WorkspaceStatus.REMOVED:
            return False
        if verb == "pause":
            return workspace.status != WorkspaceStatus.PAUSED
        if verb == "resume":
            return workspace.status == WorkspaceStatus.PAUSED
        return True

    # --- list columns ---

    @admin.display(description="status", ordering="status")
    def status_display(self, workspace: Workspace):
        return status_badge(workspace.status)

    @admin.display(description="children", ordering="children_count")
    def children_count(self, workspace: Workspace) -> int:
        return workspace.children_count

    @admin.display(description="heartbeat", ordering="last_heartbeat_at")
    def heartbeat_age(self, workspace: Workspace) -> str:
        return short_age(workspace.last_heartbeat_at)

    @admin.display(description="current task", ordering="current_task")
    def current_task_preview(self, workspace: Workspace) -> str:
        return Truncator(workspace.current_task or "").chars(60) or "—"

    # --- change-page panels ---

    @admin.display(description="last heartbeat")
    def heartbeat(self, workspace: Workspace) -> str:
        if workspace.last_heartbeat_at is None:
            return "never"
        return f"{short_age(workspace.last_heartbeat_at)} ago ({workspace.last_heartbeat_at:%Y-%m-%d %H:%M:%S} UTC)"

    @admin.display(description="agent card")
    def agent_card_pretty(self, workspace: Workspace):
        if not workspace.agent_card:
            return "(no card registered)"
        return format_html('<pre class="mol-json">{}</pre>', json.dumps(workspace.agent_card, indent=2, sort_keys=True))

    @admin.display(description="model assignment")
    def agent_assignment(self, workspace: Workspace) -> str:
        agent = workspace.agents.filter(status=AgentStatus.ACTIVE).first()
        if agent is None:
            return "none — the runtime uses the model of its config.yaml"
        return f"{agent.model} (since {agent.created_at:%Y-%m-%d %H:%M})"

    @admin.display(description="sub-workspaces")
    def children_panel(self, workspace: Workspace):
        children = workspace.children.exclude(status=WorkspaceStatus.REMOVED).order_by("name")
        return _table(
            ("name", "status", "role", "heartbeat"),
            ((format_html('<a href="{}">{}</a>', reverse("admin:workspaces_workspace_change", args=[c.pk]), c.name),
              status_badge(c.status), c.role or "—", short_age(c.last_heartbeat_at)) for c in children),
            "No sub-workspaces.",
        )

    @admin.display(description="latest")
    def recent_activity(self, workspace: Workspace):
        logs = ActivityLog.objects.filter(workspace=workspace).order_by("-created_at")[:RELATED_ROWS]
        return _table(
            ("when", "type", "method", "status", "summary"),
            ((f"{short_age(log.created_at)} ago", log.activity_type, log.method or "—", log.status,
              Truncator(log.summary or "").chars(100)) for log in logs),
            "No activity recorded.",
            _changelist_url(ActivityLog, workspace__exact=workspace.pk), "All activity of this workspace",
        )

    @admin.display(description="bearer tokens")
    def tokens_panel(self, workspace: Workspace):
        # Prefixes only: the plaintext is never stored and the digest is never shown.
        tokens = WorkspaceAuthToken.objects.filter(workspace=workspace).order_by("-created_at")[:RELATED_ROWS]
        return _table(
            ("token", "created", "last used", "state"),
            ((f"{t.prefix}…", f"{t.created_at:%Y-%m-%d %H:%M}",
              f"{short_age(t.last_used_at)} ago" if t.last_used_at else "never",
              "live" if t.is_live else f"revoked {t.revoked_at:%Y-%m-%d %H:%M}") for t in tokens),
            "No tokens.",
            _changelist_url(WorkspaceAuthToken, workspace__exact=workspace.pk), "Mint or revoke tokens",
        )

    @admin.display(description="secret keys")
    def secret_keys(self, workspace: Workspace):
        # Keys only: values are encrypted and never rendered.
        secrets = WorkspaceSecret.objects.filter(workspace=workspace).order_by("key").values_list("key", "updated_at")
        return _table(
            ("key", "updated"),
            ((key, f"{updated:%Y-%m-%d %H:%M}") for key, updated in secrets),
            "No workspace secrets (global secrets still apply).",
            _changelist_url(WorkspaceSecret, workspace__exact=workspace.pk), "Set or delete secrets",
        )

    @admin.display(description="agent memories")
    def memories_panel(self, workspace: Workspace):
        memories = AgentMemory.objects.filter(workspace=workspace).order_by("-created_at")[:RELATED_ROWS]
        return _table(
            ("when", "scope", "namespace", "content"),
            ((f"{short_age(m.created_at)} ago", m.scope, m.namespace, Truncator(m.content).chars(120))
             for m in memories),
            "No memories.",
            _changelist_url(AgentMemory, workspace__exact=workspace.pk), "All memories of this workspace",
        )

    @admin.display(description="runtime log (last 20 KB)")
    def runtime_log(self, workspace: Workspace):
        """The tail of the local runtime's log, as the runtime printed it (escaped, never rendered)."""
        tail = read_log_tail(workspace.id, RUNTIME_LOG_TAIL_BYTES)
        if not tail:
            return "(no runtime log on this machine)"
        return format_html('<pre class="mol-log">{}</pre>', tail)


@admin.register(Agent)
class AgentAdmin(ViewOnlyModelAdmin):
    """Model assignments, made through ``POST/PATCH/DELETE /workspaces/:id/agent`` (which emit the
    AGENT_* events); read-only here. A runtime without one runs the model of its config.yaml, so
    this list is empty for most fleets."""

    list_display = ("model", "workspace", "status", "created_at", "removed_at")
    list_filter = ("status",)
    search_fields = ("model", "workspace__name", "removal_reason")
    list_select_related = ("workspace",)
    ordering = ("-created_at",)
    change_list_template = "admin/workspaces/agent/change_list.html"


@admin.register(CanvasLayout)
class CanvasLayoutAdmin(OperatorModelAdmin):
    list_display = ("workspace", "x", "y", "collapsed")
    list_filter = ("collapsed",)
    search_fields = ("workspace__name",)
    list_select_related = ("workspace",)
    ordering = ("workspace__name",)
    autocomplete_fields = ("workspace",)


@admin.register(CanvasViewport)
class CanvasViewportAdmin(OperatorModelAdmin):
    list_display = ("__str__", "x", "y", "zoom", "saved_at")
    readonly_fields = ("saved_at",)

    def has_add_permission(self, request):
        # A single shared row (fixed id, enforced by a check constraint): add only while it is missing.
        return super().has_add_permission(request) and not CanvasViewport.objects.exists()


@admin.register(WorkspaceConfig)
class WorkspaceConfigAdmin(OperatorModelAdmin):
    list_display = ("workspace", "updated_at")
    search_fields = ("workspace__name",)
    list_select_related = ("workspace",)
    ordering = ("workspace__name",)
    autocomplete_fields = ("workspace",)
    readonly_fields = ("updated_at",)
