"""Workspace admin: the changelist a fleet operator needs, and every write through the services."""

import json
import re
import uuid

import pytest
from django.contrib import admin
from django.urls import reverse

from activity.models import ActivityLog, StructureEvent
from memory.models import AgentMemory, MemoryScope
from molecule_site.tests.backends import use_backend
from registry.models import WorkspaceAuthToken
from registry.tokens import token_mint
from secrets_app.crypto import encrypt
from secrets_app.models import WorkspaceSecret
from workspaces import provisioning, services
from workspaces.models import Workspace, WorkspaceConfig, WorkspaceStatus
from workspaces.tests.test_provisioning import RecordingProvisioner

CHANGELIST = "admin:workspaces_workspace_changelist"
ADD = "admin:workspaces_workspace_add"
# Sessions, permissions, counts, the page of rows and the filters' choices; not one per row.
CHANGELIST_QUERY_BUDGET = 12


def _change_url(workspace) -> str:
    return reverse("admin:workspaces_workspace_change", args=[workspace.pk])


def _lifecycle_url(workspace, verb: str) -> str:
    return reverse("admin:workspaces_workspace_lifecycle", args=[workspace.pk, verb])


# --- the changelist -----------------------------------------------------------------------------------

def _team(size: int, prefix: str) -> None:
    lead = Workspace.objects.create(name=f"{prefix} lead", status="online")
    for index in range(size):
        Workspace.objects.create(
            name=f"{prefix} member {index}", parent=lead, status="online", active_tasks=1, current_task="triage"
        )


@pytest.mark.django_db
def test_workspace_changelist_query_count_does_not_grow_with_the_page(
    operator_client, django_assert_max_num_queries, django_assert_num_queries
):
    _team(3, "Small")
    with django_assert_max_num_queries(CHANGELIST_QUERY_BUDGET) as small:
        assert operator_client.get(reverse(CHANGELIST)).status_code == 200
    _team(40, "Big")
    with django_assert_num_queries(len(small.captured_queries)):
        response = operator_client.get(reverse(CHANGELIST))
    assert len(response.context["cl"].result_list) == 45 == response.context["cl"].result_count


@pytest.mark.django_db
def test_workspace_changelist_is_paginated(operator_client):
    _team(60, "Wide")
    response = operator_client.get(reverse(CHANGELIST))
    assert len(response.context["cl"].result_list) == admin.site._registry[Workspace].list_per_page == 50
    assert response.context["cl"].result_count == 61


@pytest.mark.django_db
def test_workspace_changelist_shows_what_an_operator_watches(operator_client):
    lead = Workspace.objects.create(name="Lead", status="degraded", runtime="openai", tier=2)
    Workspace.objects.create(name="Busy dev", parent=lead, status="online", active_tasks=2,
                             current_task="reviewing the pull request", last_heartbeat_at=None)

    body = operator_client.get(reverse(CHANGELIST)).content.decode()

    row = next(row for row in body.split("<tr") if _change_url(Workspace.objects.get(name="Busy dev")) in row)
    assert '<span class="mol-status mol-status-online">online</span>' in row
    assert '<td class="field-parent nowrap">Lead</td>' in row
    assert '<td class="field-heartbeat_age">never</td>' in row
    assert '<td class="field-active_tasks">2</td>' in row
    assert "reviewing the pull request" in row
    assert '<span class="mol-status mol-status-degraded">degraded</span>' in body


@pytest.mark.django_db
def test_workspace_changelist_filters_roots_and_team_members(operator_client):
    lead = Workspace.objects.create(name="Lead")
    Workspace.objects.create(name="Member", parent=lead)
    Workspace.objects.create(name="Loner")

    roots = operator_client.get(reverse(CHANGELIST), {"team": "root"}).context["cl"].result_list
    members = operator_client.get(reverse(CHANGELIST), {"team": str(lead.pk)}).context["cl"].result_list

    assert sorted(w.name for w in roots) == ["Lead", "Loner"]
    assert [w.name for w in members] == ["Member"]


@pytest.mark.django_db
def test_workspace_changelist_filters_by_runtime_and_tier(operator_client):
    Workspace.objects.create(name="Echo", runtime="echo", tier=1)
    Workspace.objects.create(name="Graph", runtime="langgraph", tier=3)

    by_runtime = operator_client.get(reverse(CHANGELIST), {"runtime": "echo"}).context["cl"].result_list
    by_tier = operator_client.get(reverse(CHANGELIST), {"tier": 3}).context["cl"].result_list

    assert [w.name for w in by_runtime] == ["Echo"]
    assert [w.name for w in by_tier] == ["Graph"]


# --- create and edit through the services ----------------------------------------------------------

def _events(since: set) -> list[tuple[str, dict]]:
    return sorted(
        (e.event_type, e.payload or {}) for e in StructureEvent.objects.exclude(pk__in=since)
    )


@pytest.mark.django_db
def test_add_page_has_no_status_and_one_line_inputs(operator_client):
    body = operator_client.get(reverse(ADD)).content.decode()
    assert 'name="status"' not in body
    assert "<textarea" not in body
    assert re.search(r'<input type="text" name="name"[^>]*required', body)
    assert '<option value="team-lead">team-lead</option>' in body


@pytest.mark.django_db
def test_add_creates_through_the_service_with_the_api_events(
    operator_client, client, settings, django_capture_on_commit_callbacks
):
    settings.ADMIN_TOKEN = "admin"
    before = set(StructureEvent.objects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        api = client.post("/workspaces", {"name": "Research", "tier": 2, "canvas": {"x": 5, "y": 6}},
                          content_type="application/json", HTTP_AUTHORIZATION="Bearer admin")
    assert api.status_code == 201
    api_events = _events(before)

    before = set(StructureEvent.objects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(reverse(ADD), {
            "name": "Research", "tier": 2, "workspace_access": "none", "max_concurrent_tasks": 1,
            "canvas_x": 5, "canvas_y": 6,
        })

    assert response.status_code == 302
    created = Workspace.objects.filter(name="Research").exclude(pk=api.json()["id"]).get()
    assert response.url == _change_url(created)
    assert _events(before) == api_events
    assert [event for event, _ in api_events] == ["WORKSPACE_PROVISIONING", "WORKSPACE_PROVISION_FAILED"]
    # What workspace_create writes and a direct row write would not.
    assert (created.tier, created.status, created.awareness_namespace) == (2, "failed", f"workspace:{created.pk}")
    assert created.last_sample_error  # the provisioner's reason, shown on the next page
    assert (created.layout.x, created.layout.y) == (5, 6)
    assert WorkspaceConfig.objects.filter(workspace=created).exists()


@pytest.mark.django_db
def test_add_external_agent_shows_its_token_once(operator_client):
    response = operator_client.post(reverse(ADD), {
        "name": "Partner agent", "tier": 0, "external": "on", "url": "https://agent.example.com/a2a",
        "workspace_access": "none", "max_concurrent_tasks": 1,
    }, follow=True)

    workspace = Workspace.objects.get(name="Partner agent")
    assert (workspace.runtime, workspace.status, workspace.url) == ("external", "online", "https://agent.example.com/a2a")
    token = WorkspaceAuthToken.objects.get(workspace=workspace)
    shown = [str(m) for m in response.context["messages"]]
    assert any(f"Token for the external agent of Partner agent: {token.prefix}" in m for m in shown)


@pytest.mark.django_db
@pytest.mark.parametrize("fields, error", [
    ({"name": "Dev", "template": "../etc"}, "Select a valid choice"),
    ({"name": "Dev", "url": "ftp://agent"}, "invalid workspace fields"),
    ({"name": "Dev", "workspace_dir": "/etc"}, "invalid workspace directory"),
    ({"name": "Dev", "workspace_access": "read_write"}, "invalid workspace access"),
])
def test_add_refuses_what_the_api_refuses(operator_client, fields, error):
    response = operator_client.post(reverse(ADD), {"tier": 0, "workspace_access": "none", "max_concurrent_tasks": 1,
                                                   **fields})
    assert response.status_code == 200
    assert error in str(response.context["adminform"].form.errors)
    assert not Workspace.objects.exists()


def _change_post(workspace, **overrides):
    data = {"name": workspace.name, "role": workspace.role or "", "tier": workspace.tier, "runtime": workspace.runtime,
            "parent": workspace.parent_id or "", "workspace_dir": workspace.workspace_dir or ""}
    return {**data, **overrides}


@pytest.mark.django_db
def test_edit_goes_through_workspace_update_and_never_touches_status(operator_client, monkeypatch):
    lead = Workspace.objects.create(name="Lead")
    workspace = Workspace.objects.create(name="Dev", status="online", url="http://localhost:9000")
    calls = []
    real_update = services.workspace_update
    monkeypatch.setattr(services, "workspace_update", lambda **kw: calls.append(kw["changes"]) or real_update(**kw))

    response = operator_client.post(_change_url(workspace), _change_post(
        workspace, name="Dev 2", parent=lead.pk, tier=4, status="failed", url="http://evil",
    ))

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert calls == [{"name": "Dev 2", "parent_id": lead.pk, "tier": 4}]
    workspace.refresh_from_db()
    assert (workspace.name, workspace.parent_id, workspace.tier) == ("Dev 2", lead.pk, 4)
    assert (workspace.status, workspace.url) == ("online", "http://localhost:9000")


@pytest.mark.django_db
def test_edit_refuses_a_parent_cycle_and_newlines(operator_client):
    lead = Workspace.objects.create(name="Lead")
    member = Workspace.objects.create(name="Member", parent=lead)

    cycle = operator_client.post(_change_url(lead), _change_post(lead, parent=member.pk))
    newline = operator_client.post(_change_url(member), _change_post(member, role="a\nb"))

    assert "would create a cycle" in str(cycle.context["adminform"].form.errors)
    assert "role must not contain newline characters" in str(newline.context["adminform"].form.errors)
    lead.refresh_from_db()
    assert lead.parent_id is None


@pytest.mark.django_db
def test_change_page_is_compact_and_shows_related_rows_without_secrets(operator_client):
    workspace = Workspace.objects.create(
        name="Dev", role="builds things", status="online", agent_card={"name": "Dev", "skills": [{"id": "build"}]},
        current_task="compiling",
    )
    Workspace.objects.create(name="Helper", parent=workspace, status="paused")
    token, plaintext = token_mint(workspace=workspace)
    ciphertext, version = encrypt("sk-secret-value-777")
    WorkspaceSecret.objects.create(workspace=workspace, key="OPENAI_API_KEY", encrypted_value=ciphertext,
                                   encryption_version=version)
    AgentMemory.objects.create(workspace=workspace, content="the release is on friday", scope=MemoryScope.LOCAL)
    ActivityLog.objects.create(workspace=workspace, activity_type="a2a_receive", summary="asked to build")

    response = operator_client.get(_change_url(workspace))

    body = response.content.decode()
    assert response.status_code == 200
    assert "<textarea" not in body
    assert re.search(r'<input type="text" name="name" value="Dev"', body)
    assert 'name="status"' not in body and 'name="url"' not in body
    assert '<span class="mol-status mol-status-online">online</span>' in body
    assert json.dumps(workspace.agent_card, indent=2, sort_keys=True).replace('"', "&quot;") in body
    assert f"{token.prefix}…" in body and plaintext not in body
    assert "OPENAI_API_KEY" in body and "sk-secret-value-777" not in body
    assert "the release is on friday" in body
    assert "asked to build" in body
    assert "Helper" in body
    assert "none — the runtime uses the model of its config.yaml" in body
    for verb in ("pause", "restart", "expand", "collapse", "remove"):
        assert _lifecycle_url(workspace, verb) in body, verb
    assert _lifecycle_url(workspace, "resume") not in body  # not paused


@pytest.mark.django_db
def test_change_page_panel_links_open_filtered_lists(operator_client):
    workspace = Workspace.objects.create(name="Dev")
    body = operator_client.get(_change_url(workspace)).content.decode()
    links = re.findall(r'<p class="mol-more"><a href="([^"]+)">', body)
    assert len(links) == 4
    for link in links:
        response = operator_client.get(link.replace("&amp;", "&"))
        assert response.status_code == 200, link
        assert "?e=1" not in response.get("Location", ""), link


@pytest.mark.django_db
def test_lifecycle_view_refuses_get_for_immediate_verbs_and_unknown_ids(operator_client):
    workspace = Workspace.objects.create(name="Dev", status="online")
    assert operator_client.get(_lifecycle_url(workspace, "pause")).status_code == 405
    assert operator_client.post(_lifecycle_url(workspace, "explode")).status_code == 404
    missing = reverse("admin:workspaces_workspace_lifecycle", args=[uuid.uuid4(), "pause"])
    assert operator_client.post(missing).status_code == 404
    workspace.refresh_from_db()
    assert workspace.status == "online"


@pytest.mark.django_db
def test_remove_asks_for_confirmation_listing_the_subtree(operator_client):
    lead = Workspace.objects.create(name="Lead", status="online")
    Workspace.objects.create(name="Member", parent=lead, status="online")

    page = operator_client.get(_lifecycle_url(lead, "remove"))

    assert page.status_code == 200
    assert "and its 1 sub-workspace(s)" in page.content.decode()
    assert "Member" in page.content.decode()
    assert set(Workspace.objects.values_list("status", flat=True)) == {"online"}


# --- lifecycle: the same events as the API ----------------------------------------------------------

@pytest.fixture
def provisioner(monkeypatch):
    """A backend that can start runtimes, so resume/restart/expand succeed as on a real install."""
    backend = RecordingProvisioner()
    use_backend(monkeypatch, backend)
    monkeypatch.setattr(provisioning.provision_workspace, "delay", lambda workspace_id, restart=False, **_options: None)
    return backend


def _tree(status: str) -> Workspace:
    lead = Workspace.objects.create(name="Team Lead", status=status)
    WorkspaceConfig.objects.create(workspace=lead, data={"template": "team-lead"})
    Workspace.objects.create(name="Member", parent=lead, status=status)
    return lead


API_CALLS = {
    "pause": ("post", "/workspaces/{}/pause"),
    "resume": ("post", "/workspaces/{}/resume"),
    "restart": ("post", "/workspaces/{}/restart"),
    "expand": ("post", "/workspaces/{}/expand"),
    "collapse": ("post", "/workspaces/{}/collapse"),
    "remove": ("delete", "/workspaces/{}?confirm=true"),
}
STARTING_STATUS = {"resume": "paused"}


def _normalised_events(since: set) -> list[tuple[str, str, str]]:
    """Events as (type, workspace name, payload), with every workspace id replaced by its name."""
    names = {str(pk): name for pk, name in Workspace.objects.values_list("id", "name")}
    uuid_pattern = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    return sorted(
        (e.event_type, names.get(str(e.workspace_id), ""),
         uuid_pattern.sub(lambda m: names.get(m.group(0), "?"), json.dumps(e.payload, sort_keys=True)))
        for e in StructureEvent.objects.exclude(pk__in=since)
    )


@pytest.mark.django_db
@pytest.mark.parametrize("entry", ["button", "action"])
@pytest.mark.parametrize("verb", list(API_CALLS))
def test_lifecycle_emits_the_same_events_as_the_api(
    verb, entry, provisioner, operator_client, client, settings, django_capture_on_commit_callbacks
):
    settings.ADMIN_TOKEN = "admin"
    status = STARTING_STATUS.get(verb, "online")
    via_api, via_admin = _tree(status), _tree(status)

    before = set(StructureEvent.objects.values_list("pk", flat=True))
    method, api_path = API_CALLS[verb]
    with django_capture_on_commit_callbacks(execute=True):
        api = getattr(client, method)(api_path.format(via_api.pk), HTTP_AUTHORIZATION="Bearer admin")
    assert api.status_code == 200, api.content
    api_events = _normalised_events(before)

    before = set(StructureEvent.objects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        if entry == "button":
            response = operator_client.post(_lifecycle_url(via_admin, verb), follow=True)
        else:
            response = operator_client.post(
                reverse(CHANGELIST), {"action": f"{verb}_selected", "_selected_action": [str(via_admin.pk)]},
                follow=True,
            )

    assert response.status_code == 200
    assert api_events, verb
    assert _normalised_events(before) == api_events
    assert [str(m) for m in response.context["messages"]][-1].endswith("1 workspace(s).")
    via_api.refresh_from_db()
    via_admin.refresh_from_db()
    assert via_admin.status == via_api.status


def _children_cell(body: str, workspace: Workspace) -> str:
    """The children-count cell of the row that links to ``workspace``."""
    change_url = reverse("admin:workspaces_workspace_change", args=[workspace.pk])
    row = next(row for row in body.split("<tr") if change_url in row)
    return re.search(r'<td class="field-children_count">(\d+)</td>', row).group(1)


@pytest.mark.django_db
def test_workspace_changelist_shows_children_count(operator_client):
    lead = Workspace.objects.create(name="Lead")
    for name in ("Dev A", "Dev B"):
        Workspace.objects.create(name=name, parent=lead)

    body = operator_client.get(reverse("admin:workspaces_workspace_changelist")).content.decode()

    assert _children_cell(body, lead) == "2"
    assert _children_cell(body, Workspace.objects.get(name="Dev A")) == "0"


@pytest.mark.django_db
def test_workspace_changelist_sorts_by_children_count(operator_client):
    small = Workspace.objects.create(name="Aardvark team")
    big = Workspace.objects.create(name="Zebra team")
    Workspace.objects.create(name="Solo", parent=small)
    for index in range(3):
        Workspace.objects.create(name=f"Member {index}", parent=big)
    column = admin.site._registry[Workspace].list_display.index("children_count") + 1

    body = operator_client.get(reverse("admin:workspaces_workspace_changelist"), {"o": f"-{column}"}).content.decode()

    assert body.index("Zebra team") < body.index("Aardvark team")


@pytest.mark.django_db
def test_workspace_changelist_filters_by_status(operator_client):
    Workspace.objects.create(name="Online QA", status=WorkspaceStatus.ONLINE)
    Workspace.objects.create(name="Offline Research", status=WorkspaceStatus.OFFLINE)

    response = operator_client.get(reverse("admin:workspaces_workspace_changelist"), {"status__exact": "online"})

    body = response.content.decode()
    assert "Online QA" in body
    assert "Offline Research" not in body
    assert response.context["cl"].result_count == 1


@pytest.mark.django_db
def test_workspace_search_matches_id_prefix(operator_client):
    target = Workspace.objects.create(name="Findable")
    Workspace.objects.create(name="Other")

    response = operator_client.get(reverse("admin:workspaces_workspace_changelist"), {"q": str(target.id)[:8]})

    assert list(response.context["cl"].result_list) == [target]


# --- lifecycle actions call the same services as the API --------------------------------------

def _run_action(operator_client, action, *workspaces):
    return operator_client.post(
        reverse("admin:workspaces_workspace_changelist"),
        {"action": action, "_selected_action": [str(w.pk) for w in workspaces]},
        follow=True,
    )


@pytest.mark.django_db
def test_admin_pause_action_pauses_the_subtree(operator_client, django_capture_on_commit_callbacks):
    root = Workspace.objects.create(name="Root", status="online")
    child = Workspace.objects.create(name="Child", parent=root, status="online")
    with django_capture_on_commit_callbacks(execute=True):
        response = _run_action(operator_client, "pause_selected", root)
    assert "Paused 1 workspace(s)." in response.content.decode()
    assert set(Workspace.objects.values_list("status", flat=True)) == {"paused"}
    assert StructureEvent.objects.filter(event_type="WORKSPACE_PAUSED", workspace_id=child.id).exists()


@pytest.mark.django_db
def test_admin_resume_action_reports_the_service_error(operator_client):
    workspace = Workspace.objects.create(name="Dev", status="paused")
    response = _run_action(operator_client, "resume_selected", workspace)
    assert "Dev: provisioner not available" in response.content.decode()
    workspace.refresh_from_db()
    assert workspace.status == "paused"


@pytest.mark.django_db
def test_admin_remove_action_cascades_and_revokes_tokens(operator_client):
    from registry.models import WorkspaceAuthToken

    root = Workspace.objects.create(name="Root")
    child = Workspace.objects.create(name="Child", parent=root)
    token_mint(workspace=child)
    response = _run_action(operator_client, "remove_selected", root)
    assert "Removed 1 workspace(s)." in response.content.decode()
    assert set(Workspace.objects.values_list("status", flat=True)) == {"removed"}
    assert not WorkspaceAuthToken.objects.filter(revoked_at__isnull=True).exists()
