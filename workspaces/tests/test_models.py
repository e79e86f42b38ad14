"""Database-level rules of the data model: checks, uniqueness, generated columns."""

import pytest
from django.db import IntegrityError, transaction

from activity.models import ActivityLog, ApprovalRequest
from memory.models import AgentMemory, WorkspaceMemory
from registry.models import WorkspaceAuthToken
from secrets_app.models import GlobalSecret, WorkspaceSecret
from workspaces.models import CanvasViewport, Workspace, WorkspaceStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def workspace():
    return Workspace.objects.create(name="PM")


def rejected(queryset_update):
    with pytest.raises(IntegrityError), transaction.atomic():
        queryset_update()


def test_workspace_defaults_match_the_spec(workspace):
    workspace.refresh_from_db()
    assert (workspace.status, workspace.tier, workspace.runtime, workspace.workspace_access) == (
        "provisioning", 1, "langgraph", "none"
    )
    assert (workspace.max_concurrent_tasks, workspace.active_tasks, workspace.monthly_spend) == (1, 0, 0)


def test_database_defaults_apply_to_raw_inserts(db):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO workspaces (id, name) VALUES (gen_random_uuid(), 'raw') RETURNING status, tier, runtime")
        assert cursor.fetchone() == ("provisioning", 1, "langgraph")


@pytest.mark.parametrize("status", WorkspaceStatus.values)
def test_every_spec_status_is_accepted(workspace, status):
    Workspace.objects.filter(pk=workspace.pk).update(status=status)
    workspace.refresh_from_db()
    assert workspace.status == status


def test_unknown_status_is_rejected(workspace):
    rejected(lambda: Workspace.objects.filter(pk=workspace.pk).update(status="sleeping"))
    workspace.refresh_from_db()
    assert workspace.status == "provisioning"


@pytest.mark.parametrize("tier", [0, 5, -1])
def test_tier_outside_1_to_4_is_rejected(workspace, tier):
    rejected(lambda: Workspace.objects.filter(pk=workspace.pk).update(tier=tier))


def test_workspace_access_is_checked(workspace):
    Workspace.objects.filter(pk=workspace.pk).update(workspace_access="read_write")
    rejected(lambda: Workspace.objects.filter(pk=workspace.pk).update(workspace_access="admin"))


def test_parent_and_forwarded_to_are_self_references(workspace):
    child = Workspace.objects.create(name="Dev", parent=workspace, forwarded_to=workspace)
    assert list(workspace.children.all()) == [child]
    assert child.forwarded_to == workspace


def test_canvas_viewport_is_a_single_row(db):
    CanvasViewport.objects.create(x=10, y=20, zoom=1.5)
    import uuid

    rejected(lambda: CanvasViewport.objects.create(id=uuid.uuid4()))


def test_memory_scope_is_checked(workspace):
    AgentMemory.objects.create(workspace=workspace, content="ok", scope="TEAM")
    rejected(lambda: AgentMemory.objects.create(workspace=workspace, content="bad", scope="ORG"))
    rejected(lambda: AgentMemory.objects.create(workspace=workspace, content="lower", scope="local"))


def test_memory_full_text_column_is_generated_and_searchable(workspace):
    from django.contrib.postgres.search import SearchQuery

    AgentMemory.objects.create(workspace=workspace, content="The deployment pipelines were failing", scope="LOCAL")
    AgentMemory.objects.create(workspace=workspace, content="Lunch is at noon", scope="LOCAL")
    found = AgentMemory.objects.filter(content_tsv=SearchQuery("pipeline", config="english"))
    assert [m.content for m in found] == ["The deployment pipelines were failing"]


def test_approval_status_is_checked(workspace):
    ApprovalRequest.objects.create(workspace=workspace, action="deploy")
    rejected(lambda: ApprovalRequest.objects.create(workspace=workspace, action="deploy", status="maybe"))


def test_agent_status_is_checked(workspace):
    from workspaces.models import Agent

    Agent.objects.create(workspace=workspace, model="gpt-4o")
    rejected(lambda: Agent.objects.create(workspace=workspace, model="gpt-4o", status="zombie"))


def test_workspace_secret_key_is_unique_per_workspace(workspace):
    other = Workspace.objects.create(name="QA")
    WorkspaceSecret.objects.create(workspace=workspace, key="API_KEY", encrypted_value=b"x")
    WorkspaceSecret.objects.create(workspace=other, key="API_KEY", encrypted_value=b"y")
    rejected(lambda: WorkspaceSecret.objects.create(workspace=workspace, key="API_KEY", encrypted_value=b"z"))


def test_global_secret_key_is_unique(db):
    GlobalSecret.objects.create(key="OPENAI_API_KEY", encrypted_value=b"x")
    rejected(lambda: GlobalSecret.objects.create(key="OPENAI_API_KEY", encrypted_value=b"y"))


def test_kv_memory_key_is_unique_per_workspace(workspace):
    WorkspaceMemory.objects.create(workspace=workspace, key="plan", value={"step": 1})
    rejected(lambda: WorkspaceMemory.objects.create(workspace=workspace, key="plan", value={"step": 2}))


def test_token_hash_is_unique(workspace):
    WorkspaceAuthToken.objects.create(workspace=workspace, token_hash=b"h" * 32, prefix="abcdefgh")
    rejected(lambda: WorkspaceAuthToken.objects.create(workspace=workspace, token_hash=b"h" * 32, prefix="abcdefgh"))


def test_activity_idempotency_key_is_unique_per_workspace_when_set(workspace):
    ActivityLog.objects.create(workspace=workspace, activity_type="delegation", idempotency_key="k1")
    ActivityLog.objects.create(workspace=workspace, activity_type="delegation")
    ActivityLog.objects.create(workspace=workspace, activity_type="delegation")  # NULL keys never clash
    rejected(lambda: ActivityLog.objects.create(workspace=workspace, activity_type="delegation", idempotency_key="k1"))


def test_deleting_a_workspace_cascades_to_its_rows(workspace):
    WorkspaceAuthToken.objects.create(workspace=workspace, token_hash=b"t" * 32, prefix="tttttttt")
    ActivityLog.objects.create(workspace=workspace, activity_type="a2a_receive")
    workspace.delete()
    assert not WorkspaceAuthToken.objects.exists()
    assert not ActivityLog.objects.exists()
