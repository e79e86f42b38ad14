"""``POST /registry/heartbeat`` and ``registry.services.workspace_heartbeat`` (spec §7.2, DESIGN flow 2).

The hot path: one statement and one Redis round trip when nothing changes, one more conditional
UPDATE when the status moves. Events leave after commit; broadcast-only ones (TASK_UPDATED,
WORKSPACE_HEARTBEAT) never become StructureEvent rows.

Secure mode (not dev mode) unless a test says otherwise: ``make()`` creates a provisioned
workspace — the row and the token provisioning issues its runtime — and ``beat()`` sends that
token, as the runtime does. The original's permissive registry rule (token-less workspaces need
no bearer, a failed probe lets the call in) is dev mode only, tested as such.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta

import psycopg
import pytest
import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connections
from django.utils import timezone

from activity.events import EVENTS_GROUP
from activity.models import ApprovalRequest, StructureEvent
from molecule_site import adb
from molecule_site.channel_layer import group_channel_name
from registry import a2a_drain, selectors, services
from registry.a2a_queue import queued_flag_key
from registry.selectors import parse_runtime_overrides, runtime_overrides_key
from registry.services import heartbeat_transition
from registry.tokens import token_mint
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

TTL = 60
BAD_BODY = {"error": "invalid request body"}
ADMIN_TOKEN = "registry-tests-admin-token"  # outside dev mode ADMIN_TOKEN is always set (generated)
OWN = object()  # beat(): send the workspace's own token (the one make() minted for it)
RUNTIME_TOKENS: dict[str, str] = {}  # workspace id -> the token make() minted for its runtime


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.LIVENESS_TTL_SECONDS = TTL
    settings.ADMIN_TOKEN = ADMIN_TOKEN
    settings.DEV_MODE = False
    RUNTIME_TOKENS.clear()
    yield settings
    RUNTIME_TOKENS.clear()


@pytest.fixture
def dev_mode(settings):
    """Dev mode as the platform defines it: MOLECULE_ENV=dev and no ADMIN_TOKEN."""
    settings.DEV_MODE = True
    settings.ADMIN_TOKEN = None


workspace_heartbeat = async_to_sync(services.workspace_heartbeat)


class Delivered:
    """The ``events`` group as a ``/ws`` client would hear it, read straight from Redis pub/sub:
    ``(type, payload, persisted)`` in the order published (persisted = a StructureEvent row)."""

    def __init__(self, redis_client):
        self.pubsub = redis_client.pubsub()
        self.pubsub.subscribe(group_channel_name(EVENTS_GROUP))
        self.seen: list[tuple[str, dict, bool]] = []

    def _drain(self) -> list:
        while (message := self.pubsub.get_message(timeout=0.2)) is not None:
            if message["type"] != "message":
                continue  # the subscription's confirmation
            frame = json.loads(get_channel_layer().deserialize(message["data"])["text"])
            persisted = StructureEvent.objects.filter(
                event_type=frame["event"], workspace_id=frame["workspace_id"] or None
            ).exists()
            self.seen.append((frame["event"], frame["payload"], persisted))
        return self.seen

    def __eq__(self, other):
        return self._drain() == other

    def __iter__(self):
        return iter(self._drain())

    def __getitem__(self, index):
        return self._drain()[index]

    def clear(self):
        self._drain().clear()


@pytest.fixture
def delivered(redis_client):
    frames = Delivered(redis_client)
    yield frames
    frames.pubsub.close()


@pytest.fixture
def drains(monkeypatch):
    """Calls to the A2A queue drain hook (a Celery task above the proxy), instead of the real one."""
    calls = []

    async def record(workspace_id):
        calls.append(workspace_id)

    monkeypatch.setattr(a2a_drain, "schedule_drain", record)
    return calls


@pytest.fixture
def beat(client, django_capture_on_commit_callbacks):
    """POST a heartbeat (after-commit callbacks run); returns the response.

    ``token`` defaults to the workspace's own token (none when make() minted none for the body's
    ``workspace_id``); ``None`` sends no bearer.
    """

    def send(body, token=OWN, raw=None):
        if token is OWN:
            token = RUNTIME_TOKENS.get(str(body.get("workspace_id"))) if isinstance(body, dict) else None
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        data = raw if raw is not None else json.dumps(body)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/registry/heartbeat", data, content_type="application/json", **headers)

    return send


def make(status=WorkspaceStatus.ONLINE, *, with_token=True, **fields) -> Workspace:
    """A workspace row and, unless ``with_token=False``, its runtime's token (``.runtime_token``)."""
    workspace = Workspace.objects.create(name="Dev Lead", status=status, **fields)
    workspace.runtime_token = None
    if with_token:
        _, workspace.runtime_token = token_mint(workspace=workspace)
        RUNTIME_TOKENS[str(workspace.id)] = workspace.runtime_token
    return workspace


def persisted(workspace) -> list[tuple[str, dict]]:
    return [(e.event_type, e.payload) for e in StructureEvent.objects.filter(workspace_id=workspace.id).order_by("created_at")]


# --- the status table (spec §7.2 step 3) ---------------------------------------------------------------

STATUS_TABLE = [
    # (old status, beat fields, capabilities, new status, persisted event or None)
    ("online", {"runtime_state": "wedged", "sample_error": "stuck"}, None,
     "degraded", ("WORKSPACE_DEGRADED", {"runtime_state": "wedged", "sample_error": "stuck"})),
    ("online", {"runtime_state": "wedged", "sample_error": "stuck", "error_rate": 0.9}, None,
     "degraded", ("WORKSPACE_DEGRADED", {"runtime_state": "wedged", "sample_error": "stuck"})),
    ("online", {"runtime_state": "wedged", "sample_error": "stuck"}, {"status_mgmt": True},
     "degraded", ("WORKSPACE_DEGRADED", {"runtime_state": "wedged", "sample_error": "stuck"})),
    ("online", {"error_rate": 0.5, "sample_error": "timeout"}, None,
     "degraded", ("WORKSPACE_DEGRADED", {"error_rate": 0.5, "sample_error": "timeout"})),
    ("online", {"error_rate": 1, "sample_error": "boom"}, None,
     "degraded", ("WORKSPACE_DEGRADED", {"error_rate": 1, "sample_error": "boom"})),
    ("online", {"error_rate": 0.49}, None, "online", None),
    ("online", {"error_rate": 0.9}, {"status_mgmt": True}, "online", None),
    ("online", {"error_rate": 0.9}, {"status_mgmt": False}, "degraded", ("WORKSPACE_DEGRADED", {"error_rate": 0.9, "sample_error": ""})),
    ("degraded", {"error_rate": 0.05}, None, "online", ("WORKSPACE_ONLINE", {})),
    ("degraded", {}, None, "online", ("WORKSPACE_ONLINE", {})),
    ("degraded", {"error_rate": 0.1}, None, "degraded", None),
    ("degraded", {"error_rate": 0.05, "runtime_state": "wedged"}, None, "degraded", None),
    ("degraded", {"error_rate": 0.0}, {"status_mgmt": True}, "degraded", None),
    ("degraded", {"error_rate": 0.9}, None, "degraded", None),
    ("offline", {}, None, "online", ("WORKSPACE_ONLINE", {})),
    ("offline", {"error_rate": 0.9, "runtime_state": "wedged"}, None, "online", ("WORKSPACE_ONLINE", {})),
    ("provisioning", {}, None, "online", ("WORKSPACE_ONLINE", {"recovered_from": "provisioning"})),
    ("provisioning", {"error_rate": 0.9}, None, "online", ("WORKSPACE_ONLINE", {"recovered_from": "provisioning"})),
] + [
    (status, fields, None, status, None)
    for status in ("failed", "paused", "hibernated", "awaiting_agent", "hibernating")
    for fields in ({}, {"error_rate": 0.9, "runtime_state": "wedged"}, {"error_rate": 0.0})
]


@pytest.mark.parametrize(("old", "fields", "capabilities", "new", "event"), STATUS_TABLE)
def test_heartbeat_status_table(beat, old, fields, capabilities, new, event):
    workspace = make(status=old)
    body = {"workspace_id": str(workspace.id), **fields}
    if capabilities is not None:
        body["runtime_metadata"] = {"capabilities": capabilities}
    response = beat(body)
    assert response.status_code == 200
    assert response.content == b'{"status":"ok"}'
    workspace.refresh_from_db()
    assert workspace.status == new
    assert persisted(workspace) == ([event] if event else [])


def test_heartbeat_marks_degraded_at_half_error_rate_and_recovers_below_a_tenth(beat):
    workspace = make()
    beat({"workspace_id": str(workspace.id), "error_rate": 0.5, "sample_error": "429 from model"})
    beat({"workspace_id": str(workspace.id), "error_rate": 0.3})
    workspace.refresh_from_db()
    assert workspace.status == "degraded"
    beat({"workspace_id": str(workspace.id), "error_rate": 0.05})
    workspace.refresh_from_db()
    assert workspace.status == "online"
    assert [t for t, _ in persisted(workspace)] == ["WORKSPACE_DEGRADED", "WORKSPACE_ONLINE"]


def test_transition_rules_as_a_function():
    assert heartbeat_transition("online", error_rate=0.5, sample_error="x", runtime_state="", status_mgmt=False) == (
        "degraded", {"error_rate": 0.5, "sample_error": "x"})
    assert heartbeat_transition("removed", error_rate=1, sample_error="", runtime_state="wedged", status_mgmt=False) is None


def test_transition_is_a_claim_on_the_old_status(monkeypatch):
    """A sweep that moves the row between the beat's two statements wins; no event is sent."""
    workspace = make(status=WorkspaceStatus.OFFLINE)
    real = services.heartbeat_transition

    def sweep():
        Workspace.objects.filter(pk=workspace.pk).update(status=WorkspaceStatus.PAUSED)
        connections.close_all()

    def sweep_in_between(*args, **kwargs):
        sweeper = threading.Thread(target=sweep)  # another session, as a sweeper would be
        sweeper.start()
        sweeper.join()
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "heartbeat_transition", sweep_in_between)
    workspace_heartbeat(workspace_id=workspace.id)
    workspace.refresh_from_db()
    assert workspace.status == "paused"
    assert persisted(workspace) == []


# --- events ---------------------------------------------------------------------------------------------

def test_heartbeat_event_is_broadcast_only_and_always_sent(beat, delivered):
    workspace = make(current_task="")
    beat({"workspace_id": str(workspace.id), "active_tasks": 1, "uptime_seconds": 42})
    assert delivered == [("WORKSPACE_HEARTBEAT", {"active_tasks": 1, "uptime_seconds": 42}, False)]
    assert persisted(workspace) == []


def test_task_updated_only_when_current_task_changes(beat, delivered):
    workspace = make()  # current_task NULL: same as ""
    beat({"workspace_id": str(workspace.id)})
    assert [e[0] for e in delivered] == ["WORKSPACE_HEARTBEAT"]

    delivered.clear()
    beat({"workspace_id": str(workspace.id), "current_task": "writing tests", "active_tasks": 1, "uptime_seconds": 5})
    assert delivered == [
        ("TASK_UPDATED", {"current_task": "writing tests", "active_tasks": 1}, False),
        ("WORKSPACE_HEARTBEAT", {"active_tasks": 1, "uptime_seconds": 5}, False),
    ]

    delivered.clear()
    beat({"workspace_id": str(workspace.id), "current_task": "writing tests", "active_tasks": 1})
    assert [e[0] for e in delivered] == ["WORKSPACE_HEARTBEAT"]

    delivered.clear()
    beat({"workspace_id": str(workspace.id), "current_task": ""})
    assert delivered[0] == ("TASK_UPDATED", {"current_task": "", "active_tasks": 0}, False)
    assert persisted(workspace) == []


def test_status_event_comes_before_the_broadcast_ones(beat, delivered):
    workspace = make(status=WorkspaceStatus.PROVISIONING)
    beat({"workspace_id": str(workspace.id), "current_task": "boot"})
    assert [(t, p) for t, p, _ in delivered] == [
        ("WORKSPACE_ONLINE", {"recovered_from": "provisioning"}),
        ("TASK_UPDATED", {"current_task": "boot", "active_tasks": 0}),
        ("WORKSPACE_HEARTBEAT", {"active_tasks": 0, "uptime_seconds": 0}),
    ]
    assert [p for _, _, p in delivered] == [True, False, False]


# --- what a beat writes ------------------------------------------------------------------------------

def test_heartbeat_writes_the_sample_and_moves_the_liveness_deadline(beat):
    past = timezone.now() - timedelta(hours=1)
    workspace = make(liveness_deadline=past, last_heartbeat_at=past, current_task="old")
    before = timezone.now()
    beat({
        "workspace_id": str(workspace.id), "error_rate": 0.25, "sample_error": "flaky tool", "active_tasks": 2,
        "uptime_seconds": 3600, "current_task": "triage", "runtime_state": "",
    })
    workspace.refresh_from_db()
    assert workspace.last_error_rate == 0.25
    assert workspace.last_sample_error == "flaky tool"
    assert (workspace.active_tasks, workspace.uptime_seconds, workspace.current_task) == (2, 3600, "triage")
    assert workspace.last_heartbeat_at >= before
    assert before + timedelta(seconds=TTL) <= workspace.liveness_deadline <= timezone.now() + timedelta(seconds=TTL)
    assert workspace.updated_at >= before


@pytest.mark.parametrize(("sent", "stored"), [(0, 500), (-10, 500), (1234, 1234), (10**15, 10**12)])
def test_monthly_spend_written_only_when_positive_and_clamped(beat, sent, stored):
    workspace = make(monthly_spend=500)
    beat({"workspace_id": str(workspace.id), "monthly_spend": sent})
    workspace.refresh_from_db()
    assert workspace.monthly_spend == stored


def test_a_reported_spend_that_crosses_the_budget_lines_is_announced_and_asks_for_approval_once(beat):
    """An agent that reports its own spend (an external one) trips the same BUDGET_* events and
    approval requests as metered spend: once per line crossed, not on every beat above it."""
    workspace = make(budget_limit=1000, monthly_spend=100)
    for spend in (700, 850, 900, 1200, 1300):
        beat({"workspace_id": str(workspace.id), "monthly_spend": spend})
    budget = [(kind, payload) for kind, payload in persisted(workspace) if kind.startswith("BUDGET_")]
    assert budget == [
        ("BUDGET_WARNING", {"monthly_spend": 850, "budget_limit": 1000, "percent": 85.0}),
        ("BUDGET_EXCEEDED", {"monthly_spend": 1200, "budget_limit": 1000, "percent": 120.0}),
    ]
    approvals = ApprovalRequest.objects.filter(workspace=workspace).order_by("created_at")
    assert [(a.action, a.status, a.context["monthly_spend"]) for a in approvals] == [
        ("budget_warning", "pending", 850), ("budget_exceeded", "pending", 1200)]


def test_a_reported_spend_without_a_budget_announces_nothing(beat):
    workspace = make(monthly_spend=0)
    beat({"workspace_id": str(workspace.id), "monthly_spend": 10**9})
    assert [kind for kind, _ in persisted(workspace) if kind.startswith("BUDGET_")] == []
    assert not ApprovalRequest.objects.filter(workspace=workspace).exists()


def test_removed_rows_are_untouched(beat, delivered, redis_client):
    past = timezone.now() - timedelta(hours=1)
    workspace = make(status=WorkspaceStatus.REMOVED, last_heartbeat_at=past, current_task="old", active_tasks=0)
    body = {"workspace_id": str(workspace.id), "active_tasks": 3, "current_task": "new", "error_rate": 0.9}
    own = beat(body)  # tokens of removed workspaces never validate
    assert (own.status_code, own.json()) == (401, {"error": "invalid workspace auth token"})
    response = beat(body, token=ADMIN_TOKEN)  # the service's own guard, past the auth rule
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    workspace.refresh_from_db()
    assert (workspace.status, workspace.active_tasks, workspace.current_task) == ("removed", 0, "old")
    assert workspace.last_heartbeat_at == past
    assert delivered == []
    assert redis_client.keys("ws:*") == []


def test_unknown_id_is_still_ok(beat, delivered):
    response = beat({"workspace_id": str(uuid.uuid4()), "active_tasks": 1}, token=ADMIN_TOKEN)
    assert response.status_code == 200
    assert response.content == b'{"status":"ok"}'
    assert delivered == []


def test_non_uuid_id_is_a_bad_request_not_a_server_error(beat):
    """The original's failed UPDATE answers 500; the negative fuzz run found it. Bad input is a 400."""
    response = beat({"workspace_id": "not-a-uuid"}, token=ADMIN_TOKEN)
    assert response.status_code == 400
    assert response.content == b'{"error":"invalid request body"}'


# --- Redis ---------------------------------------------------------------------------------------------

def test_heartbeat_refreshes_the_liveness_key_ttl(beat, redis_client):
    workspace = make()
    key = f"ws:{workspace.id}"
    redis_client.set(key, "online", ex=5)
    beat({"workspace_id": str(workspace.id)})
    assert redis_client.get(key) == b"online"
    assert TTL - 2 <= redis_client.ttl(key) <= TTL


def test_heartbeat_does_not_recreate_an_expired_liveness_key(beat, redis_client):
    workspace = make()
    beat({"workspace_id": str(workspace.id)})
    assert redis_client.exists(f"ws:{workspace.id}") == 0


def test_runtime_overrides_are_stored_and_cleared(beat, redis_client):
    workspace = make()
    beat({"workspace_id": str(workspace.id), "runtime_metadata": {
        "capabilities": {"session": True, "status_mgmt": False}, "idle_timeout_seconds": 900,
    }})
    key = runtime_overrides_key(workspace.id)
    assert redis_client.hgetall(key) == {
        b"idle_timeout_seconds": b"900", b"capabilities": b'{"session":true,"status_mgmt":false}',
    }
    assert 0 < redis_client.ttl(key) <= TTL
    assert parse_runtime_overrides({k.decode(): v.decode() for k, v in redis_client.hgetall(key).items()}) == {
        "idle_timeout_seconds": 900, "capabilities": {"session": True, "status_mgmt": False},
    }

    beat({"workspace_id": str(workspace.id), "runtime_metadata": {"capabilities": {"retry": True}}})
    assert redis_client.hgetall(key) == {b"capabilities": b'{"retry":true}'}

    beat({"workspace_id": str(workspace.id)})
    assert redis_client.exists(key) == 0
    assert parse_runtime_overrides({k.decode(): v.decode() for k, v in redis_client.hgetall(key).items()}) == {"idle_timeout_seconds": None, "capabilities": {}}


# --- the hot path's cost -----------------------------------------------------------------------------

def test_heartbeat_without_transition_is_one_statement():
    workspace = make(current_task="same")
    with adb.capture_statements() as statements:
        workspace_heartbeat(workspace_id=workspace.id, error_rate=0.2, active_tasks=1, current_task="other")
    assert len(statements) == 1


def test_heartbeat_with_transition_is_two_statements_and_the_event_row():
    workspace = make(status=WorkspaceStatus.OFFLINE)
    with adb.capture_statements() as statements:
        workspace_heartbeat(workspace_id=workspace.id)
    assert [sql.split()[0] for sql in statements] == ["UPDATE", "UPDATE", "INSERT"]  # beat, claim, WORKSPACE_ONLINE
    workspace.refresh_from_db()
    assert workspace.status == "online"


@pytest.mark.parametrize(("who", "count"), [("own", 2), ("admin", 1)])
def test_heartbeat_endpoint_statements_by_token(client, django_assert_num_queries, who, count):
    """The workspace's own token: the bearer check (one statement) plus the beat (one statement),
    none through the ORM. The admin token is compared in memory (``is_admin_token`` short-circuits
    ``check_registry_token`` before any query), so only the beat remains."""
    workspace = make()
    token = workspace.runtime_token if who == "own" else ADMIN_TOKEN
    with django_assert_num_queries(0), adb.capture_statements() as statements:
        response = client.post(
            "/registry/heartbeat", json.dumps({"workspace_id": str(workspace.id), "active_tasks": 1}),
            content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}",
        )
    assert response.status_code == 200
    assert len(statements) == count
    assert statements[-1].split()[0] == "UPDATE"  # the beat


# --- A2A queue drain hook ------------------------------------------------------------------------------

def test_spare_capacity_asks_for_a_queue_drain_when_requests_wait(beat, drains, redis_client):
    workspace = make(max_concurrent_tasks=2)
    beat({"workspace_id": str(workspace.id), "active_tasks": 1})
    assert drains == []  # nothing queued: no Celery message
    redis_client.set(queued_flag_key(workspace.id), "1")
    beat({"workspace_id": str(workspace.id), "active_tasks": 1})
    assert drains == [workspace.id]
    drains.clear()
    beat({"workspace_id": str(workspace.id), "active_tasks": 2})
    assert drains == []


# --- auth and binding --------------------------------------------------------------------------------

MISSING_TOKEN = b'{"error":"missing workspace auth token"}'
INVALID_TOKEN = b'{"error":"invalid workspace auth token"}'
PLATFORM_UNAVAILABLE = {"error": "platform datastore unavailable — retry shortly", "code": "platform_unavailable"}


def test_registry_token_rule_applies_once_a_token_exists(beat):
    workspace = make()
    body = {"workspace_id": str(workspace.id)}
    missing = beat(body, token=None)
    assert (missing.status_code, missing.content) == (401, MISSING_TOKEN)
    invalid = beat(body, token="wrong")
    assert (invalid.status_code, invalid.content) == (401, INVALID_TOKEN)
    other = make()
    foreign = beat(body, token=other.runtime_token)
    assert (foreign.status_code, foreign.content) == (401, INVALID_TOKEN)
    assert beat(body, token=workspace.runtime_token).status_code == 200
    assert beat(body, token=ADMIN_TOKEN).status_code == 200  # an operator may act for any workspace


def test_workspace_without_a_live_token_needs_the_admin_token(beat):
    """No grandfathering outside dev mode: a workspace with no live token (never issued, or
    revoked) is only heartbeated for by an operator."""
    workspace = make(status=WorkspaceStatus.OFFLINE, with_token=False)
    body = {"workspace_id": str(workspace.id)}
    missing = beat(body, token=None)
    assert (missing.status_code, missing.content) == (401, MISSING_TOKEN)
    invalid = beat(body, token="wrong")
    assert (invalid.status_code, invalid.content) == (401, INVALID_TOKEN)
    workspace.refresh_from_db()
    assert (workspace.status, workspace.last_heartbeat_at) == ("offline", None)
    assert beat(body, token=ADMIN_TOKEN).status_code == 200
    workspace.refresh_from_db()
    assert workspace.status == "online"
    unknown = beat({"workspace_id": str(uuid.uuid4())}, token=None)
    assert (unknown.status_code, unknown.content) == (401, MISSING_TOKEN)


def test_workspace_without_a_live_token_is_grandfathered_in_dev_mode(beat, dev_mode):
    workspace = make(status=WorkspaceStatus.OFFLINE, with_token=False)
    body = {"workspace_id": str(workspace.id)}
    assert beat(body, token=None).status_code == 200  # the original's grandfathering
    workspace.refresh_from_db()
    assert workspace.status == "online"
    assert beat({"workspace_id": str(uuid.uuid4())}, token=None).status_code == 200
    _, token = token_mint(workspace=workspace)  # dev mode does not relax a workspace with a token
    missing = beat(body, token=None)
    assert (missing.status_code, missing.content) == (401, MISSING_TOKEN)
    assert beat(body, token=token).status_code == 200


def _probe_down(monkeypatch):
    async def down(workspace_id, **kwargs):
        raise psycopg.OperationalError("database is down")

    monkeypatch.setattr(selectors, "aworkspace_has_live_token", down)


def test_a_failed_live_token_probe_is_503_outside_dev_mode(beat, monkeypatch):
    workspace = make(status=WorkspaceStatus.OFFLINE)
    _probe_down(monkeypatch)
    body = {"workspace_id": str(workspace.id)}
    for token in (None, "wrong"):
        response = beat(body, token=token)
        assert (response.status_code, response.json()) == (503, PLATFORM_UNAVAILABLE)
    workspace.refresh_from_db()
    assert workspace.status == "offline"
    # A valid bearer never needs the probe.
    assert beat(body).status_code == 200
    assert beat(body, token=ADMIN_TOKEN).status_code == 200


def test_a_failed_live_token_probe_fails_open_in_dev_mode(beat, dev_mode, monkeypatch):
    workspace = make(status=WorkspaceStatus.OFFLINE)
    _probe_down(monkeypatch)
    response = beat({"workspace_id": str(workspace.id)}, token=None)
    assert (response.status_code, response.content) == (200, b'{"status":"ok"}')
    workspace.refresh_from_db()
    assert workspace.status == "online"


def test_bad_body_is_rejected_before_auth(beat):
    workspace = make()
    response = beat({"workspace_id": str(workspace.id), "active_tasks": "1"}, token=None)
    assert (response.status_code, response.json()) == (400, BAD_BODY)


@pytest.mark.parametrize("body", [
    {"workspace_id": ""},
    {"workspace_id": 42},
    {"workspace_id": None},
    {"error_rate": "0.5"},
    {"error_rate": True},
    {"active_tasks": 1.5},
    {"active_tasks": "1"},
    {"active_tasks": 2**31},
    {"uptime_seconds": [1]},
    {"monthly_spend": 1.5},
    {"sample_error": 1},
    {"current_task": {}},
    {"runtime_state": False},
    {"runtime_metadata": []},
    {"runtime_metadata": {"capabilities": {"session": "yes"}}},
    {"runtime_metadata": {"capabilities": ["session"]}},
    {"runtime_metadata": {"idle_timeout_seconds": "60"}},
])
def test_heartbeat_binding_is_strict(beat, body):
    workspace = make()
    response = beat({"workspace_id": str(workspace.id), **body})
    assert response.status_code == 400
    assert response.content == b'{"error":"invalid request body"}'


def test_heartbeat_requires_workspace_id(beat):
    response = beat({"error_rate": 0.1})
    assert (response.status_code, response.content) == (400, b'{"error":"invalid request body"}')


@pytest.mark.parametrize("raw", ["{not json", "[]", '"text"', "null"])
def test_heartbeat_rejects_non_object_bodies(beat, raw):
    response = beat(None, raw=raw)
    assert response.status_code == 400
    assert response.content == b'{"error":"invalid request body"}'


def test_null_fields_and_unknown_keys_are_ignored(beat):
    workspace = make()
    response = beat({
        "workspace_id": str(workspace.id), "error_rate": None, "sample_error": None, "runtime_metadata": None,
        "unknown": {"anything": 1},
    })
    assert response.status_code == 200


def test_a_drain_is_asked_for_when_redis_cannot_tell(beat, drains, monkeypatch):
    """Without Redis the heartbeat cannot see the queued flag: it lets the worker look."""

    def down():
        raise redis.ConnectionError("down")

    workspace = make(max_concurrent_tasks=2)
    monkeypatch.setattr(services, "get_async_redis", down)
    response = beat({"workspace_id": str(workspace.id), "active_tasks": 0})
    assert response.content == b'{"status":"ok"}'
    assert drains == [workspace.id]
