"""Approvals (spec §13): create with escalation, list, decide once, pending with auto-expiry, admin."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from activity.models import ApprovalRequest, StructureEvent
from registry.tokens import token_mint
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def admin_token(settings):
    settings.ADMIN_TOKEN = "admin"
    settings.DEV_MODE = False


@pytest.fixture
def call(client, django_capture_on_commit_callbacks):
    def send(method, path, body=None):
        with django_capture_on_commit_callbacks(execute=True):
            kwargs = {"data": body, "content_type": "application/json"} if body is not None else {}
            return getattr(client, method)(path, HTTP_AUTHORIZATION="Bearer admin", **kwargs)
    return send


def events():
    return [(e.event_type, e.workspace_id, e.payload) for e in StructureEvent.objects.order_by("created_at")]


def test_create_notifies_the_workspace_and_escalates_to_the_parent(call):
    lead = Workspace.objects.create(name="Lead")
    dev = Workspace.objects.create(name="Dev", parent=lead)
    response = call("post", f"/workspaces/{dev.id}/approvals",
                    {"action": "deploy to prod", "reason": "release 1.2", "task_id": "t-1", "context": {"env": "prod"}})
    approval = ApprovalRequest.objects.get()
    assert (response.status_code, response.json()) == (201, {"approval_id": str(approval.id), "status": "pending"})
    assert approval.context == {"env": "prod"}
    assert events() == [
        ("APPROVAL_REQUESTED", dev.id, {"approval_id": str(approval.id), "action": "deploy to prod",
                                        "reason": "release 1.2", "task_id": "t-1"}),
        ("APPROVAL_ESCALATED", lead.id, {"approval_id": str(approval.id), "from_workspace_id": str(dev.id),
                                         "action": "deploy to prod", "reason": "release 1.2"}),
    ]


def test_a_root_workspace_does_not_escalate(call):
    root = Workspace.objects.create(name="Root")
    call("post", f"/workspaces/{root.id}/approvals", {"action": "spend $100"})
    assert [e[0] for e in events()] == ["APPROVAL_REQUESTED"]


@pytest.mark.parametrize("body", [{}, {"action": ""}, {"action": 3}, {"action": "x", "context": "nope"}])
def test_create_requires_an_action(call, body):
    workspace = Workspace.objects.create(name="Dev")
    response = call("post", f"/workspaces/{workspace.id}/approvals", body)
    assert (response.status_code, response.json()) == (400, {"error": "invalid request body"})
    assert not ApprovalRequest.objects.exists()


def test_list_newest_first_with_the_spec_shape(call):
    workspace = Workspace.objects.create(name="Dev")
    call("post", f"/workspaces/{workspace.id}/approvals", {"action": "first"})
    call("post", f"/workspaces/{workspace.id}/approvals", {"action": "second"})
    items = call("get", f"/workspaces/{workspace.id}/approvals").json()
    assert [i["action"] for i in items] == ["second", "first"]
    assert set(items[0]) == {"id", "task_id", "action", "reason", "status", "decided_by", "decided_at", "created_at"}
    assert (items[0]["status"], items[0]["decided_at"]) == ("pending", None)


def test_decide_once(call):
    workspace = Workspace.objects.create(name="Dev")
    approval_id = call("post", f"/workspaces/{workspace.id}/approvals", {"action": "deploy"}).json()["approval_id"]
    path = f"/workspaces/{workspace.id}/approvals/{approval_id}/decide"
    response = call("post", path, {"decision": "approved", "decided_by": "alice (CFO)"})
    assert response.json() == {"status": "approved", "approval_id": approval_id}
    approval = ApprovalRequest.objects.get()
    # the authenticated principal is recorded, not the name the body claims
    assert (approval.status, approval.decided_by) == ("approved", "admin") and approval.decided_at
    assert events()[-1] == ("APPROVAL_APPROVED", workspace.id,
                            {"approval_id": approval_id, "decision": "approved", "decided_by": "admin"})
    again = call("post", path, {"decision": "denied"})
    assert (again.status_code, again.json()) == (404, {"error": "approval not found or already decided"})
    assert ApprovalRequest.objects.get().status == "approved"


def test_decide_validates_the_decision(call):
    workspace = Workspace.objects.create(name="Dev")
    approval_id = call("post", f"/workspaces/{workspace.id}/approvals", {"action": "deploy"}).json()["approval_id"]
    path = f"/workspaces/{workspace.id}/approvals/{approval_id}/decide"
    bad = call("post", path, {"decision": "maybe"})
    assert (bad.status_code, bad.json()) == (400, {"error": "decision must be 'approved' or 'denied'"})
    assert call("post", path, {"decision": "denied"}).json() == {"status": "denied", "approval_id": approval_id}
    assert ApprovalRequest.objects.get().decided_by == "admin"
    assert events()[-1][0] == "APPROVAL_DENIED"


def test_the_requesting_workspace_and_its_descendants_cannot_decide(call, client):
    """Finding 8: a workspace created an approval request and approved it itself."""
    parent = Workspace.objects.create(name="PM")
    child = Workspace.objects.create(name="Dev", parent=parent)
    approval_id = call("post", f"/workspaces/{parent.id}/approvals", {"action": "wire money"}).json()["approval_id"]
    path = f"/workspaces/{parent.id}/approvals/{approval_id}/decide"
    _, own_token = token_mint(workspace=parent)
    _, child_token = token_mint(workspace=child)
    own = client.post(path, {"decision": "approved", "decided_by": "alice (CFO)"}, content_type="application/json",
                      HTTP_AUTHORIZATION=f"Bearer {own_token}")
    assert (own.status_code, own.json()) == (403, {"error": "deciding an approval requires admin auth"})
    descendant = client.post(path, {"decision": "approved"}, content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {child_token}")
    assert (descendant.status_code, descendant.json()) == (401, {"error": "invalid workspace auth token"})
    approval = ApprovalRequest.objects.get()
    assert (approval.status, approval.decided_by) == ("pending", None)


def test_a_staff_session_decides_as_its_username(call, client, operator):
    workspace = Workspace.objects.create(name="Dev")
    approval_id = call("post", f"/workspaces/{workspace.id}/approvals", {"action": "deploy"}).json()["approval_id"]
    client.force_login(operator)
    response = client.post(f"/workspaces/{workspace.id}/approvals/{approval_id}/decide",
                           {"decision": "approved", "decided_by": "someone else"}, content_type="application/json")
    assert response.json() == {"status": "approved", "approval_id": approval_id}
    assert ApprovalRequest.objects.get().decided_by == "operator"


def test_dev_mode_keeps_the_originals_free_text_decider(call, client, settings):
    workspace = Workspace.objects.create(name="Dev")
    approval_id = call("post", f"/workspaces/{workspace.id}/approvals", {"action": "deploy"}).json()["approval_id"]
    settings.DEV_MODE, settings.ADMIN_TOKEN = True, None
    path = f"/workspaces/{workspace.id}/approvals/{approval_id}/decide"
    assert client.post(path, {"decision": "denied"}, content_type="application/json").json()["status"] == "denied"
    assert ApprovalRequest.objects.get().decided_by == "human"


def test_decide_through_another_workspace_is_not_found(call):
    mine, other = Workspace.objects.create(name="Mine"), Workspace.objects.create(name="Other")
    approval_id = call("post", f"/workspaces/{other.id}/approvals", {"action": "deploy"}).json()["approval_id"]
    response = call("post", f"/workspaces/{mine.id}/approvals/{approval_id}/decide", {"decision": "approved"})
    assert response.status_code == 404
    unknown = call("post", f"/workspaces/{mine.id}/approvals/{uuid.uuid4()}/decide", {"decision": "approved"})
    assert unknown.json() == {"error": "approval not found or already decided"}
    assert ApprovalRequest.objects.get().status == "pending"


def test_pending_auto_expires_requests_older_than_ten_minutes(call):
    workspace = Workspace.objects.create(name="Dev")
    old = ApprovalRequest.objects.create(workspace=workspace, action="old")
    fresh = ApprovalRequest.objects.create(workspace=workspace, action="fresh")
    ApprovalRequest.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    items = call("get", "/approvals/pending").json()
    assert items == [{
        "id": str(fresh.id), "workspace_id": str(workspace.id), "workspace_name": "Dev", "action": "fresh",
        "reason": None, "status": "pending", "created_at": items[0]["created_at"],
    }]
    old.refresh_from_db()
    assert (old.status, old.decided_by) == ("denied", "auto-expired")


def test_pending_leaves_out_the_requests_of_removed_workspaces(call):
    gone, here = Workspace.objects.create(name="Gone"), Workspace.objects.create(name="Here")
    ApprovalRequest.objects.create(workspace=gone, action="budget_warning")
    kept = ApprovalRequest.objects.create(workspace=here, action="deploy")
    Workspace.objects.filter(pk=gone.pk).update(status="removed")
    assert [item["id"] for item in call("get", "/approvals/pending").json()] == [str(kept.id)]


def test_pending_needs_admin_auth(client):
    Workspace.objects.create(name="Dev")
    response = client.get("/approvals/pending")
    assert (response.status_code, response.json()) == (401, {"error": "admin auth required"})


def test_operator_decides_from_the_admin_through_the_service(operator_client, django_capture_on_commit_callbacks):
    workspace = Workspace.objects.create(name="Dev")
    pending = ApprovalRequest.objects.create(workspace=workspace, action="deploy")
    decided = ApprovalRequest.objects.create(workspace=workspace, action="old", status="denied")
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(
            reverse("admin:activity_approvalrequest_changelist"),
            {"action": "approve_selected", "_selected_action": [str(pending.pk), str(decided.pk)]}, follow=True,
        )
    body = response.content.decode()
    assert "Approved 1 request(s)." in body and "1 request(s) were already decided." in body
    pending.refresh_from_db()
    decided.refresh_from_db()
    assert (pending.status, pending.decided_by) == ("approved", "admin:operator")
    assert decided.status == "denied"
    assert StructureEvent.objects.get().event_type == "APPROVAL_APPROVED"
