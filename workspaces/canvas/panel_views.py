"""Fragments of the canvas's side panel (canvas spec §3): its header and one fragment per tab.

Reads only. Every write the panel offers (``PATCH /workspaces/:id``, ``PUT …/files/…``,
``POST …/a2a``, ``DELETE …/memories/…``) goes from ``static/canvas/js/panel.js`` / ``chat.js``
to the platform API, and the page then reloads the fragment, so these views stay renderings of
what the selectors say (``workspaces.canvas.panels`` reads and shapes it; a view looks the
workspace up, parses the query and renders). A workspace that is gone renders an empty state
(404 for an id that never existed, 200 for a removed one), never a 500, so a tab degrades
instead of breaking.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render

from memory.models import MemoryScope
from workspaces import selectors
from workspaces.canvas import panels
from workspaces.canvas.views import operator_page
from workspaces.models import WorkspaceStatus


def _workspace_or_gone(request, workspace_id):
    """``(workspace, None)`` or ``(None, response)`` with the panel's "gone" empty state."""
    workspace = selectors.workspace_get(workspace_id)
    if workspace is None:
        return None, render(request, "canvas/panel/gone.html", {"removed": False}, status=404)
    if workspace.status == WorkspaceStatus.REMOVED:
        return None, render(request, "canvas/panel/gone.html", {"removed": True})
    return workspace, None


@operator_page
def panel_header(request, workspace_id):
    """The header: status, name, role, tier, capability pills and the current task."""
    workspace, gone = _workspace_or_gone(request, workspace_id)
    if gone:
        return gone
    return render(request, "canvas/panel/header.html", panels.header_context(workspace))


@operator_page
def panel_tab(request, workspace_id, tab):
    if tab not in panels.TAB_IDS:
        raise Http404("no such tab")
    workspace, gone = _workspace_or_gone(request, workspace_id)
    if gone:
        return gone
    return TAB_VIEWS[tab](request, workspace)


@operator_page
def panel_comms(request, workspace_id):
    """Agent Comms alone, for the chat's live refresh."""
    workspace, gone = _workspace_or_gone(request, workspace_id)
    if gone:
        return gone
    return render(request, "canvas/panel/_comms.html", panels.comms_context(workspace))


def chat_tab(request, workspace):
    return render(request, "canvas/panel/chat.html", panels.chat_context(workspace))


def activity_tab(request, workspace):
    kind = request.GET.get("type", "")
    kind = kind if kind in panels.ACTIVITY_TYPES else ""
    return render(request, "canvas/panel/activity.html", panels.activity_context(workspace, kind=kind))


def details_tab(request, workspace):
    return render(request, "canvas/panel/details.html", panels.details_context(workspace))


def terminal_tab(request, workspace):
    return render(request, "canvas/panel/terminal.html", panels.terminal_context(workspace))


def config_tab(request, workspace):
    return render(request, "canvas/panel/config.html", panels.config_context(workspace))


def files_tab(request, workspace):
    return render(request, "canvas/panel/files.html", panels.files_context(workspace))


def memory_tab(request, workspace):
    scope = request.GET.get("scope", MemoryScope.LOCAL)
    scope = scope if scope in MemoryScope.values else MemoryScope.LOCAL
    q = request.GET.get("q", "").strip()
    return render(request, "canvas/panel/memory.html", panels.memory_context(workspace, scope=scope, q=q))


def traces_tab(request, workspace):
    """The Traces tab; ``?trace=<id>`` renders just that trace's waterfall (a row opened past the first few)."""
    trace_id = request.GET.get("trace", "")
    if trace_id:
        context = panels.trace_context(workspace, trace_id)
        if context is None:
            raise Http404("no such trace")
        return render(request, "canvas/panel/_waterfall.html", context)
    return render(request, "canvas/panel/traces.html",
                  {**panels.traces_context(workspace), **panels.transcript_context(workspace)})


def schedule_tab(request, workspace):
    """The Schedule tab; ``?preview=1&cron=…&tz=…`` renders just the form's next-runs preview."""
    if request.GET.get("preview"):
        context = panels.schedule_preview_context(request.GET.get("cron", ""), request.GET.get("tz", ""))
        return render(request, "canvas/panel/_schedule_preview.html", context)
    return render(request, "canvas/panel/schedule.html", panels.schedule_context(workspace))


def skills_tab(request, workspace):
    return render(request, "canvas/panel/skills.html", panels.skills_context(workspace))


def events_tab(request, workspace):
    return render(request, "canvas/panel/events.html", panels.events_context(workspace))


TAB_VIEWS = {
    "chat": chat_tab, "activity": activity_tab, "details": details_tab, "skills": skills_tab, "terminal": terminal_tab,
    "config": config_tab, "schedule": schedule_tab, "files": files_tab, "memory": memory_tab, "traces": traces_tab,
    "events": events_tab,
}
