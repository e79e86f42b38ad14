"""Team expand/collapse (spec §13) from the shipped team-lead template."""

import uuid

import pytest

from activity.models import StructureEvent
from registry.tokens import token_mint
from workspaces.models import CanvasLayout, Workspace, WorkspaceConfig

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def admin_token(settings):
    settings.ADMIN_TOKEN = "admin"


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    def send(path):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(path, HTTP_AUTHORIZATION="Bearer admin")
    return send


def test_expand_creates_the_templates_sub_workspaces_as_children(post):
    lead = Workspace.objects.create(name="Team Lead", tier=2)
    WorkspaceConfig.objects.create(workspace=lead, data={"template": "team-lead"})
    response = post(f"/workspaces/{lead.id}/expand")
    body = response.json()
    children = list(Workspace.objects.filter(parent=lead).order_by("created_at"))
    assert response.status_code == 200
    assert body == {"status": "expanded", "children": [
        {"id": str(children[0].id), "name": "Market Researcher", "role": "Researches markets, competitors and customers"},
        {"id": str(children[1].id), "name": "Technical Researcher", "role": "Researches technical feasibility and prior art"},
    ]}
    assert {(c.tier, c.runtime) for c in children} == {(2, "langgraph")}
    assert CanvasLayout.objects.filter(workspace__in=children).count() == 2
    provisioning = StructureEvent.objects.filter(event_type="WORKSPACE_PROVISIONING").order_by("created_at")
    assert [e.payload for e in provisioning] == [
        {"name": "Market Researcher", "tier": 2, "parent_id": str(lead.id)},
        {"name": "Technical Researcher", "tier": 2, "parent_id": str(lead.id)},
    ]
    expanded = StructureEvent.objects.get(event_type="WORKSPACE_EXPANDED")
    assert (expanded.workspace_id, expanded.payload) == (lead.id, {"children": body["children"]})
    # No provisioner in this build: children fail like any create, with the same message.
    assert {c.status for c in Workspace.objects.filter(parent=lead)} == {"failed"}


def test_expand_finds_the_template_by_workspace_name(post):
    lead = Workspace.objects.create(name="Team Lead")  # config.yaml name of team-lead/
    assert post(f"/workspaces/{lead.id}/expand").status_code == 200
    assert Workspace.objects.filter(parent=lead).count() == 2


def test_expand_error_paths(post):
    response = post(f"/workspaces/{uuid.uuid4()}/expand")
    assert (response.status_code, response.json()) == (404, {"error": "workspace not found"})
    orphan = Workspace.objects.create(name="No Such Template Anywhere")
    response = post(f"/workspaces/{orphan.id}/expand")
    assert (response.status_code, response.json()) == (400, {"error": "no config found for workspace"})
    specialist = Workspace.objects.create(name="Researcher")
    WorkspaceConfig.objects.create(workspace=specialist, data={"template": "researcher"})
    response = post(f"/workspaces/{specialist.id}/expand")
    assert (response.status_code, response.json()) == (400, {"error": "workspace has no sub_workspaces defined in config"})
    assert Workspace.objects.count() == 2


def test_collapse_removes_direct_children_only(post, redis_client):
    lead = Workspace.objects.create(name="Lead")
    child = Workspace.objects.create(name="Child", parent=lead)
    grandchild = Workspace.objects.create(name="Grandchild", parent=child)
    Workspace.objects.create(name="Gone", parent=lead, status="removed")
    CanvasLayout.objects.create(workspace=child)
    token, _ = token_mint(workspace=child)
    redis_client.set(f"ws:{child.id}:url", "http://x")
    response = post(f"/workspaces/{lead.id}/collapse")
    assert response.json() == {"status": "collapsed", "removed": ["Child"]}
    child.refresh_from_db()
    grandchild.refresh_from_db()
    assert (child.status, grandchild.status) == ("removed", "provisioning")
    assert not CanvasLayout.objects.filter(workspace=child).exists()
    token.refresh_from_db()
    assert token.revoked_at is None  # as the original: collapse does not revoke
    assert redis_client.get(f"ws:{child.id}:url") is None
    assert [(e.event_type, e.workspace_id, e.payload) for e in StructureEvent.objects.order_by("created_at")] == [
        ("WORKSPACE_REMOVED", child.id, {}),
        ("WORKSPACE_COLLAPSED", lead.id, {"removed_children": ["Child"]}),
    ]


def test_collapse_unknown_workspace(post):
    response = post(f"/workspaces/{uuid.uuid4()}/collapse")
    assert (response.status_code, response.json()) == (404, {"error": "workspace not found"})
