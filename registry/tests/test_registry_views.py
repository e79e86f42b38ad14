"""Registry and discovery routes: register, update-card, check-access, discover, peers (spec §7.1,
§7.3, §8.2, §8.3). Heartbeat has its own module (test_heartbeat.py).

Tree used by the discovery tests::

    R1 (root)          R2 (root)
    ├── A
    │   └── A1
    ├── B
    │   └── B1
    └── C (removed)
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import DatabaseError
from django.utils import timezone

from activity.models import StructureEvent
from registry import selectors
from registry.models import WorkspaceAuthToken
from registry.services import token_mint, token_validate
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

TTL = 60
URL_TTL = 300
AGENT_URL = "http://localhost:8001"
CARD = {"name": "Dev Lead", "skills": [{"id": "code"}]}
BAD_BODY = b'{"error":"invalid request body"}'
MISSING_TOKEN = b'{"error":"missing workspace auth token"}'
INVALID_TOKEN = b'{"error":"invalid workspace auth token"}'


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.LIVENESS_TTL_SECONDS = TTL
    settings.ADMIN_TOKEN = None
    settings.DEV_MODE = False
    settings.IS_PRODUCTION = False
    settings.SAAS_MODE = False
    return settings


@pytest.fixture
def api(client, django_capture_on_commit_callbacks):
    """``api(method, path, body=None, token=None, caller=None, raw=None)``; after-commit work runs."""

    def call(method, path, body=None, token=None, caller=None, raw=None):
        headers = {}
        if token:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        if caller:
            headers["HTTP_X_WORKSPACE_ID"] = str(caller)
        kwargs = {}
        if method == "post":
            kwargs = {"data": raw if raw is not None else json.dumps(body), "content_type": "application/json"}
        with django_capture_on_commit_callbacks(execute=True):
            return getattr(client, method)(path, **kwargs, **headers)

    return call


def make(name="Dev Lead", **fields) -> Workspace:
    return Workspace.objects.create(name=name, **fields)


def events(workspace_id) -> list[tuple[str, dict]]:
    rows = StructureEvent.objects.filter(workspace_id=workspace_id).order_by("created_at")
    return [(e.event_type, e.payload) for e in rows]


def register(api, workspace_id, url=AGENT_URL, card=CARD, token=None):
    return api("post", "/registry/register", {"id": str(workspace_id), "url": url, "agent_card": card}, token=token)


# --- POST /registry/register (spec §7.1) ---------------------------------------------------------------

def test_register_of_an_unknown_id_creates_an_online_row_named_after_it(api):
    workspace_id = uuid.uuid4()
    before = timezone.now()
    response = register(api, workspace_id)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "auth_token"} and body["status"] == "registered"
    workspace = Workspace.objects.get(pk=workspace_id)
    assert (workspace.name, workspace.status, workspace.url, workspace.agent_card) == (
        str(workspace_id), "online", AGENT_URL, CARD)
    assert workspace.last_heartbeat_at >= before
    assert (workspace.liveness_deadline - workspace.last_heartbeat_at).total_seconds() == TTL
    assert token_validate(token=body["auth_token"], workspace_id=workspace_id) is not None


def test_register_sets_the_redis_keys(api, redis_client):
    workspace = make(status=WorkspaceStatus.PROVISIONING)
    register(api, workspace.id)
    assert redis_client.get(f"ws:{workspace.id}") == b"online"
    assert TTL - 2 <= redis_client.ttl(f"ws:{workspace.id}") <= TTL
    for key in (f"ws:{workspace.id}:url", f"ws:{workspace.id}:internal_url"):
        assert redis_client.get(key) == AGENT_URL.encode()
        assert URL_TTL - 2 <= redis_client.ttl(key) <= URL_TTL


def test_register_announces_workspace_online_with_url_and_card(api):
    workspace = make(status=WorkspaceStatus.PROVISIONING)
    register(api, workspace.id)
    assert events(workspace.id) == [("WORKSPACE_ONLINE", {"url": AGENT_URL, "agent_card": CARD})]


def test_register_mints_a_token_only_once(api):
    workspace = make()
    first = register(api, workspace.id)
    token = first.json()["auth_token"]
    assert len(token) == 43
    second = register(api, workspace.id, token=token)
    assert second.status_code == 200
    assert second.content == b'{"status":"registered"}'
    assert WorkspaceAuthToken.objects.filter(workspace=workspace).count() == 1


def test_register_follows_the_grandfather_rule(api):
    workspace = make()
    assert register(api, workspace.id).status_code == 200  # no token yet: no bearer needed
    missing = register(api, workspace.id)
    assert (missing.status_code, missing.content) == (401, MISSING_TOKEN)
    invalid = register(api, workspace.id, token="not-a-token")
    assert (invalid.status_code, invalid.content) == (401, INVALID_TOKEN)


def test_register_keeps_a_stored_loopback_url_and_caches_it_for_the_proxy(api, redis_client):
    workspace = make(url="http://127.0.0.1:9100", status=WorkspaceStatus.OFFLINE)
    register(api, workspace.id, url="http://localhost:8001")
    workspace.refresh_from_db()
    assert workspace.url == "http://127.0.0.1:9100"
    assert redis_client.get(f"ws:{workspace.id}:url") == b"http://127.0.0.1:9100"
    assert redis_client.get(f"ws:{workspace.id}:internal_url") == b"http://localhost:8001"
    assert events(workspace.id) == [("WORKSPACE_ONLINE", {"url": "http://127.0.0.1:9100", "agent_card": CARD})]


def test_register_replaces_any_other_url_and_card(api):
    workspace = make(url="http://localhost:7000", agent_card={"name": "old"})
    register(api, workspace.id, url="http://localhost:8001", card={"name": "new"})
    workspace.refresh_from_db()
    assert (workspace.url, workspace.agent_card) == ("http://localhost:8001", {"name": "new"})


@pytest.mark.parametrize("status", ["failed", "offline", "provisioning", "degraded", "awaiting_agent", "paused"])
def test_register_brings_any_status_but_removed_online(api, status):
    workspace = make(status=status)
    register(api, workspace.id)
    workspace.refresh_from_db()
    assert workspace.status == "online"


def test_register_does_not_revive_a_removed_workspace(api, redis_client):
    workspace = make(status=WorkspaceStatus.REMOVED, url="http://localhost:7000")
    response = register(api, workspace.id)
    assert (response.status_code, response.content) == (200, b'{"status":"registered"}')
    workspace.refresh_from_db()
    assert (workspace.status, workspace.url) == ("removed", "http://localhost:7000")
    assert redis_client.keys("ws:*") == []
    assert events(workspace.id) == []
    assert not WorkspaceAuthToken.objects.filter(workspace=workspace).exists()


def test_register_accepts_any_json_agent_card(api):
    workspace = make()
    assert register(api, workspace.id, card={}).status_code == 200
    workspace.refresh_from_db()
    assert workspace.agent_card == {}


@pytest.mark.parametrize("body", [
    {"url": AGENT_URL, "agent_card": CARD},
    {"id": "", "url": AGENT_URL, "agent_card": CARD},
    {"id": 7, "url": AGENT_URL, "agent_card": CARD},
    {"id": "ID", "agent_card": CARD},
    {"id": "ID", "url": "", "agent_card": CARD},
    {"id": "ID", "url": ["x"], "agent_card": CARD},
    {"id": "ID", "url": AGENT_URL},
    {"id": "ID", "url": AGENT_URL, "agent_card": None},
])
def test_register_rejects_bad_bodies(api, body):
    workspace = make()
    body = {k: (str(workspace.id) if v == "ID" else v) for k, v in body.items()}
    response = api("post", "/registry/register", body)
    assert (response.status_code, response.content) == (400, BAD_BODY)


@pytest.mark.parametrize("raw", ["", "{nope", "[1]"])
def test_register_rejects_unparseable_bodies(api, raw):
    response = api("post", "/registry/register", raw=raw)
    assert (response.status_code, response.content) == (400, BAD_BODY)


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest", "http://127.0.0.1:8000", "http://10.0.0.8:8000", "ftp://localhost",
    "http://[fe80::1]:8000", "http://[::ffff:127.0.0.1]:8000", "http://no-such-host.invalid",
])
def test_register_rejects_unsafe_urls_as_a_bad_body(api, url):
    workspace = make()
    response = register(api, workspace.id, url=url)
    assert (response.status_code, response.content) == (400, BAD_BODY)
    workspace.refresh_from_db()
    assert workspace.status == "provisioning"


def test_register_allows_private_urls_in_saas_mode(api, settings):
    settings.SAAS_MODE = True
    workspace = make()
    assert register(api, workspace.id, url="http://10.0.0.8:8000").status_code == 200


def test_register_validates_the_body_before_the_token(api):
    workspace = make()
    token_mint(workspace=workspace)
    response = register(api, workspace.id, url="http://169.254.169.254")
    assert (response.status_code, response.content) == (400, BAD_BODY)


def test_register_with_a_non_uuid_id_fails(api):
    response = register(api, "not-a-uuid")
    assert (response.status_code, response.content) == (500, b'{"error":"registration failed"}')


# --- POST /registry/update-card (spec §7.3) ------------------------------------------------------------

def test_update_card_replaces_the_card_and_announces_it(api):
    workspace = make(agent_card={"name": "old"})
    card = {"name": "Dev Lead", "skills": []}
    response = api("post", "/registry/update-card", {"workspace_id": str(workspace.id), "agent_card": card})
    assert (response.status_code, response.content) == (200, b'{"status":"updated"}')
    workspace.refresh_from_db()
    assert workspace.agent_card == card
    assert events(workspace.id) == [("AGENT_CARD_UPDATED", {"agent_card": card})]


def test_update_card_of_an_unknown_id_is_updated_without_an_event(api):
    workspace_id = uuid.uuid4()
    response = api("post", "/registry/update-card", {"workspace_id": str(workspace_id), "agent_card": {}})
    assert (response.status_code, response.content) == (200, b'{"status":"updated"}')
    assert events(workspace_id) == []


def test_update_card_with_a_non_uuid_id_fails(api):
    response = api("post", "/registry/update-card", {"workspace_id": "nope", "agent_card": {}})
    assert (response.status_code, response.content) == (500, b'{"error":"failed to update card"}')


def test_update_card_follows_the_registry_token_rule(api):
    workspace = make()
    _, token = token_mint(workspace=workspace)
    body = {"workspace_id": str(workspace.id), "agent_card": {"name": "x"}}
    assert api("post", "/registry/update-card", body).content == MISSING_TOKEN
    assert api("post", "/registry/update-card", body, token="bad").content == INVALID_TOKEN
    assert api("post", "/registry/update-card", body, token=token).status_code == 200


@pytest.mark.parametrize("body", [{}, {"workspace_id": "ID"}, {"agent_card": {}}, {"workspace_id": "", "agent_card": {}},
                                  {"workspace_id": "ID", "agent_card": None}])
def test_update_card_rejects_bad_bodies(api, body):
    workspace = make()
    token_mint(workspace=workspace)  # binding comes before auth
    body = {k: (str(workspace.id) if v == "ID" else v) for k, v in body.items()}
    response = api("post", "/registry/update-card", body)
    assert (response.status_code, response.content) == (400, BAD_BODY)


# --- shared tree ----------------------------------------------------------------------------------------

@pytest.fixture
def tree() -> dict[str, Workspace]:
    r1 = make("R1", role="Head", status=WorkspaceStatus.ONLINE)
    r2 = make("R2", status=WorkspaceStatus.ONLINE)
    a = make("A", role="Dev Lead", parent=r1, status=WorkspaceStatus.ONLINE, agent_card={"name": "A"},
             url="http://localhost:9001", active_tasks=2, tier=2)
    b = make("B", role="QA", parent=r1, status=WorkspaceStatus.OFFLINE)
    c = make("C", parent=r1, status=WorkspaceStatus.REMOVED)
    a1 = make("A1", parent=a, status=WorkspaceStatus.DEGRADED)
    b1 = make("B1", parent=b, status=WorkspaceStatus.ONLINE)
    return {w.name: w for w in (r1, r2, a, b, c, a1, b1)}


# --- POST /registry/check-access (spec §8.2) ------------------------------------------------------------

@pytest.mark.parametrize(("caller", "target", "allowed"), [
    ("A", "B", True), ("R1", "A1", True), ("A1", "R1", True), ("R1", "R2", True), ("A1", "B1", False),
    ("B", "A1", False), ("C", "A", True),
])
def test_check_access_answers_the_hierarchy_rule(api, tree, caller, target, allowed):
    response = api("post", "/registry/check-access",
                   {"caller_id": str(tree[caller].id), "target_id": str(tree[target].id)})
    assert response.status_code == 200
    assert response.content == (b'{"allowed":true}' if allowed else b'{"allowed":false}')


def test_check_access_of_unknown_ids_is_false(api, tree):
    body = {"caller_id": "nope", "target_id": str(tree["A"].id)}
    assert api("post", "/registry/check-access", body).content == b'{"allowed":false}'


@pytest.mark.parametrize("body", [{}, {"caller_id": "x"}, {"target_id": "x"}, {"caller_id": "", "target_id": "x"},
                                  {"caller_id": "x", "target_id": 5}])
def test_check_access_requires_both_ids(api, body):
    response = api("post", "/registry/check-access", body)
    assert (response.status_code, response.content) == (400, BAD_BODY)


# --- GET /registry/discover/:id (spec §8.3) -----------------------------------------------------------

def discover(api, target, caller, token=None):
    return api("get", f"/registry/discover/{target}", caller=caller, token=token)


def test_discover_needs_the_caller_header(api, tree):
    response = api("get", f"/registry/discover/{tree['A'].id}")
    assert (response.status_code, response.content) == (400, b'{"error":"X-Workspace-ID header is required"}')


def test_discover_refuses_workspaces_outside_the_callers_reach(api, tree):
    response = discover(api, tree["B1"].id, tree["A1"].id)
    assert (response.status_code, response.content) == (403, b'{"error":"not authorized to discover this workspace"}')


def test_discover_of_an_unknown_target_is_a_hierarchy_refusal(api, tree):
    response = discover(api, uuid.uuid4(), tree["A"].id)
    assert response.status_code == 403


def test_discover_of_oneself_when_unknown_is_not_found(api):
    ghost = uuid.uuid4()
    response = discover(api, ghost, ghost)
    assert (response.status_code, response.content) == (404, b'{"error":"workspace not found"}')


def test_discover_returns_the_cached_internal_url(api, tree, redis_client):
    redis_client.set(f"ws:{tree['A'].id}:internal_url", "http://localhost:9001")
    response = discover(api, tree["A"].id, tree["B"].id)
    assert response.status_code == 200
    assert response.content == json.dumps(
        {"id": str(tree["A"].id), "url": "http://localhost:9001", "name": "A"}, separators=(",", ":")
    ).encode()


@pytest.mark.parametrize("target", ["A", "A1"])  # online, degraded
def test_discover_synthesizes_and_caches_the_container_url_of_live_workspaces(api, tree, redis_client, target):
    workspace = tree[target]
    response = discover(api, workspace.id, tree["R1"].id)
    expected = f"http://ws-{str(workspace.id)[:12]}:8000"
    assert response.status_code == 200
    assert response.json() == {"id": str(workspace.id), "url": expected, "name": target}
    assert redis_client.get(f"ws:{workspace.id}:internal_url") == expected.encode()
    assert URL_TTL - 2 <= redis_client.ttl(f"ws:{workspace.id}:internal_url") <= URL_TTL


def test_discover_of_an_unavailable_workspace_says_its_status(api, tree):
    response = discover(api, tree["B"].id, tree["A"].id)
    assert (response.status_code, response.content) == (503, b'{"error":"workspace not available","status":"offline"}')


def test_discover_rewrites_loopback_of_external_agents_for_container_callers(api, tree):
    tree["B"].runtime, tree["B"].url = "external", "http://localhost:7000/a2a"
    tree["B"].save()
    response = discover(api, tree["B"].id, tree["A"].id)
    assert response.status_code == 200
    assert response.json() == {"id": str(tree["B"].id), "url": "http://host.docker.internal:7000/a2a", "name": "B"}


def test_discover_keeps_external_urls_for_external_callers(api, tree):
    for name, url in (("A", "http://localhost:9001"), ("B", "http://localhost:7000")):
        tree[name].runtime, tree[name].url = "external", url
        tree[name].save()
    response = discover(api, tree["B"].id, tree["A"].id)
    assert response.json()["url"] == "http://localhost:7000"


def test_discover_refuses_unsafe_external_urls(api, tree):
    tree["B"].runtime, tree["B"].url = "external", "http://169.254.169.254/latest"
    tree["B"].save()
    response = discover(api, tree["B"].id, tree["A"].id)
    assert (response.status_code, response.content) == (503, b'{"error":"workspace URL failed safety check"}')


def test_discover_follows_the_registry_rule_on_the_caller(api, tree):
    _, token = token_mint(workspace=tree["A"])
    missing = discover(api, tree["B"].id, tree["A"].id)
    assert (missing.status_code, missing.content) == (401, MISSING_TOKEN)
    invalid = discover(api, tree["B"].id, tree["A"].id, token="bad")
    assert (invalid.status_code, invalid.content) == (401, INVALID_TOKEN)
    assert discover(api, tree["B"].id, tree["A"].id, token=token).status_code == 503  # B is offline


def test_discover_caller_rule_is_bypassed_in_dev_mode(api, tree, settings):
    token_mint(workspace=tree["A"])
    settings.DEV_MODE = True
    assert discover(api, tree["B"].id, tree["A"].id).status_code == 503


def test_discover_caller_rule_fails_open_on_a_datastore_error(api, tree, monkeypatch):
    token_mint(workspace=tree["A"])

    def broken(workspace_id):
        raise DatabaseError("down")

    monkeypatch.setattr(selectors, "workspace_has_live_token", broken)
    assert discover(api, tree["B"].id, tree["A"].id).status_code == 503


# --- GET /registry/:id/peers (spec §8.3) ---------------------------------------------------------------

def peer_names(response) -> list[str]:
    return [item["name"] for item in response.json()]


def test_peers_are_siblings_then_children_then_parent_without_removed(api, tree):
    response = api("get", f"/registry/{tree['A'].id}/peers")
    assert response.status_code == 200
    assert peer_names(response) == ["B", "A1", "R1"]


def test_peers_of_a_root_are_the_other_roots_and_its_children(api, tree):
    assert peer_names(api("get", f"/registry/{tree['R1'].id}/peers")) == ["R2", "A", "B"]
    assert peer_names(api("get", f"/registry/{tree['R2'].id}/peers")) == ["R1"]


def test_peer_item_shape(api, tree):
    response = api("get", f"/registry/{tree['B'].id}/peers")
    items = {item["name"]: item for item in response.json()}
    assert items["A"] == {
        "id": str(tree["A"].id), "name": "A", "role": "Dev Lead", "tier": 2, "status": "online",
        "agent_card": {"name": "A"}, "url": "http://localhost:9001", "parent_id": str(tree["R1"].id),
        "active_tasks": 2,
    }
    assert b'"name":"B1","role":null,"tier":1,"status":"online","agent_card":null,"url":""' in response.content
    assert items["R1"]["parent_id"] is None


def test_peers_filter_by_name_or_role_case_insensitively(api, tree):
    assert peer_names(api("get", f"/registry/{tree['R1'].id}/peers?q=qa")) == ["B"]
    assert peer_names(api("get", f"/registry/{tree['R1'].id}/peers?q=r2")) == ["R2"]
    assert peer_names(api("get", f"/registry/{tree['A'].id}/peers?q=HEAD")) == ["R1"]


def test_peers_are_an_empty_list_when_there_are_none(api):
    lone = make("Solo")
    response = api("get", f"/registry/{lone.id}/peers")
    assert (response.status_code, response.content) == (200, b"[]")
    assert api("get", f"/registry/{lone.id}/peers?q=zzz").content == b"[]"


@pytest.mark.parametrize("workspace_id", [uuid.uuid4(), "not-a-uuid"])
def test_peers_of_an_unknown_workspace_are_not_found(api, workspace_id):
    response = api("get", f"/registry/{workspace_id}/peers")
    assert (response.status_code, response.content) == (404, b'{"error":"workspace not found"}')


def test_peers_follow_the_registry_rule_on_the_workspace_itself(api, tree, settings):
    _, token = token_mint(workspace=tree["A"])
    path = f"/registry/{tree['A'].id}/peers"
    assert api("get", path).content == MISSING_TOKEN
    assert api("get", path, token="bad").content == INVALID_TOKEN
    assert api("get", path, token=token).status_code == 200
    settings.DEV_MODE = True
    assert api("get", path).status_code == 200
