"""The operator admin as a whole: every page renders without object reprs, and the dashboard
answers "what is wrong with my fleet right now"."""

import datetime
import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import reverse

from activity.models import ActivityLog, ApprovalRequest, ApprovalStatus, StructureEvent
from checkpoints.models import WorkflowCheckpoint
from instructions.models import PlatformInstruction
from memory.models import AgentMemory, MemoryScope, WorkspaceMemory
from metering.models import WorkspaceTokenUsage
from plugins_app.models import OrgPluginAllowlist, SkillCandidateDecision, SkillVersion
from molecule_site import admin_site
from registry.models import WorkspaceAuthToken
from registry.tokens import token_mint
from secrets_app.crypto import encrypt
from schedules.models import WorkspaceSchedule
from secrets_app.models import GlobalSecret, WorkspaceSecret
from traces.models import TraceSpan
from workspaces.models import Agent, CanvasLayout, CanvasViewport, Workspace, WorkspaceConfig, WorkspaceStatus

SECRET_VALUE = "sk-live-never-render-me-5151"
# A Python repr leaking into a page: `<DatabaseDefault object at 0x…>`, `<django.db…>`, raw or escaped.
REPR = re.compile(r"object at 0x|<django\.|&lt;django\.|&lt;[A-Za-z_.]+ object")


@pytest.fixture
def one_row_of_every_model(operator):
    """At least one row per registered model, so changelists and change pages render real rows."""
    workspace = Workspace.objects.create(
        name="Dev Lead", role="lead", status=WorkspaceStatus.ONLINE, agent_card={"name": "Dev Lead", "skills": []}
    )
    child = Workspace.objects.create(name="Dev 1", parent=workspace, status=WorkspaceStatus.FAILED,
                                     last_sample_error="runtime exited with code 3")
    Agent.objects.create(workspace=workspace, model="anthropic:claude")
    CanvasLayout.objects.create(workspace=workspace, x=10, y=20)
    CanvasViewport.objects.create()
    WorkspaceConfig.objects.create(workspace=workspace, data={"k": "v"})
    token_mint(workspace=workspace)
    ciphertext, version = encrypt(SECRET_VALUE)
    WorkspaceSecret.objects.create(
        workspace=workspace, key="API_KEY", encrypted_value=ciphertext, encryption_version=version
    )
    GlobalSecret.objects.create(key="GLOBAL_KEY", encrypted_value=ciphertext, encryption_version=version)
    AgentMemory.objects.create(workspace=workspace, content="the build is green", scope=MemoryScope.TEAM)
    WorkspaceSchedule.objects.create(workspace=workspace, name="standup", cron_expr="0 9 * * 1-5", prompt="Plan.")
    WorkspaceMemory.objects.create(workspace=child, key="progress", value={"done": 3})
    ActivityLog.objects.create(workspace=workspace, activity_type="a2a_send", method="message/send", summary="hi",
                               request_body={"q": 1})
    candidate = ActivityLog.objects.create(workspace=workspace, activity_type="skill_promotion",
                                           method="memory/skill-promotion", summary="Triage CI")
    SkillCandidateDecision.objects.create(candidate=candidate, workspace=workspace, decision="promoted", skill="triage")
    SkillVersion.objects.create(workspace=workspace, skill="triage", version=1, action="promoted",
                                files={"SKILL.md": "---\nname: triage\n---\nsteps"}, candidate=candidate)
    OrgPluginAllowlist.objects.create(org=workspace, plugin_name="code-review", enabled_by="operator")
    ActivityLog.objects.create(workspace=workspace, activity_type="skill_promotion", method="memory/skill-promotion",
                               summary="Write release notes", request_body={"promote_to_skill": True})
    StructureEvent.objects.create(event_type="WORKSPACE_ONLINE", workspace_id=workspace.id, payload={"url": "x"})
    ApprovalRequest.objects.create(workspace=workspace, action="deploy", reason="release")
    WorkspaceTokenUsage.objects.create(workspace=workspace, model="gpt-4o", day=datetime.date(2026, 12, 1),
                                       input_tokens=10, output_tokens=5, call_count=1, cost_cents=0.0075)
    now = datetime.datetime.now(datetime.UTC)
    TraceSpan.objects.create(trace_id="a" * 32, span_id="b" * 16, workspace=workspace, name="a2a.task",
                             start_time=now, end_time=now, attributes={"k": "v"})
    PlatformInstruction.objects.create(scope="workspace", workspace=workspace, title="Review rules",
                                       content="- two approvals per merge")
    WorkflowCheckpoint.objects.create(workspace=workspace, workflow_id="task-1", step_name="step-1", step_index=1,
                                      payload={"tool": "search"})
    Group.objects.create(name="operators")


def _admin_pages(operator):
    """(label, url, expected status) for every list, add and change page of every registered model."""
    request = RequestFactory().get("/")
    request.user = operator
    for model, model_admin in admin.site._registry.items():
        label = f"{model._meta.app_label}_{model._meta.model_name}"
        row = model._default_manager.first()
        assert row is not None, f"create a {label} row in one_row_of_every_model"
        yield label, reverse(f"admin:{label}_changelist"), 200
        yield label, reverse(f"admin:{label}_change", args=[row.pk]), 200
        yield label, reverse(f"admin:{label}_add"), 200 if model_admin.has_add_permission(request) else 403


@pytest.mark.django_db
def test_every_admin_page_renders_without_object_reprs_or_secret_values(
    operator_client, operator, one_row_of_every_model
):
    pages = [("index", reverse("admin:index"), 200), *_admin_pages(operator)]
    for label, url, expected in pages:
        response = operator_client.get(url)
        body = response.content.decode()
        assert response.status_code == expected, (label, url)
        assert not REPR.search(body), (label, url, REPR.search(body).group(0) if REPR.search(body) else "")
        assert SECRET_VALUE not in body, (label, url)


@pytest.mark.django_db
def test_every_changelist_links_its_rows(operator_client, operator, one_row_of_every_model):
    for model in admin.site._registry:
        label = f"{model._meta.app_label}_{model._meta.model_name}"
        changelist = operator_client.get(reverse(f"admin:{label}_changelist"))
        assert changelist.context["cl"].result_count >= 1, label
        row = model._default_manager.first()
        assert reverse(f"admin:{label}_change", args=[row.pk]) in changelist.content.decode(), label


@pytest.mark.django_db
def test_site_is_branded_and_view_site_leads_to_the_canvas(operator_client):
    body = operator_client.get(reverse("admin:index")).content.decode()
    assert "<title>Fleet dashboard | Molecule</title>" in body
    assert '<div id="site-name"><a href="/django-admin/">Molecule</a></div>' in body
    assert '<a href="/">View site</a>' in body


@pytest.mark.django_db
def test_app_and_model_names_read_as_english(operator_client):
    body = operator_client.get(reverse("admin:index")).content.decode()
    for name in ("Secrets", "Registry", "Activity", "Memory", "Agent memories", "Workspace key/value memories",
                 "Agent model assignments"):
        assert f">{name}<" in body, name
    for wrong in ("memorys", "SECRETS_APP", "Secrets_App"):
        assert wrong not in body


# --- the dashboard ---------------------------------------------------------------------------------------

def _panel(body: str, panel_id: str) -> str:
    start = body.index(f'id="{panel_id}"')
    return body[start:body.index("</div>", start)]


@pytest.mark.django_db
def test_dashboard_counts_workspaces_by_status_with_status_links(operator_client):
    for name, status in (("A", "online"), ("B", "online"), ("C", "failed"), ("D", "paused")):
        Workspace.objects.create(name=name, status=status)

    response = operator_client.get(reverse("admin:index"))

    counts = {row["status"]: row["count"] for row in response.context["fleet_by_status"]}
    assert counts == {"online": 2, "failed": 1, "paused": 1}
    body = response.content.decode()
    assert "Workspaces — 4 in all" in body
    assert 'href="/django-admin/workspaces/workspace/?status__exact=failed"' in body
    assert '<span class="mol-status mol-status-failed">failed</span> <strong>1</strong>' in body


@pytest.mark.django_db
def test_dashboard_lists_failing_workspaces_with_their_last_error(operator_client):
    Workspace.objects.create(name="Broken", status="failed", last_sample_error="preflight: OPENAI_API_KEY is missing")
    Workspace.objects.create(name="Flaky", status="degraded", last_sample_error="error rate 0.6")
    Workspace.objects.create(name="Gone quiet", status="offline")
    Workspace.objects.create(name="Healthy", status="online")

    failing = _panel(operator_client.get(reverse("admin:index")).content.decode(), "mol-failing")

    assert "Failing workspaces — 3" in failing
    assert "preflight: OPENAI_API_KEY is missing" in failing
    assert "error rate 0.6" in failing
    assert "Gone quiet" in failing
    assert "Healthy" not in failing


@pytest.mark.django_db
def test_dashboard_says_so_when_nothing_fails(operator_client):
    Workspace.objects.create(name="Healthy", status="online")
    body = operator_client.get(reverse("admin:index")).content.decode()
    assert "Nothing is failed, degraded or offline." in body


@pytest.mark.django_db
def test_dashboard_shows_pending_approvals_and_recent_events(operator_client):
    workspace = Workspace.objects.create(name="Release Manager")
    ApprovalRequest.objects.create(workspace=workspace, action="deploy v2 to prod", reason="tests green")
    ApprovalRequest.objects.create(workspace=workspace, action="already decided", status=ApprovalStatus.APPROVED)
    StructureEvent.objects.create(event_type="WORKSPACE_DEGRADED", workspace_id=workspace.id, payload={"error_rate": 0.5})

    body = operator_client.get(reverse("admin:index")).content.decode()

    approvals = _panel(body, "mol-approvals")
    assert "Pending approvals — 1" in approvals
    assert "deploy v2 to prod" in approvals
    assert "already decided" not in approvals
    events = _panel(body, "mol-events")
    assert "WORKSPACE_DEGRADED" in events
    assert "Release Manager" in events
    assert "{&quot;error_rate&quot;:0.5}" in events


@pytest.mark.django_db
def test_dashboard_health_is_green_when_database_and_redis_answer(operator_client):
    checks = {c.name: c.level for c in operator_client.get(reverse("admin:index")).context["fleet_health"]}
    assert checks == {"PostgreSQL": "ok", "Redis": "ok", "Provisioner (none)": "warn"}


@pytest.mark.django_db
def test_dashboard_shows_an_unreachable_redis_and_a_broken_provisioner_in_red(
    operator_client, settings, monkeypatch
):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    def broken_provisioner():
        raise RuntimeError("docker socket refused")

    monkeypatch.setattr(admin_site, "get_provisioner", broken_provisioner)

    response = operator_client.get(reverse("admin:index"))

    assert response.status_code == 200
    checks = {c.name: c for c in response.context["fleet_health"]}
    assert checks["Redis"].level == "down"
    assert checks["Provisioner"].level == "down"
    assert "docker socket refused" in checks["Provisioner"].detail
    assert '<tr class="mol-health-down"><td><span class="mol-dot"></span>Redis</td>' in response.content.decode()


def _fleet(size: int) -> None:
    lead = Workspace.objects.create(name="Lead", status="online")
    for index in range(size):
        workspace = Workspace.objects.create(name=f"W{index}", parent=lead, status="failed", last_sample_error="boom")
        ApprovalRequest.objects.create(workspace=workspace, action=f"action {index}")
        StructureEvent.objects.create(event_type="WORKSPACE_PROVISION_FAILED", workspace_id=workspace.id)


DASHBOARD_QUERY_BUDGET = 16


@pytest.mark.django_db
def test_dashboard_query_count_does_not_grow_with_the_fleet(
    operator_client, django_assert_max_num_queries, django_assert_num_queries
):
    _fleet(3)
    with django_assert_max_num_queries(DASHBOARD_QUERY_BUDGET) as small:
        operator_client.get(reverse("admin:index"))
    _fleet(40)
    with django_assert_num_queries(len(small.captured_queries) + 1):  # +1: the approval count past one page
        operator_client.get(reverse("admin:index"))


# --- big tables ------------------------------------------------------------------------------------------

BIG_TABLE_QUERY_BUDGET = 12


def _rows_of_big_tables(workspace: Workspace, count: int) -> None:
    for index in range(count):
        ActivityLog.objects.create(workspace=workspace, activity_type="a2a_send", summary=f"call {index}")
        StructureEvent.objects.create(event_type="WORKSPACE_ONLINE", workspace_id=workspace.id)
        AgentMemory.objects.create(workspace=workspace, content=f"fact {index}", scope=MemoryScope.LOCAL)
        token_mint(workspace=workspace)


@pytest.mark.django_db
@pytest.mark.parametrize("model", [ActivityLog, StructureEvent, AgentMemory, WorkspaceAuthToken])
def test_big_table_changelists_are_paginated_within_a_query_budget(
    model, operator_client, django_assert_max_num_queries, django_assert_num_queries
):
    model_admin = admin.site._registry[model]
    assert model_admin.list_per_page <= 50
    assert model_admin.show_full_result_count is False
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    workspace = Workspace.objects.create(name="Chatty")
    _rows_of_big_tables(workspace, 3)
    with django_assert_max_num_queries(BIG_TABLE_QUERY_BUDGET) as few:
        assert operator_client.get(url).status_code == 200
    _rows_of_big_tables(workspace, 30)
    with django_assert_num_queries(len(few.captured_queries)):
        assert operator_client.get(url).status_code == 200
