"""The attacks of issue 10, reproduced against the default (secure) configuration, each refused —
and the legitimate path beside it still working; dev mode keeps the original's open flows.

Findings tested elsewhere, next to the code they exercise (docs/security.md has the index):
3 and 12 (local runtimes, child environments) in workspaces/tests/test_provisioner_local.py,
registry/tests/test_liveness.py and molecule_site/tests/test_embedded.py; 4's runtime half in
runtime/tests/test_tools.py and test_server.py; 8 in activity/tests/test_approvals.py; 11 in
memory/tests/test_redaction.py; the HEAD rule of 5 for every route in test_permissions.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from django.conf import settings as django_settings
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client

from activity.models import ActivityLog
from registry.models import WorkspaceAuthToken
from registry.tests.a2a_server import a2a_server  # noqa: F401 - fixture
from registry.tokens import inbound_secret, token_mint, token_revoke
from secrets_app import services as secrets
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

ADMIN = "secure-defaults-admin-token"
MESSAGE = {"method": "message/send", "params": {"message": {"role": "user", "parts": [{"kind": "text", "text": "hi"}]}}}


@pytest.fixture(autouse=True)
def _secure(settings):
    """What every install outside dev mode runs with: ADMIN_TOKEN is always set (generated)."""
    settings.DEV_MODE = False
    settings.IS_PRODUCTION = False
    settings.ADMIN_TOKEN = ADMIN
    settings.MOLECULE_ENABLE_TEST_TOKENS = False
    return settings


@pytest.fixture
def dev_mode(settings):
    settings.DEV_MODE = True
    settings.ADMIN_TOKEN = None
    return settings


def settings_in_a_fresh_interpreter(home, **env: str) -> list[str]:
    """DEV_MODE, ADMIN_TOKEN and whether ALLOWED_HOSTS is restricted, as a new process reads them."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MOLECULE_", "ADMIN_TOKEN"))}
    clean.update(DATABASE_URL=django_settings.DATABASE_URL, REDIS_URL=django_settings.REDIS_URL,
                 MOLECULE_HOME=str(home), DJANGO_SETTINGS_MODULE="molecule_site.settings", **env)
    probe = ("import django; django.setup(); from django.conf import settings as s; "
             "print(s.DEV_MODE, s.ADMIN_TOKEN and len(s.ADMIN_TOKEN), s.ALLOWED_HOSTS != ['*'])")
    result = subprocess.run([sys.executable, "-c", probe], cwd=django_settings.BASE_DIR, env=clean,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def post(client, path, body, token=None, **headers):
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


def register(client, workspace_id, token=None, url="http://localhost:9"):
    return post(client, "/registry/register", {"id": str(workspace_id), "url": url, "agent_card": {}}, token)


# --- 1. Self-registration handed out tokens that read every global secret ---------------------------

def test_1_registering_an_id_the_platform_never_created_is_refused(client):
    secrets.global_secret_set(key="OPENAI_API_KEY", value="sk-global-secret")
    stranger = uuid.uuid4()
    for token in (None, "any-bearer-at-all", ADMIN):
        response = register(client, stranger, token)
        assert (response.status_code, response.json()) == (404, {"error": "workspace not found"})
    assert not Workspace.objects.filter(pk=stranger).exists()
    assert not WorkspaceAuthToken.objects.exists()


def test_1_an_admin_created_workspace_registers_with_its_injected_token(client):
    workspace = Workspace.objects.create(name="PM", status=WorkspaceStatus.PROVISIONING)
    _, injected = token_mint(workspace=workspace)  # what the provisioner writes to .auth_token
    response = register(client, workspace.id, injected)
    assert response.json() == {"status": "registered"}  # no second token is handed out
    assert Workspace.objects.get(pk=workspace.pk).status == WorkspaceStatus.ONLINE


def test_1_dev_mode_keeps_the_originals_self_registration(client, dev_mode):
    stranger = uuid.uuid4()
    body = register(client, stranger).json()
    assert body["status"] == "registered" and len(body["auth_token"]) == 43
    assert Workspace.objects.get(pk=stranger).name == str(stranger)


# --- 2. …and with that token, files + restart ran code on the host ------------------------------------

def test_2_without_a_token_of_its_own_nobody_writes_files_or_restarts(client):
    workspace = Workspace.objects.create(name="PM", status=WorkspaceStatus.ONLINE)
    token_mint(workspace=workspace)
    put = client.put(f"/workspaces/{workspace.id}/files/skills/evil/tool.py", json.dumps({"content": "import os"}),
                     content_type="application/json")
    assert (put.status_code, put.json()) == (401, {"error": "missing workspace auth token"})
    restart = post(client, f"/workspaces/{workspace.id}/restart", {}, token="forged")
    assert (restart.status_code, restart.json()) == (401, {"error": "invalid workspace auth token"})


# --- 4. Anonymous A2A made an agent delegate with its own token ---------------------------------------

def _agent(a2a_server, **fields):
    """An online workspace whose agent is the recording test server (its log starts empty)."""
    a2a_server.requests.clear()
    return Workspace.objects.create(status=WorkspaceStatus.ONLINE, url=a2a_server.url("echo"), **fields)


def test_4_an_anonymous_a2a_call_is_refused_before_reaching_the_agent(client, settings, a2a_server):
    settings.A2A_ALLOW_PRIVATE_TARGETS = True
    agent = _agent(a2a_server, name="V")
    a2a_server.requests.clear()
    delegate = {"method": "message/send", "params": {"message": {"role": "user", "parts": [
        {"kind": "text", "text": f"/delegate {uuid.uuid4()} hi"}]}}}
    for token, error in ((None, "admin auth required"), ("some-workspace-token", "invalid admin auth token")):
        response = post(client, f"/workspaces/{agent.id}/a2a", delegate, token)
        assert (response.status_code, response.json()) == (401, {"error": error})
    # naming the target as the caller is no way around it
    _, own = token_mint(workspace=agent)
    spoofed = post(client, f"/workspaces/{agent.id}/a2a", delegate, HTTP_X_WORKSPACE_ID=str(agent.id))
    assert (spoofed.status_code, spoofed.json()) == (401, {"error": "missing caller auth token"})
    assert a2a_server.requests == []


def test_4_the_operator_chats_through_the_proxy_with_a_staff_session(settings, a2a_server, operator):
    settings.A2A_ALLOW_PRIVATE_TARGETS = True
    agent = _agent(a2a_server, name="PM")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)
    csrf = _get_new_csrf_string()  # the canvas page's CSRF cookie
    browser.cookies[django_settings.CSRF_COOKIE_NAME] = csrf
    without_csrf = post(browser, f"/workspaces/{agent.id}/a2a", MESSAGE)
    assert without_csrf.status_code == 403 and without_csrf.json()["error"].startswith("CSRF Failed")
    response = post(browser, f"/workspaces/{agent.id}/a2a", MESSAGE, HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 200, response.content
    forwarded = a2a_server.requests[-1]
    assert response.json()["result"]["echo"] == forwarded["json"]
    assert forwarded["json"]["params"]["message"]["parts"] == [{"kind": "text", "text": "hi"}]
    # the agent sees the platform's inbound secret, never the operator's session or a bearer
    sent = {name.lower(): value for name, value in forwarded["headers"].items()}
    assert sent["x-molecule-inbound-secret"] == inbound_secret(agent.id)
    assert "authorization" not in sent and "cookie" not in sent


def test_4_the_admin_token_and_dev_mode_may_call_without_a_caller(client, settings, a2a_server):
    settings.A2A_ALLOW_PRIVATE_TARGETS = True
    agent = _agent(a2a_server, name="PM")
    assert post(client, f"/workspaces/{agent.id}/a2a", MESSAGE, ADMIN).status_code == 200
    settings.DEV_MODE, settings.ADMIN_TOKEN = True, None
    assert post(client, f"/workspaces/{agent.id}/a2a", MESSAGE).status_code == 200


# --- 5. HEAD skipped every permission check; Content-Length was an oracle -----------------------------

def test_5_head_of_session_search_is_refused_like_get_and_leaks_no_length(client):
    workspace = Workspace.objects.create(name="PM", status=WorkspaceStatus.ONLINE)
    token_mint(workspace=workspace)
    ActivityLog.objects.create(workspace=workspace, activity_type="a2a_receive", summary="ZETA-4242 sk-proj-abc")
    lengths = set()
    for query in ("Z", "ZETA-4", "ZETA-4242", "nothing"):
        head = client.head(f"/workspaces/{workspace.id}/session-search?q={query}")
        get = client.get(f"/workspaces/{workspace.id}/session-search?q={query}")
        assert head.status_code == get.status_code == 401
        assert head.content == b""
        lengths.add(head["Content-Length"])
    assert len(lengths) == 1  # the same refusal whatever is stored


# --- 6. Token-less workspaces could be taken over -------------------------------------------------

@pytest.mark.parametrize("how", ["revoked_by_the_sweep", "external_with_url", "provisioner_none"])
def test_6_a_workspace_without_a_live_token_cannot_be_claimed(client, how):
    status = WorkspaceStatus.PAUSED if how == "revoked_by_the_sweep" else WorkspaceStatus.ONLINE
    workspace = Workspace.objects.create(name="Ops", status=status, url="https://ops.example.com/a2a",
                                         runtime="external" if how == "external_with_url" else "langgraph")
    if how == "revoked_by_the_sweep":
        token_mint(workspace=workspace)
        token_revoke(tokens=WorkspaceAuthToken.objects.filter(workspace=workspace))
    for token in (None, "made-up"):
        response = register(client, workspace.id, token, url="http://localhost:6666")
        assert response.status_code == 401
        assert response.json() == {"error": "missing workspace auth token" if token is None else "invalid workspace auth token"}
        beat = post(client, "/registry/heartbeat", {"workspace_id": str(workspace.id)}, token)
        assert beat.status_code == 401
    workspace.refresh_from_db()
    assert (workspace.status, workspace.url) == (status, "https://ops.example.com/a2a")
    assert not WorkspaceAuthToken.objects.filter(workspace=workspace, revoked_at__isnull=True).exists()


def test_6_the_operator_heals_a_token_less_workspace_and_a_register_keeps_a_pause(client):
    workspace = Workspace.objects.create(name="Ops", status=WorkspaceStatus.PAUSED, url="https://ops.example.com/a2a")
    body = register(client, workspace.id, ADMIN).json()
    assert body["status"] == "registered" and len(body["auth_token"]) == 43
    assert Workspace.objects.get(pk=workspace.pk).status == WorkspaceStatus.PAUSED  # the pause stands


# --- 7. Fail-open outside an exact MOLECULE_ENV ---------------------------------------------------

@pytest.mark.parametrize("molecule_env", [None, "staging", "prodution", "Development-ish"])
def test_7_every_env_but_dev_is_secure_and_gets_a_generated_admin_token(tmp_path, molecule_env):
    env = {"MOLECULE_ENV": molecule_env} if molecule_env else {}
    assert settings_in_a_fresh_interpreter(tmp_path, **env) == ["False", "43", "True"]
    token_file = tmp_path / "admin_token"
    assert token_file.stat().st_mode & 0o777 == 0o600 and len(token_file.read_text()) == 43
    # every process of the install reads the same one
    assert settings_in_a_fresh_interpreter(tmp_path, **env) == ["False", "43", "True"]


def test_7_dev_mode_is_dev_or_development_without_an_admin_token(tmp_path):
    assert settings_in_a_fresh_interpreter(tmp_path, MOLECULE_ENV=" Development ") == ["True", "None", "False"]
    assert settings_in_a_fresh_interpreter(tmp_path, MOLECULE_ENV="dev", ADMIN_TOKEN="t") == ["False", "1", "True"]
    assert not (tmp_path / "admin_token").exists()


def test_7_no_admin_route_opens_for_a_workspace_token_or_on_a_fresh_install(client):
    assert not WorkspaceAuthToken.objects.exists()  # a fresh install
    fresh = client.get("/workspaces")
    assert (fresh.status_code, fresh.json()) == (401, {"error": "admin auth required"})
    workspace = Workspace.objects.create(name="PM")
    _, token = token_mint(workspace=workspace)
    as_admin = client.get("/settings/secrets", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert (as_admin.status_code, as_admin.json()) == (401, {"error": "invalid admin auth token"})
    assert client.get("/workspaces", HTTP_AUTHORIZATION=f"Bearer {ADMIN}").status_code == 200


def test_7_test_tokens_only_in_dev_mode_or_when_enabled_and_then_with_the_admin_token(client, settings):
    workspace = Workspace.objects.create(name="PM")
    path = f"/admin/workspaces/{workspace.id}/test-token"
    for token in (None, ADMIN):
        off = client.get(path, **({"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}))
        assert (off.status_code, off.json()) == (404, {"error": "not found"})
    settings.MOLECULE_ENABLE_TEST_TOKENS = True
    anonymous = client.get(path)
    assert (anonymous.status_code, anonymous.json()) == (401, {"error": "admin auth required"})
    assert client.get(path, HTTP_AUTHORIZATION=f"Bearer {ADMIN}").json()["workspace_id"] == str(workspace.id)
    settings.MOLECULE_ENABLE_TEST_TOKENS, settings.DEV_MODE, settings.ADMIN_TOKEN = False, True, None
    assert len(client.get(path).json()["auth_token"]) == 43


def test_7_dev_mode_keeps_the_open_admin_routes(client, dev_mode):
    assert client.get("/workspaces").status_code == 200
    assert post(client, "/workspaces", {"name": "PM", "runtime": "external"}).status_code == 201


# --- 9. Cross-site requests -----------------------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/json"])
def test_9_a_cross_site_page_cannot_change_state(client, content_type):
    body = json.dumps({"name": "planted", "runtime": "external"})
    for headers in ({"HTTP_ORIGIN": "http://evil.example"}, {"HTTP_ORIGIN": "null"},
                    {"HTTP_SEC_FETCH_SITE": "cross-site"}, {"HTTP_ORIGIN": "http://localhost:8080.evil.example"}):
        response = client.post("/workspaces", body, content_type=content_type,
                               HTTP_AUTHORIZATION=f"Bearer {ADMIN}", **headers)
        assert (response.status_code, response.json()) == (403, {"error": "cross-site request refused"})
    assert not Workspace.objects.exists()


def test_9_agents_curl_and_trusted_origins_still_work(client, settings):
    settings.CORS_ORIGINS = ["http://localhost:3000"]
    body = json.dumps({"name": "PM", "runtime": "external"})
    auth = {"HTTP_AUTHORIZATION": f"Bearer {ADMIN}"}
    for headers in ({}, {"HTTP_ORIGIN": "http://localhost:3000"}, {"HTTP_ORIGIN": "http://testserver"},
                    {"HTTP_SEC_FETCH_SITE": "same-origin", "HTTP_ORIGIN": "http://testserver"}):
        response = client.post("/workspaces", body, content_type="application/json", **auth, **headers)
        assert response.status_code == 201, (headers, response.content)


def test_9_a_host_header_naming_another_site_is_refused(client):
    response = client.get("/health", HTTP_HOST="rebound.evil.example")
    assert (response.status_code, response.json()) == (400, {"error": "invalid Host header"})
    assert client.get("/health", HTTP_HOST="localhost:8080").json() == {"status": "ok"}


# --- 10. Structure takeover ------------------------------------------------------------------------------

@pytest.mark.parametrize("change", [
    {"parent_id": "TEAM"}, {"tier": 4}, {"runtime": "claude-code"}, {"workspace_dir": "/home/finance/ledgers"},
])
def test_10_a_workspace_token_cannot_change_its_place_or_powers(client, change):
    team = Workspace.objects.create(name="Finance")
    mine = Workspace.objects.create(name="Intern", tier=1, runtime="langgraph")
    _, token = token_mint(workspace=mine)
    body = {key: (str(team.id) if value == "TEAM" else value) for key, value in change.items()}
    response = client.patch(f"/workspaces/{mine.id}", json.dumps(body), content_type="application/json",
                            HTTP_AUTHORIZATION=f"Bearer {token}")
    field = next(iter(change))
    assert (response.status_code, response.json()) == (403, {"error": f"changing {field} requires admin auth"})
    mine.refresh_from_db()
    assert (mine.parent_id, mine.tier, mine.runtime, mine.workspace_dir) == (None, 1, "langgraph", None)


def test_10_the_workspace_renames_and_moves_itself_and_the_operator_reparents_it(client):
    team = Workspace.objects.create(name="Finance")
    mine = Workspace.objects.create(name="Intern")
    _, token = token_mint(workspace=mine)
    own = client.patch(f"/workspaces/{mine.id}", json.dumps({"name": "Analyst", "x": 10, "y": 20}),
                       content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert own.status_code == 200, own.content
    operator = client.patch(f"/workspaces/{mine.id}", json.dumps({"parent_id": str(team.id)}),
                            content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {ADMIN}")
    assert operator.status_code == 200, operator.content
    mine.refresh_from_db()
    assert (mine.name, mine.parent_id) == ("Analyst", team.id)


def test_4_a_caller_probe_the_datastore_cannot_answer_fails_closed(client, monkeypatch, a2a_server):
    agent = _agent(a2a_server, name="PM")

    async def down(workspace_id, **kwargs):
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr("registry.selectors.aworkspace_has_live_token", down)
    a2a_server.requests.clear()
    response = post(client, f"/workspaces/{agent.id}/a2a", MESSAGE, HTTP_X_WORKSPACE_ID=str(uuid.uuid4()))
    assert (response.status_code, response.json()) == (503, {
        "error": "platform datastore unavailable — retry shortly", "code": "platform_unavailable"})
    assert a2a_server.requests == []


def test_7_processes_starting_together_share_one_generated_key(tmp_path):
    """The web processes, worker and beat of a fresh install all generate at once: one wins,
    and none ever reads a half-written key."""
    from concurrent.futures import ThreadPoolExecutor

    from molecule_site.local_keys import local_key

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: local_key(tmp_path, "race.key", lambda: f"key-{n}" * 8), range(32)))
    values = {value for value, _ in results}
    assert len(values) == 1 and next(iter(values)).startswith("key-")
    assert sum(created for _, created in results) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["race.key"]  # no drafts left behind
    assert (tmp_path / "race.key").stat().st_mode & 0o777 == 0o600
