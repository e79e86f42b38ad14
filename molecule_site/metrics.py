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
