"""``POST /workspaces/:id/a2a`` end to end against a real agent on loopback (spec §8.4).

Covers every error string of steps 3–8, the normalisation, the result table (passthrough, agent
errors, busy → queued, refused, read failure, restart, native session), the activity row, the
events (``ACTIVITY_LOGGED`` always, ``A2A_RESPONSE`` for canvas callers only), the timeouts,
``message/stream`` relaying and the sync entry point used by Celery tasks.

Secure mode (not dev mode) unless a test says otherwise: every workspace of ``tree`` holds the
token provisioning issued its runtime (``.runtime_token``), and ``a2a()`` calls as the realistic
caller would — a workspace caller with its own token, a call with no ``X-Workspace-ID`` (the
canvas) with the admin token. The original's permissive caller rules (token-less callers,
self-calls skipping the check, anonymous canvas calls) are dev mode only, tested as such next to
their secure-mode refusals.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings as django_settings
from django.db import DatabaseError, close_old_connections, connection
from django.test import AsyncClient
from django.utils import timezone

from activity.models import ActivityLog, ApprovalRequest, StructureEvent
from molecule_site.tests.backends import use_backend
from registry import a2a_queue, proxy
from registry.models import A2AQueueItem, WorkspaceAuthToken
from registry.redis_keys import url_key
from registry.selectors import runtime_overrides_key
from registry.tests.a2a_server import TOOL_TRACE, a2a_server, closed_port_url  # noqa: F401 - fixture
from registry.tokens import (
    INBOUND_SECRET_HEADER,
    inbound_secret,
    token_mint,
    token_revoke,
)
from workspaces import provisioning
from workspaces.models import Workspace, WorkspaceStatus
from workspaces.provisioners.base import Provisioner

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

MESSAGE_SEND = {"method": "message/send", "params": {"message": {"role": "user", "parts": [{"kind": "text", "text": "hi"}]}}}
ADMIN_TOKEN = "registry-tests-admin-token"  # outside dev mode ADMIN_TOKEN is always set (generated)
AS_CALLER = object()  # a2a(): the caller's own token, or the admin token for the canvas (no caller)


@pytest.fixture(autouse=True, scope="module")
def _close_proxy_db_threads():
    """The proxy's DB threads keep their connections: close them before the test DB is dropped."""
    yield
    proxy.close_db_connections()


@pytest.fixture(autouse=True)
def _proxy_settings(settings, a2a_server):
    settings.A2A_ALLOW_PRIVATE_TARGETS = True  # the agent is on loopback
    settings.SAAS_MODE = False
    settings.A2A_IDLE_TIMEOUT_SECONDS = 5
    settings.A2A_MAX_SECONDS = 1800
    settings.ADMIN_TOKEN = ADMIN_TOKEN
    settings.DEV_MODE = False
    a2a_server.requests.clear()
    return settings


@pytest.fixture
def dev_mode(settings):
    """Dev mode as the platform defines it: MOLECULE_ENV=dev and no ADMIN_TOKEN."""
    settings.DEV_MODE = True
    settings.ADMIN_TOKEN = None


@pytest.fixture
def tree(a2a_server):
    """Two teams: PM ← (Dev, QA) and Ops ← SRE. Dev↔QA siblings; Dev↔SRE cousins. Each holds its
    runtime's token (``.runtime_token``)."""
    pm = Workspace.objects.create(name="PM", status=WorkspaceStatus.ONLINE, url=a2a_server.url("echo"))
    dev = Workspace.objects.create(name="Dev", parent=pm, status=WorkspaceStatus.ONLINE, url=a2a_server.url("echo"))
    qa = Workspace.objects.create(name="QA", parent=pm, status=WorkspaceStatus.ONLINE, url=a2a_server.url("echo"))
    ops = Workspace.objects.create(name="Ops", status=WorkspaceStatus.ONLINE, url=a2a_server.url("echo"))
    sre = Workspace.objects.create(name="SRE", parent=ops, status=WorkspaceStatus.ONLINE, url=a2a_server.url("echo"))
    for workspace in (pm, dev, qa, ops, sre):
        _, workspace.runtime_token = token_mint(workspace=workspace)
    return {"PM": pm, "Dev": dev, "QA": qa, "Ops": ops, "SRE": sre}


def revoke_tokens(workspace: Workspace) -> None:
    token_revoke(tokens=WorkspaceAuthToken.objects.filter(workspace=workspace))


def agent_headers(request: dict) -> dict[str, str]:
    """The headers the agent received, names lower-cased."""
    return {name.lower(): value for name, value in request["headers"].items()}


def point(workspace: Workspace, url: str) -> Workspace:
    Workspace.objects.filter(pk=workspace.pk).update(url=url)
    workspace.url = url
    return workspace


class Call:
    def __init__(self, response, content: bytes, frames: list[dict]):
        self.response = response
        self.status = response.status_code
        self.content = content
        self.frames = frames

    @property
    def json(self):
        return json.loads(self.content)

    def events(self, kind: str) -> list[dict]:
        return [frame for frame in self.frames if frame["event"] == kind]


def a2a(target, body=None, *, caller=None, token=AS_CALLER, headers=None, method="post", raw=None,
        user=None, enforce_csrf_checks=False, csrf_token=None) -> Call:
    """POST to the proxy through the ASGI stack; collect the streamed body and the ``events`` frames.

    ``token`` defaults to what the realistic caller sends: a Workspace caller its own token, any
    other call (no caller, or a caller given as a bare id) the admin token; ``None`` sends no
    bearer. ``user`` logs a Django user in first (a session); ``csrf_token`` sends it as the CSRF
    cookie and the ``X-CSRFToken`` header, as a browser page of ours would.
    """
    target_id = target.id if isinstance(target, Workspace) else target
    data = raw if raw is not None else json.dumps(MESSAGE_SEND if body is None else body)
    sent = dict(headers or {})
    if caller is not None:
        sent["X-Workspace-ID"] = str(caller.id if isinstance(caller, Workspace) else caller)
    if token is AS_CALLER:
        token = caller.runtime_token if isinstance(caller, Workspace) else ADMIN_TOKEN
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if csrf_token is not None:
        sent["X-CSRFToken"] = csrf_token

    async def scenario():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add("events", channel)
        try:
            client = AsyncClient(enforce_csrf_checks=enforce_csrf_checks)
            if user is not None:
                await client.aforce_login(user)
            if csrf_token is not None:
                client.cookies[django_settings.CSRF_COOKIE_NAME] = csrf_token
            path = f"/workspaces/{target_id}/a2a"
            if method == "post":
                response = await client.post(path, data=data, content_type="application/json", headers=sent)
            else:
                response = await getattr(client, method)(path, headers=sent)
            if response.streaming:
                content = b"".join([chunk async for chunk in response.streaming_content])
            else:
                content = response.content
            await proxy.settle()
            frames = []
            while True:
                try:
                    message = await asyncio.wait_for(layer.receive(channel), timeout=0.4)
                except asyncio.TimeoutError:
                    break
                frames.append(json.loads(message["text"]))
            return Call(response, content, frames)
        finally:
            await layer.group_discard("events", channel)

    return async_to_sync(scenario)()


def only_activity() -> ActivityLog:
    rows = list(ActivityLog.objects.all())
    assert len(rows) == 1, rows
    return rows[0]


class FakeProvisioner(Provisioner):
    name = "fake-local"
    available = True
    runs_local_runtimes = True

    def __init__(self, live=()):
        self.live = set(live)
        self.provisioned = None  # None: it provisioned every workspace asked about
        self.restarted = []

    def provisioned_workspace_ids(self):
        if self.provisioned is None:
            return {str(w.id) for w in Workspace.objects.all()}
        return set(self.provisioned)

    def start(self, workspace, *, launch):
        pass

    def stop(self, workspace):
        pass

    def live_workspace_ids(self):
        return set(self.live)


@pytest.fixture
def provisioner(monkeypatch):
    fake = FakeProvisioner()
    use_backend(monkeypatch, fake)
    monkeypatch.setattr(provisioning.restart_workspace, "delay", lambda workspace_id, **_options: fake.restarted.append(workspace_id))
    return fake


# --- Steps 1–4: the view ------------------------------------------------------------------------------

def test_other_methods_get_gins_plain_404(tree):
    call = a2a(tree["PM"], method="get")
    assert call.status == 404
    assert call.content == b"404 page not found"


@pytest.mark.parametrize("caller", ["webhook:github", "system:restart-context", "test:x", "channel:slack"])
def test_internal_caller_ids_are_refused_from_outside(tree, caller):
    call = a2a(tree["PM"], caller=caller)
    assert call.status == 403
    assert call.content == b'{"error":"invalid caller ID"}'


def test_body_over_one_mib_is_refused(tree, a2a_server):
    call = a2a(tree["PM"], raw=b"{" + b" " * (1 << 20) + b"}")
    assert call.status == 413
    assert call.content == b'{"error":"request body too large"}'
    assert a2a_server.requests == []


MISSING_CALLER_TOKEN = b'{"error":"missing caller auth token"}'
INVALID_CALLER_TOKEN = b'{"error":"invalid caller auth token"}'
ADMIN_AUTH_REQUIRED = b'{"error":"admin auth required"}'
INVALID_ADMIN_TOKEN = b'{"error":"invalid admin auth token"}'


def test_caller_with_a_live_token_must_present_it(tree, a2a_server):
    missing = a2a(tree["QA"], caller=tree["Dev"], token=None)
    assert (missing.status, missing.content) == (401, MISSING_CALLER_TOKEN)
    # The TARGET's token is not the caller's.
    wrong = a2a(tree["QA"], caller=tree["Dev"], token=tree["QA"].runtime_token)
    assert (wrong.status, wrong.content) == (401, INVALID_CALLER_TOKEN)
    assert a2a_server.requests == []
    assert a2a(tree["QA"], caller=tree["Dev"], token=tree["Dev"].runtime_token).status == 200
    assert a2a(tree["QA"], caller=tree["Dev"], token=ADMIN_TOKEN).status == 200  # an operator, for any caller


def test_caller_without_a_live_token_needs_the_admin_token(tree, a2a_server):
    """No grandfathering outside dev mode: a caller with no live token (never issued, or
    revoked) is only vouched for by an operator."""
    stale = tree["Dev"].runtime_token
    revoke_tokens(tree["Dev"])
    missing = a2a(tree["QA"], caller=tree["Dev"], token=None)
    assert (missing.status, missing.content) == (401, MISSING_CALLER_TOKEN)
    revoked = a2a(tree["QA"], caller=tree["Dev"], token=stale)
    assert (revoked.status, revoked.content) == (401, INVALID_CALLER_TOKEN)
    assert a2a_server.requests == []
    assert ActivityLog.objects.count() == 0
    assert a2a(tree["QA"], caller=tree["Dev"], token=ADMIN_TOKEN).status == 200


def test_caller_without_a_live_token_is_grandfathered_in_dev_mode(tree, dev_mode):
    revoke_tokens(tree["Dev"])  # the target's tokens do not matter
    assert a2a(tree["QA"], caller=tree["Dev"], token=None).status == 200
    # Dev mode does not relax a caller that has a live token.
    missing = a2a(tree["Dev"], caller=tree["QA"], token=None)
    assert (missing.status, missing.content) == (401, MISSING_CALLER_TOKEN)


def test_self_call_must_pass_the_caller_rule(tree, a2a_server):
    """Beyond the original, which skips the caller check when caller = target (so naming the
    target in ``X-Workspace-ID`` got around both the caller rule and the operator rule)."""
    missing = a2a(tree["Dev"], caller=tree["Dev"], token=None)
    assert (missing.status, missing.content) == (401, MISSING_CALLER_TOKEN)
    other = a2a(tree["Dev"], caller=tree["Dev"], token=tree["QA"].runtime_token)
    assert (other.status, other.content) == (401, INVALID_CALLER_TOKEN)
    assert a2a_server.requests == []
    assert a2a(tree["Dev"], caller=tree["Dev"]).status == 200
    assert a2a(tree["Dev"], caller=tree["Dev"], token=ADMIN_TOKEN).status == 200
    revoke_tokens(tree["Dev"])
    tokenless = a2a(tree["Dev"], caller=tree["Dev"], token=None)
    assert (tokenless.status, tokenless.content) == (401, MISSING_CALLER_TOKEN)


def test_self_call_skips_the_caller_checks_in_dev_mode(tree, dev_mode):
    assert a2a(tree["Dev"], caller=tree["Dev"], token=None).status == 200


@pytest.mark.parametrize(("token", "error"), [
    (None, ADMIN_AUTH_REQUIRED), ("not-a-token", INVALID_ADMIN_TOKEN), ("WORKSPACE", INVALID_ADMIN_TOKEN),
])
def test_call_without_a_caller_needs_an_operator(tree, a2a_server, token, error):
    """The canvas caller (no ``X-Workspace-ID``) skips the hierarchy, so outside dev mode only an
    operator may be it: a workspace's own token is not enough."""
    token = tree["QA"].runtime_token if token == "WORKSPACE" else token
    call = a2a(tree["PM"], token=token)
    assert (call.status, call.content) == (401, error)
    assert a2a_server.requests == []
    assert ActivityLog.objects.count() == 0
    assert call.events("A2A_RESPONSE") == []


def test_call_without_a_caller_needs_an_operator_even_for_an_unknown_target():
    call = a2a(uuid.uuid4(), token=None)  # auth comes before the lookup
    assert (call.status, call.content) == (401, ADMIN_AUTH_REQUIRED)


def test_call_without_a_caller_is_served_anonymously_in_dev_mode(tree, dev_mode):
    call = a2a(tree["PM"], token=None)
    assert call.status == 200
    assert len(call.events("A2A_RESPONSE")) == 1


def test_staff_session_may_call_without_a_caller(tree, operator, django_user_model):
    call = a2a(tree["PM"], token=None, user=operator)
    assert call.status == 200
    assert only_activity().source_id is None
    member = django_user_model.objects.create_user("member", "member@example.com", "pw")  # not staff
    refused = a2a(tree["PM"], token=None, user=member)
    assert (refused.status, refused.content) == (401, ADMIN_AUTH_REQUIRED)


def test_staff_session_call_is_csrf_checked(tree, operator, a2a_server):
    refused = a2a(tree["PM"], token=None, user=operator, enforce_csrf_checks=True)
    assert (refused.status, refused.content) == (403, b'{"error":"CSRF Failed: CSRF cookie not set."}')
    assert a2a_server.requests == []
    csrf_token = "0123456789abcdefghijklmnopqrstuv"  # a CSRF secret: 32 characters of CSRF_ALLOWED_CHARS
    call = a2a(tree["PM"], token=None, user=operator, enforce_csrf_checks=True, csrf_token=csrf_token)
    assert call.status == 200


# --- Steps 5–8 ------------------------------------------------------------------------------------------

def test_cousins_cannot_talk(tree, a2a_server):
    call = a2a(tree["SRE"], caller=tree["Dev"])
    assert call.status == 403
    assert call.content == b'{"error":"access denied: workspaces cannot communicate per hierarchy rules"}'
    assert a2a_server.requests == []


def test_unknown_caller_is_denied_by_the_hierarchy(tree):
    call = a2a(tree["PM"], caller="not-a-workspace")  # the admin token gets it past the caller rule
    assert call.status == 403
    assert call.json == {"error": "access denied: workspaces cannot communicate per hierarchy rules"}
    anonymous = a2a(tree["PM"], caller="not-a-workspace", token=None)
    assert (anonymous.status, anonymous.content) == (401, MISSING_CALLER_TOKEN)


@pytest.mark.parametrize(("limit", "spend", "blocked"), [(500, 500, True), (500, 900, True), (500, 499, False), (None, 10**9, False)])
def test_budget_gate(tree, limit, spend, blocked):
    Workspace.objects.filter(pk=tree["PM"].pk).update(budget_limit=limit, monthly_spend=spend)
    call = a2a(tree["PM"])
    if blocked:
        assert (call.status, call.content) == (402, b'{"error":"workspace budget limit exceeded"}')
    else:
        assert call.status == 200


def test_unknown_workspace_is_404():
    call = a2a(uuid.uuid4())
    assert (call.status, call.content) == (404, b'{"error":"workspace not found"}')


def test_non_uuid_target_is_not_found():
    """No workspace has such an id: 404, not the original's 500 ``lookup failed`` (found by the fuzz run)."""
    call = a2a("not-a-uuid")
    assert (call.status, call.content) == (404, b'{"error":"workspace not found"}')


def test_workspace_without_url_is_503_with_its_status(tree):
    point(tree["PM"], "")
    Workspace.objects.filter(pk=tree["PM"].pk).update(status=WorkspaceStatus.OFFLINE)
    call = a2a(tree["PM"])
    assert (call.status, call.content) == (503, b'{"error":"workspace has no URL","status":"offline"}')


def test_hibernated_workspace_is_woken_and_caller_told_to_retry(tree, provisioner, monkeypatch):
    started = []
    monkeypatch.setattr(provisioning.provision_workspace, "delay",
                        lambda workspace_id, **options: started.append((workspace_id, options)))
    point(tree["PM"], "")
    Workspace.objects.filter(pk=tree["PM"].pk).update(status=WorkspaceStatus.HIBERNATED)
    call = a2a(tree["PM"])
    assert call.status == 503
    assert call.response["Retry-After"] == "15"
    assert call.content == (
        '{"error":"workspace is waking from hibernation — retry in ~15 seconds","waking":true,"retry_after":15}'
    ).encode()
    # the wake is a start of the hibernated row (RestartByID skips hibernated rows), with its briefing
    assert started == [(str(tree["PM"].id), {"restart": False, "reason": provisioning.REASON_WAKE})]
    assert Workspace.objects.get(pk=tree["PM"].pk).status == WorkspaceStatus.PROVISIONING
    assert StructureEvent.objects.filter(workspace_id=tree["PM"].pk, event_type="WORKSPACE_PROVISIONING").exists()

    call = a2a(tree["PM"])  # a second caller while it wakes: no second start
    assert (call.status, json.loads(call.content)["error"]) == (503, "workspace has no URL")
    assert len(started) == 1


def test_a_hibernated_workspace_this_backend_did_not_provision_is_not_started(tree, provisioner, monkeypatch):
    started = []
    monkeypatch.setattr(provisioning.provision_workspace, "delay", lambda workspace_id, **o: started.append(workspace_id))
    provisioner.provisioned = set()
    point(tree["PM"], "")
    Workspace.objects.filter(pk=tree["PM"].pk).update(status=WorkspaceStatus.HIBERNATED)
    assert a2a(tree["PM"]).status == 503
    assert started == [] and Workspace.objects.get(pk=tree["PM"].pk).status == WorkspaceStatus.HIBERNATED


def test_database_url_is_cached_and_redis_url_wins(tree, a2a_server, redis_client):
    assert a2a(tree["PM"]).status == 200
    assert redis_client.get(url_key(tree["PM"].id)) == a2a_server.url("echo").encode()
    redis_client.set(url_key(tree["PM"].id), a2a_server.url("boom"))
    assert a2a(tree["PM"]).status == 500


def test_loopback_target_refused_outside_dev(tree, settings, a2a_server):
    settings.A2A_ALLOW_PRIVATE_TARGETS = False
    call = a2a(tree["PM"])
    assert (call.status, call.json) == (502, {"error": "workspace URL is not publicly routable",
                                              "detail": "url must be publicly routable: 127.0.0.1 is loopback"})
    assert a2a_server.requests == []


def test_metadata_address_refused_even_in_dev(tree):
    point(tree["PM"], "http://169.254.169.254/latest")
    call = a2a(tree["PM"])
    assert call.status == 502
    assert call.json == {"error": "workspace URL is not publicly routable",
                         "detail": "url must be publicly routable: 169.254.169.254 is link-local, reserved or documentation-only"}


@pytest.mark.parametrize("raw", [b"{not json", b"[1,2]", b"", b'"text"'])
def test_invalid_json_is_400_after_the_checks(tree, raw):
    call = a2a(tree["PM"], raw=raw)
    assert (call.status, call.content) == (400, b'{"error":"invalid JSON"}')


def test_invalid_json_does_not_hide_an_access_denial(tree):
    call = a2a(tree["SRE"], caller=tree["Dev"], raw=b"{not json")
    assert call.status == 403


# --- Normalisation and passthrough -------------------------------------------------------------------------

def test_plain_body_is_wrapped_in_json_rpc_and_gets_a_message_id(tree, a2a_server):
    call = a2a(tree["PM"], {**MESSAGE_SEND, "extra": "dropped"})
    assert call.status == 200
    sent = a2a_server.requests[0]["json"]
    assert sorted(sent) == ["id", "jsonrpc", "method", "params"]
    assert sent["jsonrpc"] == "2.0"
    assert uuid.UUID(sent["id"])
    assert sent["method"] == "message/send"
    message = sent["params"]["message"]
    assert uuid.UUID(message["messageId"])
    assert message["parts"] == [{"kind": "text", "text": "hi"}]
    assert a2a_server.requests[0]["headers"]["Content-Type"] == "application/json"


def test_agent_gets_the_inbound_secret_and_never_the_callers_token(tree, a2a_server):
    """Every forwarded call presents the target's inbound secret (how its A2A server tells the
    platform apart from anything else reaching its port); the caller's bearer stays here."""
    assert a2a(tree["PM"]).status == 200  # canvas, admin token
    assert a2a(tree["QA"], caller=tree["Dev"]).status == 200  # Dev's own token
    result = proxy.proxy_a2a_sync(target_id=str(tree["QA"].id), caller_id=str(tree["Dev"].id),
                                  body=json.dumps(MESSAGE_SEND).encode())  # the Celery entry point
    assert result.status == 200
    received = [agent_headers(request) for request in a2a_server.requests]
    assert [h[INBOUND_SECRET_HEADER.lower()] for h in received] == [
        inbound_secret(tree["PM"].id), inbound_secret(tree["QA"].id), inbound_secret(tree["QA"].id)]
    assert inbound_secret(tree["PM"].id) != inbound_secret(tree["QA"].id)  # one secret per workspace
    for headers in received:
        assert "authorization" not in headers
        for token in (ADMIN_TOKEN, tree["Dev"].runtime_token):
            assert not any(token in value for value in headers.values())


def test_json_rpc_body_is_forwarded_as_sent(tree, a2a_server):
    body = {"jsonrpc": "2.0", "id": 7, "method": "message/send", "extra": True,
            "params": {"message": {"role": "user", "messageId": "m-1", "parts": []}}}
    a2a(tree["PM"], body)
    assert a2a_server.requests[0]["json"] == body


def test_message_id_is_only_added_to_message_objects(tree, a2a_server):
    a2a(tree["PM"], {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": "t1"}})
    assert a2a_server.requests[0]["json"]["params"] == {"id": "t1"}


def test_success_is_raw_passthrough_with_agent_status(tree, a2a_server):
    call = a2a(tree["PM"])
    assert call.status == 200
    assert call.response["Content-Type"] == "application/json"
    expected = {"jsonrpc": "2.0", "id": a2a_server.requests[0]["json"]["id"],
                "result": {"echo": a2a_server.requests[0]["json"], "metadata": {"tool_trace": TOOL_TRACE}}}
    assert call.content == json.dumps(expected).encode()  # the agent's bytes, spacing and all


def test_agent_error_field_is_passed_on_with_its_status(tree, a2a_server):
    point(tree["PM"], a2a_server.url("boom"))
    call = a2a(tree["PM"])
    assert (call.status, call.content) == (500, b'{"error":"boom"}')


def test_agent_error_without_body_uses_the_reason_phrase(tree, a2a_server):
    point(tree["PM"], a2a_server.url("notfound"))
    call = a2a(tree["PM"])
    assert (call.status, call.content) == (404, b'{"error":"Not Found"}')


def test_response_is_capped_at_ten_mib(tree, a2a_server):
    point(tree["PM"], a2a_server.url("big"))
    call = a2a(tree["PM"])
    assert call.status == 200
    assert len(call.content) == proxy.MAX_RESPONSE_BYTES
    logged = only_activity().response_body  # cut JSON is not JSON: kept as capped text
    assert isinstance(logged, str) and len(logged) == proxy.MAX_LOGGED_TEXT_BYTES + 1


# --- Transport errors ----------------------------------------------------------------------------------------

def assert_queued(call: Call, target: Workspace, *, caller=None) -> A2AQueueItem:
    assert call.status == 202, call.content
    body = call.json
    assert list(body) == ["queued", "queue_id", "queue_depth", "message"]
    assert body["queued"] is True
    assert body["queue_depth"] == 1
    assert body["message"] == "workspace agent busy — request queued, will dispatch when capacity available"
    item = A2AQueueItem.objects.get(pk=body["queue_id"])
    assert item.workspace_id == target.id
    assert item.status == "queued"
    assert item.priority == 50
    assert item.caller_id == (str(caller.id) if caller else None)
    return item


def test_hanging_agent_is_busy_and_the_request_queued(tree, settings, a2a_server):
    settings.A2A_IDLE_TIMEOUT_SECONDS = 1
    point(tree["QA"], a2a_server.url("hang"))
    started = time.monotonic()
    call = a2a(tree["QA"], caller=tree["Dev"])
    assert time.monotonic() - started < 4
    item = assert_queued(call, tree["QA"], caller=tree["Dev"])
    assert item.body == a2a_server.requests[0]["json"]  # the normalised request
    assert item.idempotency_key == item.body["params"]["message"]["messageId"]
    row = only_activity()
    assert row.status == "error"
    assert row.summary.startswith("A2A request to QA failed: ")
    assert "no sign of life" in row.error_detail


@pytest.mark.parametrize("behaviour", ["reset", "eof"])
def test_reset_or_closed_connection_is_busy(tree, a2a_server, behaviour):
    point(tree["PM"], a2a_server.url(behaviour))
    assert_queued(a2a(tree["PM"]), tree["PM"])


def test_same_message_resent_while_queued_is_not_queued_twice(tree, settings, a2a_server):
    point(tree["PM"], a2a_server.url("reset"))
    body = {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {"messageId": "m-1"}}}
    first, second = a2a(tree["PM"], body), a2a(tree["PM"], body)
    assert first.json["queue_id"] == second.json["queue_id"]
    assert A2AQueueItem.objects.count() == 1


def test_refused_connection_is_502(tree):
    point(tree["PM"], closed_port_url())
    call = a2a(tree["PM"])
    assert (call.status, call.content) == (502, b'{"error":"failed to reach workspace agent"}')
    assert A2AQueueItem.objects.count() == 0
    row = only_activity()
    assert (row.status, row.summary.startswith("A2A request to PM failed: ")) == ("error", True)
    assert row.error_detail
    assert row.response_body is None


def test_native_session_runtime_is_told_to_retry_itself(tree, settings, a2a_server, redis_client):
    settings.A2A_IDLE_TIMEOUT_SECONDS = 1
    point(tree["PM"], a2a_server.url("hang"))
    redis_client.hset(runtime_overrides_key(tree["PM"].id), mapping={"capabilities": '{"session":true}'})
    call = a2a(tree["PM"])
    assert call.status == 503
    assert call.response["Retry-After"] == "30"
    assert call.content == (
        '{"error":"workspace agent busy — adapter handles retry (native_session)","busy":true,"retry_after":30,'
        '"native_session":true}'
    ).encode()
    assert A2AQueueItem.objects.count() == 0


def test_enqueue_failure_is_503_busy(tree, a2a_server, monkeypatch):
    point(tree["PM"], a2a_server.url("reset"))

    def broken(**kwargs):
        raise DatabaseError("queue table gone")

    monkeypatch.setattr(a2a_queue, "enqueue", broken)
    call = a2a(tree["PM"])
    assert call.status == 503
    assert call.response["Retry-After"] == "30"
    assert call.content == '{"error":"workspace agent busy — retry after a short backoff","busy":true,"retry_after":30}'.encode()


def test_body_read_failure_is_502_with_delivery_confirmed(tree, a2a_server):
    point(tree["PM"], a2a_server.url("short"))
    call = a2a(tree["PM"])
    assert (call.status, call.content) == (502, b'{"error":"failed to read agent response","delivery_confirmed":true}')


def test_gone_local_runtime_is_marked_offline_and_restarted(tree, provisioner):
    point(tree["PM"], closed_port_url())
    call = a2a(tree["PM"])
    assert call.status == 503
    assert call.content == '{"error":"workspace agent unreachable — container restart triggered","restarting":true}'.encode()
    tree["PM"].refresh_from_db()
    assert tree["PM"].status == WorkspaceStatus.OFFLINE
    assert provisioner.restarted == [str(tree["PM"].id)]
    assert [e.event_type for e in StructureEvent.objects.filter(workspace_id=tree["PM"].id)] == ["WORKSPACE_OFFLINE"]
    assert [f["payload"] for f in call.events("WORKSPACE_OFFLINE")] == [{}]


def test_live_local_runtime_and_external_workspaces_take_the_ordinary_path(tree, provisioner):
    point(tree["PM"], closed_port_url())
    provisioner.live = {str(tree["PM"].id)}
    assert a2a(tree["PM"]).status == 502
    provisioner.live = set()
    Workspace.objects.filter(pk=tree["PM"].pk).update(runtime="external")
    assert a2a(tree["PM"]).status == 502
    assert provisioner.restarted == []


def test_a_gone_runtime_whose_loopback_url_is_no_longer_assigned_is_restarting_not_a_stranger(tree, settings, provisioner):
    """After a platform restart the row still holds the old runtime's loopback URL: the URL
    filter refuses it, but the answer says the agent is restarting rather than blaming the URL."""
    settings.A2A_ALLOW_PRIVATE_TARGETS = False
    point(tree["PM"], "http://127.0.0.1:40123")
    call = a2a(tree["PM"])
    assert (call.status, call.json) == (503, {"error": "workspace agent unreachable — container restart triggered",
                                              "restarting": True})
    tree["PM"].refresh_from_db()
    assert tree["PM"].status == WorkspaceStatus.OFFLINE
    assert provisioner.restarted == [str(tree["PM"].id)]


def test_a_workspace_the_backend_never_provisioned_is_not_restarted(tree, provisioner):
    point(tree["PM"], closed_port_url())
    provisioner.provisioned = set()
    call = a2a(tree["PM"])
    assert (call.status, call.json) == (502, {"error": "failed to reach workspace agent"})
    tree["PM"].refresh_from_db()
    assert tree["PM"].status == WorkspaceStatus.ONLINE
    assert provisioner.restarted == []


# --- Timeouts ---------------------------------------------------------------------------------------------

def test_runtime_idle_override_from_the_heartbeat(tree, settings, a2a_server, redis_client):
    settings.A2A_IDLE_TIMEOUT_SECONDS = 60
    point(tree["PM"], a2a_server.url("hang"))
    redis_client.hset(runtime_overrides_key(tree["PM"].id), mapping={"idle_timeout_seconds": "1"})
    started = time.monotonic()
    assert a2a(tree["PM"]).status == 202
    assert time.monotonic() - started < 5


def test_a_heartbeating_target_is_waited_for_past_the_idle_window(tree, settings, a2a_server):
    settings.A2A_IDLE_TIMEOUT_SECONDS = 1
    point(tree["PM"], a2a_server.url("slow/2.5"))
    stop = threading.Event()

    def heartbeat():
        try:
            while not stop.wait(0.3):
                Workspace.objects.filter(pk=tree["PM"].pk).update(last_heartbeat_at=timezone.now())
        finally:
            connection.close()

    beater = threading.Thread(target=heartbeat)
    beater.start()
    try:
        call = a2a(tree["PM"])
    finally:
        stop.set()
        beater.join()
    assert call.status == 200


def test_ceiling_applies_to_workspace_callers_without_x_timeout(tree, settings, a2a_server):
    settings.A2A_MAX_SECONDS = 0.5
    point(tree["QA"], a2a_server.url("slow/1.2"))
    assert a2a(tree["QA"], caller=tree["Dev"]).status == 202
    assert a2a(tree["QA"], caller=tree["Dev"], headers={"X-Timeout": "10"}).status == 200
    assert a2a(tree["QA"]).status == 200  # the canvas has no ceiling


# --- Side effects ---------------------------------------------------------------------------------------------

def test_canvas_call_logs_activity_and_broadcasts_the_response(tree, a2a_server):
    call = a2a(tree["PM"])
    assert call.status == 200
    row = only_activity()
    sent = a2a_server.requests[0]["json"]
    assert row.workspace_id == tree["PM"].id
    assert row.activity_type == "a2a_receive"
    assert row.source_id is None
    assert row.target_id == tree["PM"].id
    assert row.method == "message/send"
    assert row.summary == "message/send → PM"
    assert row.request_body == sent
    assert row.response_body == json.loads(call.content)
    assert row.tool_trace == TOOL_TRACE
    assert isinstance(row.duration_ms, int) and row.duration_ms >= 0
    assert row.status == "ok"
    assert row.error_detail is None

    [logged] = call.events("ACTIVITY_LOGGED")
    assert logged["workspace_id"] == str(tree["PM"].id)
    assert logged["payload"] == {
        "activity_type": "a2a_receive", "method": "message/send", "summary": "message/send → PM", "status": "ok",
        "source_id": None, "target_id": str(tree["PM"].id), "duration_ms": row.duration_ms, "tool_trace": TOOL_TRACE,
    }
    [response] = call.events("A2A_RESPONSE")
    assert response["workspace_id"] == str(tree["PM"].id)
    assert response["payload"] == {"response_body": json.loads(call.content), "method": "message/send",
                                   "duration_ms": row.duration_ms}
    # Both are broadcast-only.
    assert not StructureEvent.objects.filter(event_type__in=["ACTIVITY_LOGGED", "A2A_RESPONSE"]).exists()


def test_workspace_call_records_the_caller_and_its_last_outbound(tree):
    before = timezone.now()
    call = a2a(tree["QA"], caller=tree["Dev"])
    assert call.status == 200
    row = only_activity()
    assert (row.workspace_id, row.source_id, row.target_id) == (tree["QA"].id, tree["Dev"].id, tree["QA"].id)
    assert row.summary == "message/send → QA"
    assert call.events("ACTIVITY_LOGGED")[0]["payload"]["source_id"] == str(tree["Dev"].id)
    assert call.events("A2A_RESPONSE") == []
    tree["Dev"].refresh_from_db()
    tree["QA"].refresh_from_db()
    assert tree["Dev"].last_outbound_at >= before
    assert tree["QA"].last_outbound_at is None


def test_agent_error_is_logged_as_error_without_a2a_response(tree, a2a_server):
    point(tree["PM"], a2a_server.url("boom"))
    call = a2a(tree["PM"])
    row = only_activity()
    assert (row.status, row.summary, row.response_body) == ("error", "message/send → PM", {"error": "boom"})
    assert call.events("A2A_RESPONSE") == []
    assert [f["payload"]["status"] for f in call.events("ACTIVITY_LOGGED")] == ["error"]


def test_workspace_caller_error_does_not_touch_last_outbound(tree, a2a_server):
    point(tree["QA"], a2a_server.url("boom"))
    a2a(tree["QA"], caller=tree["Dev"])
    tree["Dev"].refresh_from_db()
    assert tree["Dev"].last_outbound_at is None


# --- message/stream ------------------------------------------------------------------------------------------

def test_message_stream_is_relayed_as_sse_and_logged_at_the_end(tree, a2a_server):
    point(tree["PM"], a2a_server.url("sse"))
    call = a2a(tree["PM"], {"jsonrpc": "2.0", "id": "s1", "method": "message/stream",
                            "params": {"message": {"role": "user", "parts": []}}})
    assert call.status == 200
    assert call.response["Content-Type"] == "text/event-stream"
    events = [json.loads(line[6:]) for line in call.content.decode().splitlines() if line.startswith("data: ")]
    assert [event["result"]["seq"] for event in events] == [1, 2, 3]
    row = only_activity()
    assert (row.method, row.status) == ("message/stream", "ok")
    assert row.response_body == events[-1]
    [response] = call.events("A2A_RESPONSE")
    assert response["payload"]["response_body"] == events[-1]


def test_message_send_to_an_sse_agent_is_not_streamed(tree, a2a_server):
    point(tree["PM"], a2a_server.url("sse"))
    call = a2a(tree["PM"])
    assert call.response["Content-Type"] == "application/json"
    assert not call.response.streaming
    assert call.content.count(b"data: ") == 3


# --- Internal entry points ---------------------------------------------------------------------------------------

def test_sync_entry_point_applies_the_hierarchy_to_a_delegating_workspace(tree):
    body = json.dumps(MESSAGE_SEND).encode()
    denied = proxy.proxy_a2a_sync(target_id=str(tree["SRE"].id), caller_id=str(tree["Dev"].id), body=body)
    assert denied.status == 403
    result = proxy.proxy_a2a_sync(target_id=str(tree["QA"].id), caller_id=str(tree["Dev"].id), body=body)
    assert (result.status, result.content_type, result.queued) == (200, "application/json", False)
    assert json.loads(result.body)["result"]["echo"]["method"] == "message/send"
    row = only_activity()  # side effects are done when the sync call returns
    assert row.source_id == tree["Dev"].id


def test_internal_system_caller_skips_the_hierarchy_and_has_no_source(tree):
    result = proxy.proxy_a2a_sync(target_id=str(tree["SRE"].id), caller_id="system:restart-context",
                                  body=json.dumps(MESSAGE_SEND).encode())
    assert result.status == 200
    row = only_activity()
    assert row.source_id is None
    tree["SRE"].refresh_from_db()
    assert tree["SRE"].last_outbound_at is None


def test_log_activity_false_has_no_side_effects(tree):
    result = proxy.proxy_a2a_sync(target_id=str(tree["QA"].id), caller_id=str(tree["Dev"].id),
                                  body=json.dumps(MESSAGE_SEND).encode(), log_activity=False)
    assert result.status == 200
    assert ActivityLog.objects.count() == 0
    tree["Dev"].refresh_from_db()
    assert tree["Dev"].last_outbound_at is None


def test_detached_call_outlives_a_caller_that_gives_up(tree, a2a_server):
    point(tree["PM"], a2a_server.url("slow/0.5"))

    async def scenario():
        waiter = asyncio.ensure_future(
            proxy.proxy_a2a_detached(target_id=str(tree["PM"].id), caller_id=None, body=json.dumps(MESSAGE_SEND).encode())
        )
        await asyncio.sleep(0.1)
        waiter.cancel()  # the client hung up
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await proxy.settle()

    async_to_sync(scenario)()
    close_old_connections()
    assert len(a2a_server.requests) == 1
    assert only_activity().status == "ok"


def test_disconnected_client_on_a_server_loop_still_gets_the_call_recorded(tree, a2a_server, monkeypatch):
    """As under daphne: the ASGI app on its own loop (no outer ``async_to_sync``), the client hangs
    up while the agent works; the detached call finishes and is logged from the proxy's threads."""
    from molecule_site.asgi import application

    point(tree["PM"], a2a_server.url("slow/0.6"))
    # Request threads die with their request: make them close their connections as they go.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    body = json.dumps(MESSAGE_SEND).encode()
    sent, outcome = [], {}

    async def serve():
        delivered = False

        async def receive():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            # Hang up once the agent has the request.
            while not a2a_server.requests:
                await asyncio.sleep(0.02)
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": f"/workspaces/{tree['PM'].id}/a2a", "raw_path": b"", "query_string": b"", "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"host", b"testserver"),
                        (b"authorization", f"Bearer {ADMIN_TOKEN}".encode())],
            "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
        }
        await application(scope, receive, send)
        await proxy.settle()

    def run():
        try:
            asyncio.run(serve())
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    server_loop = threading.Thread(target=run)
    server_loop.start()
    server_loop.join(20)
    assert "error" not in outcome, outcome
    assert not [m for m in sent if m["type"] == "http.response.start"]  # the client was gone first
    assert len(a2a_server.requests) == 1
    row = only_activity()
    assert (row.status, row.summary) == ("ok", "message/send → PM")


def test_normalise_unit():
    assert proxy.normalise(b"nope") is None
    assert proxy.normalise(b"[]") is None
    wrapped = proxy.normalise(b'{"method":"m"}')
    assert wrapped["params"] is None and wrapped["method"] == "m" and wrapped["jsonrpc"] == "2.0"
    kept = proxy.normalise(b'{"jsonrpc":"2.0","params":{"message":"text"}}')
    assert kept == {"jsonrpc": "2.0", "params": {"message": "text"}}


def test_last_sse_data_unit():
    assert proxy.last_sse_data(b"data: 1\n\ndata: 2\r\n\r\n: ping\n\n") == b"2"
    assert proxy.last_sse_data(b": ping\n\n") is None


def test_loopback_urls_become_container_names_only_when_the_platform_runs_on_the_workspace_network(settings,
                                                                                                  monkeypatch):
    """A platform in some container (CI, a dev container: /.dockerenv exists) that is not on the
    workspace network reaches runtimes on their published loopback ports; only a deployment that
    says MOLECULE_IN_DOCKER reaches them by name."""
    class Containers(FakeProvisioner):
        has_containers = True

        def internal_url(self, workspace_id):
            return f"http://ws-{str(workspace_id)[:12]}:8000"

    use_backend(monkeypatch, Containers())
    target = str(uuid.uuid4())
    settings.MOLECULE_IN_DOCKER = False
    assert proxy._docker_rewrite(target, "http://localhost:40001") == "http://localhost:40001"
    settings.MOLECULE_IN_DOCKER = True
    assert proxy._docker_rewrite(target, "http://localhost:40001") == f"http://ws-{target[:12]}:8000"
    assert proxy._docker_rewrite(target, "https://agent.example.com") == "https://agent.example.com"


def test_reply_usage_is_metered_into_token_usage_and_spend(tree, a2a_server):
    from metering.models import WorkspaceTokenUsage

    pm = point(tree["PM"], a2a_server.url("usage"))
    for _ in range(2):
        assert a2a(pm).status == 200
    row = WorkspaceTokenUsage.objects.get(workspace=pm)
    assert (row.model, row.input_tokens, row.output_tokens, row.call_count) == ("gpt-4o", 800_000, 200_000, 2)
    assert row.cost_cents == pytest.approx(400)
    pm.refresh_from_db()
    assert pm.monthly_spend == 400


def test_budget_gate_trips_on_metered_spend_with_one_warning_and_one_exceeded_event(tree, a2a_server):
    pm = point(tree["PM"], a2a_server.url("usage"))
    Workspace.objects.filter(pk=pm.pk).update(budget_limit=500)
    calls = [a2a(pm) for _ in range(4)]
    assert [call.status for call in calls] == [200, 200, 200, 402]  # 200, 400 (80 %), 600 (≥ 100 %), refused
    assert calls[3].content == b'{"error":"workspace budget limit exceeded"}'
    assert [c.events("BUDGET_WARNING") != [] for c in calls[:3]] == [False, True, False]
    assert [c.events("BUDGET_EXCEEDED") != [] for c in calls[:3]] == [False, False, True]
    assert calls[2].events("BUDGET_EXCEEDED")[0]["payload"] == {"monthly_spend": 600, "budget_limit": 500,
                                                              "percent": 120.0}
    kinds = list(StructureEvent.objects.filter(workspace_id=pm.id, event_type__startswith="BUDGET_")
                 .values_list("event_type", flat=True))
    assert sorted(kinds) == ["BUDGET_EXCEEDED", "BUDGET_WARNING"]
    approvals = {a.action: a for a in ApprovalRequest.objects.filter(workspace=pm)}
    assert sorted(approvals) == ["budget_exceeded", "budget_warning"]
    assert approvals["budget_exceeded"].status == "pending"
    assert approvals["budget_exceeded"].context == {"monthly_spend": 600, "budget_limit": 500, "percent": 120.0}
    assert "600 of 500 cents (120.0 %)" in approvals["budget_exceeded"].reason
    assert "80 % of its monthly budget: 400 of 500 cents" in approvals["budget_warning"].reason
    requested = StructureEvent.objects.filter(workspace_id=pm.id, event_type="APPROVAL_REQUESTED")
    assert sorted(e.payload["action"] for e in requested) == ["budget_exceeded", "budget_warning"]


@pytest.mark.parametrize("usage", [
    {"input_tokens": -5, "output_tokens": 10}, {"input_tokens": "many"}, {"input_tokens": True},
    {"input_tokens": 10**12}, {"input_tokens": 0, "output_tokens": 0},
])
def test_junk_usage_is_not_metered(tree, a2a_server, monkeypatch, usage):
    from metering.models import WorkspaceTokenUsage
    from registry.tests import a2a_server as server_module

    monkeypatch.setattr(server_module, "USAGE", usage)
    pm = point(tree["PM"], a2a_server.url("usage"))
    assert a2a(pm).status == 200
    assert not WorkspaceTokenUsage.objects.filter(workspace=pm).exists()
