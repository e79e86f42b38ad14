"""Operator admin: every registered model renders, and the workspace changelist works."""

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import reverse

from activity.models import ActivityLog, ApprovalRequest, StructureEvent
from memory.models import AgentMemory, MemoryScope, WorkspaceMemory
from registry.services import token_mint
from secrets_app.crypto import encrypt
from secrets_app.models import GlobalSecret, WorkspaceSecret
from workspaces.models import Agent, CanvasLayout, CanvasViewport, Workspace, WorkspaceConfig, WorkspaceStatus


@pytest.fixture
def one_row_of_every_model(operator):
    """At least one row per registered model, so changelists render real rows."""
    workspace = Workspace.objects.create(name="Dev Lead", role="lead", status=WorkspaceStatus.ONLINE)
    child = Workspace.objects.create(name="Dev 1", parent=workspace)
    Agent.objects.create(workspace=workspace, model="anthropic:claude")
    CanvasLayout.objects.create(workspace=workspace, x=10, y=20)
    CanvasViewport.objects.create()
    WorkspaceConfig.objects.create(workspace=workspace, data={"k": "v"})
    token_mint(workspace=workspace)
    ciphertext, version = encrypt("s3cret")
    WorkspaceSecret.objects.create(
        workspace=workspace, key="API_KEY", encrypted_value=ciphertext, encryption_version=version
    )
    GlobalSecret.objects.create(key="GLOBAL_KEY", encrypted_value=ciphertext, encryption_version=version)
    AgentMemory.objects.create(workspace=workspace, content="the build is green", scope=MemoryScope.TEAM)
    WorkspaceMemory.objects.create(workspace=child, key="progress", value={"done": 3})
    ActivityLog.objects.create(workspace=workspace, activity_type="a2a_send", method="message/send", summary="hi")
    StructureEvent.objects.create(event_type="WORKSPACE_ONLINE", workspace_id=workspace.id)
    ApprovalRequest.objects.create(workspace=workspace, action="deploy", reason="release")
    Group.objects.create(name="operators")


@pytest.mark.django_db
def test_every_registered_model_changelist_lists_rows_and_add_page_matches_permission(
    operator_client, operator, one_row_of_every_model
):
    request = RequestFactory().get("/")
    request.user = operator
    for model, model_admin in admin.site._registry.items():
        label = f"{model._meta.app_label}_{model._meta.model_name}"
        row = model._default_manager.first()
        assert row is not None, f"create a {label} row in one_row_of_every_model"

        changelist = operator_client.get(reverse(f"admin:{label}_changelist"))
        assert changelist.status_code == 200, label
        assert changelist.context["cl"].result_count >= 1, label
        change_url = reverse(f"admin:{label}_change", args=[row.pk])
        assert change_url in changelist.content.decode(), f"{label} changelist does not link its row"

        assert operator_client.get(change_url).status_code == 200, label

        add = operator_client.get(reverse(f"admin:{label}_add"))
        expected = 200 if model_admin.has_add_permission(request) else 403
        assert add.status_code == expected, label


@pytest.mark.django_db
def test_admin_site_is_titled_for_operators(operator_client):
    body = operator_client.get(reverse("admin:index")).content.decode()
    assert "Molecule operator admin" in body


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


@pytest.mark.django_db
def test_workspace_add_saves_canvas_layout_inline(operator_client):
    response = operator_client.post(
        reverse("admin:workspaces_workspace_add"),
        {
            "name": "Research",
            "tier": 2,
            "status": WorkspaceStatus.PROVISIONING,
            "runtime": "langgraph",
            "workspace_access": "none",
            "max_concurrent_tasks": 1,
            "monthly_spend": 0,
            "layout-TOTAL_FORMS": 1,
            "layout-INITIAL_FORMS": 0,
            "layout-MIN_NUM_FORMS": 0,
            "layout-MAX_NUM_FORMS": 1,
            "layout-0-x": 120.5,
            "layout-0-y": -40,
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    workspace = Workspace.objects.get(name="Research")
    assert (workspace.tier, workspace.layout.x, workspace.layout.y) == (2, 120.5, -40)


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
