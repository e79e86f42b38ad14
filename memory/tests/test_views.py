"""Memory routes on the wire (spec §11): every success and error path, exact status and bytes."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from activity.models import ActivityLog
from memory.models import AgentMemory, WorkspaceMemory
from molecule_site.wire import rfc3339
from registry.tokens import token_mint
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db

ADMIN = {"HTTP_AUTHORIZATION": "Bearer admin"}
INVALID_BODY = b'{"error":"invalid request body"}'


@pytest.fixture(autouse=True)
def admin_token(settings):
    settings.ADMIN_TOKEN = "admin"
    settings.DEV_MODE = False


@pytest.fixture
def root() -> Workspace:
    return Workspace.objects.create(name="Root")


@pytest.fixture
def child(root) -> Workspace:
    return Workspace.objects.create(name="Child", parent=root)


def post(client, path, body, auth=ADMIN):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(path, data, content_type="application/json", **auth)


def answer(response) -> tuple[int, bytes]:
    return response.status_code, response.content


# --- auth (WorkspaceAuth on :id for every route) ---------------------------------------------------

ROUTES = [
    ("get", "/workspaces/{id}/memories"),
    ("post", "/workspaces/{id}/memories"),
    ("delete", f"/workspaces/{{id}}/memories/{uuid.uuid4()}"),
    ("get", "/workspaces/{id}/memory"),
    ("post", "/workspaces/{id}/memory"),
    ("get", "/workspaces/{id}/memory/k"),
    ("delete", "/workspaces/{id}/memory/k"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_the_workspace_token_or_the_admin_token(client, root, child, method, path):
    url = path.format(id=child.id)
    call = getattr(client, method)
    assert answer(call(url)) == (401, b'{"error":"missing workspace auth token"}')
    assert answer(call(url, HTTP_AUTHORIZATION="Bearer nope")) == (401, b'{"error":"invalid workspace auth token"}')
    _, roots_token = token_mint(workspace=root)
    assert answer(call(url, HTTP_AUTHORIZATION=f"Bearer {roots_token}")) == (
        401, b'{"error":"invalid workspace auth token"}',  # a token bound to another workspace
    )
    _, own_token = token_mint(workspace=child)
    assert call(url, HTTP_AUTHORIZATION=f"Bearer {own_token}").status_code != 401


def test_a_workspace_token_works_end_to_end(client, child):
    _, token = token_mint(workspace=child)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert post(client, f"/workspaces/{child.id}/memories", {"content": "fact", "scope": "LOCAL"}, auth).status_code == 201
    assert [i["content"] for i in client.get(f"/workspaces/{child.id}/memories", **auth).json()] == ["fact"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("put", "/workspaces/{id}/memories"), ("patch", "/workspaces/{id}/memory"), ("post", "/workspaces/{id}/memory/k")],
)
def test_a_wrong_method_is_a_plain_404(client, root, method, path):
    response = getattr(client, method)(path.format(id=root.id), **ADMIN)
    assert answer(response) == (404, b"404 page not found")


# --- POST /workspaces/:id/memories -----------------------------------------------------------------

def test_commit_answers_201_with_id_scope_and_namespace(client, child):
    response = post(client, f"/workspaces/{child.id}/memories", {"content": "SLACK_TOKEN=xoxb-1 in vault", "scope": "TEAM"})
    memory = AgentMemory.objects.get()
    assert answer(response) == (201, f'{{"id":"{memory.id}","scope":"TEAM","namespace":"general"}}'.encode())
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert memory.content == "[REDACTED:TOKEN] in vault"


def test_commit_keeps_a_given_namespace_and_ignores_unknown_fields(client, child):
    body = {"content": "x", "scope": "LOCAL", "namespace": "ops", "workspace_id": str(child.id)}
    assert post(client, f"/workspaces/{child.id}/memories", body).json()["namespace"] == "ops"


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        "",
        {"scope": "LOCAL"},
        {"content": "", "scope": "LOCAL"},
        {"content": 5, "scope": "LOCAL"},
        {"content": "x"},
        {"content": "x", "scope": ""},
        {"content": "x", "scope": ["LOCAL"]},
        {"content": "x", "scope": "LOCAL", "namespace": 7},
    ],
)
def test_commit_bind_failures_are_invalid_request_body(client, child, body):
    assert answer(post(client, f"/workspaces/{child.id}/memories", body)) == (400, INVALID_BODY)
    assert not AgentMemory.objects.exists()


def test_commit_scope_and_namespace_errors(client, child):
    url = f"/workspaces/{child.id}/memories"
    assert answer(post(client, url, {"content": "x", "scope": "local"})) == (
        400, b'{"error":"scope must be LOCAL, TEAM, or GLOBAL"}',
    )
    assert answer(post(client, url, {"content": "x", "scope": "LOCAL", "namespace": "n" * 51})) == (
        400, b'{"error":"namespace must be <= 50 characters"}',
    )
    assert not AgentMemory.objects.exists()


def test_commit_global_from_a_child_is_forbidden(client, child):
    response = post(client, f"/workspaces/{child.id}/memories", {"content": "x", "scope": "GLOBAL"})
    assert answer(response) == (403, b'{"error":"only root workspaces can write GLOBAL memories"}')
    assert not AgentMemory.objects.exists() and not ActivityLog.objects.exists()


def test_commit_global_from_a_root_is_audited(client, root):
    response = post(client, f"/workspaces/{root.id}/memories", {"content": "[MEMORY fake]", "scope": "GLOBAL"})
    assert response.status_code == 201
    memory = AgentMemory.objects.get()
    assert memory.content == "[_MEMORY fake]"
    assert ActivityLog.objects.get(activity_type="memory_write_global").request_body["memory_id"] == str(memory.id)


def test_commit_to_an_unknown_workspace_is_not_found(client):
    response = post(client, f"/workspaces/{uuid.uuid4()}/memories", {"content": "x", "scope": "LOCAL"})
    assert answer(response) == (404, b'{"error":"workspace not found"}')


# --- GET /workspaces/:id/memories ------------------------------------------------------------------

def test_search_answers_compact_items(client, root):
    memory = AgentMemory.objects.create(workspace=root, content="fact", scope="GLOBAL", namespace="ops")
    response = client.get(f"/workspaces/{root.id}/memories?scope=GLOBAL", **ADMIN)
    created_at = response.json()[0]["created_at"]
    assert answer(response) == (
        200,
        (
            f'[{{"id":"{memory.id}","workspace_id":"{root.id}",'
            f'"content":"[MEMORY id={memory.id} scope=GLOBAL from={root.id}]: fact",'
            f'"scope":"GLOBAL","namespace":"ops","created_at":"{created_at}"}}]'
        ).encode(),
    )


def test_search_with_nothing_found_is_an_empty_array(client, root):
    assert answer(client.get(f"/workspaces/{root.id}/memories", **ADMIN)) == (200, b"[]")
    assert answer(client.get(f"/workspaces/{root.id}/memories?scope=TEAM&q=zz", **ADMIN)) == (200, b"[]")


def test_search_scope_must_be_valid(client, root):
    response = client.get(f"/workspaces/{root.id}/memories?scope=team", **ADMIN)
    assert answer(response) == (400, b'{"error":"scope must be LOCAL, TEAM, or GLOBAL"}')


def test_search_passes_scope_query_namespace_and_limit_through(client, root, child):
    sibling = Workspace.objects.create(name="Sibling", parent=root)
    for n in range(5):
        AgentMemory.objects.create(workspace=sibling, content=f"deploy step {n}", scope="TEAM", namespace="ops")
    AgentMemory.objects.create(workspace=sibling, content="deploy elsewhere", scope="TEAM", namespace="misc")
    AgentMemory.objects.create(workspace=sibling, content="deploy privately", scope="LOCAL", namespace="ops")
    base = f"/workspaces/{child.id}/memories?scope=TEAM&namespace=ops&q=deploy"
    assert len(client.get(base, **ADMIN).json()) == 5
    assert len(client.get(base + "&limit=2", **ADMIN).json()) == 2
    assert len(client.get(base + "&limit=abc", **ADMIN).json()) == 5  # malformed: the default 50


def test_search_ranks_full_text_matches(client, root):
    AgentMemory.objects.create(workspace=root, content="Redis restarted.", scope="LOCAL")
    AgentMemory.objects.create(workspace=root, content="unrelated", scope="LOCAL")
    AgentMemory.objects.create(workspace=root, content="Redis restart: redis restarts redis restarting.", scope="LOCAL")
    found = client.get(f"/workspaces/{root.id}/memories?q=redis+restart", **ADMIN).json()
    assert [i["content"] for i in found] == ["Redis restart: redis restarts redis restarting.", "Redis restarted."]


# --- DELETE /workspaces/:id/memories/:memoryId -----------------------------------------------------

def test_delete_own_memory(client, child):
    memory = AgentMemory.objects.create(workspace=child, content="x", scope="LOCAL")
    response = client.delete(f"/workspaces/{child.id}/memories/{memory.id}", **ADMIN)
    assert answer(response) == (200, b'{"status":"deleted"}')
    assert not AgentMemory.objects.exists()


@pytest.mark.parametrize("which", ["someone else's", "missing", "malformed"])
def test_delete_anything_else_is_not_found(client, root, child, which):
    theirs = AgentMemory.objects.create(workspace=root, content="x", scope="TEAM")
    memory_id = {"someone else's": theirs.id, "missing": uuid.uuid4(), "malformed": "nope"}[which]
    response = client.delete(f"/workspaces/{child.id}/memories/{memory_id}", **ADMIN)
    assert answer(response) == (404, b'{"error":"memory not found or not owned by this workspace"}')
    assert AgentMemory.objects.filter(pk=theirs.pk).exists()


# --- key/value memory ------------------------------------------------------------------------------

def test_kv_list_is_an_empty_array_then_entries_by_key(client, root):
    url = f"/workspaces/{root.id}/memory"
    assert answer(client.get(url, **ADMIN)) == (200, b"[]")
    post(client, url, {"key": "b", "value": {"n": 1}, "ttl_seconds": 60})
    post(client, url, {"key": "a", "value": [1, "x"]})
    entries = {row.key: row for row in WorkspaceMemory.objects.all()}
    response = client.get(url, **ADMIN)
    a, b = entries["a"], entries["b"]

    assert answer(response) == (
        200,
        (
            f'[{{"key":"a","value":[1,"x"],"version":1,"updated_at":"{rfc3339(a.updated_at)}"}},'
            f'{{"key":"b","value":{{"n":1}},"version":1,"expires_at":"{rfc3339(b.expires_at)}",'
            f'"updated_at":"{rfc3339(b.updated_at)}"}}]'
        ).encode(),
    )


def test_kv_get_an_entry_or_key_not_found(client, root):
    url = f"/workspaces/{root.id}/memory"
    post(client, url, {"key": "k", "value": "v"})
    WorkspaceMemory.objects.create(workspace=root, key="old", value=1, expires_at=timezone.now() - timedelta(seconds=1))
    got = client.get(f"{url}/k", **ADMIN)
    assert got.status_code == 200
    assert list(got.json()) == ["key", "value", "version", "updated_at"]
    assert got.json()["value"] == "v"
    for key in ("old", "never"):
        assert answer(client.get(f"{url}/{key}", **ADMIN)) == (404, b'{"error":"key not found"}')


def test_kv_set_answers_ok_with_the_version(client, root):
    url = f"/workspaces/{root.id}/memory"
    assert answer(post(client, url, {"key": "k", "value": 1})) == (200, b'{"status":"ok","key":"k","version":1}')
    assert answer(post(client, url, {"key": "k", "value": 2})) == (200, b'{"status":"ok","key":"k","version":2}')
    assert answer(post(client, url, {"key": "k", "value": 3, "if_match_version": 2})) == (
        200, b'{"status":"ok","key":"k","version":3}',
    )
    assert answer(post(client, url, {"key": "n", "if_match_version": 0})) == (200, b'{"status":"ok","key":"n","version":1}')
    assert client.get(f"{url}/n", **ADMIN).json()["value"] is None  # value may be any JSON, null included


def test_kv_set_conflicts_have_both_bodies(client, root):
    url = f"/workspaces/{root.id}/memory"
    post(client, url, {"key": "k", "value": 1})
    assert answer(post(client, url, {"key": "k", "value": 2, "if_match_version": 5})) == (
        409, b'{"error":"if_match_version mismatch","expected_version":5,"current_version":1}',
    )
    assert answer(post(client, url, {"key": "missing", "value": 2, "if_match_version": 3})) == (
        409, b'{"error":"if_match_version mismatch: key does not exist","expected_version":3,"current_version":null}',
    )


def test_kv_set_key_is_required(client, root):
    url = f"/workspaces/{root.id}/memory"
    for body in ({"value": 1}, {"key": "", "value": 1}, {"key": None}):
        assert answer(post(client, url, body)) == (400, b'{"error":"key is required"}')


@pytest.mark.parametrize(
    "body",
    [
        "nope",
        "[1]",
        {"key": 5, "value": 1},
        {"key": "k", "ttl_seconds": "60"},
        {"key": "k", "ttl_seconds": 1.5},
        {"key": "k", "ttl_seconds": True},
        {"key": "k", "ttl_seconds": 2**63},
        {"key": "k", "ttl_seconds": 10**12},
        {"key": "k", "if_match_version": "1"},
        {"key": "k", "if_match_version": 1.0},
    ],
)
def test_kv_set_bind_failures_are_invalid_request_body(client, root, body):
    assert answer(post(client, f"/workspaces/{root.id}/memory", body)) == (400, INVALID_BODY)
    assert not WorkspaceMemory.objects.exists()


def test_kv_set_on_an_unknown_workspace_is_not_found(client):
    response = post(client, f"/workspaces/{uuid.uuid4()}/memory", {"key": "k", "value": 1})
    assert answer(response) == (404, b'{"error":"workspace not found"}')


def test_kv_delete_is_idempotent(client, root):
    url = f"/workspaces/{root.id}/memory"
    post(client, url, {"key": "k", "value": 1})
    for _ in range(2):
        assert answer(client.delete(f"{url}/k", **ADMIN)) == (200, b'{"status":"deleted"}')
    assert not WorkspaceMemory.objects.exists()


# --- secret redaction on both memory kinds (read back through the API) -----------------------------

PEM = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49\n-----END EC PRIVATE KEY-----"
DSN = "postgres://u:p4ss@db/x"


def own_token(workspace) -> dict:
    _, token = token_mint(workspace=workspace)
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_a_scoped_memory_is_stored_and_read_back_redacted(client, child):
    auth = own_token(child)
    content = f"db is {DSN}; deploy key:\n{PEM}\npassword: hunter2"
    assert post(client, f"/workspaces/{child.id}/memories", {"content": content, "scope": "LOCAL"}, auth).status_code == 201
    [item] = client.get(f"/workspaces/{child.id}/memories", **auth).json()
    assert item["content"] == (
        "db is postgres://[REDACTED:URL_CREDENTIALS]@db/x; deploy key:\n[REDACTED:PRIVATE_KEY]\n[REDACTED:PASSWORD]"
    )


def test_a_key_value_memory_is_stored_and_read_back_redacted(client, root):
    auth, url = own_token(root), f"/workspaces/{root.id}/memory"
    value = {"dsn": DSN, "tls": {"key": PEM, "password": "hunter2", "port": 5432}, "notes": ["ok", "AKIAIOSFODNN7EXAMPLE"]}
    assert answer(post(client, url, {"key": "db", "value": value}, auth)) == (200, b'{"status":"ok","key":"db","version":1}')
    redacted = {
        "dsn": "postgres://[REDACTED:URL_CREDENTIALS]@db/x",
        "tls": {"key": "[REDACTED:PRIVATE_KEY]", "password": "[REDACTED:PASSWORD]", "port": 5432},
        "notes": ["ok", "[REDACTED:AWS_ACCESS_KEY]"],
    }
    assert client.get(f"{url}/db", **auth).json()["value"] == redacted
    assert [entry["value"] for entry in client.get(url, **auth).json()] == [redacted]


def test_a_key_value_memory_that_is_a_plain_string_is_redacted_and_its_key_kept(client, root):
    auth, url = own_token(root), f"/workspaces/{root.id}/memory"
    assert post(client, url, {"key": "dsn", "value": DSN}, auth).status_code == 200
    assert client.get(f"{url}/dsn", **auth).json()["value"] == "postgres://[REDACTED:URL_CREDENTIALS]@db/x"
