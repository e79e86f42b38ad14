"""Registry and discovery routes: register, update-card, check-access, discover, peers (spec §7.1,
§7.3, §8.2, §8.3). Heartbeat has its own module (test_heartbeat.py).

Tree used by the discovery tests::

    R1 (root)          R2 (root)
    ├── A
    │   └── A1
    ├── B
    │   └── B1
    └── C (removed)

Secure mode (not dev mode) unless a test says otherwise. ``make()`` creates a provisioned
workspace — the row and the token provisioning issues its runtime (``.runtime_token``) — and
the helpers of the routes a runtime calls about itself (register, discover, peers) send that
token by default; other calls default to the admin token. The original's permissive rules
(token-less workspaces need no bearer, unknown ids register themselves) are dev mode only, each
tested as such next to its secure-mode refusal.
"""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from django.db import DatabaseError
from django.utils import timezone

from activity.models import StructureEvent
from registry import selectors
from registry.models import WorkspaceAuthToken
from registry.services import token_validate
from registry.tokens import token_mint, token_revoke
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

TTL = 60
URL_TTL = 300
AGENT_URL = "http://localhost:8001"
CARD = {"name": "Dev Lead", "skills": [{"id": "code"}]}
BAD_BODY = b'{"error":"invalid request body"}'
MISSING_TOKEN = b'{"error":"missing workspace auth token"}'
INVALID_TOKEN = b'{"error":"invalid workspace auth token"}'
NOT_FOUND = b'{"error":"workspace not found"}'
PLATFORM_UNAVAILABLE = {"error": "platform datastore unavailable — retry shortly", "code": "platform_unavailable"}
ADMIN_TOKEN = "registry-tests-admin-token"  # outside dev mode ADMIN_TOKEN is always set (generated)
OWN = object()  # register/discover/peers: the workspace's own token (make() minted it)


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.LIVENESS_TTL_SECONDS = TTL
    settings.ADMIN_TOKEN = ADMIN_TOKEN
    settings.DEV_MODE = False
    settings.IS_PRODUCTION = False
    settings.SAAS_MODE = False
    return settings


@pytest.fixture
def dev_mode(settings):
    """Dev mode as the platform defines it: MOLECULE_ENV=dev and no ADMIN_TOKEN."""
    settings.DEV_MODE = True
    settings.ADMIN_TOKEN = None


@pytest.fixture
def api(client, django_capture_on_commit_callbacks):
    """``api(method, path, body=None, token=ADMIN_TOKEN, caller=None, raw=None)``; after-commit work
    runs. ``token=None`` sends no bearer."""

    def call(method, path, body=None, token=ADMIN_TOKEN, caller=None, raw=None):
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


def make(name="Dev Lead", *, with_token=True, **fields) -> Workspace:
    """A workspace row and, unless ``with_token=False``, its runtime's token (``.runtime_token``)."""
    workspace = Workspace.objects.create(name=name, **fields)
    workspace.runtime_token = token_mint(workspace=workspace)[1] if with_token else None
    return workspace


def own_token(workspace, token):
    """``token``, or the workspace's own one for ``OWN``."""
    return workspace.runtime_token if token is OWN else token


def revoke_tokens(workspace) -> None:
    token_revoke(tokens=WorkspaceAuthToken.objects.filter(workspace=workspace))


def events(workspace_id) -> list[tuple[str, dict]]:
    rows = StructureEvent.objects.filter(workspace_id=workspace_id).order_by("created_at")
    return [(e.event_type, e.payload) for e in rows]


def register(api, workspace, url=AGENT_URL, card=CARD, token=OWN):
    """Register ``workspace`` (a Workspace, or an id with an explicit ``token``)."""
    workspace_id = workspace.id if isinstance(workspace, Workspace) else workspace
    body = {"id": str(workspace_id), "url": url, "agent_card": card}
    return api("post", "/registry/register", body, token=own_token(workspace, token))


# --- POST /registry/register (spec §7.1) ---------------------------------------------------------------

def test_register_of_an_unknown_id_creates_an_online_row_named_after_it_in_dev_mode(api, dev_mode):
    workspace_id = uuid.uuid4()
    before = timezone.now()
    response = register(api, workspace_id, token=None)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "auth_token"} and body["status"] == "registered"
    workspace = Workspace.objects.get(pk=workspace_id)
    assert (workspace.name, workspace.status, workspace.url, workspace.agent_card) == (
        str(workspace_id), "online", AGENT_URL, CARD)
    assert workspace.last_heartbeat_at >= before
    assert (workspace.liveness_deadline - workspace.last_heartbeat_at).total_seconds() == TTL
    assert token_validate(token=body["auth_token"], workspace_id=workspace_id) is not None


@pytest.mark.parametrize("token", [None, "not-a-token", ADMIN_TOKEN])
def test_register_of_an_id_the_platform_never_created_is_not_found(api, redis_client, token):
    """Outside dev mode nothing registers itself: an unknown id is refused before the token
    rule, whoever asks, and leaves no trace."""
    workspace_id = uuid.uuid4()
    response = register(api, workspace_id, token=token)
    assert (response.status_code, response.content) == (404, NOT_FOUND)
    assert not Workspace.objects.filter(pk=workspace_id).exists()
    assert not WorkspaceAuthToken.objects.filter(workspace_id=workspace_id).exists()
    assert redis_client.keys("ws:*") == []
    assert events(workspace_id) == []


def test_register_existence_probe_failure_is_registration_failed(api, monkeypatch):
    workspace = make()

    async def down(workspace_id):
        raise psycopg.OperationalError("database is down")

    monkeypatch.setattr(selectors, "aworkspace_exists", down)
    response = register(api, workspace)
    assert (response.status_code, response.content) == (500, b'{"error":"registration failed"}')
    workspace.refresh_from_db()
    assert workspace.status == "provisioning"


def test_register_sets_the_redis_keys(api, redis_client):
    workspace = make(status=WorkspaceStatus.PROVISIONING)
    assert register(api, workspace).status_code == 200
    assert redis_client.get(f"ws:{workspace.id}") == b"online"
    assert TTL - 2 <= redis_client.ttl(f"ws:{workspace.id}") <= TTL
    for key in (f"ws:{workspace.id}:url", f"ws:{workspace.id}:internal_url"):
        assert redis_client.get(key) == AGENT_URL.encode()
        assert URL_TTL - 2 <= redis_client.ttl(key) <= URL_TTL


def test_register_announces_workspace_online_with_url_and_card(api):
    workspace = make(status=WorkspaceStatus.PROVISIONING)
    assert register(api, workspace).status_code == 200
    assert events(workspace.id) == [("WORKSPACE_ONLINE", {"url": AGENT_URL, "agent_card": CARD})]


def test_register_mints_a_token_only_once(api):
    workspace = make(with_token=False)
    first = register(api, workspace, token=ADMIN_TOKEN)  # an operator heals a token-less workspace
    token = first.json()["auth_token"]
    assert len(token) == 43
    second = register(api, workspace, token=token)
    assert second.status_code == 200
    assert second.content == b'{"status":"registered"}'
    assert WorkspaceAuthToken.objects.filter(workspace=workspace).count() == 1


def test_register_follows_the_grandfather_rule_in_dev_mode(api, dev_mode):
    workspace = make(with_token=False)
    assert register(api, workspace, token=None).status_code == 200  # no token yet: no bearer needed
    missing = register(api, workspace, token=None)
    assert (missing.status_code, missing.content) == (401, MISSING_TOKEN)
    invalid = register(api, workspace, token="not-a-token")
    assert (invalid.status_code, invalid.content) == (401, INVALID_TOKEN)


def test_register_of_a_workspace_without_a_live_token_needs_the_admin_token(api, redis_client):
    """No grandfathering outside dev mode: nobody but an operator takes over a workspace with
    no live token (never issued, or revoked) and receives a fresh one."""
    workspace = make()
    revoke_tokens(workspace)
    missing = register(api, workspace, token=None)
    assert (missing.status_code, missing.content) == (401, MISSING_TOKEN)
    invalid = register(api, workspace, token="not-a-token")
    assert (invalid.status_code, invalid.content) == (401, INVALID_TOKEN)
    stale = register(api, workspace)  # the revoked token
    assert (stale.status_code, stale.content) == (401, INVALID_TOKEN)
    workspace.refresh_from_db()
    assert workspace.status == "provisioning"
    assert redis_client.keys("ws:*") == []
    assert WorkspaceAuthToken.objects.filter(workspace=workspace, revoked_at__isnull=True).count() == 0
    healed = register(api, workspace, token=ADMIN_TOKEN)
    assert healed.status_code == 200
    assert token_validate(token=healed.json()["auth_token"], workspace_id=workspace.id) is not None


def test_register_as_the_workspace_itself_returns_no_new_token(api):
    workspace = make(status=WorkspaceStatus.PROVISIONING)
    response = register(api, workspace)
    assert (response.status_code, response.content) == (200, b'{"status":"registered"}')
    assert WorkspaceAuthToken.objects.filter(workspace=workspace).count() == 1


def test_register_keeps_a_stored_loopback_url_and_caches_it_for_the_proxy(api, redis_client):
    workspace = make(url="http://127.0.0.1:9100", status=WorkspaceStatus.OFFLINE)
    register(api, workspace, url="http://localhost:8001")
    workspace.refresh_from_db()
    assert workspace.url == "http://127.0.0.1:9100"
    assert redis_client.get(f"ws:{workspace.id}:url") == b"http://127.0.0.1:9100"
    assert redis_client.get(f"ws:{workspace.id}:internal_url") == b"http://localhost:8001"
    assert events(workspace.id) == [("WORKSPACE_ONLINE", {"url": "http://127.0.0.1:9100", "agent_card": CARD})]


def test_register_replaces_any_other_url_and_card(api):
    workspace = make(url="http://localhost:7000", agent_card={"name": "old"})
    register(api, workspace, url="http://localhost:8001", card={"name": "new"})
    workspace.refresh_from_db()
    assert (workspace.url, workspace.agent_card) == ("http://localhost:8001", {"name": "new"})


@pytest.mark.parametrize("status", ["failed", "offline", "provisioning", "degraded", "awaiting_agent"])
def test_register_brings_any_status_but_removed_and_paused_online(api, status):
    workspace = make(status=status)
    assert register(api, workspace).status_code == 200
    workspace.refresh_from_db()
    assert workspace.status == "online"


def test_register_keeps_a_paused_workspace_paused(api, redis_client):
    """Beyond the original (which flips it online): a register does not undo an operator's
    pause — nor announce it online, in the database, the liveness key or an event."""
    workspace = make(status=WorkspaceStatus.PAUSED, url="http://localhost:7000")
    response = register(api, workspace, url="http://localhost:8001", card={"name": "new"})
    assert (response.status_code, response.content) == (200, b'{"status":"registered"}')
    workspace.refresh_from_db()
    assert workspace.status == "paused"
    assert (workspace.url, workspace.agent_card) == ("http://localhost:8001", {"name": "new"})
    assert redis_client.get(f"ws:{workspace.id}") is None
    assert redis_client.get(f"ws:{workspace.id}:url") == b"http://localhost:8001"
    assert [event for event, _ in events(workspace.id)] == []


def test_register_does_not_revive_a_removed_workspace(api, redis_client):
    workspace = make(status=WorkspaceStatus.REMOVED, url="http://localhost:7000")
    own = register(api, workspace)  # tokens of removed workspaces never validate
    assert (own.status_code, own.content) == (401, INVALID_TOKEN)
    response = register(api, workspace, token=ADMIN_TOKEN)
    assert (response.status_code, response.content) == (200, b'{"status":"registered"}')
    workspace.refresh_from_db()
    assert (workspace.status, workspace.url) == ("removed", "http://localhost:7000")
    assert redis_client.keys("ws:*") == []
    assert events(workspace.id) == []
    assert list(WorkspaceAuthToken.objects.filter(workspace=workspace).values_list("prefix", flat=True)) == [
        workspace.runtime_token[:8]]  # no new token


def test_register_accepts_any_json_agent_card(api):
    workspace = make()
    assert register(api, workspace, card={}).status_code == 200
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


@pytest.mark.parametrize(("url", "why"), [
    ("http://169.254.169.254/latest", "url must be publicly routable: 169.254.169.254 is link-local, reserved or documentation-only"),
    ("http://127.0.0.1:8000", "url must be publicly routable: 127.0.0.1 is loopback"),
    ("http://10.0.0.8:8000", "url must be publicly routable: 10.0.0.8 is a private address (allowed in SaaS mode)"),
    ("ftp://localhost", "url must start with http:// or https://"),
    ("http://[fe80::1]:8000", "url must be publicly routable: fe80::1 is link-local, reserved or documentation-only"),
    ("http://[::ffff:127.0.0.1]:8000", "url must be publicly routable: 127.0.0.1 is loopback"),
    ("http://no-such-host.invalid", "url host no-such-host.invalid does not resolve"),
])
def test_register_rejects_unsafe_urls_as_a_bad_body_that_says_why(api, url, why):
    workspace = make()
    response = register(api, workspace, url=url)
    assert (response.status_code, response.json()) == (400, {"error": "invalid request body", "detail": why})
    workspace.refresh_from_db()
    assert workspace.status == "provisioning"


def test_register_accepts_a_loopback_agent_url_in_dev_mode(api, settings):
    """The runtime's documented default AGENT_URL is http://127.0.0.1:<port> (beyond the spec,
    which refuses loopback literals in dev mode too)."""
    settings.DEV_MODE, settings.ADMIN_TOKEN = True, None
    workspace = make()
    assert register(api, workspace, url="http://127.0.0.1:8000").json()["status"] == "registered"
    workspace.refresh_from_db()
    assert workspace.url == "http://127.0.0.1:8000"


def test_register_allows_private_urls_in_saas_mode(api, settings):
    settings.SAAS_MODE = True
    workspace = make()
    assert register(api, workspace, url="http://10.0.0.8:8000").status_code == 200


def test_register_validates_the_body_before_the_token(api):
    workspace = make()
    response = register(api, workspace, url="http://169.254.169.254", token=None)
    assert (response.status_code, response.json()) == (400, {"error": "invalid request body", "detail": "url must be publicly routable: 169.254.169.254 is link-local, reserved or documentation-only"})


def test_register_validates_the_body_before_the_workspace_is_looked_up(api):
    unknown = str(uuid.uuid4())
    unsafe = register(api, unknown, url="http://169.254.169.254", token=None)
    assert (unsafe.status_code, unsafe.json()) == (400, {"error": "invalid request body", "detail": "url must be publicly routable: 169.254.169.254 is link-local, reserved or documentation-only"})
    no_card = api("post", "/registry/register", {"id": unknown, "url": AGENT_URL}, token=None)
    assert (no_card.status_code, no_card.content) == (400, BAD_BODY)


@pytest.mark.parametrize("token", [None, ADMIN_TOKEN])
def test_register_with_a_non_uuid_id_is_not_found(api, token):
    """No workspace has such an id, so outside dev mode it is refused like any unknown id."""
    response = register(api, "not-a-uuid", token=token)
    assert (response.status_code, response.content) == (404, NOT_FOUND)


def test_register_with_a_non_uuid_id_is_a_bad_request_in_dev_mode(api, dev_mode):
    response = register(api, "not-a-uuid", token=None)
    assert (response.status_code, response.content) == (400, b'{"error":"invalid request body"}')


# --- POST /registry/update-card (spec §7.3) ------------------------------------------------------------

def test_update_card_replaces_the_card_and_announces_it(api):
    workspace = make(agent_card={"name": "old"})
    card = {"name": "Dev Lead", "skills": []}
    response = api("post", "/registry/update-card", {"workspace_id": str(workspace.id), "agent_card": card},
                   token=workspace.runtime_token)
    assert (response.status_code, response.content) == (200, b'{"status":"updated"}')
    workspace.refresh_from_db()
    assert workspace.agent_card == card
    assert events(workspace.id) == [("AGENT_CARD_UPDATED", {"agent_card": card})]


def test_update_card_of_an_unknown_id_is_updated_without_an_event(api):
    workspace_id = uuid.uuid4()
    response = api("post", "/registry/update-card", {"workspace_id": str(workspace_id), "agent_card": {}})
    assert (response.status_code, response.content) == (200, b'{"status":"updated"}')
    assert events(workspace_id) == []


def test_update_card_with_a_non_uuid_id_is_not_found(api):
    """No workspace has such an id (the original's failed UPDATE answers 500; found by the fuzz run)."""
    response = api("post", "/registry/update-card", {"workspace_id": "nope", "agent_card": {}})
    assert (response.status_code, response.content) == (404, NOT_FOUND)


def test_update_card_with_a_nul_character_is_a_bad_body_and_stores_nothing(api):
    """PostgreSQL stores no NUL in jsonb: the fuzz run's 500 ``failed to update card``."""
    workspace = make(agent_card={"name": "old"})
    raw = json.dumps({"workspace_id": str(workspace.id), "agent_card": {"name": "a\u0000b"}})
    assert "\\u0000" in raw
    response = api("post", "/registry/update-card", raw=raw, token=workspace.runtime_token)
    assert (response.status_code, response.content) == (400, BAD_BODY)
    workspace.refresh_from_db()
    assert workspace.agent_card == {"name": "old"}


def test_update_card_with_an_unpaired_surrogate_stores_the_replacement_character(api):
    """As Go's decoder does (psycopg cannot encode a lone surrogate as UTF-8: it was a 500)."""
    workspace = make()
    raw = '{"workspace_id": "%s", "agent_card": {"name": "a\\ud800b", "\\udfff": 1}}' % workspace.id
    response = api("post", "/registry/update-card", raw=raw, token=workspace.runtime_token)
    assert (response.status_code, response.content) == (200, b'{"status":"updated"}')
    workspace.refresh_from_db()
    assert workspace.agent_card == {"name": "a\ufffdb", "\ufffd": 1}


def test_update_card_follows_the_registry_token_rule(api):
    workspace = make()
    body = {"workspace_id": str(workspace.id), "agent_card": {"name": "x"}}
    assert api("post", "/registry/update-card", body, token=None).content == MISSING_TOKEN
    assert api("post", "/registry/update-card", body, token="bad").content == INVALID_TOKEN
    assert api("post", "/registry/update-card", body, token=make("Other").runtime_token).content == INVALID_TOKEN
    assert api("post", "/registry/update-card", body, token=workspace.runtime_token).status_code == 200
    assert api("post", "/registry/update-card", body, token=ADMIN_TOKEN).status_code == 200


def test_update_card_of_a_workspace_without_a_live_token_needs_the_admin_token(api):
    workspace = make(agent_card={"name": "old"}, with_token=False)
    body = {"workspace_id": str(workspace.id), "agent_card": {"name": "x"}}
    missing = api("post", "/registry/update-card", body, token=None)
    assert (missing.status_code, missing.content) == (401, MISSING_TOKEN)
    invalid = api("post", "/registry/update-card", body, token="bad")
    assert (invalid.status_code, invalid.content) == (401, INVALID_TOKEN)
    workspace.refresh_from_db()
    assert workspace.agent_card == {"name": "old"}
    assert events(workspace.id) == []
    assert api("post", "/registry/update-card", body, token=ADMIN_TOKEN).status_code == 200


def test_update_card_of_a_workspace_without_a_live_token_is_grandfathered_in_dev_mode(api, dev_mode):
    workspace = make(agent_card={"name": "old"}, with_token=False)
    body = {"workspace_id": str(workspace.id), "agent_card": {"name": "x"}}
    response = api("post", "/registry/update-card", body, token=None)
    assert (response.status_code, response.content) == (200, b'{"status":"updated"}')
    workspace.refresh_from_db()
    assert workspace.agent_card == {"name": "x"}


@pytest.mark.parametrize("body", [{}, {"workspace_id": "ID"}, {"agent_card": {}}, {"workspace_id": "", "agent_card": {}},
                                  {"workspace_id": "ID", "agent_card": None}])
def test_update_card_rejects_bad_bodies(api, body):
    workspace = make()  # it has a token, none is sent: binding comes before auth
    body = {k: (str(workspace.id) if v == "ID" else v) for k, v in body.items()}
    response = api("post", "/registry/update-card", body, token=None)
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
    response = api("post", "/registry/check-access",  # open: no bearer
                   {"caller_id": str(tree[caller].id), "target_id": str(tree[target].id)}, token=None)
    assert response.status_code == 200
    assert response.content == (b'{"allowed":true}' if allowed else b'{"allowed":false}')


def test_check_access_of_unknown_ids_is_false(api, tree):
    body = {"caller_id": "nope", "target_id": str(tree["A"].id)}
    assert api("post", "/registry/check-access", body, token=None).content == b'{"allowed":false}'


@pytest.mark.parametrize("body", [{}, {"caller_id": "x"}, {"target_id": "x"}, {"caller_id": "", "target_id": "x"},
                                  {"caller_id": "x", "target_id": 5}])
def test_check_access_requires_both_ids(api, body):
    response = api("post", "/registry/check-access", body, token=None)
    assert (response.status_code, response.content) == (400, BAD_BODY)


# --- GET /registry/discover/:id (spec §8.3) -----------------------------------------------------------

def discover(api, target, caller, token=OWN):
    """Discover ``target`` as ``caller`` (a Workspace, or an id with an explicit ``token``)."""
    target_id = target.id if isinstance(target, Workspace) else target
    caller_id = caller.id if isinstance(caller, Workspace) else caller
    return api("get", f"/registry/discover/{target_id}", caller=caller_id, token=own_token(caller, token))


def test_discover_needs_the_caller_header(api, tree):
    for token in (None, ADMIN_TOKEN):
        response = api("get", f"/registry/discover/{tree['A'].id}", token=token)
        assert (response.status_code, response.content) == (400, b'{"error":"X-Workspace-ID header is required"}')


def test_discover_refuses_workspaces_outside_the_callers_reach(api, tree):
    response = discover(api, tree["B1"], tree["A1"])
    assert (response.status_code, response.content) == (403, b'{"error":"not authorized to discover this workspace"}')


def test_discover_of_an_unknown_target_is_a_hierarchy_refusal(api, tree):
    response = discover(api, uuid.uuid4(), tree["A"])
    assert response.status_code == 403


def test_discover_of_oneself_when_unknown_is_not_found(api):
    ghost = uuid.uuid4()
    response = discover(api, ghost, ghost, token=ADMIN_TOKEN)
    assert (response.status_code, response.content) == (404, b'{"error":"workspace not found"}')


def test_discover_returns_the_cached_internal_url(api, tree, redis_client):
    redis_client.set(f"ws:{tree['A'].id}:internal_url", "http://localhost:9001")
    response = discover(api, tree["A"], tree["B"])
    assert response.status_code == 200
    assert response.content == json.dumps(
        {"id": str(tree["A"].id), "url": "http://localhost:9001", "name": "A"}, separators=(",", ":")
    ).encode()


@pytest.mark.parametrize("target", ["A", "A1"])  # online, degraded
def test_discover_synthesizes_and_caches_the_container_url_of_live_workspaces(api, tree, redis_client, target):
    workspace = tree[target]
    response = discover(api, workspace, tree["R1"])
    expected = f"http://ws-{str(workspace.id)[:12]}:8000"
    assert response.status_code == 200
    assert response.json() == {"id": str(workspace.id), "url": expected, "name": target}
    assert redis_client.get(f"ws:{workspace.id}:internal_url") == expected.encode()
    assert URL_TTL - 2 <= redis_client.ttl(f"ws:{workspace.id}:internal_url") <= URL_TTL


def test_discover_of_an_unavailable_workspace_says_its_status(api, tree):
    response = discover(api, tree["B"], tree["A"])
    assert (response.status_code, response.content) == (503, b'{"error":"workspace not available","status":"offline"}')


def test_discover_keeps_loopback_of_external_agents_for_callers_not_in_containers(api, tree):
    """Where a peer is reachable depends on where the caller runs: only a container needs the
    Docker host alias (the Docker backend's tests cover that); with no container backend the
    caller is on this host, and loopback is where the agent registered (issue 13)."""
    tree["B"].runtime, tree["B"].url = "external", "http://localhost:7000/a2a"
    tree["B"].save()
    response = discover(api, tree["B"], tree["A"])
    assert response.status_code == 200
    assert response.json() == {"id": str(tree["B"].id), "url": "http://localhost:7000/a2a", "name": "B"}


def test_discover_keeps_external_urls_for_external_callers(api, tree):
    for name, url in (("A", "http://localhost:9001"), ("B", "http://localhost:7000")):
        tree[name].runtime, tree[name].url = "external", url
        tree[name].save()
    response = discover(api, tree["B"], tree["A"])
    assert response.json()["url"] == "http://localhost:7000"


def test_discover_refuses_unsafe_external_urls(api, tree):
    tree["B"].runtime, tree["B"].url = "external", "http://169.254.169.254/latest"
    tree["B"].save()
    response = discover(api, tree["B"], tree["A"])
    assert (response.status_code, response.content) == (503, b'{"error":"workspace URL failed safety check"}')


OFFLINE_B = b'{"error":"workspace not available","status":"offline"}'  # past the caller rule


def test_discover_follows_the_registry_rule_on_the_caller(api, tree):
    missing = discover(api, tree["B"], tree["A"], token=None)
    assert (missing.status_code, missing.content) == (401, MISSING_TOKEN)
    invalid = discover(api, tree["B"], tree["A"], token="bad")
    assert (invalid.status_code, invalid.content) == (401, INVALID_TOKEN)
    target_token = discover(api, tree["B"], tree["A"], token=tree["B"].runtime_token)  # not the caller's
    assert (target_token.status_code, target_token.content) == (401, INVALID_TOKEN)
    assert discover(api, tree["B"], tree["A"]).content == OFFLINE_B
    assert discover(api, tree["B"], tree["A"], token=ADMIN_TOKEN).content == OFFLINE_B


def test_discover_by_a_caller_without_a_live_token_needs_the_admin_token(api, tree):
    revoke_tokens(tree["A"])
    missing = discover(api, tree["B"], tree["A"], token=None)
    assert (missing.status_code, missing.content) == (401, MISSING_TOKEN)
    stale = discover(api, tree["B"], tree["A"])  # its revoked token
    assert (stale.status_code, stale.content) == (401, INVALID_TOKEN)
    assert discover(api, tree["B"], tree["A"], token=ADMIN_TOKEN).content == OFFLINE_B


@pytest.mark.parametrize("revoked", [False, True])
def test_discover_caller_rule_is_bypassed_in_dev_mode(api, tree, dev_mode, revoked):
    if revoked:
        revoke_tokens(tree["A"])
    response = discover(api, tree["B"], tree["A"], token=None)
    assert (response.status_code, response.content) == (503, OFFLINE_B)


def test_discover_caller_rule_fails_closed_on_a_datastore_error(api, tree, monkeypatch):
    """Beyond the original (which lets the caller in): outside dev mode a failed live-token
    probe is a 503 ``platform_unavailable``, never a way past the rule."""

    def broken(workspace_id):
        raise DatabaseError("down")

    monkeypatch.setattr(selectors, "workspace_has_live_token", broken)
    for token in (None, "bad"):
        response = discover(api, tree["B"], tree["A"], token=token)
        assert (response.status_code, response.json()) == (503, PLATFORM_UNAVAILABLE)
    # A valid bearer never needs the probe.
    assert discover(api, tree["B"], tree["A"]).content == OFFLINE_B


# --- GET /registry/:id/peers (spec §8.3) ---------------------------------------------------------------

def peers(api, workspace, query="", token=OWN):
    """``workspace``'s peers, asked by ``workspace`` itself (a Workspace, or an id with an
    explicit ``token``)."""
    workspace_id = workspace.id if isinstance(workspace, Workspace) else workspace
    path = f"/registry/{workspace_id}/peers" + (f"?q={query}" if query else "")
    return api("get", path, token=own_token(workspace, token))


def peer_names(response) -> list[str]:
    return [item["name"] for item in response.json()]


def test_peers_are_siblings_then_children_then_parent_without_removed(api, tree):
    response = peers(api, tree["A"])
    assert response.status_code == 200
    assert peer_names(response) == ["B", "A1", "R1"]


def test_peers_of_a_root_are_the_other_roots_and_its_children(api, tree):
    assert peer_names(peers(api, tree["R1"])) == ["R2", "A", "B"]
    assert peer_names(peers(api, tree["R2"])) == ["R1"]


def test_peer_item_shape(api, tree):
    response = peers(api, tree["B"])
    items = {item["name"]: item for item in response.json()}
    assert items["A"] == {
        "id": str(tree["A"].id), "name": "A", "role": "Dev Lead", "tier": 2, "status": "online",
        "agent_card": {"name": "A"}, "url": "http://localhost:9001", "parent_id": str(tree["R1"].id),
        "active_tasks": 2,
    }
    assert b'"name":"B1","role":null,"tier":1,"status":"online","agent_card":null,"url":""' in response.content
    assert items["R1"]["parent_id"] is None


def test_peers_filter_by_name_or_role_case_insensitively(api, tree):
    assert peer_names(peers(api, tree["R1"], "qa")) == ["B"]
    assert peer_names(peers(api, tree["R1"], "r2")) == ["R2"]
    assert peer_names(peers(api, tree["A"], "HEAD")) == ["R1"]


def test_peers_are_an_empty_list_when_there_are_none(api):
    lone = make("Solo")
    response = peers(api, lone)
    assert (response.status_code, response.content) == (200, b"[]")
    assert peers(api, lone, "zzz").content == b"[]"


@pytest.mark.parametrize("workspace_id", [uuid.uuid4(), "not-a-uuid"])
def test_peers_of_an_unknown_workspace_are_not_found(api, workspace_id):
    response = peers(api, workspace_id, token=ADMIN_TOKEN)
    assert (response.status_code, response.content) == (404, NOT_FOUND)
    anonymous = peers(api, workspace_id, token=None)  # no live token: only the admin token passes
    assert (anonymous.status_code, anonymous.content) == (401, MISSING_TOKEN)


def test_peers_follow_the_registry_rule_on_the_workspace_itself(api, tree, settings):
    a = tree["A"]
    assert peers(api, a, token=None).content == MISSING_TOKEN
    assert peers(api, a, token="bad").content == INVALID_TOKEN
    assert peers(api, a, token=tree["B"].runtime_token).content == INVALID_TOKEN
    assert peer_names(peers(api, a)) == ["B", "A1", "R1"]
    assert peer_names(peers(api, a, token=ADMIN_TOKEN)) == ["B", "A1", "R1"]
    settings.DEV_MODE, settings.ADMIN_TOKEN = True, None
    assert peer_names(peers(api, a, token=None)) == ["B", "A1", "R1"]


def test_peers_of_a_workspace_without_a_live_token_need_the_admin_token(api, tree):
    revoke_tokens(tree["A"])
    missing = peers(api, tree["A"], token=None)
    assert (missing.status_code, missing.content) == (401, MISSING_TOKEN)
    assert peer_names(peers(api, tree["A"], token=ADMIN_TOKEN)) == ["B", "A1", "R1"]
