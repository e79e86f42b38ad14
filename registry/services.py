"""Writes for the registry: workspace bearer tokens; register, heartbeat, update-card (spec §2.1, §7.1–7.3)."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta

import psycopg
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from activity.events import aemit, broadcast_publication
from metering.services import spend_changed
from molecule_site import adb
from molecule_site.errors import ApiError
from molecule_site.redis_client import get_async_redis
from registry import a2a_drain, a2a_queue, redis_keys
from registry.models import WorkspaceAuthToken
from registry.selectors import (
    RUNTIME_CAPABILITIES_FIELD,
    RUNTIME_IDLE_TIMEOUT_FIELD,
    aworkspace_has_live_token,
    runtime_overrides_key,
)
from registry.tokens import atoken_mint, token_digest
from workspaces.models import WorkspaceStatus
from workspaces.selectors import as_uuid

log = logging.getLogger(__name__)

# One statement finds the token and records ``last_used_at``: tokens of removed workspaces never
# match. ``{bound}`` is empty or the clause binding the token to one workspace.
TOKEN_VALIDATE_SQL = """
UPDATE workspace_auth_tokens AS t SET last_used_at = clock_timestamp()
FROM workspaces AS w
WHERE t.token_hash = %s AND t.revoked_at IS NULL AND w.id = t.workspace_id
  AND w.status <> 'removed' {bound}
RETURNING t.id, t.workspace_id
"""
TOKEN_BOUND_CLAUSE = "AND t.workspace_id = %s"


def _token_query(token: str, workspace_id) -> tuple[str, list] | None:
    if not token:
        return None
    if workspace_id is None:
        return TOKEN_VALIDATE_SQL.format(bound=""), [token_digest(token)]
    parsed = as_uuid(workspace_id)
    if parsed is None:
        return None
    return TOKEN_VALIDATE_SQL.format(bound=TOKEN_BOUND_CLAUSE), [token_digest(token), parsed]


def token_validate(*, token: str, workspace_id=None) -> WorkspaceAuthToken | None:
    """The live token matching ``token`` (bound to ``workspace_id`` when given), or None.

    Any failure collapses into None, as in the original.
    """
    query = _token_query(token, workspace_id)
    if query is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(*query)
        row = cursor.fetchone()
    return None if row is None else WorkspaceAuthToken(id=row[0], workspace_id=row[1])


async def atoken_validate(*, token: str, workspace_id=None) -> uuid.UUID | None:
    """:func:`token_validate` on the async driver (the hot paths' auth check): the id of the
    token's workspace, or None."""
    query = _token_query(token, workspace_id)
    if query is None:
        return None
    row = await adb.fetchone(*query)
    return None if row is None else row[1]


# --- register (spec §7.1) ---------------------------------------------------------------------------

# Upsert in one statement. On conflict the row is locked until commit, so two concurrent registers
# of one workspace serialise and only the first mints a token. A removed row is left alone (the
# WHERE fails, nothing is returned).
_REGISTER_SQL = """
INSERT INTO workspaces (id, name, url, agent_card, status, last_heartbeat_at, liveness_deadline)
VALUES (%s, %s, %s, %s::jsonb, 'online', %s, %s)
ON CONFLICT (id) DO UPDATE SET
    url = CASE WHEN starts_with(workspaces.url, 'http://127.0.0.1') THEN workspaces.url ELSE EXCLUDED.url END,
    agent_card = EXCLUDED.agent_card,
    status = CASE WHEN workspaces.status = 'paused' THEN workspaces.status ELSE 'online' END,
    last_heartbeat_at = EXCLUDED.last_heartbeat_at,
    liveness_deadline = EXCLUDED.liveness_deadline,
    hibernation_deadline = CASE WHEN workspaces.hibernation_idle_minutes > 0
        THEN EXCLUDED.last_heartbeat_at + make_interval(mins => workspaces.hibernation_idle_minutes) END,
    updated_at = EXCLUDED.last_heartbeat_at
WHERE workspaces.status <> 'removed'
RETURNING workspaces.url, workspaces.status
"""


async def workspace_register(*, workspace_id, url: str, agent_card) -> dict:
    """A runtime announces itself: upsert the row as online and cache where it answers (spec §7.1).

    Unknown ids create a row named after the id — in dev mode only: elsewhere the view refuses
    them first (404), so only workspaces the platform created can register. Any other status
    (``failed`` included, §20.10) becomes ``online``, except ``paused``: a register does not undo
    an operator's pause (beyond the original, which flips it). A URL on ``http://127.0.0.1``
    already stored is kept (local-process workspaces were given it by the provisioner). The
    first register of a workspace without a live token mints one and returns it as
    ``auth_token`` (outside dev mode only the admin token gets that far).

    Beyond the original: a ``removed`` row is answered ``{"status":"registered"}`` with no side
    effect at all — the original still sets the Redis keys, announces WORKSPACE_ONLINE and mints
    a token for it (the token is useless: validation ignores removed workspaces).
    """
    parsed = as_uuid(workspace_id)
    if parsed is None:  # the original's failed INSERT answers 500; this is the caller's mistake
        raise ApiError("invalid request body")
    now = timezone.now()
    deadline = now + timedelta(seconds=settings.LIVENESS_TTL_SECONDS)
    try:
        async with adb.transaction() as conn:
            row = await adb.fetchone(
                _REGISTER_SQL, [parsed, str(workspace_id), url, json.dumps(agent_card), now, deadline], conn=conn
            )
            if row is None:
                return {"status": "registered"}
            stored_url, paused = row[0], row[1] == WorkspaceStatus.PAUSED
            plaintext = None
            if not await aworkspace_has_live_token(parsed, conn=conn):
                plaintext = await atoken_mint(workspace_id=parsed, conn=conn)
    except psycopg.Error:
        log.exception("register of workspace %s failed", parsed)
        raise ApiError("registration failed", status=500) from None
    await _cache_registration(parsed, stored_url, url, live=not paused)
    if not paused:  # a paused workspace stays paused: nothing announces it online
        await aemit("WORKSPACE_ONLINE", parsed, {"url": stored_url, "agent_card": agent_card})
    if plaintext is None:
        return {"status": "registered"}
    return {"status": "registered", "auth_token": plaintext}


async def _cache_registration(workspace_id, stored_url: str, reported_url: str, *, live: bool = True) -> None:
    """Liveness key (TTL = LIVENESS_TTL_SECONDS) when ``live``, proxy URL and discovery URL;
    best effort."""
    try:
        pipe = get_async_redis().pipeline(transaction=False)
        if live:
            pipe.set(redis_keys.liveness_key(workspace_id), WorkspaceStatus.ONLINE.value,
                     ex=settings.LIVENESS_TTL_SECONDS)
        pipe.set(redis_keys.url_key(workspace_id), stored_url, ex=redis_keys.URL_TTL_SECONDS)
        pipe.set(redis_keys.internal_url_key(workspace_id), reported_url, ex=redis_keys.URL_TTL_SECONDS)
        await pipe.execute()
    except (redis.RedisError, OSError):
        log.warning("could not cache the registration of workspace %s", workspace_id)


# --- heartbeat (spec §7.2; DESIGN flow 2 — the hot path) ---------------------------------------------

ERROR_RATE_DEGRADED = 0.5
ERROR_RATE_RECOVERED = 0.1
MONTHLY_SPEND_MAX = 10**12
RUNTIME_STATE_WEDGED = "wedged"
STATUS_MGMT_CAPABILITY = "status_mgmt"

# One statement: lock the row, keep its previous status/task/capacity, write the beat. Removed rows
# and unknown ids match nothing. ``monthly_spend`` is written only when the beat carries one (> 0).
# A busy beat (active_tasks > 0) moves the hibernation deadline to now + idle minutes; an idle one
# leaves it, so the workspace hibernates that long after it was last seen working.
_HEARTBEAT_SQL = """
UPDATE workspaces SET
    last_heartbeat_at = %s,
    liveness_deadline = %s,
    last_error_rate = %s,
    last_sample_error = %s,
    active_tasks = %s,
    uptime_seconds = %s,
    current_task = %s,
    monthly_spend = COALESCE(%s, workspaces.monthly_spend),
    hibernation_deadline = CASE
        WHEN COALESCE(workspaces.hibernation_idle_minutes, 0) <= 0 THEN NULL
        WHEN %s > 0 OR workspaces.hibernation_deadline IS NULL
            THEN %s + make_interval(mins => workspaces.hibernation_idle_minutes)
        ELSE workspaces.hibernation_deadline END,
    updated_at = %s
FROM (SELECT status, current_task, max_concurrent_tasks, monthly_spend FROM workspaces WHERE id = %s FOR UPDATE) AS old
WHERE workspaces.id = %s AND workspaces.status <> 'removed'
RETURNING old.status, old.current_task, old.max_concurrent_tasks, old.monthly_spend, workspaces.budget_limit
"""

# A status change is a claim on the status read above: it only applies if nobody moved it since.
_TRANSITION_SQL = "UPDATE workspaces SET status = %s, updated_at = %s WHERE id = %s AND status = %s"


def heartbeat_transition(
    status: str, *, error_rate: float, sample_error: str, runtime_state: str, status_mgmt: bool
) -> tuple[str, dict] | None:
    """The status change a beat causes, as ``(new status, WORKSPACE_* payload)``, or None.

    Spec §7.2 step 3, first matching rule wins (the original evaluates them one after another
    against the same old status, which could announce ``degraded`` twice for one beat). Runtimes
    that manage their own status (capability ``status_mgmt``) are exempt from the error-rate rules,
    not from ``wedged``. failed / paused / hibernated / awaiting_agent / removed never change here.
    """
    if status == WorkspaceStatus.ONLINE and runtime_state == RUNTIME_STATE_WEDGED:
        return WorkspaceStatus.DEGRADED, {"runtime_state": RUNTIME_STATE_WEDGED, "sample_error": sample_error}
    if status == WorkspaceStatus.ONLINE and not status_mgmt and error_rate >= ERROR_RATE_DEGRADED:
        return WorkspaceStatus.DEGRADED, {"error_rate": _go_number(error_rate), "sample_error": sample_error}
    if (
        status == WorkspaceStatus.DEGRADED and not status_mgmt
        and error_rate < ERROR_RATE_RECOVERED and runtime_state == ""
    ):
        return WorkspaceStatus.ONLINE, {}
    if status == WorkspaceStatus.OFFLINE:
        return WorkspaceStatus.ONLINE, {}
    if status == WorkspaceStatus.PROVISIONING:
        return WorkspaceStatus.ONLINE, {"recovered_from": WorkspaceStatus.PROVISIONING.value}
    return None


async def workspace_heartbeat(
    *,
    workspace_id,
    error_rate: float = 0.0,
    sample_error: str = "",
    active_tasks: int = 0,
    uptime_seconds: int = 0,
    current_task: str = "",
    monthly_spend: int = 0,
    runtime_state: str = "",
    capabilities: dict[str, bool] | None = None,
    idle_timeout_seconds: int | None = None,
) -> dict:
    """Record a beat, move the deadline, apply the status rules and announce (spec §7.2).

    The hot path, on the event loop: ONE SQL statement and ONE Redis round trip (plus the event
    publish) when the status does not change, one more conditional UPDATE when it does. Not one
    transaction: each statement is atomic and committed on its own, the first holds the row lock
    while it reads the old values, and the status change is a claim (``WHERE status = <old>``)
    that a concurrent beat or sweep cannot double-apply. Events go out after both committed.

    Unknown ids and removed rows are answered ``ok`` with no write, event or Redis call (the
    original still broadcasts their heartbeat events).
    """
    parsed = as_uuid(workspace_id)
    if parsed is None:  # the original's failed UPDATE answers 500; this is the caller's mistake
        raise ApiError("invalid request body")
    now = timezone.now()
    spend = min(monthly_spend, MONTHLY_SPEND_MAX) if monthly_spend > 0 else None
    capabilities = capabilities or {}
    status_event = None
    try:
        async with adb.connection() as conn:
            row = await adb.fetchone(
                _HEARTBEAT_SQL,
                [
                    now, now + timedelta(seconds=settings.LIVENESS_TTL_SECONDS), error_rate, sample_error,
                    active_tasks, uptime_seconds, current_task, spend, active_tasks, now, now, parsed, parsed,
                ],
                conn=conn,
            )
            if row is None:
                return {"status": "ok"}
            old_status, old_task, max_tasks, old_spend, budget_limit = row
            change = heartbeat_transition(
                old_status, error_rate=error_rate, sample_error=sample_error, runtime_state=runtime_state,
                status_mgmt=capabilities.get(STATUS_MGMT_CAPABILITY) is True,
            )
            if change is not None:
                new_status, payload = change
                if await adb.execute(_TRANSITION_SQL, [new_status, now, parsed, old_status], conn=conn) == 1:
                    event = "WORKSPACE_DEGRADED" if new_status == WorkspaceStatus.DEGRADED else "WORKSPACE_ONLINE"
                    status_event = (event, payload)
    except psycopg.Error:
        log.exception("heartbeat of workspace %s failed", parsed)
        raise ApiError("failed to update", status=500) from None

    if status_event is not None:
        await aemit(status_event[0], parsed, status_event[1])  # before the broadcasts below
    if spend is not None and spend != old_spend:  # the agent reports its own spend (spec §19 budgets)
        await spend_changed(workspace_id=parsed, before=old_spend, after=spend, limit=budget_limit)
    broadcasts = []
    if (old_task or "") != current_task:
        broadcasts.append(broadcast_publication(
            "TASK_UPDATED", parsed, {"current_task": current_task, "active_tasks": active_tasks}))
    broadcasts.append(broadcast_publication(
        "WORKSPACE_HEARTBEAT", parsed, {"active_tasks": active_tasks, "uptime_seconds": uptime_seconds}))
    work_queued = await _refresh_liveness(
        parsed, capabilities=capabilities, idle_timeout_seconds=idle_timeout_seconds, broadcasts=broadcasts,
        load_sample=f"{int(now.timestamp())}:{active_tasks}",
    )
    if work_queued and active_tasks < max_tasks:
        await a2a_drain.schedule_drain(parsed)
    return {"status": "ok"}


async def _refresh_liveness(
    workspace_id, *, capabilities: dict, idle_timeout_seconds: int | None, broadcasts: list[tuple[str, bytes]],
    load_sample: str,
) -> bool:
    """One Redis round trip: EXPIRE the liveness key (never recreate it: only register does,
    spec §20.1), rewrite the runtime overrides hash the A2A proxy reads (§7.2 step 6), record the
    beat's load sample for the canvas's sparkline (``redis_keys.load_key``), publish the beat's
    broadcast events, and look whether A2A requests wait in the busy queue (§8.4 "Queue drain").
    Returns the latter; True when Redis cannot tell, so the worker looks."""
    ttl = settings.LIVENESS_TTL_SECONDS
    overrides_key = runtime_overrides_key(workspace_id)
    overrides = {}
    if idle_timeout_seconds and idle_timeout_seconds > 0:
        overrides[RUNTIME_IDLE_TIMEOUT_FIELD] = str(idle_timeout_seconds)
    if capabilities:
        overrides[RUNTIME_CAPABILITIES_FIELD] = json.dumps(capabilities, separators=(",", ":"))
    try:
        pipe = get_async_redis().pipeline(transaction=True)
        pipe.expire(redis_keys.liveness_key(workspace_id), ttl)
        pipe.delete(overrides_key)
        if overrides:
            pipe.hset(overrides_key, mapping=overrides)
            pipe.expire(overrides_key, ttl)
        load_key = redis_keys.load_key(workspace_id)
        pipe.lpush(load_key, load_sample)
        pipe.ltrim(load_key, 0, redis_keys.LOAD_SAMPLES - 1)
        pipe.expire(load_key, redis_keys.LOAD_TTL_SECONDS)
        for channel, message in broadcasts:
            pipe.publish(channel, message)
        pipe.exists(a2a_queue.queued_flag_key(workspace_id))
        results = await pipe.execute()
    except (redis.RedisError, OSError):
        log.warning("could not refresh the liveness keys of workspace %s", workspace_id)
        return True
    return bool(results[-1])


def _go_number(value: float) -> float | int:
    """Go prints integral floats without a fraction (``1``, not ``1.0``)."""
    return int(value) if float(value).is_integer() else value


# --- update-card (spec §7.3) -------------------------------------------------------------------------

async def workspace_update_card(*, workspace_id, agent_card) -> dict:
    """Replace the agent card and announce AGENT_CARD_UPDATED (spec §7.3).

    No existence check, as in the original: an unknown id is still ``updated``, but since nothing
    changed no event is announced for it. An id that is no UUID names no workspace at all: 404
    (the original's failed UPDATE answers 500).
    """
    parsed = as_uuid(workspace_id)
    if parsed is None:
        raise ApiError("workspace not found", status=404)
    try:
        updated = await adb.execute(
            "UPDATE workspaces SET agent_card = %s::jsonb, updated_at = %s WHERE id = %s",
            [json.dumps(agent_card), timezone.now(), parsed],
        )
    except psycopg.Error:
        log.exception("update-card of workspace %s failed", parsed)
        raise ApiError("failed to update card", status=500) from None
    if updated:
        await aemit("AGENT_CARD_UPDATED", parsed, {"agent_card": agent_card})
    return {"status": "updated"}
