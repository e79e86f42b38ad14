"""Workspace routes on the wire (spec §5, §6.1–6.4, §14): bodies, status codes, exact errors."""

import json
import uuid

import pytest

from activity.models import StructureEvent
from memory.models import AgentMemory
from registry.models import WorkspaceAuthToken
from registry.services import token_validate
from registry.tokens import inbound_secret, token_digest, token_mint
from secrets_app.crypto import decrypt
from secrets_app.models import WorkspaceSecret
from workspaces.models import CanvasLayout, CanvasViewport, Workspace, WorkspaceConfig

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("secure")]


def create(api, on_commit, extra=None, **body):
    with on_commit(execute=True):
        response = api("POST", "/workspaces", {"name": "PM", **body}, **(extra or {}))
    assert response.status_code == 201, response.content
    return response


# --- POST /workspaces --------------------------------------------------------------------------

def test_create_without_provisioner_fails_the_row_and_answers_provisioning(api, django_capture_on_commit_callbacks):
    response = create(api, django_capture_on_commit_callbacks, role="Product", tier=2, runtime="langgraph")
    body = response.json()
    workspace = Workspace.objects.get(pk=body["id"])
    assert body == {
        "id": str(workspace.id), "status": "provisioning",
        "awareness_namespace": f"workspace:{workspace.id}", "workspace_access": "none",
    }
    assert b'"status":"provisioning"' in response.content  # compact JSON
    assert workspace.status == "failed"
    assert workspace.last_sample_error == (
        "Docker not available — workspace containers require a Docker daemon or external provisioning."
    )
    assert WorkspaceConfig.objects.get(workspace=workspace).data == {
        "name": "PM", "runtime": "langgraph", "tier": 2, "template": ""
    }
    events = list(StructureEvent.objects.filter(workspace_id=workspace.id).order_by("created_at"))
    assert [(e.event_type, e.payload) for e in events] == [
        ("WORKSPACE_PROVISIONING", {"name": "PM", "tier": 2, "runtime": "langgraph"}),
        ("WORKSPACE_PROVISION_FAILED", {"error": "Docker not available on this platform instance"}),
    ]


def test_create_defaults_tier_3_and_langgraph_and_stores_layout_secrets_memories(api, django_capture_on_commit_callbacks):
    response = create(
        api, django_capture_on_commit_callbacks,
        canvas={"x": 120, "y": 40.5}, secrets={"OPENAI_API_KEY": "sk-live-abcdefghijklmnopqrstuvwxyz"},
        max_concurrent_tasks=0,
        initial_memories=[
            {"content": "We ship on Fridays", "scope": "team"},
            {"content": "token OPENAI_API_KEY=sk-abc123 stays secret"},
            {"content": "", "scope": "LOCAL"},
            {"content": "bad scope", "scope": "ORG"},
        ],
    )
    workspace = Workspace.objects.get(pk=response.json()["id"])
    assert (workspace.tier, workspace.runtime, workspace.max_concurrent_tasks) == (3, "langgraph", 1)
    layout = CanvasLayout.objects.get(workspace=workspace)
    assert (layout.x, layout.y) == (120, 40.5)
    secret = WorkspaceSecret.objects.get(workspace=workspace)
    assert secret.encryption_version == 1
    assert b"sk-live" not in bytes(secret.encrypted_value)
    assert decrypt(secret.encrypted_value, secret.encryption_version) == "sk-live-abcdefghijklmnopqrstuvwxyz"
    memories = {m.content: (m.scope, m.namespace) for m in AgentMemory.objects.filter(workspace=workspace)}
    assert memories == {
        "We ship on Fridays": ("TEAM", f"workspace:{workspace.id}"[:50]),
        "token [REDACTED:API_KEY] stays secret": ("LOCAL", f"workspace:{workspace.id}"[:50]),
    }


def test_create_takes_runtime_and_model_from_the_template(api, settings, tmp_path, django_capture_on_commit_callbacks):
    (tmp_path / "researcher").mkdir()
    (tmp_path / "researcher" / "config.yaml").write_text("name: R\nruntime: crewai\nruntime_config:\n  model: gpt-4o\n")
    settings.CONFIGS_DIR = tmp_path
    response = create(api, django_capture_on_commit_callbacks, template="researcher")
    assert Workspace.objects.get(pk=response.json()["id"]).runtime == "crewai"


def test_a_model_in_the_create_body_is_the_workspaces_model(api, django_capture_on_commit_callbacks):
    """It once was parsed and dropped; it is what ``GET /workspaces/:id/model`` answers (and the
    runtime reads as MODEL_PROVIDER), a ``secrets`` entry for it winning."""
    chosen = create(api, django_capture_on_commit_callbacks, model="openai:gpt-4o").json()["id"]
    assert api("GET", f"/workspaces/{chosen}/model").json() == {"model": "openai:gpt-4o", "source": "workspace_secrets"}
    explicit = create(api, django_capture_on_commit_callbacks, model="openai:gpt-4o",
                      secrets={"MODEL_PROVIDER": "groq:llama"}).json()["id"]
    assert api("GET", f"/workspaces/{explicit}/model").json()["model"] == "groq:llama"
    plain = create(api, django_capture_on_commit_callbacks).json()["id"]
    assert api("GET", f"/workspaces/{plain}/model").json() == {"model": "", "source": "default"}


def test_create_takes_tier_and_role_from_the_template_unless_the_body_says(api, django_capture_on_commit_callbacks):
    """The shipped demo PM says ``tier: 2`` and ``role: Product manager`` (it got tier 3, no role)."""
    from_template = Workspace.objects.get(pk=create(api, django_capture_on_commit_callbacks, template="demo-pm").json()["id"])
    assert (from_template.tier, from_template.role) == (2, "Product manager")
    assert StructureEvent.objects.get(workspace_id=from_template.id, event_type="WORKSPACE_PROVISIONING").payload["tier"] == 2
    overridden = create(api, django_capture_on_commit_callbacks, template="demo-pm", tier=4, role="Owner").json()["id"]
    assert Workspace.objects.filter(pk=overridden).values_list("tier", "role").get() == (4, "Owner")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("{not json", "invalid workspace payload"),
        ({}, "invalid workspace payload"),
        ({"name": ""}, "invalid workspace payload"),
        ({"name": 5}, "invalid workspace payload"),
        ({"name": "PM", "tier": "2"}, "invalid workspace payload"),
        ({"name": "PM", "parent_id": "not-a-uuid"}, "invalid workspace payload"),
        ({"name": "PM", "secrets": {"K": 1}}, "invalid workspace payload"),
        ({"name": "PM", "secrets": {"A=B": "v"}}, "invalid workspace payload"),
        ({"name": "PM", "initial_memories": [{"content": "x", "scope": {"": 1}}]}, "invalid workspace payload"),
        ({"name": "PM", "initial_memories": [{"content": 5}]}, "invalid workspace payload"),
        ({"name": "PM", "initial_memories": ["just text"]}, "invalid workspace payload"),
        ({"name": "PM\nx"}, "invalid workspace fields"),
        ({"name": "P{M}"}, "invalid workspace fields"),
        ({"name": "x" * 256}, "invalid workspace fields"),
        ({"name": "PM", "role": "r" * 1001}, "invalid workspace fields"),
        ({"name": "PM", "model": "m" * 101}, "invalid workspace fields"),
        ({"name": "PM", "runtime": "a\rb"}, "invalid workspace fields"),
        ({"name": "PM", "tier": 7}, "invalid workspace fields"),
        ({"name": "PM", "template": "../etc"}, "invalid template"),
        ({"name": "PM", "template": "/etc/passwd"}, "invalid template"),
        ({"name": "PM", "workspace_dir": "relative/dir"}, "invalid workspace directory"),
        ({"name": "PM", "workspace_dir": "/etc/molecule"}, "invalid workspace directory"),
        ({"name": "PM", "workspace_dir": "/srv/../etc"}, "invalid workspace directory"),
        ({"name": "PM", "workspace_access": "read_write"}, "invalid workspace access"),
        ({"name": "PM", "workspace_dir": "/srv/code", "workspace_access": "admin"}, "invalid workspace access"),
    ],
)
def test_create_rejects_bad_input_with_the_spec_message(api, body, error):
    response = api("POST", "/workspaces", body)
    assert response.status_code == 400
    assert response.content == json.dumps({"error": error}, separators=(",", ":")).encode()
    assert not Workspace.objects.exists()


def test_create_accepts_workspace_access_with_a_directory(api, django_capture_on_commit_callbacks):
    response = create(api, django_capture_on_commit_callbacks, workspace_dir="/srv/code", workspace_access="read_only")
    assert response.json()["workspace_access"] == "read_only"
    assert Workspace.objects.get().workspace_dir == "/srv/code"


def test_create_external_with_url_is_online_and_gets_its_token(api, django_capture_on_commit_callbacks, redis_client):
    response = create(api, django_capture_on_commit_callbacks, external=True, url="https://agent.example.com/a2a")
    body = response.json()
    assert body == {"id": body["id"], "external": True, "status": "online", "connection": body["connection"]}
    # its agent heartbeats with this token; without one, anyone could register for it (finding 6)
    assert token_validate(token=body["connection"]["auth_token"], workspace_id=body["id"]) is not None
    workspace = Workspace.objects.get(pk=body["id"])
    assert (workspace.status, workspace.runtime, workspace.url) == ("online", "external", "https://agent.example.com/a2a")
    assert redis_client.get(f"ws:{workspace.id}:url") == b"https://agent.example.com/a2a"
    online = StructureEvent.objects.get(workspace_id=workspace.id, event_type="WORKSPACE_ONLINE")
    assert online.payload == {"name": "PM", "external": True}


def test_create_external_without_url_awaits_the_agent_with_a_connection_block(
    api, django_capture_on_commit_callbacks, settings
):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "platform.test"]  # the name agents reach us by
    response = create(
        api, django_capture_on_commit_callbacks, {"HTTP_HOST": "platform.test:8080"}, runtime="external"
    )
    body = response.json()
    workspace = Workspace.objects.get(pk=body["id"])
    assert (body["status"], workspace.status, workspace.runtime) == ("awaiting_agent", "awaiting_agent", "external")
    connection = body["connection"]
    assert connection["workspace_id"] == str(workspace.id)
    assert connection["platform_url"] == "http://platform.test:8080"
    assert connection["registry_endpoint"] == "http://platform.test:8080/registry/register"
    assert connection["heartbeat_endpoint"] == "http://platform.test:8080/registry/heartbeat"
    token = connection["auth_token"]
    assert WorkspaceAuthToken.objects.get(workspace=workspace).token_hash == token_digest(token)
    assert token in connection["curl_register_template"] and token in connection["python_snippet"]
    # the secret the proxy presents to the agent, so the agent can refuse anyone else
    assert connection["inbound_secret"] == inbound_secret(workspace.id)
    assert StructureEvent.objects.filter(workspace_id=workspace.id, event_type="WORKSPACE_AWAITING_AGENT").exists()


def test_create_under_an_unknown_parent_is_refused(api):
    response = api("POST", "/workspaces", {"name": "Dev", "parent_id": str(uuid.uuid4())})
    assert (response.status_code, response.json()) == (400, {"error": "parent workspace not found"})


# --- GET /workspaces, GET /workspaces/:id --------------------------------------------------------

def test_list_is_empty_array_when_there_are_no_workspaces(api):
    response = api("GET", "/workspaces")
    assert (response.status_code, response.content) == (200, b"[]")


def test_list_excludes_removed_orders_by_creation_and_inlines_the_layout(api):
    root = Workspace.objects.create(name="Root", status="online", role="")
    CanvasLayout.objects.create(workspace=root, x=100, y=0.5, collapsed=True)
    child = Workspace.objects.create(name="Child", parent=root, current_task="triage", workspace_dir="/srv/c")
    Workspace.objects.create(name="Gone", status="removed")
    items = api("GET", "/workspaces").json()
    assert [i["name"] for i in items] == ["Root", "Child"]
    assert items[0] == {
        "id": str(root.id), "name": "Root", "role": None, "tier": 1, "status": "online", "agent_card": None,
        "url": "", "parent_id": None, "active_tasks": 0, "max_concurrent_tasks": 1, "last_error_rate": 0,
        "uptime_seconds": 0, "runtime": "langgraph", "x": 100, "y": 0.5, "collapsed": True,
        "last_sample_error": "", "current_task": "", "workspace_dir": None, "monthly_spend": 0, "budget_limit": None,
    }
    assert (items[1]["parent_id"], items[1]["current_task"], items[1]["x"]) == (str(root.id), "triage", 0)
    assert '"x":100,' in api("GET", "/workspaces").content.decode()  # integral floats print as ints


def test_get_is_open_and_keeps_removed_rows(client):
    workspace = Workspace.objects.create(name="Gone", status="removed")
    response = client.get(f"/workspaces/{workspace.id}")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "removed" and body["last_outbound_at"] is None
    assert "budget_limit" not in body and "monthly_spend" not in body and "workspace_dir" not in body


def test_get_rejects_bad_and_unknown_ids(client):
    assert client.get("/workspaces/nope").content == b'{"error":"invalid workspace ID"}'
    response = client.get(f"/workspaces/{uuid.uuid4()}")
    assert (response.status_code, response.content) == (404, b'{"error":"workspace not found"}')


# --- PATCH /workspaces/:id --------------------------------------------------------------------

def test_patch_applies_present_keys_and_position_only_with_both_coordinates(api):
    parent = Workspace.objects.create(name="Lead")
    workspace = Workspace.objects.create(name="Dev")
    response = api("PATCH", f"/workspaces/{workspace.id}", {"name": "Dev 2", "tier": 4, "parent_id": str(parent.id), "x": 5})
    assert (response.status_code, response.content) == (200, b'{"status":"updated"}')
    workspace.refresh_from_db()
    assert (workspace.name, workspace.tier, workspace.parent_id) == ("Dev 2", 4, parent.id)
    assert not CanvasLayout.objects.filter(workspace=workspace).exists()  # x without y is ignored

    api("PATCH", f"/workspaces/{workspace.id}", {"x": 5, "y": 6, "collapsed": True})
    layout = CanvasLayout.objects.get(workspace=workspace)
    assert (layout.x, layout.y, layout.collapsed) == (5, 6, True)
    assert not StructureEvent.objects.exists()  # the original broadcasts nothing on PATCH


def test_patch_workspace_dir_flags_a_restart_and_null_clears_it(api):
    workspace = Workspace.objects.create(name="Dev")
    response = api("PATCH", f"/workspaces/{workspace.id}", {"workspace_dir": "/srv/code"})
    assert response.content == b'{"status":"updated","needs_restart":true}'
    api("PATCH", f"/workspaces/{workspace.id}", {"workspace_dir": None})
    workspace.refresh_from_db()
    assert workspace.workspace_dir is None


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"name": "a\nb"}, "name must not contain newline characters"),
        ({"name": "a|b"}, "name contains invalid characters"),
        ({"name": "n" * 256}, "name must be at most 255 characters"),
        ({"role": "r" * 1001}, "role must be at most 1000 characters"),
        ({"runtime": "r" * 101}, "runtime must be at most 100 characters"),
        ({"tier": "high"}, "invalid request body"),
        ({"workspace_dir": "/proc/x"}, "invalid workspace directory"),
        ("[1,2", "invalid request body"),
    ],
)
def test_patch_rejects_bad_fields_with_the_specific_message(api, body, error):
    workspace = Workspace.objects.create(name="Dev")
    response = api("PATCH", f"/workspaces/{workspace.id}", body)
    assert (response.status_code, response.json()) == (400, {"error": error})
    workspace.refresh_from_db()
    assert workspace.name == "Dev"


def test_patch_refuses_a_parent_that_would_create_a_cycle(api):
    root = Workspace.objects.create(name="Root")
    child = Workspace.objects.create(name="Child", parent=root)
    grandchild = Workspace.objects.create(name="Grandchild", parent=child)
    for new_parent in (grandchild, root):
        response = api("PATCH", f"/workspaces/{root.id}", {"parent_id": str(new_parent.id)})
        assert (response.status_code, response.json()) == (
            400, {"error": "parent_id would create a cycle in the workspace hierarchy"}
        )
    root.refresh_from_db()
    assert root.parent_id is None


def test_a_removed_workspace_cannot_become_a_parent(api):
    gone = Workspace.objects.create(name="Gone", status="removed")
    child = Workspace.objects.create(name="Child")
    response = api("PATCH", f"/workspaces/{child.id}", {"parent_id": str(gone.id)})
    assert (response.status_code, response.json()) == (400, {"error": "parent workspace not found"})
    child.refresh_from_db()
    assert child.parent_id is None
    response = api("POST", "/workspaces", {"name": "Dev", "parent_id": str(gone.id), "external": True})
    assert (response.status_code, response.json()) == (400, {"error": "parent workspace not found"})
    assert not Workspace.objects.filter(name="Dev").exists()


def test_patch_unknown_and_bad_ids(api):
    assert api("PATCH", "/workspaces/xyz", {"name": "a"}).json() == {"error": "invalid workspace ID"}
    response = api("PATCH", f"/workspaces/{uuid.uuid4()}", {"name": "a"})
    assert (response.status_code, response.json()) == (404, {"error": "workspace not found"})


# --- DELETE /workspaces/:id ---------------------------------------------------------------------

def test_delete_with_children_needs_confirmation(api):
    root = Workspace.objects.create(name="Root")
    child = Workspace.objects.create(name="Child", parent=root)
    response = api("DELETE", f"/workspaces/{root.id}")
    assert response.status_code == 409
    assert response.json() == {
        "status": "confirmation_required",
        "message": "This workspace has sub-workspaces. Delete with ?confirm=true to cascade delete.",
        "children": [{"id": str(child.id), "name": "Child"}],
        "children_count": 1,
    }
    root.refresh_from_db()
    assert root.status != "removed"


def test_delete_cascades_marks_removed_revokes_tokens_and_emits(api, redis_client, django_capture_on_commit_callbacks):
    root = Workspace.objects.create(name="Root", status="online")
    child = Workspace.objects.create(name="Child", parent=root)
    grandchild = Workspace.objects.create(name="Grandchild", parent=child)
    CanvasLayout.objects.create(workspace=grandchild)
    for workspace in (root, child, grandchild):
        token_mint(workspace=workspace)
        redis_client.set(f"ws:{workspace.id}:url", "http://x")
    with django_capture_on_commit_callbacks(execute=True):
        response = api("DELETE", f"/workspaces/{root.id}?confirm=true")
    assert (response.status_code, response.content) == (200, b'{"status":"removed","cascade_deleted":2}')
    assert set(Workspace.objects.values_list("status", flat=True)) == {"removed"}
    assert not WorkspaceAuthToken.objects.filter(revoked_at__isnull=True).exists()
    assert not CanvasLayout.objects.exists()
    assert not redis_client.keys("ws:*")
    removed = {e.workspace_id: e.payload for e in StructureEvent.objects.filter(event_type="WORKSPACE_REMOVED")}
    assert removed == {child.id: {}, grandchild.id: {}, root.id: {"cascade_deleted": 2}}


def test_delete_unknown_uuid_is_a_no_op_success(api):
    response = api("DELETE", f"/workspaces/{uuid.uuid4()}")
    assert (response.status_code, response.content) == (200, b'{"status":"removed","cascade_deleted":0}')
    assert api("DELETE", "/workspaces/bad").json() == {"error": "invalid workspace ID"}


def test_delete_with_purge_hard_deletes_rows_and_dependents(api):
    root = Workspace.objects.create(name="Root")
    child = Workspace.objects.create(name="Child", parent=root)
    survivor = Workspace.objects.create(name="Other", forwarded_to=child)
    token_mint(workspace=child)
    AgentMemory.objects.create(workspace=child, content="fact", scope="LOCAL")
    response = api("DELETE", f"/workspaces/{root.id}?confirm=true&purge=true")
    assert response.content == b'{"status":"purged","cascade_deleted":1}'
    assert list(Workspace.objects.all()) == [survivor]
    survivor.refresh_from_db()
    assert survivor.forwarded_to is None
    assert not WorkspaceAuthToken.objects.exists() and not AgentMemory.objects.exists()


# --- state, pause, resume, restart --------------------------------------------------------------

def test_state_reports_status_paused_and_deleted(api):
    workspace = Workspace.objects.create(name="Dev", status="paused")
    assert api("GET", f"/workspaces/{workspace.id}/state").json() == {
        "workspace_id": str(workspace.id), "status": "paused", "paused": True, "deleted": False,
    }
    Workspace.objects.filter(pk=workspace.pk).update(status="removed")
    response = api("GET", f"/workspaces/{workspace.id}/state")
    assert (response.status_code, response.json()) == (
        404, {"workspace_id": str(workspace.id), "status": "removed", "deleted": True}
    )
    missing = str(uuid.uuid4())
    response = api("GET", f"/workspaces/{missing}/state")
    assert (response.status_code, response.json()) == (404, {"workspace_id": missing, "deleted": True})


def test_pause_is_recursive_and_emits_per_workspace(api, redis_client, django_capture_on_commit_callbacks):
    root = Workspace.objects.create(name="Root", status="online", url="http://r")
    child = Workspace.objects.create(name="Child", parent=root, status="online")
    Workspace.objects.create(name="Removed", parent=root, status="removed")
    redis_client.set(f"ws:{child.id}", "online")
    with django_capture_on_commit_callbacks(execute=True):
        response = api("POST", f"/workspaces/{root.id}/pause")
    assert response.content == b'{"status":"paused","paused_count":2}'
    root.refresh_from_db()
    assert (root.status, root.url) == ("paused", "")
    assert Workspace.objects.get(pk=child.pk).status == "paused"
    assert Workspace.objects.get(name="Removed").status == "removed"
    assert redis_client.get(f"ws:{child.id}") is None
    paused = {e.workspace_id: e.payload for e in StructureEvent.objects.filter(event_type="WORKSPACE_PAUSED")}
    assert paused == {root.id: {"name": "Root"}, child.id: {"name": "Child"}}

    again = api("POST", f"/workspaces/{root.id}/pause")
    assert (again.status_code, again.json()) == (404, {"error": "workspace not found or already paused"})


def test_resume_and_restart_need_a_provisioner(api):
    workspace = Workspace.objects.create(name="Dev", status="paused")
    response = api("POST", f"/workspaces/{workspace.id}/resume")
    assert (response.status_code, response.json()) == (503, {"error": "provisioner not available"})
    response = api("POST", f"/workspaces/{workspace.id}/restart")
    assert (response.status_code, response.json()) == (503, {"error": "provisioner not available"})
    workspace.refresh_from_db()
    assert workspace.status == "paused"


def test_resume_and_restart_error_paths(api):
    online = Workspace.objects.create(name="Dev", status="online")
    response = api("POST", f"/workspaces/{online.id}/resume")
    assert (response.status_code, response.json()) == (404, {"error": "workspace not found or not paused"})
    response = api("POST", f"/workspaces/{uuid.uuid4()}/restart")
    assert (response.status_code, response.json()) == (404, {"error": "workspace not found"})
    lead = Workspace.objects.create(name="Lead", status="paused")
    child = Workspace.objects.create(name="Child", parent=lead, status="online")
    response = api("POST", f"/workspaces/{child.id}/restart")
    assert (response.status_code, response.json()) == (409, {"error": 'parent workspace "Lead" is paused — resume it first'})


# --- tokens -------------------------------------------------------------------------------------

def test_tokens_list_create_revoke(api):
    workspace = Workspace.objects.create(name="Dev")
    created = api("POST", f"/workspaces/{workspace.id}/tokens")
    body = created.json()
    assert created.status_code == 201
    assert body["workspace_id"] == str(workspace.id)
    assert body["message"] == "Save this token now — it cannot be retrieved again."
    assert len(body["auth_token"]) == 43

    listing = api("GET", f"/workspaces/{workspace.id}/tokens").json()
    assert listing["count"] == 1
    (item,) = listing["tokens"]
    assert item["prefix"] == body["auth_token"][:8] and item["last_used_at"] is None
    assert "token_hash" not in item and body["auth_token"] not in json.dumps(listing)

    assert api("DELETE", f"/workspaces/{workspace.id}/tokens/{item['id']}").content == b'{"status":"revoked"}'
    again = api("DELETE", f"/workspaces/{workspace.id}/tokens/{item['id']}")
    assert (again.status_code, again.json()) == (404, {"error": "token not found or already revoked"})
    assert api("GET", f"/workspaces/{workspace.id}/tokens").json() == {"tokens": [], "count": 0}


def test_tokens_cannot_be_revoked_through_another_workspace(api):
    mine, other = Workspace.objects.create(name="Mine"), Workspace.objects.create(name="Other")
    token, _ = token_mint(workspace=other)
    response = api("DELETE", f"/workspaces/{mine.id}/tokens/{token.id}")
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_token_minting_stops_at_50_live_tokens(api):
    workspace = Workspace.objects.create(name="Dev")
    for _ in range(50):
        token_mint(workspace=workspace)
    response = api("POST", f"/workspaces/{workspace.id}/tokens")
    assert (response.status_code, response.json()) == (429, {"error": "maximum 50 active tokens per workspace"})


def test_token_list_paginates_newest_first(api):
    workspace = Workspace.objects.create(name="Dev")
    prefixes = [token_mint(workspace=workspace)[0].prefix for _ in range(3)]
    page = api("GET", f"/workspaces/{workspace.id}/tokens?limit=2&offset=1").json()
    assert page["count"] == 3
    assert [t["prefix"] for t in page["tokens"]] == list(reversed(prefixes))[1:3]


# --- canvas viewport --------------------------------------------------------------------------

def test_viewport_defaults_then_saves(api):
    assert api("GET", "/canvas/viewport", token=None).content == b'{"x":0,"y":0,"zoom":1}'
    response = api("PUT", "/canvas/viewport", {"x": -120.5, "y": 40, "zoom": 1.25})
    assert response.content == b'{"status":"saved"}'
    assert api("GET", "/canvas/viewport", token=None).json() == {"x": -120.5, "y": 40, "zoom": 1.25}
    assert CanvasViewport.objects.count() == 1


@pytest.mark.parametrize("body", [{"x": 1, "y": 2}, {"x": "1", "y": 2, "zoom": 1}, {"x": 1, "y": 2, "zoom": 0}, "nope"])
def test_viewport_rejects_bad_data(api, body):
    response = api("PUT", "/canvas/viewport", body)
    assert (response.status_code, response.json()) == (400, {"error": "invalid viewport data"})
    assert not CanvasViewport.objects.exists()


# --- wire details -------------------------------------------------------------------------------

def test_wrong_method_on_a_known_path_is_a_plain_404(api):
    response = api("PUT", "/workspaces")
    assert (response.status_code, response.content) == (404, b"404 page not found")


def test_list_adds_provision_timeout_ms_from_the_recorded_template(api):
    with_timeout = Workspace.objects.create(name="Lead")
    WorkspaceConfig.objects.create(workspace=with_timeout, data={"template": "team-lead"})  # 300 s in the template
    plain = Workspace.objects.create(name="Plain")
    WorkspaceConfig.objects.create(workspace=plain, data={"template": "researcher"})
    items = {i["name"]: i for i in api("GET", "/workspaces").json()}
    assert items["Lead"]["provision_timeout_ms"] == 300_000
    assert "provision_timeout_ms" not in items["Plain"]
