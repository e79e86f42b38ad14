"""The A2A proxy core: ``POST /workspaces/:id/a2a`` after the caller checks (spec §8.4 steps 5–9).

:func:`proxy_a2a` checks the hierarchy (5) and the budget (6), resolves the target's URL (7:
Redis, then the database; hibernated wake; SSRF filter), normalises the body to JSON-RPC 2.0
(8), forwards it with ``httpx`` (9) and maps the outcome to the spec's result table. It returns
a :class:`ProxyResult` — status, body, headers — and never raises for anything the agent does.
Its side effects come after the result is decided: the ``a2a_receive`` activity row on the
target (+ ``ACTIVITY_LOGGED``), ``A2A_RESPONSE`` for canvas callers, ``last_outbound_at`` for
workspace callers, and the reply's token usage metered into ``workspace_token_usage`` and
``monthly_spend`` (``metering.services``, §19).

Timeouts (spec §8.4 "Timeouts"): the original cancels a call when no event for the TARGET
(every heartbeat included) arrived within the idle window. Here the window restarts on every
byte the agent sends and on every heartbeat of the target (``last_heartbeat_at``, read only
when the window runs out), so a busy agent that keeps heartbeating is waited for, and a wedged
one is given up on after the idle timeout (runtime override from the last heartbeat, else
``A2A_IDLE_TIMEOUT_SECONDS``). Callers other than the canvas also get the absolute ceiling
``A2A_MAX_SECONDS`` unless they sent ``X-Timeout``.

The call's own database work (target row, hierarchy, activity row, the watchdog's heartbeat
read) runs on the event loop through ``molecule_site.adb``. Only the rare transport-error outcome
(provisioner and ORM work: marking a runtime gone, queueing a busy request) runs in a small pool
of threads of its own (:func:`_db`), untied to the request's threads, since a detached call
outlives its request.
Entry points: :func:`proxy_a2a` (async), :func:`proxy_a2a_detached` (the view: survives a
client disconnect, answers as soon as the result is known), :func:`proxy_a2a_sync` (Celery).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from http import HTTPStatus

import httpx
import psycopg
import redis
from asgiref.sync import async_to_sync, sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils import timezone

from activity.events import aemit, emit
from metering.services import usage_from_reply, usage_record
from molecule_site import adb
from molecule_site.metrics import observe_a2a_call
from molecule_site.redis_client import get_async_redis
from molecule_site.wire import JSON_CONTENT_TYPE, datastore_busy_response, json_bytes
from registry import a2a_queue, redis_keys
from registry.discovery import docker_rewrite as _docker_rewrite
from registry.discovery import is_provisioner_assigned_url
from registry.selectors import (
    RUNTIME_CAPABILITIES_FIELD,
    RUNTIME_IDLE_TIMEOUT_FIELD,
    acan_communicate,
    parse_runtime_overrides,
    runtime_overrides_key,
)
from registry.ssrf import a2a_target_problem
from registry.tokens import INBOUND_SECRET_HEADER, inbound_secret
from traces import otel
from traces.otel import SpanKind
from workspaces.models import EXTERNAL_RUNTIME, Workspace, WorkspaceStatus
from workspaces.provisioners import get_provisioner
from workspaces.provisioning import REASON_UNREACHABLE, request_restarts
from workspaces.selectors import as_uuid
from workspaces.services import workspace_wake

log = logging.getLogger(__name__)

# Callers the platform itself uses (webhooks, schedules, restart context…). The view refuses
# them from outside (§8.4 step 3); internally they skip the hierarchy check (step 5).
SYSTEM_CALLER_PREFIXES = ("webhook:", "system:", "test:", "channel:")
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
# A non-JSON answer is kept in the activity log as text, up to this much (the original drops it:
# its JSONB insert fails).
MAX_LOGGED_TEXT_BYTES = 64 * 1024
CONNECT_TIMEOUT_SECONDS = 30  # Go's default dialer
QUEUE_PRIORITY = 50
WAKE_RETRY_AFTER_SECONDS = 15
BUSY_RETRY_AFTER_SECONDS = 30
AGENT_JSON_CONTENT_TYPE = "application/json"  # 2xx passthrough, as the original sends it
SSE_CONTENT_TYPE = "text/event-stream"
# Streaming methods of both A2A generations (0.3 names, then 1.0 names).
STREAM_METHODS = frozenset({"message/stream", "tasks/resubscribe", "SendStreamingMessage", "SubscribeToTask"})
ACTIVITY_TYPE = "a2a_receive"

ACCESS_DENIED = "access denied: workspaces cannot communicate per hierarchy rules"
QUEUED_MESSAGE = "workspace agent busy — request queued, will dispatch when capacity available"


@dataclass
class ProxyResult:
    """What the caller gets: status, body bytes, content type and extra headers.

    ``queued``: the target was busy and the request went to the A2A queue (202).
    ``restarting``: the target's runtime was gone and a restart was asked for (503).
    ``stream``: for ``message/stream`` through the view, the agent's SSE bytes (``body`` is empty).
    """

    status: int
    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    headers: dict = field(default_factory=dict)
    queued: bool = False
    restarting: bool = False
    stream: AsyncIterator[bytes] | None = None


def _error(code: int, message: str, *, headers: dict | None = None, **extra) -> ProxyResult:
    return ProxyResult(code, json_bytes({"error": message, **extra}), headers=headers or {})


def is_system_caller(caller_id: str | None) -> bool:
    return bool(caller_id) and caller_id.startswith(SYSTEM_CALLER_PREFIXES)


# --- Database threads -------------------------------------------------------------------------------

DB_THREADS = 8
_db_executor = ThreadPoolExecutor(max_workers=DB_THREADS, thread_name_prefix="a2a-db")


def _db(fn):
    """``fn`` as an awaitable running in the proxy's DB threads (old connections closed around it)."""
    return database_sync_to_async(fn, thread_sensitive=False, executor=_db_executor)


def close_db_connections() -> None:
    """Close the database connections the proxy's threads hold (test teardown, shutdown).

    One closing job per thread: the barrier keeps each job busy until every thread has one.
    """
    barrier = threading.Barrier(DB_THREADS)

    def close():
        with suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=10)
        connections.close_all()

    for future in [_db_executor.submit(close) for _ in range(DB_THREADS)]:
        future.result()


# --- Step 8: JSON-RPC normalisation ----------------------------------------------------------------

def normalise(body: bytes) -> dict | None:
    """The JSON-RPC 2.0 request to forward, or None when ``body`` is not a JSON object.

    Without a top-level ``jsonrpc`` the body becomes ``{"jsonrpc","id","method","params"}``
    (other keys dropped); a ``params.message`` object without ``messageId`` gets one.
    """
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    if "jsonrpc" not in payload:
        payload = {
            "jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": payload.get("method"), "params": payload.get("params"),
        }
    params = payload.get("params")
    if isinstance(params, dict) and isinstance(params.get("message"), dict) and "messageId" not in params["message"]:
        params["message"]["messageId"] = str(uuid.uuid4())
    return payload


def _method_of(payload: dict) -> str:
    method = payload.get("method")
    return method if isinstance(method, str) else ""


# --- Steps 5–7: access, budget, URL (one thread hop) ------------------------------------------------

@dataclass
class _Target:
    id: str
    url: str
    name: str
    runtime: str
    idle_seconds: int
    capabilities: dict


async def _assigned_here(target_id: str, url: str) -> bool:
    """:func:`is_provisioner_assigned_url` without blocking the event loop where the answer may
    need the container engine (a listing, cached 2 s); a local backend reads a small file."""
    if get_provisioner().has_containers:
        return await sync_to_async(is_provisioner_assigned_url, thread_sensitive=False)(target_id, url)
    return is_provisioner_assigned_url(target_id, url)


def _wake(target_id: str) -> None:
    try:
        workspace_wake(workspace_id=target_id)
    except Exception:  # noqa: BLE001 - the caller is told to retry either way
        log.exception("could not ask for the wake of hibernated workspace %s", target_id)


# One statement serves the budget gate, the URL fallback, the activity summary and the
# hierarchy cache's version check.
_TARGET_SQL = """
SELECT w.name, w.url, w.status, w.runtime, w.budget_limit, w.monthly_spend, v.version
FROM workspace_tree_version v LEFT JOIN workspaces w ON w.id = %s
"""


async def _prepare(target_id: str, caller_id: str | None) -> ProxyResult | _Target:
    """Steps 5–7: the target to call, or the error result that ends the request.

    On the event loop: one SQL statement, one Redis round trip, and the hierarchy from the
    per-process cache (one more statement when the org tree changed since it was filled).
    A datastore with no free connection answers 503 rather than letting the call wait.
    """
    try:
        return await _plan(target_id, caller_id)
    except adb.DatabaseBusy:
        response = datastore_busy_response()
        return ProxyResult(response.status_code, response.content, headers={"Retry-After": response["Retry-After"]})


async def _plan(target_id: str, caller_id: str | None) -> ProxyResult | _Target:
    parsed = as_uuid(target_id)
    row, lookup_failed, tree_version = None, False, None  # a non-UUID id names no workspace: 404
    if parsed is not None:
        try:
            found = await adb.fetchone(_TARGET_SQL, [parsed])
            tree_version = found[6]
            if found[0] is not None:
                row = dict(zip(("name", "url", "status", "runtime", "budget_limit", "monthly_spend"), found[:6]))
        except psycopg.Error:
            lookup_failed = True

    if caller_id and caller_id != target_id and not is_system_caller(caller_id):
        try:
            allowed = await acan_communicate(caller_id, target_id, tree_version=tree_version)
        except psycopg.Error:
            allowed = False
        if not allowed:
            return _error(403, ACCESS_DENIED)

    if row is not None and row["budget_limit"] is not None and row["monthly_spend"] >= row["budget_limit"]:
        return _error(402, "workspace budget limit exceeded")

    try:
        pipe = get_async_redis().pipeline(transaction=False)
        pipe.get(redis_keys.url_key(target_id))
        pipe.hgetall(runtime_overrides_key(target_id))
        url, raw_overrides = await pipe.execute()
    except (redis.RedisError, OSError):
        url, raw_overrides = None, {}
    if not url:
        if lookup_failed:
            return _error(500, "lookup failed")
        if row is None:
            return _error(404, "workspace not found")
        if not row["url"]:
            if row["status"] == WorkspaceStatus.HIBERNATED:
                await _db(_wake)(target_id)  # ORM writes: in the proxy's DB threads
                return _error(
                    503, "workspace is waking from hibernation — retry in ~15 seconds",
                    headers={"Retry-After": str(WAKE_RETRY_AFTER_SECONDS)}, waking=True,
                    retry_after=WAKE_RETRY_AFTER_SECONDS,
                )
            return _error(503, "workspace has no URL", status=row["status"])
        url = row["url"]
        await redis_keys.acache_url(target_id, url)
    url = _docker_rewrite(target_id, url)
    # A URL equal to the one our own provisioner assigned (a local process on a loopback port)
    # is trusted in every mode; any other URL — what agents report — goes through the filter.
    overrides = parse_runtime_overrides(raw_overrides)
    target = _Target(
        id=target_id,
        url=url,
        name=row["name"] if row else target_id,
        runtime=row["runtime"] if row else "",
        idle_seconds=overrides[RUNTIME_IDLE_TIMEOUT_FIELD] or settings.A2A_IDLE_TIMEOUT_SECONDS,
        capabilities=overrides[RUNTIME_CAPABILITIES_FIELD] or {},
    )
    problem = None if await _assigned_here(target_id, url) else a2a_target_problem(url)
    if problem:
        # A loopback URL of one of our own runtimes that is gone (it crashed, or the platform
        # restarted) is no longer "assigned": say that it is restarting, not that it is a stranger.
        if await _db(_restart_if_runtime_gone)(target):
            return _restarting()
        return _error(502, "workspace URL is not publicly routable", detail=problem)
    return target


# --- Step 9: forwarding ------------------------------------------------------------------------------

class AgentTimeout(Exception):
    """The agent showed no sign of life within the idle window, or the ceiling was reached."""


async def _last_heartbeat(target_id: str):
    row = await adb.fetchone("SELECT last_heartbeat_at FROM workspaces WHERE id = %s", [as_uuid(target_id)])
    return row[0] if row else None


class _Watchdog:
    """Runs one awaitable at a time under the idle window and the optional absolute ceiling.

    The window restarts on :meth:`touch` (bytes from the agent) and on a heartbeat of the
    target newer than the last sign of life; the database is asked only when it runs out.
    """

    def __init__(self, target_id: str, idle_seconds: float, ceiling_seconds: float | None):
        self.target_id = target_id
        self.idle = idle_seconds
        self.last_activity = time.monotonic()
        self.ceiling = ceiling_seconds
        self.deadline = None if ceiling_seconds is None else self.last_activity + ceiling_seconds

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    async def _heartbeat_since_last_activity(self) -> bool:
        try:
            beat = await _last_heartbeat(self.target_id)
        except (psycopg.Error, adb.DatabaseBusy):
            return False
        if beat is None:
            return False
        beat_at = time.monotonic() - max((timezone.now() - beat).total_seconds(), 0)
        if beat_at <= self.last_activity:
            return False
        self.last_activity = beat_at
        return True

    async def run(self, awaitable):
        task = asyncio.ensure_future(awaitable)
        try:
            while True:
                now = time.monotonic()
                wait = self.last_activity + self.idle - now
                if self.deadline is not None:
                    wait = min(wait, self.deadline - now)
                if wait > 0:
                    done, _ = await asyncio.wait({task}, timeout=wait)
                    if done:
                        return task.result()
                    continue
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    raise AgentTimeout(f"A2A ceiling of {self.ceiling}s reached")
                if not await self._heartbeat_since_last_activity():
                    raise AgentTimeout(f"no sign of life from the agent for {self.idle}s")
        finally:
            if not task.done():
                task.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await task


TRANSPORT_ERRORS = (httpx.HTTPError, AgentTimeout, OSError)


def _new_client() -> httpx.AsyncClient:
    # Redirects are not followed: the SSRF filter judged this URL, not where it might point us.
    # trust_env=False: agent traffic never goes through an HTTP(S)_PROXY from the environment.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT_SECONDS),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=64, keepalive_expiry=30),
        follow_redirects=False,
        trust_env=False,
    )


_loop_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_client_override: ContextVar[httpx.AsyncClient | None] = ContextVar("a2a_client", default=None)


def _client() -> httpx.AsyncClient:
    """One pooled client per event loop (daphne has one); short-lived loops bring their own."""
    override = _client_override.get()
    if override is not None:
        return override
    loop = asyncio.get_running_loop()
    client = _loop_clients.get(loop)
    if client is None:
        client = _loop_clients[loop] = _new_client()
    return client


@asynccontextmanager
async def dedicated_client():
    """Use a private client for the duration (for calls on a loop that will not live long)."""
    async with _new_client() as client:
        token = _client_override.set(client)
        try:
            yield client
        finally:
            _client_override.reset(token)


def _caused_by(exc: BaseException, kinds) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, kinds):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def is_busy_error(exc: BaseException) -> bool:
    """The original's "busy" transport errors: deadline/cancel, EOF, connection reset."""
    if isinstance(exc, AgentTimeout):
        return True
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return False  # nobody there (refused, unresolvable, unreachable): not busy
    if isinstance(exc, httpx.TimeoutException | httpx.RemoteProtocolError | httpx.ReadError):
        return True
    return _caused_by(exc, ConnectionResetError)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"EOF: {exc}"
    if _caused_by(exc, ConnectionResetError):
        return "connection reset by peer"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _read_capped(response: httpx.Response, watchdog: _Watchdog) -> bytes:
    """The body, cut at 10 MiB as the original's ``io.LimitReader`` does."""
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        watchdog.touch()
        room = MAX_RESPONSE_BYTES - size
        if len(chunk) >= room:
            chunks.append(chunk[:room])
            log.warning("A2A response truncated at %d bytes", MAX_RESPONSE_BYTES)
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


# --- Side effects (after the result is decided) -------------------------------------------------------

def _decode(body: bytes):
    """The agent's body as JSON for the activity row and events; non-JSON as (capped) text."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        text = body[:MAX_LOGGED_TEXT_BYTES].decode(errors="replace")
        return text + "…" if len(body) > MAX_LOGGED_TEXT_BYTES else text


def _tool_trace(decoded):
    if isinstance(decoded, dict) and isinstance(decoded.get("result"), dict):
        metadata = decoded["result"].get("metadata")
        if isinstance(metadata, dict):
            return metadata.get("tool_trace")
    return None


_INSERT_ACTIVITY_SQL = """
INSERT INTO activity_logs (id, workspace_id, activity_type, source_id, target_id, method, summary, request_body,
                           response_body, tool_trace, duration_ms, status, error_detail, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s, %s, clock_timestamp())
"""


def _jsonb(value) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


async def _insert_activity(*, target: _Target, caller_id, method, summary, request_body, response_body, tool_trace,
                           duration_ms, status, error_detail=None) -> None:
    """One ``a2a_receive`` row on the target and its ``ACTIVITY_LOGGED`` (best effort, as the original)."""
    target_uuid = as_uuid(target.id)
    source_uuid = None if is_system_caller(caller_id) else as_uuid(caller_id)
    try:
        await adb.execute(_INSERT_ACTIVITY_SQL, [
            uuid.uuid4(), target_uuid, ACTIVITY_TYPE, source_uuid, target_uuid, method, summary,
            _jsonb(request_body), _jsonb(response_body), _jsonb(tool_trace), duration_ms, status, error_detail,
        ])
    except (psycopg.Error, adb.DatabaseBusy):
        log.warning("could not log the A2A activity of workspace %s", target.id, exc_info=True)
        return
    payload = {
        "activity_type": ACTIVITY_TYPE, "method": method, "summary": summary, "status": status,
        "source_id": str(source_uuid) if source_uuid else None, "target_id": str(target_uuid),
        "duration_ms": duration_ms,
    }
    if tool_trace is not None:
        payload["tool_trace"] = tool_trace
    await aemit("ACTIVITY_LOGGED", target_uuid, payload, persist=False)


async def _record_exchange(*, target: _Target, caller_id, request_body, response_body: bytes, method, status_code,
                           duration_ms) -> None:
    """The agent answered: activity row, then A2A_RESPONSE (canvas) or last_outbound_at (workspace)."""
    decoded = _decode(response_body)
    ok = status_code < 400
    observe_a2a_call(target.id, "ok" if ok else "error", duration_ms)
    await _insert_activity(
        target=target, caller_id=caller_id, method=method, summary=f"{method} → {target.name}",
        request_body=request_body, response_body=decoded, tool_trace=_tool_trace(decoded), duration_ms=duration_ms,
        status="ok" if ok else "error",
    )
    if not ok:
        return
    if (usage := usage_from_reply(decoded)) is not None:
        try:
            await usage_record(workspace_id=target.id, usage=usage)
        except (psycopg.Error, adb.DatabaseBusy):
            log.warning("could not meter the token usage of workspace %s", target.id, exc_info=True)
    if caller_id is None:
        await aemit("A2A_RESPONSE", target.id, {"response_body": decoded, "method": method, "duration_ms": duration_ms},
                    persist=False)
    elif not is_system_caller(caller_id) and (caller := as_uuid(caller_id)) is not None:
        try:
            await adb.execute("UPDATE workspaces SET last_outbound_at = %s WHERE id = %s", [timezone.now(), caller])
        except (psycopg.Error, adb.DatabaseBusy):
            log.warning("could not record last_outbound_at of workspace %s", caller_id)


async def _record_failure(*, target: _Target, caller_id, request_body, method, error: str, duration_ms) -> None:
    observe_a2a_call(target.id, "failed", duration_ms)
    await _insert_activity(
        target=target, caller_id=caller_id, method=method, summary=f"A2A request to {target.name} failed: {error}",
        request_body=request_body, response_body=None, tool_trace=None, duration_ms=duration_ms, status="error",
        error_detail=error,
    )


# --- Transport-error outcomes ------------------------------------------------------------------------

def _restart_if_runtime_gone(target: _Target) -> bool:
    """The Docker branch of the result table, for any backend that runs runtimes locally.

    The runtime is gone: mark the workspace offline (unless removed/provisioning; an already
    offline one is not announced twice), clear its keys and ask for a restart. Only for a
    workspace the backend provisioned itself: one that merely registered has no runtime of ours
    to be gone (and nothing is started for it).
    """
    provisioner = get_provisioner()
    if not provisioner.runs_local_runtimes or target.runtime == EXTERNAL_RUNTIME:
        return False
    try:
        if target.id in provisioner.live_workspace_ids() or target.id not in provisioner.provisioned_workspace_ids():
            return False
    except Exception:  # noqa: BLE001 - cannot tell: treat as the ordinary transport error
        return False
    with transaction.atomic():
        changed = (
            Workspace.objects.filter(pk=target.id)
            .exclude(status__in=[WorkspaceStatus.REMOVED, WorkspaceStatus.PROVISIONING, WorkspaceStatus.OFFLINE])
            .update(status=WorkspaceStatus.OFFLINE)
        )
        if changed:
            emit("WORKSPACE_OFFLINE", target.id, {})
    redis_keys.clear_workspace_keys([target.id])
    try:
        request_restarts([target.id], reason=REASON_UNREACHABLE)
    except Exception:  # noqa: BLE001
        log.exception("could not ask for a restart of workspace %s", target.id)
    return True


def _enqueue_busy(target: _Target, caller_id, payload: dict) -> ProxyResult:
    message = (payload.get("params") or {}).get("message") if isinstance(payload.get("params"), dict) else None
    key = message.get("messageId") if isinstance(message, dict) else None
    try:
        item = a2a_queue.enqueue(
            workspace_id=target.id, caller_id=caller_id, body=payload, priority=QUEUE_PRIORITY,
            idempotency_key=key if isinstance(key, str) else None,
        )
        depth = a2a_queue.queue_depth(target.id)
    except DatabaseError:
        log.warning("could not queue an A2A request for busy workspace %s", target.id, exc_info=True)
        return _error(
            503, "workspace agent busy — retry after a short backoff", headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
            busy=True, retry_after=BUSY_RETRY_AFTER_SECONDS,
        )
    body = {"queued": True, "queue_id": str(item.id), "queue_depth": depth, "message": QUEUED_MESSAGE}
    return ProxyResult(202, json_bytes(body), queued=True)


def _restarting() -> ProxyResult:
    result = _error(503, "workspace agent unreachable — container restart triggered", restarting=True)
    result.restarting = True
    return result


def _transport_error_result(target: _Target, caller_id, payload: dict, exc: BaseException) -> ProxyResult:
    if _restart_if_runtime_gone(target):
        return _restarting()
    if not is_busy_error(exc):
        return _error(502, "failed to reach workspace agent")
    if target.capabilities.get("session"):
        return _error(
            503, "workspace agent busy — adapter handles retry (native_session)",
            headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)}, busy=True, retry_after=BUSY_RETRY_AFTER_SECONDS,
            native_session=True,
        )
    return _enqueue_busy(target, caller_id, payload)


# --- The proxy -------------------------------------------------------------------------------------------

def _agent_error(status: int, body: bytes) -> ProxyResult:
    """Agent status ≥ 300: its ``error`` string, else the HTTP reason phrase (its body is not passed on)."""
    decoded = _decode(body)
    if isinstance(decoded, dict) and isinstance(decoded.get("error"), str):
        message = decoded["error"]
    else:
        try:
            message = HTTPStatus(status).phrase
        except ValueError:
            message = ""
    return _error(status, message)


async def proxy_a2a(
    *,
    target_id: str,
    caller_id: str | None,
    body: bytes,
    log_activity: bool = True,
    caller_deadline: bool = False,
    allow_stream: bool = False,
    on_decided: Callable[[ProxyResult], None] | None = None,
    traceparent: str | None = None,
    span_kind: SpanKind = SpanKind.SERVER,
) -> ProxyResult:
    """Forward an A2A request to ``target_id`` (spec §8.4 steps 5–9) and return the caller's result.

    ``caller_id``: the ``X-Workspace-ID`` (None for the canvas; ``system:…``-style ids skip
    the hierarchy check). ``caller_deadline``: the request carried ``X-Timeout`` (no absolute
    ceiling then). ``allow_stream``: a 2xx ``text/event-stream`` answer to ``message/stream``
    is returned as ``result.stream`` instead of being read whole. ``on_decided`` is called
    with the result before the side effects run. ``log_activity=False`` (queue drains) skips
    every side effect.

    The call is an ``a2a.proxy`` span (``traces.otel``; SERVER for a request that came in over
    HTTP, CLIENT when the platform itself calls), the child of ``traceparent`` when the caller
    sent one; the agent gets the span's own ``traceparent``. The span ends when the result is
    decided (for a relayed stream: when its headers arrived) and is exported in the SDK's batch
    thread, so it adds no statement to the call.
    """
    target_id, caller_id = str(target_id), caller_id or None
    attributes = {"workspace.id": target_id}
    if caller_id:
        attributes["a2a.caller_id"] = caller_id
    span = otel.start_span("a2a.proxy", kind=span_kind, traceparent=traceparent, attributes=attributes)
    result = None

    def decided(result: ProxyResult) -> None:
        if span.is_recording():
            span.set_attribute("http.response.status_code", result.status)
            if result.status >= 400:
                span.set_status(otel.Status(otel.StatusCode.ERROR, _error_text(result)))
            span.end()
        if on_decided is not None:
            on_decided(result)

    try:
        result = await _proxy_a2a(
            target_id=target_id, caller_id=caller_id, body=body, log_activity=log_activity,
            caller_deadline=caller_deadline, allow_stream=allow_stream, on_decided=decided, span=span,
            traceparent=otel.traceparent_of(span) or traceparent,
        )
        return result
    except BaseException as exc:
        if span.is_recording():
            span.record_exception(exc)
            span.set_status(otel.Status(otel.StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        if span.is_recording():  # not decided (an exception, a cancelled call)
            span.end()


def _error_text(result: ProxyResult) -> str:
    try:
        error = json.loads(result.body).get("error") if result.body else None
    except (ValueError, AttributeError, UnicodeDecodeError):
        error = None
    return error if isinstance(error, str) else f"HTTP {result.status}"


async def _proxy_a2a(*, target_id: str, caller_id: str | None, body: bytes, log_activity: bool, caller_deadline: bool,
                     allow_stream: bool, on_decided, span, traceparent: str | None) -> ProxyResult:
    plan = await _prepare(target_id, caller_id)
    if isinstance(plan, ProxyResult):
        return _decided(plan, on_decided)
    target = plan
    payload = normalise(body)
    if payload is None:
        return _decided(_error(400, "invalid JSON"), on_decided)
    method = _method_of(payload)
    if method and span.is_recording():
        span.set_attribute("a2a.method", method)
    ceiling = None if caller_id is None or caller_deadline else settings.A2A_MAX_SECONDS
    watchdog = _Watchdog(target.id, target.idle_seconds, ceiling)
    client = _client()
    try:
        headers = {"Content-Type": "application/json", INBOUND_SECRET_HEADER: inbound_secret(target.id)}
        if traceparent:
            headers[otel.TRACEPARENT] = traceparent
        request = client.build_request("POST", target.url, content=json_bytes(payload), headers=headers)
    except (httpx.HTTPError, ValueError, TypeError):
        return _decided(_error(500, "failed to create proxy request"), on_decided)

    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    async def record(fn, **kwargs):
        if log_activity:
            await fn(target=target, caller_id=caller_id, request_body=payload, method=method, **kwargs)

    try:
        response = await watchdog.run(client.send(request, stream=True))
    except TRANSPORT_ERRORS as exc:
        duration = elapsed_ms()
        result = await _db(_transport_error_result)(target, caller_id, payload, exc)
        _decided(result, on_decided)
        await record(_record_failure, error=_describe(exc), duration_ms=duration)
        return result

    watchdog.touch()  # the headers are a sign of life
    status = response.status_code
    streamed = (
        allow_stream and method in STREAM_METHODS and 200 <= status < 300
        and response.headers.get("content-type", "").startswith(SSE_CONTENT_TYPE)
    )
    if streamed:
        relay = _Relay(response, watchdog, elapsed_ms, record)
        return _decided(ProxyResult(status, b"", SSE_CONTENT_TYPE, stream=relay.chunks()), on_decided)

    try:
        agent_body = await watchdog.run(_read_capped(response, watchdog))
    except TRANSPORT_ERRORS as exc:
        duration = elapsed_ms()
        result = _error(502, "failed to read agent response", delivery_confirmed=200 <= status < 300)
        _decided(result, on_decided)
        await record(_record_failure, error=f"failed to read agent response: {_describe(exc)}", duration_ms=duration)
        return result
    finally:
        await response.aclose()

    duration = elapsed_ms()
    if 200 <= status < 300:
        result = ProxyResult(status, agent_body, AGENT_JSON_CONTENT_TYPE)
    else:
        result = _agent_error(status, agent_body)
    _decided(result, on_decided)
    await record(_record_exchange, response_body=agent_body, status_code=status, duration_ms=duration)
    return result


def _decided(result: ProxyResult, on_decided) -> ProxyResult:
    if on_decided is not None:
        on_decided(result)
    return result


class _Relay:
    """Passes an agent's SSE stream through, then logs the exchange once it ends.

    The activity's response body is the last ``data:`` event (a JSON-RPC response in A2A
    streaming); the relay stops at 10 MiB like a plain response.
    """

    def __init__(self, response: httpx.Response, watchdog: _Watchdog, elapsed_ms, record):
        self.response = response
        self.watchdog = watchdog
        self.elapsed_ms = elapsed_ms
        self.record = record

    async def chunks(self) -> AsyncIterator[bytes]:
        collected = bytearray()
        error = None
        iterator = self.response.aiter_bytes()

        async def next_chunk():
            try:
                return await iterator.__anext__()
            except StopAsyncIteration:
                return None

        try:
            while True:
                chunk = await self.watchdog.run(next_chunk())
                if chunk is None:
                    break
                self.watchdog.touch()
                room = MAX_RESPONSE_BYTES - len(collected)
                if len(chunk) >= room:
                    chunk = chunk[:room]
                    collected += chunk
                    yield chunk
                    log.warning("A2A stream cut at %d bytes", MAX_RESPONSE_BYTES)
                    break
                collected += chunk
                yield chunk
        except TRANSPORT_ERRORS as exc:
            error = f"stream interrupted: {_describe(exc)}"
        except (GeneratorExit, asyncio.CancelledError):
            error = "stream interrupted: client went away"
            raise
        finally:
            duration = self.elapsed_ms()
            with suppress(Exception):
                await asyncio.shield(self.response.aclose())
            _spawn(self._after(bytes(collected), error, duration))

    async def _after(self, collected: bytes, error: str | None, duration: int) -> None:
        if error is not None:
            await self.record(_record_failure, error=error, duration_ms=duration)
            return
        await self.record(_record_exchange, response_body=last_sse_data(collected) or collected,
                          status_code=self.response.status_code, duration_ms=duration)


def last_sse_data(stream: bytes) -> bytes | None:
    """The payload of the last complete ``data:`` event in an SSE byte stream."""
    last = None
    for event in stream.replace(b"\r\n", b"\n").split(b"\n\n"):
        lines = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
        if lines:
            last = b"\n".join(lines)
    return last


# --- Background tasks, detached calls, the sync entry point ------------------------------------------

_background: set[asyncio.Task] = set()


def _log_task_failure(task: asyncio.Task) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("A2A background work failed", exc_info=task.exception())


def _spawn(coro) -> asyncio.Task:
    """Run ``coro`` on this loop, outliving the request that started it."""
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_log_task_failure)
    return task


async def settle() -> None:
    """Wait for this loop's background A2A work (side effects of detached calls) to finish."""
    loop = asyncio.get_running_loop()
    while pending := [task for task in _background if task.get_loop() is loop and not task.done()]:
        await asyncio.gather(*pending, return_exceptions=True)


async def proxy_a2a_detached(**kwargs) -> ProxyResult:
    """:func:`proxy_a2a` detached from the caller, as the original forwards (spec §8.4 step 9).

    The call runs in its own task: a client that hangs up does not cancel the agent's work,
    and the activity row / ``A2A_RESPONSE`` still record the answer. Returns as soon as the
    result is decided; the side effects finish in the background.
    """
    decided: asyncio.Future = asyncio.get_running_loop().create_future()

    def on_decided(result: ProxyResult) -> None:
        if not decided.done():
            decided.set_result(result)

    async def run():
        try:
            on_decided(await proxy_a2a(**kwargs, on_decided=on_decided))
        except asyncio.CancelledError:
            decided.cancel()
            raise
        except BaseException as exc:
            if not decided.done():
                decided.set_exception(exc)
                return
            raise

    _spawn(run())
    return await asyncio.shield(decided)


def proxy_a2a_sync(**kwargs) -> ProxyResult:
    """:func:`proxy_a2a` for sync code (Celery tasks: delegation, queue drains); same keywords.

    Streams are never returned (``allow_stream`` is forced off); side effects are done when
    this returns.
    """
    kwargs["allow_stream"] = False
    kwargs.setdefault("span_kind", SpanKind.CLIENT)  # the platform itself is the caller

    async def run() -> ProxyResult:
        async with dedicated_client(), adb.dedicated_pool():
            return await proxy_a2a(**kwargs)

    return async_to_sync(run)()


__all__ = [
    "ProxyResult", "normalise", "proxy_a2a", "proxy_a2a_detached", "proxy_a2a_sync", "settle", "is_busy_error",
    "is_system_caller", "last_sse_data", "SYSTEM_CALLER_PREFIXES", "MAX_RESPONSE_BYTES", "dedicated_client",
    "close_db_connections",
]
