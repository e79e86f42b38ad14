"""Writes of the traces app: storing spans (one statement per batch), retention, and reading the
agent's live transcript (spec §19 "Traces / transcript").

:func:`aspans_receive` serves the OTLP receiver on the event loop (and meters the usage of an
external agent's model-call spans); :func:`spans_store` the
platform's own exporter (``traces.otel``), which runs in the SDK's batch thread. Both run one
``INSERT … SELECT FROM jsonb_to_recordset(…)`` (the batch as one JSON parameter): a span already stored — an exporter retrying — is left as it
is (``ON CONFLICT (trace_id, span_id) DO NOTHING``), and a ``workspace_id`` that names no
workspace is stored as null rather than failing the batch.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import httpx
import psycopg
import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from metering.services import usage_from_spans, usage_record
from molecule_site import adb
from molecule_site.errors import ApiError
from molecule_site.redis_client import get_redis
from registry import redis_keys
from registry.discovery import docker_rewrite, is_provisioner_assigned_url
from registry.ssrf import a2a_target_problem
from registry.tokens import INBOUND_SECRET_HEADER, inbound_secret
from traces.models import TraceSpan
from traces.otlp import SpanRow
from workspaces.models import Workspace

log = logging.getLogger(__name__)

_STORE_SQL = """
INSERT INTO trace_spans (id, trace_id, span_id, parent_span_id, workspace_id, service_name, name, kind,
                         start_time, end_time, duration_ms, status, status_message, attributes, events)
SELECT gen_random_uuid(), s.trace_id, s.span_id, s.parent_span_id, w.id, s.service_name, s.name, s.kind,
       s.start_time, s.end_time, s.duration_ms, s.status, s.status_message, s.attributes, s.events
FROM jsonb_to_recordset(%s::jsonb)
     AS s(trace_id text, span_id text, parent_span_id text, workspace_id uuid, service_name text, name text,
          kind text, start_time timestamptz, end_time timestamptz, duration_ms float8, status text,
          status_message text, attributes jsonb, events jsonb)
LEFT JOIN workspaces w ON w.id = s.workspace_id
ON CONFLICT (trace_id, span_id) DO NOTHING
"""
_STORE_RETURNING_SQL = _STORE_SQL.rstrip() + " RETURNING trace_id, span_id"


def _store_params(rows: list[SpanRow]) -> list[str]:
    """The batch as ONE JSON array of span objects: json's C encoder builds it, where 14 text
    arrays cost psycopg ~45 µs a span to quote (bench/tracing_profile.py)."""
    return [json.dumps([{
        "trace_id": row.trace_id, "span_id": row.span_id, "parent_span_id": row.parent_span_id,
        "workspace_id": str(row.workspace_id) if row.workspace_id else None, "service_name": row.service_name,
        "name": row.name, "kind": row.kind, "start_time": row.start_time.isoformat(),
        "end_time": row.end_time.isoformat(), "duration_ms": row.duration_ms, "status": row.status,
        "status_message": row.status_message, "attributes": row.attributes, "events": row.events,
    } for row in rows], separators=(",", ":"), ensure_ascii=False, default=str)]


async def aspans_store(*, rows: list[SpanRow]) -> list[SpanRow]:
    """Store ``rows`` (each carrying its ``workspace_id``); returns the ones that were new (a
    resent span is neither stored nor returned twice)."""
    if not rows:
        return []
    stored = {tuple(key) for key in await adb.fetchall(_STORE_RETURNING_SQL, _store_params(rows))}
    return [row for row in rows if (row.trace_id, row.span_id) in stored]


async def aspans_receive(*, workspace_id, rows: list[SpanRow]) -> None:
    """The receiver's export: the spans are ``workspace_id``'s (the bearer's), stored once; the
    usage of new ``chat`` spans no A2A reply reports is metered to that workspace (metering)."""
    for row in rows:
        row.workspace_id = workspace_id
    new = await aspans_store(rows=rows)
    for usage in usage_from_spans(row.attributes for row in new):
        try:
            await usage_record(workspace_id=workspace_id, usage=usage)
        except (psycopg.Error, adb.DatabaseBusy):  # the spans stay stored; the exporter must not retry
            log.warning("could not meter the span usage of workspace %s", workspace_id, exc_info=True)


def spans_store(*, rows: list[SpanRow]) -> int:
    """:func:`aspans_store` for sync code (the platform exporter's batch thread)."""
    if not rows:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_STORE_SQL, _store_params(rows))
        return cursor.rowcount


def spans_purge_older_than(*, days: int) -> int:
    """Retention: delete spans that started more than ``days`` ago; returns how many."""
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = TraceSpan.objects.filter(start_time__lt=cutoff).delete()
    return deleted


# --- the live transcript ---------------------------------------------------------------------------

TRANSCRIPT_TIMEOUT_SECONDS = 10
TRANSCRIPT_MAX_BYTES = 5 * 1024 * 1024


def _agent_url(workspace: Workspace) -> str:
    """Where the agent answers, as the A2A proxy resolves it: the Redis URL key, else the row."""
    try:
        url = get_redis().get(redis_keys.url_key(workspace.id))
    except (redis.RedisError, OSError):
        url = None
    url = url or workspace.url
    if not url:
        raise ApiError("workspace has no URL", status=503,
                       body={"error": "workspace has no URL", "status": workspace.status})
    url = docker_rewrite(str(workspace.id), url)
    # The proxy's SSRF rule: our own provisioner's URL is trusted, anything an agent reported is checked.
    if not is_provisioner_assigned_url(str(workspace.id), url):
        problem = a2a_target_problem(url)
        if problem:
            raise ApiError("workspace URL is not publicly routable", status=502, detail=problem)
    return url


def transcript_fetch(*, workspace: Workspace, since: int | None = None, limit: int | None = None,
                     bearer: str | None = None) -> dict:
    """The agent's ``GET <url>/transcript?since&limit`` body (a JSON object), or an ``ApiError``:
    503 without a URL, 502 when the agent cannot be reached or answers something that is not
    JSON, or refuses (its status as ``agent_status``).

    The platform presents the workspace's inbound secret; ``bearer`` (the caller's own token for
    this workspace, when that is how it authenticated) is passed on for runtimes that check it.
    """
    url = _agent_url(workspace).rstrip("/") + "/transcript"
    params = {key: value for key, value in (("since", since), ("limit", limit)) if value is not None}
    headers = {INBOUND_SECRET_HEADER: inbound_secret(workspace.id), "Accept": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    try:
        # Redirects are not followed and the environment's proxies are not used, as in the A2A proxy.
        with httpx.Client(timeout=TRANSCRIPT_TIMEOUT_SECONDS, follow_redirects=False, trust_env=False) as client:
            with client.stream("GET", url, params=params, headers=headers) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > TRANSCRIPT_MAX_BYTES:
                        raise ApiError("transcript from workspace agent too large", status=502)
    except httpx.TimeoutException:
        raise ApiError("workspace agent did not answer in time", status=504) from None
    except (httpx.HTTPError, OSError):
        raise ApiError("failed to reach workspace agent", status=502) from None
    try:
        data = json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError):
        data = None
    if response.status_code >= 300:
        message = data.get("error") if isinstance(data, dict) and isinstance(data.get("error"), str) else None
        raise ApiError(f"workspace agent refused the transcript read: {message or f'HTTP {response.status_code}'}",
                       status=502, agent_status=response.status_code)
    if not isinstance(data, dict):
        raise ApiError("invalid transcript response from workspace agent", status=502)
    return data
