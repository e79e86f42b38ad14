"""Request and connection metrics in the original's names (spec §17).

django-prometheus supplies the generic Django/DB/cache metrics; these add the series that
dashboards built for the original platform read. ``path`` is the route template in the
original's ``/workspaces/:id`` form, or ``unmatched``, so label cardinality stays bounded.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache

from prometheus_client import Counter, Gauge, Histogram

from molecule_site.middleware import DualModeMiddleware

HTTP_REQUESTS = Counter(
    "molecule_http_requests",
    "HTTP requests by method, route template and status.",
    ["method", "path", "status"],
)
HTTP_REQUEST_SECONDS = Counter(
    "molecule_http_request_duration_seconds",
    "Total seconds spent serving requests by method, route template and status.",
    ["method", "path", "status"],
)
# Beyond the spec: latency percentiles for dashboards (the spec's series above only sum).
HTTP_REQUEST_LATENCY = Histogram(
    "molecule_http_request_latency_seconds",
    "Request latency by route template.",
    ["path"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WEBSOCKET_CONNECTIONS = Gauge(
    "molecule_websocket_connections_active",
    "WebSocket connections currently open.",
    multiprocess_mode="livesum",  # summed over the live web processes
)

_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def route_template(request) -> str:
    """``workspaces/<uuid:workspace_id>/a2a`` → ``/workspaces/:workspace_id/a2a``."""
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return "unmatched"
    return _template_of(match.route)


@lru_cache(maxsize=1024)  # one entry per route of the URL map
def _template_of(route: str) -> str:
    return "/" + _CONVERTER.sub(r":\1", route).lstrip("^").rstrip("$").lstrip("/")


class RequestMetricsMiddleware(DualModeMiddleware):
    """Counts every request and its duration under its route template (sync and async alike)."""

    def handle(self, request):
        started = time.perf_counter()
        return _count(request, self.get_response(request), started)

    async def ahandle(self, request):
        started = time.perf_counter()
        return _count(request, await self.get_response(request), started)


def _count(request, response, started: float):
    elapsed = time.perf_counter() - started
    path = route_template(request)
    labels = (request.method, path, str(response.status_code))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_REQUEST_SECONDS.labels(*labels).inc(elapsed)
    HTTP_REQUEST_LATENCY.labels(path).observe(elapsed)
    return response


# --- Per-workspace series (operators' view of the fleet) ------------------------------------------

A2A_CALLS = Counter(
    "molecule_a2a_calls",
    "A2A calls proxied to a workspace, by target workspace and outcome (ok, error, failed).",
    ["workspace_id", "outcome"],
)
A2A_CALL_SECONDS = Histogram(
    "molecule_a2a_call_duration_seconds",
    "Duration of proxied A2A calls by target workspace.",
    ["workspace_id"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
OTHER = "other"
_seen_workspaces: set[str] = set()


def _max_workspaces() -> int:
    from django.conf import settings
    return settings.METRICS_MAX_WORKSPACES


def workspace_label(workspace_id) -> str:
    """The first ``METRICS_MAX_WORKSPACES`` workspaces this process sees keep their id; later ones are ``other``."""
    label = str(workspace_id)
    if label in _seen_workspaces:
        return label
    if len(_seen_workspaces) >= _max_workspaces():
        return OTHER
    _seen_workspaces.add(label)
    return label


def observe_a2a_call(workspace_id, outcome: str, duration_ms: float | int | None) -> None:
    """One proxied call to an existing workspace: ``outcome`` is ok / error (agent answered ≥400) / failed."""
    label = workspace_label(workspace_id)
    A2A_CALLS.labels(label, outcome).inc()
    if duration_ms is not None:
        A2A_CALL_SECONDS.labels(label).observe(duration_ms / 1000)


class WorkspaceCollector:
    """Fleet gauges read from the database at scrape time: one query for the workspaces, one for token usage.

    Lives in its own registry (not the multiprocess files): each scrape reads the shared database, so any web
    process gives the same answer. Workspaces past ``METRICS_MAX_WORKSPACES`` (most recently updated first) are
    summed into ``workspace_id="other"``.
    """

    def collect(self):
        from django.db import DatabaseError, connection
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        status = GaugeMetricFamily("molecule_workspace_status", "1 for the workspace's current status.",
                                   labels=["workspace_id", "name", "status"])
        tasks = GaugeMetricFamily("molecule_workspace_active_tasks", "Tasks the workspace reports in progress.",
                                  labels=["workspace_id"])
        age = GaugeMetricFamily("molecule_workspace_heartbeat_age_seconds", "Seconds since the last heartbeat.",
                                labels=["workspace_id"])
        tokens = CounterMetricFamily("molecule_workspace_tokens", "Model tokens used by the workspace.",
                                     labels=["workspace_id", "direction"])
        cap = _max_workspaces()
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id::text, name, status, active_tasks,"
                    " EXTRACT(EPOCH FROM (now() - last_heartbeat_at))"
                    " FROM workspaces WHERE status <> 'removed' ORDER BY updated_at DESC NULLS LAST, id LIMIT %s",
                    [cap + 1],
                )
                rows = cursor.fetchall()
                usage = {}
                cursor.execute("SELECT to_regclass('workspace_token_usage') IS NOT NULL")
                if cursor.fetchone()[0]:
                    cursor.execute("SELECT workspace_id::text, SUM(input_tokens), SUM(output_tokens)"
                                   " FROM workspace_token_usage GROUP BY workspace_id")
                    usage = {row[0]: (row[1] or 0, row[2] or 0) for row in cursor.fetchall()}
        except DatabaseError:
            return []
        shown = {row[0] for row in rows[:cap]}
        other_status: dict[str, int] = {}
        other_tasks = 0
        for workspace_id, name, state, active, heartbeat_age in rows[:cap]:
            status.add_metric([workspace_id, name, state], 1)
            tasks.add_metric([workspace_id], active or 0)
            if heartbeat_age is not None:
                age.add_metric([workspace_id], float(heartbeat_age))
        if len(rows) > cap:  # the rest, summed in SQL so the scrape stays one bounded pass
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT status, COUNT(*), COALESCE(SUM(active_tasks), 0) FROM workspaces"
                    " WHERE status <> 'removed' AND NOT (id::text = ANY(%s)) GROUP BY status", [list(shown)],
                )
                for state, count, active in cursor.fetchall():
                    other_status[state] = count
                    other_tasks += active
            for state, count in other_status.items():
                status.add_metric([OTHER, OTHER, state], count)
            tasks.add_metric([OTHER], other_tasks)
        other_in = other_out = 0
        for workspace_id, (used_in, used_out) in usage.items():
            if workspace_id in shown:
                tokens.add_metric([workspace_id, "input"], float(used_in))
                tokens.add_metric([workspace_id, "output"], float(used_out))
            else:
                other_in += used_in
                other_out += used_out
        if other_in or other_out:
            tokens.add_metric([OTHER, "input"], float(other_in))
            tokens.add_metric([OTHER, "output"], float(other_out))
        return [status, tasks, age, tokens]


def workspace_metrics_text() -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkspaceCollector())
    return generate_latest(registry)
